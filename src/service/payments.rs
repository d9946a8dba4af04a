//! Paying orders: confirm with the provider after checking everything we
//! can check first, record the payment and the `paid` order in one
//! transaction, and give the money back if we cannot keep it.
//!
//! - **Before the provider is called**: the order is the caller's, pending,
//!   not expired, and the amount the client sends equals the order total
//!   (else 400 `amount_mismatch`, nothing called).
//! - **Idempotent**: the idempotency key is derived from (provider, order,
//!   payment key), so a repeated confirm (double click, retry after a
//!   timeout, two nodes at once) gets the provider's first answer, and the
//!   unique payment row per order makes the second recording a no-op that
//!   returns the first.
//! - **Compensation**: if the provider approved but the order is no longer
//!   payable (it expired or was cancelled meanwhile), the payment is
//!   cancelled at the provider with a key derived from the payment; if that
//!   cannot be done now, a `payment_cancel` job in the outbox does it later.
//!   The buyer gets a clear error and the money goes back.
//! - Every provider call is written to `payment_events` (request id,
//!   outcome, latency) for audit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::bus::{Bus, Event, TOPIC_ALARMS};
use crate::domain::ids::{ListingId, UserId};
use crate::domain::money::Won;
use crate::domain::now_ms;
use crate::domain::order::OrderStatus;
use crate::error::{ApiError, Code};
use crate::payments::{ConfirmRequest, GatewayError, PaymentGateway};
use crate::service::market::Market;
use crate::service::orders::{OrderDetail, Orders};
use crate::service::outbox::JobHandler;
use crate::store::sql::{NewJob, NewPayment, PaymentEvent, PaymentRecord, Recorded, SqlStore};

/// The outbox kind of a compensating cancel.
pub const JOB_PAYMENT_CANCEL: &str = "payment_cancel";

#[derive(Clone)]
pub struct Payments {
    sql: Arc<SqlStore>,
    orders: Orders,
    market: Market,
    bus: Arc<dyn Bus>,
    gateways: HashMap<&'static str, Arc<dyn PaymentGateway>>,
}

/// A confirm as the client sends it after the provider's widget.
#[derive(Debug, Clone)]
pub struct ConfirmInput {
    pub order_number: String,
    pub payment_key: String,
    pub amount: i64,
    pub provider: String,
}

