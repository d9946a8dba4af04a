//! Paying orders over REST: the ready step (KakaoPay), the confirm the
//! client sends after finishing the provider's widget (or the sandbox), the
//! providers' webhooks, and the admins' list of payment failures.

use actix_web::{get, post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{Admin, Verified};
use super::orders::OrderView;
use crate::error::Refuse;
use crate::http::error::{
    ApiError, BadParameter, ErrorBody, NoSuchOrder, NotAdmin, Unauthenticated, Unverified,
};
use crate::service::payments::ConfirmInput;
use crate::store::sql::{PaymentFailure, PaymentRecord, RefundRecord};
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    pub order_number: String,
    /// The provider's key of the payment (the sandbox takes any 1..=200 visible ASCII characters).
    pub payment_key: String,
    /// Must equal the order total, in won.
    pub amount: i64,
    /// `sandbox` (built in; amounts ending in 444 are declined, 555 fail like a provider error, 777 answer slowly), `toss` or `kakaopay` when configured.
    pub provider: String,
    /// KakaoPay: the `pg_token` its approval redirect carried (`payment_key` is the `tid` of the ready step).
    pub pg_token: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub provider: String,
    pub payment_key: String,
    pub amount: i64,
    pub cancelled_amount: i64,
    pub method: String,
    /// `done`, `partially_cancelled` or `cancelled`.
    pub status: String,
    pub approved_at: i64,
}

