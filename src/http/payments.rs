//! Paying orders over REST: the confirm the client sends after finishing
//! the provider's widget (or the sandbox).

use actix_web::{post, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::Auth;
use super::orders::OrderView;
use crate::error::{ApiError, ErrorBody};
use crate::service::payments::ConfirmInput;
use crate::store::sql::PaymentRecord;
use crate::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmPayment {
    pub order_number: String,
    /// The provider's key of the payment (the sandbox takes any 1..=200 visible ASCII characters).
    pub payment_key: String,
    /// Must equal the order total, in won.
    pub amount: i64,
    /// `sandbox` (built in; amounts ending in 444 are declined, 555 fail like a provider error).
    pub provider: String,
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
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 402, description = "`payment_declined`", body = ErrorBody),
        (status = 404, description = "`not_found` (also someone else's order)", body = ErrorBody),
        (status = 409, description = "`invalid_state`: paid with another payment, expired or cancelled (an approval that came too late is refunded: `details.refunded`)", body = ErrorBody),
        (status = 422, description = "`validation_failed` (provider, payment_key)", body = ErrorBody),
        (status = 503, description = "`unavailable`: the provider does not answer; retry the same request", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/payments/confirm")]
pub async fn confirm_payment(
    state: web::Data<AppState>,
    auth: Auth,
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
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ConfirmedPayment {
        order: OrderView::from(&order),
        payment: PaymentView::from(p),
    }))
}
