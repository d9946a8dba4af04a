//! KakaoPay online payment API (`https://open-api.kakaopay.com`).
//!
//! - Auth: `Authorization: SECRET_KEY {secret_key}`; JSON bodies; every
//!   call names the merchant code (`cid`).
//! - `POST /online/v1/payment/ready` registers the payment and answers
//!   with its `tid` and the pages to send the buyer to; KakaoPay sends the
//!   buyer back to `approval_url?pg_token=...`; `POST
//!   /online/v1/payment/approve` (tid + pg_token + the partner order and
//!   user ids given at ready) takes the money; `POST
//!   /online/v1/payment/order` looks the payment up; `POST
//!   /online/v1/payment/cancel` refunds all or part of it.
//! - KakaoPay has no idempotency key, so nothing that moves money is
//!   repeated blindly: when an approve or a cancel ends with the outcome
//!   unknown, the adapter looks the payment up to learn what happened, and
//!   before a cancel it checks whether that cancel was already made (the
//!   provider's cancelled total against `CancelRequest::cancelled_before`).
//!   Only lookups are repeated.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::AUTHORIZATION;
use reqwest::{Client, Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::toss::{
    client, exchange, http_base, join, parse_datetime_ms, with_retries, won, Failure,
};
use super::{
    Approved, CancelRequest, Cancelled, ConfirmRequest, GatewayError, PaymentGateway,
    ProviderPayment, ProviderStatus, Ready, ReadyRequest,
};
use crate::domain::money::Won;
use crate::domain::now_ms;

/// KakaoPay's times are Korean local time without an offset.
const KST_MINUTES: i64 = 9 * 60;

const KEY_REFUSED: &str = "kakaopay: the secret key or cid was refused";

/// Where and how to reach KakaoPay.
#[derive(Clone)]
pub struct KakaoPaySettings {
    /// The secret key (`DEV...` for the test environment).
    pub secret_key: String,
    /// The merchant code (`TC0ONETIME` for test one-off payments).
    pub cid: String,
    /// `https://open-api.kakaopay.com` (a fake's address in tests).
    pub base_url: String,
    /// The whole of one request, connect to last byte.
    pub timeout: Duration,
}

impl fmt::Debug for KakaoPaySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KakaoPaySettings")
            .field("secret_key", &"<redacted>")
            .field("cid", &self.cid)
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub struct KakaoPay {
    http: Client,
    base: Url,
    /// The whole `Authorization` header value.
    auth: String,
    cid: String,
}

impl KakaoPay {
    pub fn new(settings: KakaoPaySettings) -> Result<KakaoPay, String> {
        if settings.secret_key.trim().is_empty() {
            return Err("kakaopay: the secret key is empty".into());
        }
        if settings.cid.trim().is_empty() {
            return Err("kakaopay: the cid (merchant code) is empty".into());
        }
        let base = http_base(&settings.base_url).map_err(|e| format!("kakaopay: {e}"))?;
        let http = client(settings.timeout).map_err(|e| format!("kakaopay: {e}"))?;
        Ok(KakaoPay {
            http,
            base,
            auth: format!("SECRET_KEY {}", settings.secret_key),
            cid: settings.cid,
        })
    }

    /// One `POST /online/v1/payment/{endpoint}`.
    async fn once<T: DeserializeOwned>(&self, op: Op, body: &Value) -> Result<T, Failure> {
        let url =
            join(&self.base, &["online", "v1", "payment", op.endpoint()]).ok_or_else(|| {
                Failure::last(GatewayError::Unavailable(
                    "kakaopay: base_url takes no path".into(),
                ))
            })?;
        let request = self
            .http
            .request(Method::POST, url)
            .header(AUTHORIZATION, &self.auth)
            .json(body);
        let (status, bytes) = exchange("kakaopay", request).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::last(GatewayError::Unavailable(format!(
                    "kakaopay: unreadable {} answer ({status}): {e}",
                    op.endpoint()
                )))
            });
        }
        Err(map_error(op, status, &KakaoError::read(&bytes)))
    }

    /// The payment as KakaoPay sees it; `retry` repeats the lookup while
    /// the answer is unknown (it changes nothing, so that is safe).
    async fn order(&self, tid: &str, retry: bool) -> Result<Order, GatewayError> {
        let body = json!({ "cid": self.cid, "tid": tid });
        if retry {
            with_retries("kakaopay", "order", || self.once(Op::Lookup, &body)).await
        } else {
            self.once(Op::Lookup, &body).await.map_err(|f| f.error)
        }
    }

    /// The approve failed, maybe only on the way back (a lost answer, or a
    /// repeated approve of a payment already approved): if KakaoPay holds
    /// this payment as approved for this order and amount, it is approved.
    async fn approved_after_all(
        &self,
        req: &ConfirmRequest,
        error: GatewayError,
    ) -> Result<Approved, GatewayError> {
        if matches!(&error, GatewayError::Unavailable(m) if m == KEY_REFUSED) {
            return Err(error);
        }
        match self.order(&req.payment_key, false).await {
            Ok(order)
                if order.status == "SUCCESS_PAYMENT"
                    && order.total() == Some(req.amount)
                    && order
                        .partner_order_id
                        .as_deref()
                        .is_none_or(|id| id == req.order_id) =>
            {
                tracing::info!(
                    tid = %req.payment_key,
                    order = %req.order_id,
                    after = %error,
                    "kakaopay: the approve failed but the payment is approved"
                );
                Ok(Approved {
                    payment_key: order.tid.clone(),
                    amount: req.amount,
                    method: method_name(order.payment_method_type.as_deref()),
                    approved_at: kst_ms(order.approved_at.as_deref()),
                })
            }
            Err(GatewayError::NotFound) => Err(GatewayError::NotFound),
            _ => Err(error),
        }
    }

    fn cancelled(&self, req: &CancelRequest, order: &Order) -> Result<Cancelled, GatewayError> {
        Ok(Cancelled {
            payment_key: req.payment_key.clone(),
            cancelled: req.amount,
            remaining: order.remaining()?,
        })
    }
}