impl From<PaymentRecord> for PaymentView {
    fn from(p: PaymentRecord) -> PaymentView {
        PaymentView {
            provider: p.provider,
            payment_key: p.payment_key,
            amount: p.amount,
            cancelled_amount: p.cancelled_amount,
            method: p.method,
            status: p.status,
            approved_at: p.approved_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfirmedPayment {
    pub order: OrderView,
    pub payment: PaymentView,
}

/// Confirm a payment: checks the order (yours, unpaid, not expired) and the
/// amount before the provider is called; idempotent (the same confirm again
/// gets the same answer and one payment).
#[utoipa::path(
    tag = "shop",
    request_body = ConfirmPayment,
    responses(
        (status = 200, body = ConfirmedPayment),
        (status = 400, description = "`amount_mismatch`: nothing was charged", body = ErrorBody),
        Unauthenticated,
        Unverified,
        (status = 402, description = "`payment_declined`", body = ErrorBody),
        NoSuchOrder,
        (status = 409, description = "`invalid_state`: paid with another payment, expired or cancelled (an approval that came too late is refunded: `details.refunded`)", body = ErrorBody),
        (status = 422, description = "`validation_failed` (provider, payment_key)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the provider does not answer; retry the same request", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/payments/confirm")]
pub async fn confirm_payment(
    state: web::Data<AppState>,
    auth: Verified,
    body: web::Json<ConfirmPayment>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let (order, p) = state
        .payments
        .confirm(
            auth.0.uid(),
            ConfirmInput {
                order_number: b.order_number,
                payment_key: b.payment_key,
                amount: b.amount,
                provider: b.provider,
                pg_token: b.pg_token,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ConfirmedPayment {
        order: OrderView::from(&order),
        payment: PaymentView::from(p),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView {
    pub refund_id: i64,
    /// Unit price x quantity of the cancelled lines, in won.
    pub amount: i64,
    pub reason: String,
    /// `[{"line": id, "quantity": n}]` (empty for a partial cancel made at the provider).
    pub lines: Vec<RefundLineView>,
    /// `buyer`, `admin` or `provider` (cancelled at the provider, learnt by webhook).
    pub source: String,
    /// `pending` (the provider has not confirmed yet; retried), `done`, or `failed` (an admin takes over).
    pub status: String,
    pub created_at: i64,
    pub done_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundLineView {
    pub line: i64,
    pub quantity: i64,
}

impl From<RefundRecord> for RefundView {
    fn from(r: RefundRecord) -> RefundView {
        RefundView {
            refund_id: r.id,
            amount: r.amount,
            reason: r.reason,
            lines: r
                .lines
                .into_iter()
                .map(|l| RefundLineView {
                    line: l.line,
                    quantity: l.quantity,
                })
                .collect(),
            source: r.source,
            status: r.status,
            created_at: r.created_at,
            done_at: r.done_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentProviders {
    /// `sandbox` (not in production: no real money moves), `toss`,
    /// `kakaopay`: the ones this deployment takes payments with.
    pub providers: Vec<String>,
    /// With `toss`: the public client key for Toss's payment widget, and
    /// the script to load it from (absent when no client key is set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toss_client_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toss_sdk_url: Option<String>,
}

/// The payment providers a checkout can offer (what a client shows as
/// buttons; confirming with any other is refused).
#[utoipa::path(
    tag = "shop",
    responses((status = 200, body = PaymentProviders))
)]
#[get("/payments/providers")]
pub async fn payment_providers(state: web::Data<AppState>) -> HttpResponse {
    let widget = state.config.payments.toss_widget.as_ref();
    HttpResponse::Ok().json(PaymentProviders {
        providers: state
            .payments
            .providers()
            .into_iter()
            .map(String::from)
            .collect(),
        toss_client_key: widget.map(|(key, _)| key.clone()),
        toss_sdk_url: widget.map(|(_, url)| url.clone()),
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadyPayment {
    pub order_number: String,
    /// A provider with a ready step (`kakaopay`).
    pub provider: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyView {
    /// The provider's key (KakaoPay `tid`): confirm with it.
    pub payment_key: String,
    /// Where to send the buyer (desktop, mobile web, app).
    pub redirect_pc_url: String,
    pub redirect_mobile_url: String,
    pub redirect_app_url: String,
}

/// Prepare a payment with a provider that needs it (KakaoPay): the buyer is
/// then sent to one of the redirect URLs, comes back to
/// `payment_return_url` with a `pg_token`, and the client confirms with
/// `payment_key` and `pg_token`.
#[utoipa::path(
    tag = "shop",
    request_body = ReadyPayment,
    responses(
        (status = 200, body = ReadyView),
        Unauthenticated,
        Unverified,
        NoSuchOrder,
        (status = 409, description = "`invalid_state`: paid, expired or cancelled", body = ErrorBody),
        (status = 422, description = "`validation_failed`: unknown provider, or one without a ready step", body = ErrorBody),
        (status = 503, description = "`unavailable`: the provider does not answer", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/payments/ready")]
pub async fn ready_payment(
    state: web::Data<AppState>,
    auth: Verified,
    body: web::Json<ReadyPayment>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let r = state
        .payments
        .ready(auth.0.uid(), &b.order_number, &b.provider)
        .await?;
    Ok(HttpResponse::Ok().json(ReadyView {
        payment_key: r.payment_key,
        redirect_pc_url: r.redirect_pc_url,
        redirect_mobile_url: r.redirect_mobile_url,
        redirect_app_url: r.redirect_app_url,
    }))
}

/// Toss Payments webhooks (`PAYMENT_STATUS_CHANGED`, deposit callbacks).
/// Nothing in the body is trusted: it only names the payment, which is
/// fetched from Toss and reconciled in the background (a cancel made in
/// Toss's console cancels the order here). Toss signs none of these, so
/// only payments we know (recorded, or started by us) are looked up, one
/// waiting lookup per payment however many deliveries come, within a
/// per-address rate and a bounded queue. Answers 200 at once; repeated
/// deliveries are harmless.
#[utoipa::path(
    tag = "shop",
    request_body(content = Object, description = "Toss's webhook body: `{eventType, createdAt, data: {paymentKey, orderId, status, ...}}` or a deposit callback `{createdAt, secret, status, transactionKey, orderId}`"),
    responses(
        (status = 200, description = "Accepted (also for payments we do not know)"),
        (status = 400, description = "`bad_json`", body = ErrorBody),
        (status = 422, description = "`validation_failed`: names no payment", body = ErrorBody),
        (status = 429, description = "`rate_limited`: more than `webhook_per_minute_per_address` from this address (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "`busy`: `webhook_queue_max` payment changes are waiting already (`Retry-After`); deliver again later", body = ErrorBody),
    ),
)]
#[post("/payments/webhooks/toss")]
pub async fn toss_webhook(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let data = b.get("data");
    let payment_key = text(data.and_then(|d| d.get("paymentKey"))).or(text(b.get("paymentKey")));
    let order_id = text(data.and_then(|d| d.get("orderId"))).or(text(b.get("orderId")));
    let key = match (payment_key, order_id) {
        (Some(k), _) if !k.is_empty() && k.len() <= 200 => Some(k),
        (_, Some(order)) => state.orders.payment_key_of(&order, "toss").await?,
        _ => {
            return Err(ApiError::field(
                "data.paymentKey",
                "the webhook names no payment",
            ))
        }
    };
    if let Some(key) = key {
        let source = super::extract::client_ip(&req, state.config.http.trust_forwarded_for);
        state.payments.webhook("toss", &key, source).await?;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"ok": true})))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FailuresQuery {
    /// At most this many (1..=100, default 50).
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentFailureView {
    /// `refund`: a cancel the provider never made; `compensation`: a payment we could not keep and could not give back.
    pub kind: String,
    /// The refund id or the outbox job id.
    pub id: i64,
    pub order_number: Option<String>,
    pub amount: i64,
    pub error: String,
    pub at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentFailures {
    pub items: Vec<PaymentFailureView>,
}

/// Payment failures an operator must settle by hand, newest first:
/// refunds the provider never made and approvals we could neither keep nor
/// give back (administrators only). Each also went out as an alarm
/// (`payment.cancel_failed`, `payment.compensation_failed`).
#[utoipa::path(
    tag = "admin",
    params(FailuresQuery),
    responses(
        (status = 200, body = PaymentFailures),
        BadParameter,
        Unauthenticated,
        NotAdmin,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/admin/payments/failures")]
pub async fn payment_failures(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<FailuresQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 50, 100)?;
    let failures: Vec<PaymentFailure> = state.payments.failures(limit).await?;
    let mut items = Vec::with_capacity(failures.len());
    for f in failures {
        let order_number = match f.order_id {
            Some(id) => state.orders.number_of(id).await?,
            None => None,
        };
        items.push(PaymentFailureView {
            kind: f.kind,
            id: f.id,
            order_number,
            amount: f.amount,
            error: f.error,
            at: f.at,
        });
    }
    Ok(HttpResponse::Ok().json(PaymentFailures { items }))
}
