//! Payment providers behind one port.
//!
//! `PaymentGateway` is what the payments service calls: confirm a payment
//! the client finished in the provider's widget, look it up, cancel (refund)
//! all or part of it, and (KakaoPay) prepare it before the widget. Adapters:
//! `sandbox` (built in; the embedded default, so `cargo run` can take an
//! order through payment with no account anywhere), `toss` (Toss Payments
//! core API) and `kakaopay` (KakaoPay online payment API). Every call that
//! changes money carries an idempotency key: repeating a call with the same
//! key is answered like the first call, never executed twice (Toss honours
//! an `Idempotency-Key` header; for KakaoPay, which has none, the adapter
//! looks the payment up before it repeats a cancel).

pub mod kakaopay;
pub mod sandbox;
pub mod toss;

use async_trait::async_trait;

use crate::domain::money::Won;

/// Confirm a payment the client completed with the provider.
#[derive(Debug, Clone)]
pub struct ConfirmRequest {
    /// The provider's key for the payment (Toss `paymentKey`, KakaoPay `tid`).
    pub payment_key: String,
    /// Our order number (Toss `orderId`, KakaoPay `partner_order_id`).
    pub order_id: String,
    pub amount: Won,
    pub idempotency_key: String,
    /// Who pays, as the provider knows them (KakaoPay `partner_user_id`:
    /// the same at ready and approve).
    pub buyer_ref: String,
    /// KakaoPay: the `pg_token` the approval redirect carried.
    pub pg_token: Option<String>,
}

/// Cancel (refund) part or all of a payment.
#[derive(Debug, Clone)]
pub struct CancelRequest {
    pub payment_key: String,
    /// Our order number (KakaoPay needs it nowhere, Toss neither; for logs).
    pub order_id: String,
    pub amount: Won,
    pub reason: String,
    pub idempotency_key: String,
    /// What we know was cancelled on this payment before this cancel: a
    /// provider without idempotency keys (KakaoPay) compares it with its own
    /// cancelled total to tell "already done" from "still to do".
    pub cancelled_before: Won,
}

/// Prepare a payment (KakaoPay `ready`): the provider answers with its key
/// and where to send the buyer.
#[derive(Debug, Clone)]
pub struct ReadyRequest {
    pub order_id: String,
    pub buyer_ref: String,
    pub item_name: String,
    pub quantity: u32,
    pub amount: Won,
    pub approval_url: String,
    pub cancel_url: String,
    pub fail_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    pub payment_key: String,
    pub redirect_pc_url: String,
    pub redirect_mobile_url: String,
    pub redirect_app_url: String,
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

/// A payment's state at the provider, in our words (Toss `DONE`,
/// `PARTIAL_CANCELED`, `CANCELED`, `ABORTED`, `EXPIRED`, `READY`,
/// `IN_PROGRESS`, `WAITING_FOR_DEPOSIT`; KakaoPay `SUCCESS_PAYMENT`,
/// `PART_CANCEL_PAYMENT`, `CANCEL_PAYMENT`, `FAIL_PAYMENT` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderStatus {
    /// Created, not approved yet (includes waiting for a bank deposit).
    Pending,
    Done,
    PartiallyCancelled,
    Cancelled,
    /// Failed, aborted or expired before approval: no money was taken.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPayment {
    pub payment_key: String,
    pub order_id: String,
    pub status: ProviderStatus,
    pub total: Won,
    /// Cancelled (refunded) so far.
    pub cancelled: Won,
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
    /// This provider has no such step (e.g. `ready` at Toss).
    #[error("not supported by this provider")]
    Unsupported,
}

impl GatewayError {
    /// The short outcome word of the audit trail.
    pub fn outcome(&self) -> &'static str {
        match self {
            GatewayError::Declined { .. } => "declined",
            GatewayError::AlreadyProcessed => "already_processed",
            GatewayError::NotFound => "not_found",
            GatewayError::NotCancelable(_) => "not_cancelable",
            GatewayError::Unavailable(_) => "unavailable",
            GatewayError::Unsupported => "unsupported",
        }
    }
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// The provider's name as clients send it (`sandbox`, `toss`, `kakaopay`).
    fn provider(&self) -> &'static str;
    /// Whether a payment must be prepared with [`PaymentGateway::ready`]
    /// before it is confirmed (the confirm then names the prepared one).
    fn needs_ready(&self) -> bool {
        false
    }
    /// Prepare a payment before the buyer is sent to the provider
    /// (KakaoPay). Providers whose widget needs nothing from us say
    /// `Unsupported`.
    async fn ready(&self, _req: &ReadyRequest) -> Result<Ready, GatewayError> {
        Err(GatewayError::Unsupported)
    }
    async fn confirm(&self, req: &ConfirmRequest) -> Result<Approved, GatewayError>;
    /// The payment as the provider sees it now (webhook reconciliation).
    async fn lookup(&self, payment_key: &str) -> Result<ProviderPayment, GatewayError>;
    async fn cancel(&self, req: &CancelRequest) -> Result<Cancelled, GatewayError>;
}