/// Stable, opaque idempotency key for a provider call.
fn idempotency_key(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

impl Payments {
    pub fn new(
        sql: Arc<SqlStore>,
        orders: Orders,
        market: Market,
        bus: Arc<dyn Bus>,
        gateways: Vec<Arc<dyn PaymentGateway>>,
    ) -> Payments {
        Payments {
            sql,
            orders,
            market,
            bus,
            gateways: gateways.into_iter().map(|g| (g.provider(), g)).collect(),
        }
    }

    fn gateway(&self, provider: &str) -> Result<&Arc<dyn PaymentGateway>, ApiError> {
        self.gateways.get(provider).ok_or_else(|| {
            let mut known: Vec<&str> = self.gateways.keys().copied().collect();
            known.sort_unstable();
            if known.is_empty() {
                return ApiError::field("provider", "no payment provider is configured here");
            }
            ApiError::field("provider", format!("must be one of {}", known.join(", ")))
        })
    }

    async fn publish(&self, kind: &str, buyer: i64, data: serde_json::Value) {
        if let Err(e) = self
            .bus
            .publish(TOPIC_ALARMS, Event::new(kind, buyer, data))
            .await
        {
            tracing::error!(error = %e, kind, "publishing a payment event failed");
        }
    }

    /// Write a provider call to the audit trail (its latency from `started`).
    async fn audit(&self, mut event: PaymentEvent<'_>, started: Instant) {
        event.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        if let Err(e) = self.sql.log_payment_event(&event, now_ms()).await {
            tracing::error!(error = %e, "writing the payment audit trail failed");
        }
    }

    /// Confirm a payment for the caller's order (see the module doc).
    pub async fn confirm(
        &self,
        buyer: UserId,
        input: ConfirmInput,
    ) -> Result<(OrderDetail, PaymentRecord), ApiError> {
        let gateway = self.gateway(&input.provider)?.clone();
        if input.payment_key.is_empty()
            || input.payment_key.len() > 200
            || !input.payment_key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ApiError::field(
                "payment_key",
                "must be 1..=200 visible ASCII characters",
            ));
        }
        let detail = self.orders.get(buyer, false, &input.order_number).await?;
        let order = &detail.order;
        // Already paid: the same payment again is answered like the first
        // time; another payment for a paid order is refused.
        if order.status != OrderStatus::PendingPayment {
            if let Some(p) = self.sql.payment_of_order(order.id).await? {
                if p.payment_key == input.payment_key && p.provider == input.provider {
                    return Ok((detail, p));
                }
            }
            return Err(ApiError::new(
                Code::InvalidState,
                format!("a {} order cannot be paid", order.status.as_str()),
            ));
        }
        if now_ms() >= order.expires_at {
            return Err(ApiError::new(
                Code::InvalidState,
                "the payment window of this order has passed",
            ));
        }
        if input.amount != order.total {
            return Err(ApiError::new(
                Code::AmountMismatch,
                format!("the order total is {}", Won(order.total)),
            )
            .with_details(json!({"expected": order.total, "got": input.amount})));
        }
        let key = idempotency_key(&[&input.provider, &order.order_number, &input.payment_key]);
        let started = Instant::now();
        let answer = gateway
            .confirm(&ConfirmRequest {
                payment_key: input.payment_key.clone(),
                order_id: order.order_number.clone(),
                amount: Won(order.total),
                idempotency_key: key.clone(),
            })
            .await;
        let approved = match answer {
            Ok(a) => {
                self.audit(
                    PaymentEvent {
                        order_id: Some(order.id),
                        provider: gateway.provider(),
                        action: "confirm",
                        request_id: &key,
                        outcome: "ok",
                        latency_ms: 0,
                        detail: "",
                    },
                    started,
                )
                .await;
                a
            }
            Err(e) => {
                let outcome = match &e {
                    GatewayError::Declined { .. } => "declined",
                    GatewayError::AlreadyProcessed => "already_processed",
                    GatewayError::NotFound => "not_found",
                    GatewayError::NotCancelable(_) => "not_cancelable",
                    GatewayError::Unavailable(_) => "unavailable",
                };
                let why = e.to_string();
                self.audit(
                    PaymentEvent {
                        order_id: Some(order.id),
                        provider: gateway.provider(),
                        action: "confirm",
                        request_id: &key,
                        outcome,
                        latency_ms: 0,
                        detail: &why,
                    },
                    started,
                )
                .await;
                return Err(self
                    .confirm_failed(order.buyer_id, &detail, gateway.provider(), e)
                    .await);
            }
        };
        let recorded = self
            .sql
            .record_payment(
                &NewPayment {
                    order_id: order.id,
                    provider: gateway.provider(),
                    payment_key: &approved.payment_key,
                    amount: approved.amount.get(),
                    method: &approved.method,
                    approved_at: approved.approved_at,
                },
                now_ms(),
            )
            .await;
        match recorded {
            Ok(Recorded::Paid(p)) => {
                let detail = self.orders.paid(order.id).await?;
                if let Some(listing) = order.listing_id {
                    if let Err(e) = self.market.order_sold(ListingId(listing), buyer).await {
                        tracing::warn!(error = %e.message, "announcing a sale failed");
                    }
                }
                self.publish(
                    "payment.approved",
                    order.buyer_id,
                    json!({"order": order.order_number, "buyer": order.buyer_id, "amount": p.amount, "provider": p.provider}),
                )
                .await;
                Ok((detail, p))
            }
            Ok(Recorded::AlreadyPaid(p)) if p.payment_key == approved.payment_key => {
                let detail = self.orders.get(buyer, false, &order.order_number).await?;
                Ok((detail, p))
            }
            Ok(Recorded::AlreadyPaid(_)) | Ok(Recorded::OrderNotPending) => {
                self.compensate(
                    order.id,
                    gateway.provider(),
                    &approved.payment_key,
                    approved.amount,
                )
                .await;
                Err(ApiError::new(
                    Code::InvalidState,
                    "the order could not be paid any more (it expired or was cancelled meanwhile); the payment is being refunded",
                )
                .with_details(json!({"refunded": true})))
            }
            Err(e) => {
                // The provider holds the money and we could not record it.
                self.compensate(
                    order.id,
                    gateway.provider(),
                    &approved.payment_key,
                    approved.amount,
                )
                .await;
                Err(ApiError::from(e))
            }
        }
    }

    async fn confirm_failed(
        &self,
        buyer: i64,
        detail: &OrderDetail,
        provider: &str,
        e: GatewayError,
    ) -> ApiError {
        match e {
            GatewayError::Declined { code, message } => {
                self.publish(
                    "payment.failed",
                    buyer,
                    json!({"order": detail.order.order_number, "buyer": buyer, "code": code}),
                )
                .await;
                ApiError::new(Code::PaymentDeclined, message)
                    .with_details(json!({"provider_code": code}))
            }
            GatewayError::AlreadyProcessed => ApiError::new(
                Code::InvalidState,
                "this payment was already used for another confirm",
            ),
            GatewayError::NotFound | GatewayError::NotCancelable(_) => {
                ApiError::field("payment_key", "the provider does not know this payment")
            }
            GatewayError::Unavailable(why) => {
                tracing::warn!(provider, error = %why, "payment provider unavailable");
                ApiError::new(
                    Code::Unavailable,
                    format!(
                        "the payment provider ({provider}) does not answer; retry the same request"
                    ),
                )
            }
        }
    }

    /// Give back a payment we cannot keep: now if the provider answers,
    /// else through the outbox (retried with backoff until it does).
    async fn compensate(&self, order_id: i64, provider: &str, payment_key: &str, amount: Won) {
        let key = idempotency_key(&["compensate", provider, payment_key]);
        match self
            .cancel_at_provider(Some(order_id), provider, payment_key, amount, &key)
            .await
        {
            Ok(()) => {}
            Err(why) => {
                tracing::warn!(order_id, error = %why, "compensating cancel failed; queued in the outbox");
                let job = NewJob {
                    kind: JOB_PAYMENT_CANCEL,
                    payload: json!({"order": order_id, "provider": provider, "payment_key": payment_key,
                                    "amount": amount.get(), "idempotency_key": key}),
                    dedup_key: format!("{JOB_PAYMENT_CANCEL}:{key}"),
                    due_at: now_ms(),
                };
                if let Err(e) = self.sql.enqueue_job(&job, now_ms()).await {
                    tracing::error!(order_id, error = %e, "could not queue the compensating cancel");
                }
            }
        }
    }

    async fn cancel_at_provider(
        &self,
        order_id: Option<i64>,
        provider: &str,
        payment_key: &str,
        amount: Won,
        key: &str,
    ) -> Result<(), String> {
        let gateway = self.gateway(provider).map_err(|e| e.message)?.clone();
        let started = Instant::now();
        let r = gateway
            .cancel(
                payment_key,
                amount,
                "주문을 완료할 수 없어 결제를 취소합니다",
                key,
            )
            .await;
        let outcome = if r.is_ok() { "ok" } else { "failed" };
        let detail = r
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        self.audit(
            PaymentEvent {
                order_id,
                provider,
                action: "compensate",
                request_id: key,
                outcome,
                latency_ms: 0,
                detail: &detail,
            },
            started,
        )
        .await;
        match r {
            Ok(_) | Err(GatewayError::NotCancelable(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The outbox handler of compensating cancels.
    pub fn job_handler(&self) -> (&'static str, JobHandler) {
        let payments = self.clone();
        let handler: JobHandler = Arc::new(move |payload| {
            let payments = payments.clone();
            Box::pin(async move {
                let s = |k: &str| {
                    payload
                        .get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string()
                };
                let amount = payload
                    .get("amount")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0);
                let order = payload.get("order").and_then(serde_json::Value::as_i64);
                payments
                    .cancel_at_provider(
                        order,
                        &s("provider"),
                        &s("payment_key"),
                        Won(amount),
                        &s("idempotency_key"),
                    )
                    .await
            })
        });
        (JOB_PAYMENT_CANCEL, handler)
    }
}
