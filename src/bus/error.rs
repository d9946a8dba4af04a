//! The event bus's own error type. Publishing is best-effort for most
//! callers (they log and go on); readiness reports it per backend; a caller
//! that must surface it turns it into a refusal (`From<BusError> for
//! Refusal` in `crate::error`).

/// Failures of a bus adapter.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The broker does not answer (down, unreachable, timed out): the same
    /// call may succeed later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The event could not be encoded for the wire.
    #[error("event encoding: {0}")]
    Encode(#[from] serde_json::Error),
    /// Anything else the broker client reports (configuration, a refused
    /// topic, ...).
    #[error("{0}")]
    Other(String),
}
