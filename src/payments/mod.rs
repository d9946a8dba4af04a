//! Payment providers behind one port.
//!
//! `PaymentGateway` is what the payments service calls: confirm a payment
//! the client finished in the provider's widget, cancel (refund) all or part
//! of it. Adapters: `sandbox` (built in; the embedded default, so `cargo
//! run` can take an order through payment with no account anywhere) and,
//! with the payments issue's next steps, Toss Payments and KakaoPay over
//! their HTTP APIs. Every call carries an idempotency key: repeating a call
//! with the same key is answered like the first call, never executed twice.

pub mod sandbox;

use async_trait::async_trait;

use crate::domain::money::Won;

/// Confirm a payment the client completed with the provider.
#[derive(Debug, Clone)]
pub struct ConfirmRequest {
    /// The provider's key for the payment (from the widget).
    pub payment_key: String,
    /// Our order number (Toss calls it `orderId`).
    pub order_id: String,
    pub amount: Won,
    pub idempotency_key: String,
}

/// What the provider says about an approved payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub payment_key: String,
    pub amount: Won,
    /// e.g. `카드`, `간편결제`.
    pub method: String,
    pub approved_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub payment_key: String,
    pub cancelled: Won,
    /// What is left on the payment after this cancel.
    pub remaining: Won,
}

/// How a provider call failed, in our words (adapters map the provider's
/// codes onto these).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The provider refused the payment (card declined, limit, ...).
    #[error("declined by the provider: {code}: {message}")]
    Declined { code: String, message: String },
    /// The payment was already confirmed (with another key).
    #[error("already processed")]
    AlreadyProcessed,
    #[error("no such payment at the provider")]
    NotFound,
    /// More than can be cancelled.
    #[error("not cancelable: {0}")]
    NotCancelable(String),
    /// Timeout, connection failure or a 5xx: the outcome is unknown; the
    /// same call with the same idempotency key may be repeated.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The provider's name as clients send it (`sandbox`, `toss`, `kakaopay`).
    fn provider(&self) -> &'static str;
    async fn confirm(&self, req: &ConfirmRequest) -> Result<Approved, GatewayError>;
    async fn cancel(
        &self,
        payment_key: &str,
        amount: Won,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<Cancelled, GatewayError>;
}
