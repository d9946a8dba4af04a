//! Paying orders: confirm with the provider after checking everything we
//! can check first, record the payment and the `paid` order in one
//! transaction, give the money back if we cannot keep it, cancel (refund)
//! paid lines, and reconcile with what the provider says (webhooks).
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
//!   payable (it expired or was cancelled meanwhile), or the approved amount
//!   is not the total, or our write fails, the payment is cancelled at the
//!   provider with a key derived from the payment; if that cannot be done
//!   now, a `payment_cancel` job in the outbox does it later. The buyer gets
//!   a clear error and the money goes back.
//! - **Cancels** (buyer within `cancel_window_hours` of payment, admins at
//!   any time; never a reviewed line, never more than is left): one
//!   transaction records the cancel on our side (quantities, stock, order
//!   and payment status) with a `payment_refund` job, which is tried at once
//!   and retried by the outbox until the provider has refunded it under the
//!   refund's own idempotency key.
//! - **Reconcile** (`payment_reconcile`, from webhooks): the provider's view
//!   is fetched, never taken from the webhook body; a cancel made at the
//!   provider cancels on our side, an approval we never heard of is kept
//!   (or given back if the order cannot take it).
//! - Every provider call is written to `payment_events` (request id,
//!   outcome, latency) for audit; final failures reach admins
//!   (`GET /api/admin/payments/failures`) and the alarms topic.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::bus::{Event, TOPIC_ALARMS};
use crate::domain::events::Alarm;
use crate::domain::ids::{ListingId, UserId};
use crate::domain::money::Won;
use crate::domain::now_ms;
use crate::domain::order::OrderStatus;
use crate::error::{area_error, Code, Refuse};
use crate::payments::{
    Approved, CancelRequest, ConfirmRequest, GatewayError, PaymentGateway, ProviderStatus, Ready,
    ReadyRequest,
};
use crate::service::events::{publish_job, publish_job_at};
use crate::service::market::Market;
use crate::service::orders::{OrderDetail, Orders};
use crate::service::outbox::{handler, payload_id, payload_text, JobError, JobHandler};
use crate::store::sql::{
    CancelLine, Cancelled, NewJob, NewPayment, NewRefund, OrderRecord, PaymentEvent,
    PaymentFailure, PaymentRecord, Recorded, RefundLine, RefundRecord, SqlStore,
};

area_error! {
    /// What the payment service (confirm, cancel, refund, reconcile) answers instead of a result.
    pub enum PaymentError {
        own {}
        from {
            Orders(super::orders::OrderError),
        }
    }
}

/// The outbox kind of a compensating cancel.
pub const JOB_PAYMENT_CANCEL: &str = "payment_cancel";
/// The outbox kind that makes the provider refund a cancel.
pub use crate::store::sql::JOB_PAYMENT_REFUND;
/// The outbox kind that reconciles a payment with its provider.
pub const JOB_PAYMENT_RECONCILE: &str = "payment_reconcile";

#[derive(Clone)]
pub struct Payments {
    sql: Arc<SqlStore>,
    orders: Orders,
    market: Market,
    gateways: HashMap<&'static str, Arc<dyn PaymentGateway>>,
    cancel_window: Duration,
    return_url: String,
    retry_first: Duration,
    review_request_delay: Duration,
    webhooks: WebhookLimits,
}

/// What one provider webhook may cost before it is refused.
#[derive(Clone)]
pub struct WebhookLimits {
    /// Webhooks per source address per minute.
    pub per_minute: u32,
    /// Reconcile jobs waiting, in all.
    pub queue_max: i64,
    pub limiter: Arc<dyn crate::store::RateLimiter>,
}

impl std::fmt::Debug for WebhookLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookLimits")
            .field("per_minute", &self.per_minute)
            .field("queue_max", &self.queue_max)
            .finish_non_exhaustive()
    }
}

/// A confirm as the client sends it after the provider's widget.
#[derive(Debug, Clone)]
pub struct ConfirmInput {
    pub order_number: String,
    pub payment_key: String,
    pub amount: i64,
    pub provider: String,
    /// KakaoPay: the `pg_token` of the approval redirect.
    pub pg_token: Option<String>,
}

/// A cancel as a buyer or an admin asks for it.
#[derive(Debug, Clone, Default)]
pub struct CancelInput {
    /// Lines and quantities; `None`: everything still paid.
    pub lines: Option<Vec<RefundLine>>,
    pub reason: Option<String>,
}

/// Who asks for a cancel.
#[derive(Debug, Clone, Copy)]
pub struct Canceller {
    pub user: UserId,
    pub admin: bool,
}

