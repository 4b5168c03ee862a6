//! `payments`: issues refunds, a destructive action with a compensating one
//! (`cancel_refund`), for approval and saga scenarios.

use std::sync::LazyLock;

use rmcp::{
    Json, ServerHandler,
    handler::server::{tool::ToolRouter, wrapper::Parameters},
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

use crate::common::{Shared, ToolError, normalize_id};

/// Lifecycle state of a refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(inline)]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    Succeeded,
    Cancelled,
}

/// A refund issued by `refund`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(inline)]
pub struct Refund {
    /// Refund id, "R0001", "R0002", ... in issue order.
    pub refund_id: String,
    /// "succeeded" once issued, "cancelled" after `cancel_refund`.
    pub status: RefundStatus,
    /// Amount in minor units (e.g. cents).
    pub amount: u64,
    /// Upper-case 3-letter ISO 4217 currency code.
    pub currency: String,
    /// Customer the refund was paid to.
    pub customer_id: String,
    /// Reason given when the refund was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Outcome of `cancel_refund`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CancelledRefund {
    /// The cancelled refund's id.
    pub refund_id: String,
    /// Always "cancelled".
    pub status: RefundStatus,
}

/// Refunds issued so far, oldest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RefundList {
    /// The refunds, oldest first.
    pub refunds: Vec<Refund>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundParams {
    /// Amount to refund in minor units of the currency (e.g. cents); at least 1.
    #[schemars(range(min = 1))]
    pub amount: u64,
    /// 3-letter ISO 4217 currency code, e.g. "USD".
    #[schemars(regex(pattern = r"^[A-Za-z]{3}$"))]
    pub currency: String,
    /// Id of the customer to refund, e.g. "C001".
    pub customer_id: String,
    /// Why the refund is issued.
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRefundParams {
    /// Id of the refund to cancel, e.g. "R0001".
    pub refund_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRefundsParams {
    /// Only list refunds paid to this customer.
    pub customer_id: Option<String>,
}

/// The `payments` sample server. Clones share the same ledger.
#[derive(Clone, Default)]
pub struct Payments {
    refunds: Shared<Vec<Refund>>,
}

static ROUTER: LazyLock<ToolRouter<Payments>> = LazyLock::new(Payments::tool_router);

#[tool_router]
impl Payments {
    /// Refund money to a customer. Moves money: cancel with cancel_refund.
    #[tool(annotations(
        title = "Refund",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    fn refund(
        &self,
        Parameters(params): Parameters<RefundParams>,
    ) -> Result<Json<Refund>, ToolError> {
        if params.amount == 0 {
            return Err("amount must be at least 1 (minor units, e.g. cents)".into());
        }
        let currency = params.currency.trim();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "currency {:?} is not a 3-letter ISO 4217 code such as \"USD\"",
                params.currency
            ));
        }
        let customer_id = normalize_id(&params.customer_id);
        if customer_id.is_empty() {
            return Err("customer_id must not be empty".into());
        }
        let mut refunds = self.refunds.lock();
        let refund = Refund {
            refund_id: format!("R{:04}", refunds.len() + 1),
            status: RefundStatus::Succeeded,
            amount: params.amount,
            currency: currency.to_ascii_uppercase(),
            customer_id,
            reason: params.reason,
        };
        refunds.push(refund.clone());
        Ok(Json(refund))
    }

    /// Cancel a refund issued by `refund` (its compensating action).
    /// A refund can be cancelled only once.
    #[tool(annotations(
        title = "Cancel refund",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = true
    ))]
    fn cancel_refund(
        &self,
        Parameters(params): Parameters<CancelRefundParams>,
    ) -> Result<Json<CancelledRefund>, ToolError> {
        let id = normalize_id(&params.refund_id);
        let mut refunds = self.refunds.lock();
        let refund = refunds
            .iter_mut()
            .find(|r| r.refund_id == id)
            .ok_or_else(|| format!("no refund with id {:?}", params.refund_id))?;
        if refund.status == RefundStatus::Cancelled {
            return Err(format!("refund {id} is already cancelled"));
        }
        refund.status = RefundStatus::Cancelled;
        Ok(Json(CancelledRefund {
            refund_id: id,
            status: RefundStatus::Cancelled,
        }))
    }

    /// List refunds issued so far, optionally for a single customer.
    #[tool(annotations(title = "List refunds", read_only_hint = true, open_world_hint = false))]
    fn list_refunds(&self, Parameters(params): Parameters<ListRefundsParams>) -> Json<RefundList> {
        let customer = params.customer_id.as_deref().map(normalize_id);
        let refunds = self
            .refunds
            .lock()
            .iter()
            .filter(|r| customer.as_ref().is_none_or(|c| &r.customer_id == c))
            .cloned()
            .collect();
        Json(RefundList { refunds })
    }
}

#[tool_handler(
    router = ROUTER,
    name = "warden-sample-payments",
    instructions = "Fake payment processor. `refund` moves money; `cancel_refund` undoes it."
)]
impl ServerHandler for Payments {}
