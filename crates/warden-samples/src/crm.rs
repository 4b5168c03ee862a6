//! `crm`: a customer database holding personal data (SSNs, card numbers),
//! the sample a data-loss-prevention policy is meant to guard.

use std::sync::LazyLock;

use rmcp::{
    Json, ServerHandler,
    handler::server::{tool::ToolRouter, wrapper::Parameters},
    schemars::{self, JsonSchema},
    tool, tool_handler, tool_router,
};
use serde::{Deserialize, Serialize};

use crate::common::{Shared, ToolError, looks_like_email, normalize_id};

/// Largest page `search_customers` returns, whatever `limit` asks for.
const MAX_SEARCH_LIMIT: usize = 50;

/// Service level of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(inline)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Standard,
    Gold,
    Platinum,
}

/// A full customer record, including sensitive fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Customer {
    /// Customer id, "C001".."C010" for the seeded customers.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number in +1-NNN-NNN-NNNN form.
    pub phone: String,
    /// Postal address on one line.
    pub address: String,
    /// US social security number, NNN-NN-NNNN (fake).
    pub ssn: String,
    /// 16-digit payment card number (a public test number).
    pub card_number: String,
    /// Service level.
    pub tier: Tier,
    /// Free-form notes from the support team.
    pub notes: String,
}

/// The non-sensitive fields of a customer, as returned by search.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(inline)]
pub struct CustomerSummary {
    /// Customer id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// Email address.
    pub email: String,
    /// Phone number.
    pub phone: String,
}

/// Customers matching a search, ordered by id.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SearchResult {
    /// Matching customers, at most `limit` of them.
    pub customers: Vec<CustomerSummary>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// Text to look for in customer names and email addresses
    /// (case-insensitive substring match; empty matches everyone).
    pub query: String,
    /// Maximum number of customers to return (default 5, at most 50).
    #[serde(default = "default_search_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u32,
}

fn default_search_limit() -> u32 {
    5
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetCustomerParams {
    /// Customer id, e.g. "C001".
    pub customer_id: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerParams {
    /// Id of the customer to update, e.g. "C001".
    pub customer_id: String,
    /// New full name.
    pub name: Option<String>,
    /// New email address.
    pub email: Option<String>,
    /// New phone number.
    pub phone: Option<String>,
    /// New postal address on one line.
    pub address: Option<String>,
    /// Replacement notes.
    pub notes: Option<String>,
    /// New service level.
    pub tier: Option<Tier>,
}

/// The `crm` sample server. Clones share the same customer table.
#[derive(Clone)]
pub struct Crm {
    customers: Shared<Vec<Customer>>,
}

static ROUTER: LazyLock<ToolRouter<Crm>> = LazyLock::new(Crm::tool_router);

impl Default for Crm {
    fn default() -> Self {
        Self {
            customers: Shared::new(seed()),
        }
    }
}

#[tool_router]
impl Crm {
    /// Search customers by name or email (case-insensitive substring match).
    /// Returns only id, name, email and phone.
    #[tool(annotations(
        title = "Search customers",
        read_only_hint = true,
        open_world_hint = false
    ))]
    fn search_customers(&self, Parameters(params): Parameters<SearchParams>) -> Json<SearchResult> {
        let query = params.query.trim().to_lowercase();
        let limit = usize::try_from(params.limit)
            .unwrap_or(MAX_SEARCH_LIMIT)
            .min(MAX_SEARCH_LIMIT);
        let customers = self
            .customers
            .lock()
            .iter()
            .filter(|c| {
                c.name.to_lowercase().contains(&query) || c.email.to_lowercase().contains(&query)
            })
            .take(limit)
            .map(|c| CustomerSummary {
                id: c.id.clone(),
                name: c.name.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
            })
            .collect();
        Json(SearchResult { customers })
    }

    /// Fetch a customer's full record, including address, SSN and card number.
    #[tool(annotations(title = "Get customer", read_only_hint = true, open_world_hint = false))]
    fn get_customer(
        &self,
        Parameters(params): Parameters<GetCustomerParams>,
    ) -> Result<Json<Customer>, ToolError> {
        let id = normalize_id(&params.customer_id);
        self.customers
            .lock()
            .iter()
            .find(|c| c.id == id)
            .cloned()
            .map(Json)
            .ok_or_else(|| unknown_customer(&params.customer_id))
    }

    /// Update some fields of a customer record and return the updated record.
    /// Fields that are not given are left unchanged.
    // Not destructive in the MCP sense: the record stays and any field can be
    // set back by another update; applying the same update twice is a no-op.
    #[tool(annotations(
        title = "Update customer",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    fn update_customer(
        &self,
        Parameters(params): Parameters<UpdateCustomerParams>,
    ) -> Result<Json<Customer>, ToolError> {
        let UpdateCustomerParams {
            customer_id,
            name,
            email,
            phone,
            address,
            notes,
            tier,
        } = params;
        let changes_nothing = name.is_none()
            && email.is_none()
            && phone.is_none()
            && address.is_none()
            && notes.is_none()
            && tier.is_none();
        if changes_nothing {
            return Err("nothing to update: give at least one of \
                        name, email, phone, address, notes, tier"
                .into());
        }
        if let Some(email) = &email
            && !looks_like_email(email)
        {
            return Err(format!("email {email:?} is not a valid email address"));
        }
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err("name must not be empty".into());
        }

        let id = normalize_id(&customer_id);
        let mut customers = self.customers.lock();
        let customer = customers
            .iter_mut()
            .find(|c| c.id == id)
            .ok_or_else(|| unknown_customer(&customer_id))?;
        let fields = [
            (&mut customer.name, name),
            (&mut customer.email, email),
            (&mut customer.phone, phone),
            (&mut customer.address, address),
            (&mut customer.notes, notes),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
        if let Some(tier) = tier {
            customer.tier = tier;
        }
        Ok(Json(customer.clone()))
    }
}