/// Stable, opaque idempotency key for a provider call.
fn idempotency_key(parts: &[&str]) -> String {
    let digest = Sha256::digest(parts.join("\u{1f}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn random_key() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn refused(rule: &str, message: impl Into<String>) -> PaymentError {
    PaymentError::new(Code::CancelRefused, message).with_details(json!({ "rule": rule }))
}

/// Settings the service needs.
#[derive(Debug, Clone)]
pub struct PaymentPolicy {
    pub cancel_window: Duration,
    pub return_url: String,
    /// First pause of the outbox's provider retries.
    pub retry_first: Duration,
    /// When a paid shop order's buyer is asked for product reviews.
    pub review_request_delay: Duration,
    pub webhooks: WebhookLimits,
}

impl Payments {
    pub fn new(
        sql: Arc<SqlStore>,
        orders: Orders,
        market: Market,
        gateways: Vec<Arc<dyn PaymentGateway>>,
        policy: PaymentPolicy,
    ) -> Payments {
        Payments {
            sql,
            orders,
            market,
            gateways: gateways.into_iter().map(|g| (g.provider(), g)).collect(),
            cancel_window: policy.cancel_window,
            return_url: policy.return_url,
            retry_first: policy.retry_first,
            review_request_delay: policy.review_request_delay,
            webhooks: policy.webhooks,
        }
    }

    /// The providers this node can take payments with.
    pub fn providers(&self) -> Vec<&'static str> {
        let mut known: Vec<&'static str> = self.gateways.keys().copied().collect();
        known.sort_unstable();
        known
    }

    fn gateway(&self, provider: &str) -> Result<&Arc<dyn PaymentGateway>, PaymentError> {
        self.gateways.get(provider).ok_or_else(|| {
            let known = self.providers();
            if known.is_empty() {
                return PaymentError::field("provider", "no payment provider is configured here");
            }
            PaymentError::field("provider", format!("must be one of {}", known.join(", ")))
        })
    }

    /// An event that follows no change of ours (e.g. a declined card):
    /// written to the outbox on its own, so a broker outage delays it but
    /// does not lose it.
    async fn publish(&self, kind: Alarm, buyer: i64, data: serde_json::Value) {
        let job = publish_job(TOPIC_ALARMS, &Event::alarm(kind, buyer, data));
        if let Err(e) = self.sql.outbox().enqueue_job(&job, now_ms()).await {
            tracing::error!(error = %e, %kind, "writing a payment event failed");
        }
    }

    /// Write a provider call to the audit trail (its latency from `started`).
    async fn audit<T>(
        &self,
        order_id: Option<i64>,
        provider: &str,
        action: &str,
        request_id: &str,
        started: Instant,
        result: &Result<T, GatewayError>,
    ) {
        let detail = result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        let event = PaymentEvent {
            order_id,
            provider,
            action,
            request_id,
            outcome: result.as_ref().err().map_or("ok", GatewayError::outcome),
            latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            detail: &detail,
        };
        if let Err(e) = self
            .sql
            .payments()
            .log_payment_event(&event, now_ms())
            .await
        {
            tracing::error!(error = %e, "writing the payment audit trail failed");
        }
    }

    /// The caller's order, pending and inside its payment window.
    async fn payable(&self, buyer: UserId, number: &str) -> Result<OrderDetail, PaymentError> {
        let detail = self.orders.get(buyer, false, number).await?;
        Self::check_payable(&detail)?;
        Ok(detail)
    }

    /// A pending order inside its payment window.
    fn check_payable(detail: &OrderDetail) -> Result<(), PaymentError> {
        if detail.order.status != OrderStatus::PendingPayment {
            return Err(PaymentError::new(
                Code::InvalidState,
                format!("a {} order cannot be paid", detail.order.status.as_str()),
            ));
        }
        if now_ms() >= detail.order.expires_at {
            return Err(PaymentError::new(
                Code::InvalidState,
                "the payment window of this order has passed",
            ));
        }
        Ok(())
    }

    /// Prepare a payment with a provider that needs it before its widget
    /// (KakaoPay): the provider's key is bound to the order, and the client
    /// gets the URLs to send the buyer to.
    pub async fn ready(
        &self,
        buyer: UserId,
        number: &str,
        provider: &str,
    ) -> Result<Ready, PaymentError> {
        let gateway = self.gateway(provider)?.clone();
        let detail = self.payable(buyer, number).await?;
        let order = &detail.order;
        let quantity: i64 = detail.lines.iter().map(|l| l.quantity).sum();
        let item_name = match detail.lines.as_slice() {
            [] => order.order_number.clone(),
            [one] => one.product_name.clone(),
            [first, rest @ ..] => format!("{} 외 {}건", first.product_name, rest.len()),
        };
        let back = |result: &str| {
            format!(
                "{}?provider={provider}&order={}&result={result}",
                self.return_url, order.order_number
            )
        };
        let started = Instant::now();
        let key = idempotency_key(&["ready", provider, &order.order_number]);
        let answer = gateway
            .ready(&ReadyRequest {
                order_id: order.order_number.clone(),
                buyer_ref: buyer.get().to_string(),
                item_name,
                quantity: u32::try_from(quantity).unwrap_or(1),
                amount: Won(order.total),
                approval_url: back("approve"),
                cancel_url: back("cancel"),
                fail_url: back("fail"),
            })
            .await;
        self.audit(Some(order.id), provider, "ready", &key, started, &answer)
            .await;
        match answer {
            Ok(ready) => {
                self.sql
                    .payments()
                    .put_payment_intent(order.id, provider, &ready.payment_key, now_ms())
                    .await?;
                Ok(ready)
            }
            Err(GatewayError::Unsupported) => Err(PaymentError::field(
                "provider",
                format!("{provider} needs no ready step: open its widget and confirm"),
            )),
            Err(e) => Err(self
                .confirm_failed(order.buyer_id, &detail, provider, e)
                .await),
        }
    }

    /// Confirm a payment for the caller's order (see the module doc).
    pub async fn confirm(
        &self,
        buyer: UserId,
        input: ConfirmInput,
    ) -> Result<(OrderDetail, PaymentRecord), PaymentError> {
        let gateway = self.gateway(&input.provider)?.clone();
        if input.payment_key.is_empty()
            || input.payment_key.len() > 200
            || !input.payment_key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(PaymentError::field(
                "payment_key",
                "must be 1..=200 visible ASCII characters",
            ));
        }
        if let Some(t) = &input.pg_token {
            if t.is_empty() || t.len() > 200 || !t.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(PaymentError::field(
                    "pg_token",
                    "must be 1..=200 visible ASCII characters",
                ));
            }
        }
        let detail = self.orders.get(buyer, false, &input.order_number).await?;
        let order = &detail.order;
        // Already paid: the same payment again is answered like the first
        // time; another payment for a paid order is refused.
        if order.status != OrderStatus::PendingPayment {
            if let Some(p) = self.sql.payments().payment_of_order(order.id).await? {
                if p.payment_key == input.payment_key && p.provider == input.provider {
                    return Ok((detail, p));
                }
            }
        }
        // One read decides: a second read here could see the order paid by
        // a concurrent confirm of the same payment and refuse it.
        Self::check_payable(&detail)?;
        if input.amount != order.total {
            return Err(PaymentError::new(
                Code::AmountMismatch,
                format!("the order total is {}", Won(order.total)),
            )
            .with_details(json!({"expected": order.total, "got": input.amount})));
        }
        // A provider with a ready step: the key must be the one it gave
        // for this order.
        if let Some(bound) = self
            .sql
            .payments()
            .payment_intent(order.id, &input.provider)
            .await?
        {
            if bound != input.payment_key {
                return Err(PaymentError::field(
                    "payment_key",
                    "is not the payment prepared for this order",
                ));
            }
        } else if gateway.needs_ready() {
            return Err(PaymentError::new(
                Code::InvalidState,
                "prepare the payment first (POST /api/payments/ready)",
            ));
        }
        let key = idempotency_key(&[&input.provider, &order.order_number, &input.payment_key]);
        let started = Instant::now();
        let answer = gateway
            .confirm(&ConfirmRequest {
                payment_key: input.payment_key.clone(),
                order_id: order.order_number.clone(),
                amount: Won(order.total),
                idempotency_key: key.clone(),
                buyer_ref: buyer.get().to_string(),
                pg_token: input.pg_token.clone(),
            })
            .await;
        self.audit(
            Some(order.id),
            gateway.provider(),
            "confirm",
            &key,
            started,
            &answer,
        )
        .await;
        match answer {
            Ok(approved) => self.keep(order, gateway.provider(), &approved).await,
            Err(e) => Err(self
                .confirm_failed(order.buyer_id, &detail, gateway.provider(), e)
                .await),
        }
    }

    /// The provider approved: record it with the paid order, or give the
    /// money back when the order cannot take it.
    async fn keep(
        &self,
        order: &OrderRecord,
        provider: &'static str,
        approved: &Approved,
    ) -> Result<(OrderDetail, PaymentRecord), PaymentError> {
        if approved.amount.get() != order.total {
            // The provider approved another amount than the order's total
            // (a tampered widget): not ours to keep.
            self.compensate(order.id, provider, &approved.payment_key, approved.amount)
                .await;
            return Err(PaymentError::new(
                Code::AmountMismatch,
                format!(
                    "the provider approved {} but the order total is {}; the payment is being refunded",
                    approved.amount,
                    Won(order.total)
                ),
            )
            .with_details(json!({"expected": order.total, "got": approved.amount.get(), "refunded": true})));
        }
        // The buyer hears of it if and only if the payment is recorded.
        let approved_event = Event::alarm(
            Alarm::PaymentApproved,
            order.buyer_id,
            json!({"order": order.order_number, "buyer": order.buyer_id,
                   "amount": approved.amount.get(), "provider": provider}),
        );
        let mut jobs = vec![publish_job(TOPIC_ALARMS, &approved_event)];
        if order.listing_id.is_none() {
            // A shop order: ask for product reviews later (a used-listing
            // sale asks through the sale itself).
            let ask = Event::alarm(
                Alarm::OrderReviewRequest,
                order.buyer_id,
                json!({"order": order.order_number, "buyer": order.buyer_id}),
            );
            let due = now_ms()
                + i64::try_from(self.review_request_delay.as_millis()).unwrap_or(i64::MAX / 2);
            jobs.push(publish_job_at(TOPIC_ALARMS, &ask, due));
        }
        if let Some(listing) = order.listing_id {
            // The sale's own event goes with the payment that makes it.
            if let Some(l) = self.sql.market().listing(listing).await? {
                jobs.extend(crate::service::market::sold_jobs(
                    ListingId(listing),
                    l.seller_id,
                    UserId(order.buyer_id),
                ));
            }
        }
        let recorded = self
            .sql
            .payments()
            .record_payment(
                &NewPayment {
                    order_id: order.id,
                    provider,
                    payment_key: &approved.payment_key,
                    amount: approved.amount.get(),
                    method: &approved.method,
                    approved_at: approved.approved_at,
                },
                &jobs,
                now_ms(),
            )
            .await;
        match recorded {
            Ok(Recorded::Paid(p)) => {
                let detail = self.orders.reload(order.id).await?;
                if let Some(listing) = order.listing_id {
                    if let Err(e) = self
                        .market
                        .order_sold(ListingId(listing), UserId(order.buyer_id))
                        .await
                    {
                        tracing::warn!(error = %e, "announcing a sale failed");
                    }
                }
                Ok((detail, p))
            }
            Ok(Recorded::AlreadyPaid(p)) if p.payment_key == approved.payment_key => {
                let detail = self.orders.reload(order.id).await?;
                Ok((detail, p))
            }
            Ok(Recorded::AlreadyPaid(_) | Recorded::OrderNotPending) => {
                self.compensate(order.id, provider, &approved.payment_key, approved.amount)
                    .await;
                Err(PaymentError::new(
                    Code::InvalidState,
                    "the order could not be paid any more (it expired or was cancelled meanwhile); the payment is being refunded",
                )
                .with_details(json!({"refunded": true})))
            }
            Err(e) => {
                // The provider holds the money and we could not record it.
                self.compensate(order.id, provider, &approved.payment_key, approved.amount)
                    .await;
                Err(PaymentError::from(e))
            }
        }
    }

    async fn confirm_failed(
        &self,
        buyer: i64,
        detail: &OrderDetail,
        provider: &str,
        e: GatewayError,
    ) -> PaymentError {
        match e {
            GatewayError::Declined { code, message } => {
                self.publish(
                    Alarm::PaymentFailed,
                    buyer,
                    json!({"order": detail.order.order_number, "buyer": buyer, "code": code}),
                )
                .await;
                PaymentError::new(Code::PaymentDeclined, message)
                    .with_details(json!({"provider_code": code}))
            }
            GatewayError::AlreadyProcessed => PaymentError::new(
                Code::InvalidState,
                "this payment was already used for another confirm",
            ),
            GatewayError::NotFound | GatewayError::NotCancelable(_) => {
                PaymentError::field("payment_key", "the provider does not know this payment")
            }
            GatewayError::Unsupported => {
                PaymentError::field("provider", "this provider cannot do that")
            }
            GatewayError::Unavailable(why) => {
                tracing::warn!(provider, error = %why, "payment provider unavailable");
                PaymentError::new(
                    Code::Unavailable,
                    format!(
                        "the payment provider ({provider}) does not answer; retry the same request"
                    ),
                )
                .with_details(json!({"provider": provider}))
            }
        }
    }

    /// Give back a payment we cannot keep: now if the provider answers,
    /// else through the outbox (retried with backoff until it does).
    async fn compensate(&self, order_id: i64, provider: &str, payment_key: &str, amount: Won) {
        let key = idempotency_key(&["compensate", provider, payment_key]);
        let payload = json!({"order": order_id, "provider": provider, "payment_key": payment_key,
                             "amount": amount.get(), "idempotency_key": key});
        if let Err(why) = self.run_compensation(&payload).await {
            tracing::warn!(order_id, error = %why, "compensating cancel failed; queued in the outbox");
            let job = NewJob {
                kind: JOB_PAYMENT_CANCEL,
                payload,
                dedup_key: format!("{JOB_PAYMENT_CANCEL}:{key}"),
                due_at: now_ms(),
            };
            if let Err(e) = self.sql.outbox().enqueue_job(&job, now_ms()).await {
                tracing::error!(order_id, error = %e, "could not queue the compensating cancel");
            }
        }
    }

    /// One compensating cancel (the outbox job and its first try).
    async fn run_compensation(&self, payload: &serde_json::Value) -> Result<(), JobError> {
        let s = |k: &str| payload_text(payload, k);
        let amount = Won(payload
            .get("amount")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(0));
        let order_id = payload.get("order").and_then(serde_json::Value::as_i64);
        let provider = s("provider");
        let gateway = self.gateway(&provider)?.clone();
        let key = s("idempotency_key");
        let started = Instant::now();
        let r = gateway
            .cancel(&CancelRequest {
                payment_key: s("payment_key"),
                order_id: order_id.map(|o| o.to_string()).unwrap_or_default(),
                amount,
                reason: "주문을 완료할 수 없어 결제를 취소합니다".into(),
                idempotency_key: key.clone(),
                cancelled_before: Won::ZERO,
            })
            .await;
        self.audit(
            order_id,
            gateway.provider(),
            "compensate",
            &key,
            started,
            &r,
        )
        .await;
        match r {
            // Nothing left to cancel: it was given back already.
            Ok(_) | Err(GatewayError::NotCancelable(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Cancel (refund) paid lines of an order: the buyer within the cancel
    /// window, an admin at any time. An unpaid order is simply cancelled
    /// (its stock goes back; nothing to refund).
    pub async fn cancel(
        &self,
        who: Canceller,
        number: &str,
        input: CancelInput,
    ) -> Result<(OrderDetail, Option<RefundRecord>), PaymentError> {
        let reason = input.reason.unwrap_or_default();
        if reason.chars().count() > 200 {
            return Err(PaymentError::field("reason", "at most 200 characters"));
        }
        let detail = self.orders.get(who.user, who.admin, number).await?;
        let order = &detail.order;
        if order.status == OrderStatus::PendingPayment && input.lines.is_none() {
            let owner = UserId(order.buyer_id);
            return Ok((self.orders.cancel(owner, number).await?, None));
        }
        if !matches!(
            order.status,
            OrderStatus::Paid | OrderStatus::PartiallyCancelled
        ) {
            return Err(PaymentError::new(
                Code::InvalidState,
                format!("a {} order cannot be cancelled", order.status.as_str()),
            ));
        }
        let Some(payment) = self.sql.payments().payment_of_order(order.id).await? else {
            return Err(PaymentError::new(
                Code::InvalidState,
                "the order has no payment",
            ));
        };
        if !who.admin {
            let paid_at = order.paid_at.unwrap_or(payment.approved_at);
            let window = i64::try_from(self.cancel_window.as_millis()).unwrap_or(i64::MAX);
            if now_ms() > paid_at.saturating_add(window) {
                return Err(refused(
                    "window_passed",
                    format!(
                        "paid orders can be cancelled within {} hours of payment; ask the shop",
                        self.cancel_window.as_secs() / 3600
                    ),
                ));
            }
        }
        let reviewed = self.sql.payments().reviewed_lines(order.id).await?;
        let wanted: Vec<RefundLine> = match input.lines {
            Some(lines) => {
                if lines.is_empty() || lines.len() > crate::domain::order::MAX_LINES {
                    return Err(PaymentError::field("lines", "1..=50 lines"));
                }
                lines
            }
            None => detail
                .lines
                .iter()
                .filter(|l| l.quantity > l.cancelled_quantity && !reviewed.contains(&l.id))
                .map(|l| RefundLine {
                    line: l.id,
                    quantity: l.quantity - l.cancelled_quantity,
                })
                .collect(),
        };
        if wanted.is_empty() {
            return Err(refused(
                "nothing_left",
                "nothing on this order can be cancelled any more",
            ));
        }
        let mut lines: Vec<CancelLine> = Vec::with_capacity(wanted.len());
        let mut amount: i64 = 0;
        for w in &wanted {
            let Some(l) = detail.lines.iter().find(|l| l.id == w.line) else {
                return Err(PaymentError::field(
                    "lines",
                    format!("line {} is not on this order", w.line),
                ));
            };
            if lines.iter().any(|c| c.line == w.line) {
                return Err(PaymentError::field(
                    "lines",
                    format!("line {} is named twice", w.line),
                ));
            }
            if w.quantity < 1 {
                return Err(PaymentError::field("lines", "quantities are at least 1"));
            }
            if reviewed.contains(&l.id) {
                return Err(refused(
                    "reviewed",
                    format!(
                        "line {} was reviewed; reviewed lines cannot be cancelled",
                        l.id
                    ),
                ));
            }
            let left = l.quantity - l.cancelled_quantity;
            if w.quantity > left {
                return Err(refused(
                    "quantity",
                    format!(
                        "line {}: {} can be cancelled, not {}",
                        l.id, left, w.quantity
                    ),
                )
                .with_details(json!({"rule": "quantity", "line": l.id, "left": left})));
            }
            amount = amount.saturating_add(l.unit_price.saturating_mul(w.quantity));
            lines.push(CancelLine {
                line: l.id,
                quantity: w.quantity,
                option_id: l.option_id,
                listing_id: l.listing_id,
            });
        }
        let key = random_key();
        // This request makes the first attempt; the outbox job is written
        // claimed by it for a minute, so the worker does not race it.
        let claimer = format!("inline-{key}");
        let lease = now_ms() + 60_000;
        let reason = if reason.trim().is_empty() {
            if who.admin {
                "관리자 취소"
            } else {
                "구매자 요청 취소"
            }
            .to_string()
        } else {
            reason
        };
        let refund =
            match self
                .sql
                .payments()
                .cancel_paid_lines(
                    &NewRefund {
                        order_id: order.id,
                        payment_id: payment.id,
                        lines: &lines,
                        amount,
                        reason: &reason,
                        source: if who.admin { "admin" } else { "buyer" },
                        requested_by: Some(who.user.get()),
                        idempotency_key: &key,
                        status: "pending",
                        claim: Some((&claimer, lease)),
                        jobs: &[],
                    },
                    now_ms(),
                )
                .await?
            {
                Cancelled::Refund(refund) => *refund,
                Cancelled::Free => {
                    // Nothing was paid for these lines: no refund to make.
                    self.listings_back(&lines).await;
                    return Ok((self.orders.reload(order.id).await?, None));
                }
                Cancelled::Changed => return Err(PaymentError::new(
                    Code::InvalidState,
                    "the order changed meanwhile (a line was cancelled or reviewed); look again",
                )),
            };
        self.listings_back(&lines).await;
        // Tell the provider now; the outbox job retries if this fails.
        let first = self.run_refund(refund.id).await;
        let retry_at = first
            .as_ref()
            .err()
            .map(|_| now_ms() + i64::try_from(self.retry_first.as_millis()).unwrap_or(120_000));
        if let Err(why) = &first {
            tracing::warn!(refund = refund.id, error = %why, "refund not made now; the outbox retries it");
        }
        if let Err(e) = self
            .sql
            .payments()
            .release_refund_job(
                refund.id,
                &claimer,
                retry_at,
                &first
                    .as_ref()
                    .err()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                now_ms(),
            )
            .await
        {
            // The claim lapses and the worker takes the job over.
            tracing::warn!(refund = refund.id, error = %e, "releasing the refund job failed");
        }
        let detail = self.orders.reload(order.id).await?;
        let refund = self
            .sql
            .payments()
            .refund(refund.id)
            .await?
            .unwrap_or(refund);
        Ok((detail, Some(refund)))
    }

    /// Make the provider refund a pending refund (the `payment_refund`
    /// job, and the cancel's first try). `Err`: retry later.
    async fn run_refund(&self, id: i64) -> Result<(), JobError> {
        let Some(refund) = self.sql.payments().refund(id).await? else {
            return Ok(());
        };
        if refund.status != "pending" {
            return Ok(());
        }
        let Some(order) = self.sql.orders().order(refund.order_id).await? else {
            return Ok(());
        };
        let Some(payment) = self.sql.payments().payment_of_order(order.id).await? else {
            return Ok(());
        };
        // In order, one at a time per payment: an earlier refund still
        // pending goes first (its retry comes before this one's).
        let earlier = self
            .sql
            .payments()
            .earlier_pending_refunds(payment.id, refund.id)
            .await?;
        if earlier > 0 {
            return Err(format!("waiting for {earlier} earlier refund(s) of this payment").into());
        }
        let gateway = self.gateway(&payment.provider)?.clone();
        let started = Instant::now();
        let r = gateway
            .cancel(&CancelRequest {
                payment_key: payment.payment_key.clone(),
                order_id: order.order_number.clone(),
                amount: Won(refund.amount),
                reason: refund.reason.clone(),
                idempotency_key: refund.idempotency_key.clone(),
                cancelled_before: Won(refund.cancelled_before),
            })
            .await;
        self.audit(
            Some(order.id),
            gateway.provider(),
            "cancel",
            &refund.idempotency_key,
            started,
            &r,
        )
        .await;
        match r {
            Ok(_) => {
                let event = Event::alarm(
                    Alarm::PaymentCancelled,
                    order.buyer_id,
                    json!({"order": order.order_number, "buyer": order.buyer_id, "amount": refund.amount,
                           "partial": order.status == OrderStatus::PartiallyCancelled,
                           "status": order.status.as_str()}),
                );
                self.sql
                    .payments()
                    .settle_refund(
                        id,
                        "done",
                        None,
                        &[publish_job(TOPIC_ALARMS, &event)],
                        now_ms(),
                    )
                    .await?;
                Ok(())
            }
            Err(GatewayError::Unavailable(why)) => Err(why.into()),
            // The provider will never make this refund: admins take over.
            Err(e) => {
                self.refund_failed(&refund, &order, &e.to_string()).await;
                Ok(())
            }
        }
    }

    async fn refund_failed(&self, refund: &RefundRecord, order: &OrderRecord, why: &str) {
        let event = Event::alarm(
            Alarm::PaymentCancelFailed,
            order.buyer_id,
            json!({"order": order.order_number, "buyer": order.buyer_id, "amount": refund.amount, "error": why}),
        );
        match self
            .sql
            .payments()
            .settle_refund(
                refund.id,
                "failed",
                Some(why),
                &[publish_job(TOPIC_ALARMS, &event)],
                now_ms(),
            )
            .await
        {
            Ok(true) => {
                tracing::error!(refund = refund.id, order = %order.order_number, error = why, "refund failed for good; an admin must act");
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(refund = refund.id, error = %e, "recording a failed refund failed")
            }
        }
    }

    /// Bring our record in line with the provider's (webhook): fetch the
    /// payment from the provider and act on what it says, never on what
    /// the webhook said. Idempotent. `Err`: retry later.
    pub async fn reconcile(&self, provider: &str, payment_key: &str) -> Result<(), JobError> {
        let gateway = self.gateway(provider)?.clone();
        let started = Instant::now();
        let seen = gateway.lookup(payment_key).await;
        let ours = self
            .sql
            .payments()
            .payment_by_key(provider, payment_key)
            .await?;
        self.audit(
            ours.as_ref().map(|p| p.order_id),
            gateway.provider(),
            "lookup",
            payment_key,
            started,
            &seen,
        )
        .await;
        let seen = match seen {
            Ok(seen) => seen,
            Err(GatewayError::Unavailable(why)) => return Err(why.into()),
            Err(e) => {
                tracing::info!(provider, error = %e, "webhook for a payment the provider does not show; ignored");
                return Ok(());
            }
        };
        match ours {
            None => {
                if seen.status != ProviderStatus::Done {
                    return Ok(());
                }
                // Approved at the provider, never confirmed with us (the
                // client went away): keep it if the order can take it.
                let Some(order) = self.sql.orders().order_by_number(&seen.order_id).await? else {
                    tracing::warn!(provider, order = %seen.order_id, "approved payment for an unknown order; refunding");
                    let key = idempotency_key(&["compensate", provider, payment_key]);
                    let payload = json!({"order": null, "provider": provider, "payment_key": payment_key,
                                         "amount": seen.total.get(), "idempotency_key": key});
                    return self.run_compensation(&payload).await;
                };
                let approved = Approved {
                    payment_key: payment_key.to_string(),
                    amount: seen.total,
                    method: String::new(),
                    approved_at: now_ms(),
                };
                let still_payable =
                    order.status == OrderStatus::PendingPayment && now_ms() < order.expires_at;
                if still_payable {
                    if let Err(e) = self.keep(&order, gateway.provider(), &approved).await {
                        tracing::info!(order = %order.order_number, error = %e, "reconciled approval not kept");
                    }
                } else {
                    self.compensate(order.id, gateway.provider(), payment_key, seen.total)
                        .await;
                }
                Ok(())
            }
            Some(payment) => {
                if seen.cancelled.get() <= payment.cancelled_amount {
                    return Ok(());
                }
                // Cancelled at the provider (its console, a chargeback):
                // cancel the same on our side, already refunded.
                let Some(order) = self.sql.orders().order(payment.order_id).await? else {
                    return Ok(());
                };
                let delta = seen.cancelled.get() - payment.cancelled_amount;
                let all = seen.status == ProviderStatus::Cancelled
                    || seen.cancelled.get() >= payment.amount;
                let lines: Vec<CancelLine> = if all {
                    // Reviewed lines stay as they are; the money is back
                    // all the same, so the order ends `cancelled`.
                    let reviewed = self.sql.payments().reviewed_lines(order.id).await?;
                    self.sql
                        .orders()
                        .order_lines(order.id)
                        .await?
                        .into_iter()
                        .filter(|l| l.quantity > l.cancelled_quantity && !reviewed.contains(&l.id))
                        .map(|l| CancelLine {
                            line: l.id,
                            quantity: l.quantity - l.cancelled_quantity,
                            option_id: l.option_id,
                            listing_id: l.listing_id,
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let key = idempotency_key(&[
                    "provider-cancel",
                    provider,
                    payment_key,
                    &seen.cancelled.get().to_string(),
                ]);
                let status = if all {
                    "cancelled"
                } else {
                    "partially_cancelled"
                };
                let event = Event::alarm(
                    Alarm::PaymentCancelled,
                    order.buyer_id,
                    json!({"order": order.order_number, "buyer": order.buyer_id, "amount": delta,
                           "partial": !all, "status": status, "source": "provider"}),
                );
                let jobs = [publish_job(TOPIC_ALARMS, &event)];
                let made = self
                    .sql
                    .payments()
                    .cancel_paid_lines(
                        &NewRefund {
                            order_id: order.id,
                            payment_id: payment.id,
                            lines: &lines,
                            amount: delta,
                            reason: "결제사에서 취소됨",
                            source: "provider",
                            requested_by: None,
                            idempotency_key: &key,
                            status: "done",
                            claim: None,
                            jobs: &jobs,
                        },
                        now_ms(),
                    )
                    .await?;
                if !matches!(made, Cancelled::Changed) {
                    tracing::warn!(order = %order.order_number, amount = delta, "payment cancelled at the provider; order cancelled to match");
                    self.listings_back(&lines).await;
                    self.orders.reload(order.id).await?;
                }
                Ok(())
            }
        }
    }

    /// Used listings among cancelled lines are on sale again: tell the
    /// market (chat notices, reservation timers).
    async fn listings_back(&self, lines: &[CancelLine]) {
        for l in lines {
            if let Some(listing) = l.listing_id {
                self.market.order_refunded(ListingId(listing)).await;
            }
        }
    }

    /// A provider's webhook says a payment changed: queue a reconcile of
    /// it (the job asks the provider; nothing in the webhook is trusted).
    /// Anybody can send one, so before any work: at most
    /// `webhook_per_minute_per_address` from one address (429), only
    /// payment keys that are ours (others are acknowledged and ignored), at
    /// most one waiting job per payment (a burst of deliveries makes one
    /// provider call), and at most `webhook_queue_max` waiting in all (503
    /// `busy`: the provider delivers again later).
    pub async fn webhook(
        &self,
        provider: &str,
        payment_key: &str,
        source: Option<std::net::IpAddr>,
    ) -> Result<(), PaymentError> {
        self.gateway(provider)?;
        let from = source.map_or_else(|| "-".to_string(), |ip| ip.to_string());
        let w = self
            .webhooks
            .limiter
            .hit(&format!("webhook:{provider}:{from}"), 60)
            .await?;
        if w.count > self.webhooks.per_minute {
            return Err(PaymentError::rate_limited(w.resets_in_secs.max(1)));
        }
        if !self
            .sql
            .payments()
            .knows_payment_key(provider, payment_key)
            .await?
        {
            tracing::info!(
                provider,
                "webhook for a payment key we do not know; ignored"
            );
            return Ok(());
        }
        let now = now_ms();
        let prefix = format!(
            "{JOB_PAYMENT_RECONCILE}:{}:",
            idempotency_key(&[provider, payment_key])
        );
        let (waiting, mine) = self
            .sql
            .outbox()
            .waiting_jobs(JOB_PAYMENT_RECONCILE, &prefix, now)
            .await?;
        if mine > 0 {
            return Ok(());
        }
        if waiting >= self.webhooks.queue_max {
            return Err(PaymentError::new(
                Code::Busy,
                "too many payment changes waiting; deliver again later",
            )
            .retry_after(10));
        }
        let job = NewJob {
            kind: JOB_PAYMENT_RECONCILE,
            payload: json!({"provider": provider, "payment_key": payment_key}),
            dedup_key: format!("{prefix}{now}:{}", random_key()),
            due_at: now,
        };
        self.sql.outbox().enqueue_job(&job, now).await?;
        Ok(())
    }

    /// Failed refunds and compensations, newest first (admins).
    pub async fn failures(&self, limit: i64) -> Result<Vec<PaymentFailure>, PaymentError> {
        Ok(self.sql.payments().payment_failures(limit).await?)
    }

    pub async fn refunds(&self, order_id: i64) -> Result<Vec<RefundRecord>, PaymentError> {
        Ok(self.sql.payments().refunds_of_order(order_id).await?)
    }

    /// The outbox handlers of this service: `(kind, handler, on_dead)`.
    pub fn job_handlers(&self) -> Vec<(&'static str, JobHandler, Option<JobHandler>)> {
        let compensation = handler(self, |p, payload| async move {
            p.run_compensation(&payload).await
        });
        let compensation_dead = handler(self, |p, payload| async move {
            let order = payload.get("order").and_then(serde_json::Value::as_i64);
            let buyer = match order {
                Some(o) => p
                    .sql
                    .orders()
                    .order(o)
                    .await
                    .ok()
                    .flatten()
                    .map_or(0, |o| o.buyer_id),
                None => 0,
            };
            p.publish(Alarm::PaymentCompensationFailed, buyer, payload)
                .await;
            Ok(())
        });
        let refund = handler(self, |p, payload| async move {
            p.run_refund(payload_id(&payload, "refund")?).await
        });
        let refund_dead = handler(self, |p, payload| async move {
            let Ok(id) = payload_id(&payload, "refund") else {
                return Ok(());
            };
            if let Some(refund) = p.sql.payments().refund(id).await? {
                if let Some(order) = p.sql.orders().order(refund.order_id).await? {
                    p.refund_failed(
                        &refund,
                        &order,
                        "the provider did not answer; retries exhausted",
                    )
                    .await;
                }
            }
            Ok(())
        });
        let reconcile = handler(self, |p, payload| async move {
            let (provider, key) = (
                payload_text(&payload, "provider"),
                payload_text(&payload, "payment_key"),
            );
            p.reconcile(&provider, &key).await
        });
        vec![
            (JOB_PAYMENT_CANCEL, compensation, Some(compensation_dead)),
            (JOB_PAYMENT_REFUND, refund, Some(refund_dead)),
            (JOB_PAYMENT_RECONCILE, reconcile, None),
        ]
    }
}
