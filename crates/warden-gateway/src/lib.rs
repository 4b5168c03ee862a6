//! The gateway: every agent call runs through one pipeline of small named stages,
//!
//! ```text
//! identify -> authorize -> minimize -> gate -> execute -> inspect -> record
//! ```
//!
//! and is answered only after its audit event is committed. This crate owns the pipeline, the
//! credentials (agent keys, task tokens, operator tokens) and tool listing; it reaches storage
//! only through the `warden-core` store traits and upstreams through `warden-upstream`.

pub mod approvals;
pub mod call;
pub mod digest;
pub mod evidence;
pub mod gateway;
pub mod identity;
pub mod limits;
pub mod pinning;
pub mod protection;
pub mod secrets;
pub mod session;
pub mod shadow;
pub mod stages;
pub mod switches;
pub mod undo;

pub use call::{CallRequest, CallResponse, Channel, Principal, Refusal, RefusalKind};
pub use evidence::{EvidenceError, EvidencePayload, EvidenceRead};
pub use gateway::{
    FirstAnswer, Gateway, GatewayParts, HeldCall, ListRequest, Progress, ProgressUpdate, Shared,
    Snapshot, TaskRequest,
};