#[tool_handler(
    router = ROUTER,
    name = "warden-sample-crm",
    instructions = "Fake customer database (10 seeded customers, ids C001..C010). \
                    Records contain sensitive fields: ssn and card_number."
)]
impl ServerHandler for Crm {}

fn unknown_customer(id: &str) -> ToolError {
    format!("no customer with id {id:?} (ids look like \"C001\")")
}

/// The ten seeded customers. Everything here is made up: phone numbers are in
/// the fictional 555-01xx range, SSNs have valid structure but are not issued
/// to anyone we know of, and card numbers are public test numbers.
fn seed() -> Vec<Customer> {
    use Tier::*;
    #[rustfmt::skip]
    let rows = [
        ("Alice Johnson", "alice.johnson@example.com", "+1-415-555-0101",
         "1200 Market St, Apt 4B, San Francisco, CA 94102", "123-45-6789", "4111111111111111", Gold,
         "Prefers email. Asked about annual billing in March."),
        ("Bob Martinez", "bob.martinez@example.net", "+1-212-555-0102",
         "88 Orchard St, New York, NY 10002", "234-56-7890", "5555555555554444", Standard,
         "Disputed a late fee; resolved with a one-time credit."),
        ("Carol Nguyen", "carol.nguyen@example.org", "+1-206-555-0103",
         "4510 Fremont Ave N, Seattle, WA 98103", "345-67-8901", "4012888888881881", Platinum,
         "Enterprise account. Escalate billing issues to her account manager."),
        ("David Okafor", "david.okafor@example.com", "+1-312-555-0104",
         "230 W Huron St, Unit 12, Chicago, IL 60654", "456-78-9012", "5105105105105100", Standard,
         "Called twice about a delayed shipment (order 48213)."),
        ("Emma Schmidt", "emma.schmidt@example.com", "+1-617-555-0105",
         "19 Beacon St, Boston, MA 02108", "512-34-5678", "4242424242424242", Gold,
         "Requested a refund for a duplicate charge on 2025-02-11."),
        ("Farid Haddad", "farid.haddad@example.net", "+1-713-555-0106",
         "7702 Westheimer Rd, Houston, TX 77063", "601-22-3344", "6011111111111117", Standard,
         "Speaks Arabic and English; prefers phone calls after 5pm."),
        ("Grace Kim", "grace.kim@example.org", "+1-503-555-0107",
         "1430 SE Hawthorne Blvd, Portland, OR 97214", "142-86-3579", "4000056655665556", Platinum,
         "Beta tester for the new dashboard. Very responsive."),
        ("Henry Walker", "henry.walker@example.com", "+1-303-555-0108",
         "2601 Blake St, Denver, CO 80205", "287-65-4321", "5200828282828210", Standard,
         "Account flagged for address verification."),
        ("Isabel Rossi", "isabel.rossi@example.net", "+1-305-555-0109",
         "901 Brickell Key Blvd, Miami, FL 33131", "390-11-2468", "3566002020360505", Gold,
         "Traveling until May; use email only."),
        ("James O'Brien", "james.obrien@example.com", "+1-512-555-0110",
         "3300 Guadalupe St, Austin, TX 78705", "721-09-8765", "2223003122003222", Standard,
         "New customer, onboarded last week."),
    ];
    rows.into_iter()
        .enumerate()
        .map(
            |(i, (name, email, phone, address, ssn, card_number, tier, notes))| Customer {
                id: format!("C{:03}", i + 1),
                name: name.into(),
                email: email.into(),
                phone: phone.into(),
                address: address.into(),
                ssn: ssn.into(),
                card_number: card_number.into(),
                tier,
                notes: notes.into(),
            },
        )
        .collect()
}