#[async_trait]
impl PaymentGateway for KakaoPay {
    fn provider(&self) -> &'static str {
        "kakaopay"
    }

    fn needs_ready(&self) -> bool {
        true
    }

    async fn ready(&self, req: &ReadyRequest) -> Result<Ready, GatewayError> {
        let body = json!({
            "cid": self.cid,
            "partner_order_id": req.order_id,
            "partner_user_id": req.buyer_ref,
            "item_name": req.item_name,
            "quantity": req.quantity,
            "total_amount": req.amount.get(),
            "tax_free_amount": 0,
            "approval_url": req.approval_url,
            "cancel_url": req.cancel_url,
            "fail_url": req.fail_url,
        });
        // Not repeated: a second ready would only register a second tid.
        let answer: ReadyAnswer = self.once(Op::Ready, &body).await.map_err(|f| f.error)?;
        Ok(Ready {
            payment_key: answer.tid,
            redirect_pc_url: answer.next_redirect_pc_url.unwrap_or_default(),
            redirect_mobile_url: answer.next_redirect_mobile_url.unwrap_or_default(),
            redirect_app_url: answer.next_redirect_app_url.unwrap_or_default(),
        })
    }

    async fn confirm(&self, req: &ConfirmRequest) -> Result<Approved, GatewayError> {
        let Some(pg_token) = req.pg_token.as_deref().filter(|t| !t.trim().is_empty()) else {
            return Err(GatewayError::Declined {
                code: "INVALID_PG_TOKEN".into(),
                message: "no pg_token: the buyer has not approved the payment at KakaoPay".into(),
            });
        };
        let body = json!({
            "cid": self.cid,
            "tid": req.payment_key,
            "partner_order_id": req.order_id,
            "partner_user_id": req.buyer_ref,
            "pg_token": pg_token,
        });
        match self.once::<ApproveAnswer>(Op::Approve, &body).await {
            Ok(answer) => Ok(Approved {
                payment_key: answer.tid,
                amount: won(answer.amount.total)?,
                method: method_name(answer.payment_method_type.as_deref()),
                approved_at: kst_ms(answer.approved_at.as_deref()),
            }),
            Err(failure) => self.approved_after_all(req, failure.error).await,
        }
    }

    async fn lookup(&self, payment_key: &str) -> Result<ProviderPayment, GatewayError> {
        let order = self.order(payment_key, true).await?;
        let status = status_of(&order.status).ok_or_else(|| {
            GatewayError::Unavailable(format!("kakaopay: unknown payment status {}", order.status))
        })?;
        Ok(ProviderPayment {
            payment_key: order.tid.clone(),
            order_id: order.partner_order_id.clone().unwrap_or_default(),
            status,
            total: won(order.amount.as_ref().map_or(0, |a| a.total))?,
            cancelled: order.cancelled()?,
        })
    }

    async fn cancel(&self, req: &CancelRequest) -> Result<Cancelled, GatewayError> {
        let target = req
            .cancelled_before
            .checked_add(req.amount)
            .ok_or_else(|| {
                GatewayError::NotCancelable(format!("{} more is out of range", req.amount))
            })?;
        // Made already (an earlier attempt whose answer was lost)?
        let before = self.order(&req.payment_key, true).await?;
        if before.cancelled()? >= target {
            tracing::info!(tid = %req.payment_key, order = %req.order_id, "kakaopay: this cancel was already made");
            return self.cancelled(req, &before);
        }
        let body = json!({
            "cid": self.cid,
            "tid": req.payment_key,
            "cancel_amount": req.amount.get(),
            "cancel_tax_free_amount": 0,
        });
        match self.once::<CancelAnswer>(Op::Cancel, &body).await {
            Ok(answer) => Ok(Cancelled {
                payment_key: req.payment_key.clone(),
                cancelled: req.amount,
                remaining: won(answer.cancel_available_amount.total)?,
            }),
            Err(Failure {
                error: GatewayError::Unavailable(message),
                ..
            }) if message != KEY_REFUSED => {
                // Unknown outcome: look instead of cancelling again.
                match self.order(&req.payment_key, false).await {
                    Ok(after) if after.cancelled()? >= target => self.cancelled(req, &after),
                    _ => Err(GatewayError::Unavailable(message)),
                }
            }
            Err(failure) => Err(failure.error),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ReadyAnswer {
    tid: String,
    next_redirect_pc_url: Option<String>,
    next_redirect_mobile_url: Option<String>,
    next_redirect_app_url: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ApproveAnswer {
    tid: String,
    /// `MONEY` or `CARD`.
    payment_method_type: Option<String>,
    amount: Amount,
    /// KST, e.g. `2024-02-13T12:18:14`.
    approved_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CancelAnswer {
    cancel_available_amount: Amount,
}

/// An `{total, tax_free, vat, point, discount, ...}` amount object.
#[derive(Debug, Default, Deserialize)]
struct Amount {
    #[serde(default)]
    total: i64,
}

/// The fields of a `/payment/order` answer this adapter reads.
#[derive(Debug, Deserialize)]
struct Order {
    tid: String,
    status: String,
    partner_order_id: Option<String>,
    payment_method_type: Option<String>,
    amount: Option<Amount>,
    canceled_amount: Option<Amount>,
    cancel_available_amount: Option<Amount>,
    approved_at: Option<String>,
}

impl Order {
    fn total(&self) -> Option<Won> {
        self.amount.as_ref().and_then(|a| Won::bounded(a.total))
    }

    fn cancelled(&self) -> Result<Won, GatewayError> {
        won(self.canceled_amount.as_ref().map_or(0, |a| a.total))
    }

    fn remaining(&self) -> Result<Won, GatewayError> {
        match &self.cancel_available_amount {
            Some(a) => won(a.total),
            None => Ok(self
                .total()
                .and_then(|t| t.checked_sub(self.cancelled().ok()?))
                .unwrap_or(Won::ZERO)),
        }
    }
}

/// KakaoPay's error body: `{error_code, error_message, extras}` (codes may
/// be strings or numbers; `extras.method_result_code/_message` carry the
/// card company's or bank's reason when a payment is refused). The legacy
/// `{code, msg}` shape is read too.
#[derive(Debug, Default, PartialEq, Eq)]
struct KakaoError {
    code: String,
    message: String,
    method_code: Option<String>,
    method_message: Option<String>,
}

impl KakaoError {
    fn read(bytes: &[u8]) -> KakaoError {
        let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let text = |v: &Value| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        KakaoError {
            code: text(&v["error_code"])
                .or_else(|| text(&v["code"]))
                .unwrap_or_default(),
            message: text(&v["error_message"])
                .or_else(|| text(&v["msg"]))
                .unwrap_or_default(),
            method_code: text(&v["extras"]["method_result_code"]),
            method_message: text(&v["extras"]["method_result_message"]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ready,
    Approve,
    Lookup,
    Cancel,
}

impl Op {
    fn endpoint(self) -> &'static str {
        match self {
            Op::Ready => "ready",
            Op::Approve => "approve",
            Op::Lookup => "order",
            Op::Cancel => "cancel",
        }
    }
}

/// Codes that say there is no such payment (tid).
const NOT_FOUND: &[&str] = &["INVALID_TID", "TID_NOT_FOUND", "NOT_FOUND", "-721"];

fn map_error(op: Op, status: StatusCode, e: &KakaoError) -> Failure {
    let KakaoError { code, message, .. } = e;
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        tracing::error!(%status, code, message, "kakaopay refused the secret key or cid: check the payment settings");
        return Failure::last(GatewayError::Unavailable(KEY_REFUSED.into()));
    }
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return Failure::retry(GatewayError::Unavailable(format!(
            "kakaopay: {} {status} {code}: {message}",
            op.endpoint()
        )));
    }
    Failure::last(if code.is_empty() {
        GatewayError::Unavailable(format!(
            "kakaopay: {} {status} without an error body",
            op.endpoint()
        ))
    } else if status == StatusCode::NOT_FOUND || NOT_FOUND.contains(&code.as_str()) {
        GatewayError::NotFound
    } else {
        match op {
            // Refused by KakaoPay or the card company; unknown codes too.
            Op::Ready | Op::Approve => GatewayError::Declined {
                code: e.method_code.clone().unwrap_or_else(|| code.clone()),
                message: e.method_message.clone().unwrap_or_else(|| message.clone()),
            },
            Op::Cancel => GatewayError::NotCancelable(format!("{code}: {message}")),
            Op::Lookup => {
                GatewayError::Unavailable(format!("kakaopay: order {status} {code}: {message}"))
            }
        }
    })
}

fn status_of(status: &str) -> Option<ProviderStatus> {
    Some(match status {
        "READY" | "SEND_TMS" | "OPEN_PAYMENT" | "SELECT_METHOD" | "ARS_WAITING"
        | "AUTH_PASSWORD" => ProviderStatus::Pending,
        "SUCCESS_PAYMENT" => ProviderStatus::Done,
        "PART_CANCEL_PAYMENT" => ProviderStatus::PartiallyCancelled,
        "CANCEL_PAYMENT" => ProviderStatus::Cancelled,
        // ISSUED_SID: a subscription key was issued, no one-off payment
        // was taken.
        "ISSUED_SID" | "FAIL_AUTH_PASSWORD" | "QUIT_PAYMENT" | "FAIL_PAYMENT" => {
            ProviderStatus::Failed
        }
        _ => return None,
    })
}

fn method_name(payment_method_type: Option<&str>) -> String {
    match payment_method_type {
        Some("MONEY") => "카카오페이머니".into(),
        Some("CARD") => "카드".into(),
        Some(other) if !other.is_empty() => other.into(),
        _ => "카카오페이".into(),
    }
}

fn kst_ms(at: Option<&str>) -> i64 {
    at.and_then(|at| parse_datetime_ms(at, KST_MINUTES))
        .unwrap_or_else(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_error_bodies() {
        assert_eq!(
            KakaoError::read(
                br#"{"error_code":-780,"error_message":"approval failure!","extras":{"method_result_code":"8008","method_result_message":"refused"}}"#
            ),
            KakaoError {
                code: "-780".into(),
                message: "approval failure!".into(),
                method_code: Some("8008".into()),
                method_message: Some("refused".into()),
            }
        );
        assert_eq!(
            KakaoError::read(br#"{"code":-721,"msg":"TID does not exist."}"#).code,
            "-721"
        );
        assert_eq!(KakaoError::read(b"<html>").code, "");
    }

    #[test]
    fn maps_errors_by_call() {
        let e = |code: &str| KakaoError {
            code: code.into(),
            message: "m".into(),
            ..KakaoError::default()
        };
        let bad = StatusCode::BAD_REQUEST;
        assert_eq!(
            map_error(Op::Approve, bad, &e("INVALID_PG_TOKEN")).error,
            GatewayError::Declined {
                code: "INVALID_PG_TOKEN".into(),
                message: "m".into()
            }
        );
        assert_eq!(
            map_error(Op::Lookup, bad, &e("INVALID_TID")).error,
            GatewayError::NotFound
        );
        assert!(matches!(
            map_error(Op::Cancel, bad, &e("INVALID_CANCEL_AMOUNT")).error,
            GatewayError::NotCancelable(_)
        ));
        let down = map_error(Op::Cancel, StatusCode::BAD_GATEWAY, &e(""));
        assert!(down.retry && matches!(down.error, GatewayError::Unavailable(_)));
        let key = map_error(Op::Approve, StatusCode::UNAUTHORIZED, &e("UNAUTHORIZED"));
        assert_eq!(key.error, GatewayError::Unavailable(KEY_REFUSED.into()));
        assert!(!key.retry);
    }

    #[test]
    fn statuses_and_methods() {
        assert_eq!(status_of("SUCCESS_PAYMENT"), Some(ProviderStatus::Done));
        assert_eq!(status_of("QUIT_PAYMENT"), Some(ProviderStatus::Failed));
        assert_eq!(status_of("SEND_TMS"), Some(ProviderStatus::Pending));
        assert_eq!(status_of("NEW"), None);
        assert_eq!(method_name(Some("MONEY")), "카카오페이머니");
        assert_eq!(method_name(Some("CARD")), "카드");
        assert_eq!(kst_ms(Some("2024-02-13T12:18:14")), 1_707_794_294_000);
    }
}
