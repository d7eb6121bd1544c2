//! What went wrong with a call to S/4, and what it leaves to do.

use crate::outcome::{Disposed, Disposition};

/// What went wrong, as the processor acts on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S4Error {
    /// A later attempt may work (S/4 down, timeout, 5xx, credentials refused).
    #[error("S/4 not reachable for now: {0}")]
    Transient(String),
    /// S/4 refused the request (4xx): status and SAP's reason.
    #[error("S/4 refused the request: {status} {message}")]
    Permanent { status: u16, message: String },
    /// A write whose outcome is unknown (no answer, a 5xx): it may have been done; looked up
    /// before anything is written again.
    #[error("S/4 did not confirm the write: {0}")]
    Unclear(String),
}

impl Disposed for S4Error {
    fn disposition(&self) -> Disposition {
        match self {
            S4Error::Transient(_) | S4Error::Unclear(_) => Disposition::Retry,
            S4Error::Permanent { .. } => Disposition::GiveUp,
        }
    }
}
