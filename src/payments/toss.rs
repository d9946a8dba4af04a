//! Toss Payments core API (`https://api.tosspayments.com`).
//!
//! - Auth: HTTP Basic with the secret key as the user and no password
//!   (`Authorization: Basic base64("{secret_key}:")`).
//! - `POST /v1/payments/confirm` `{paymentKey, orderId, amount}` approves
//!   the payment the buyer finished in the widget; `GET
//!   /v1/payments/{paymentKey}` looks it up; `POST
//!   /v1/payments/{paymentKey}/cancel` `{cancelReason, cancelAmount}`
//!   refunds all or part of it. Each answers with a Payment object.
//! - Errors: an HTTP status with `{"code": "...", "message": "..."}`.
//! - Idempotency: Toss answers a request repeated with the same
//!   `Idempotency-Key` (same key, API key, URL and method) with the first
//!   answer instead of executing it again, so confirm and cancel are retried
//!   here with the same key when the outcome is unknown.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::AUTHORIZATION;
use reqwest::{Client, Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    Approved, CancelRequest, Cancelled, ConfirmRequest, GatewayError, PaymentGateway,
    ProviderPayment, ProviderStatus,
};
use crate::domain::money::Won;
use crate::domain::now_ms;

/// Waits before the 2nd and 3rd attempt of a call whose outcome is unknown.
const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(400)];
/// Connecting never gets more than this, whatever the request timeout.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where and how to reach Toss Payments.
#[derive(Clone)]
pub struct TossSettings {
    /// `test_sk_...` or `live_sk_...`.
    pub secret_key: String,
    /// `https://api.tosspayments.com` (a fake's address in tests).
    pub base_url: String,
    /// The whole of one request, connect to last byte.
    pub timeout: Duration,
}

impl fmt::Debug for TossSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TossSettings")
            .field("secret_key", &"<redacted>")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish()
    }
}

pub struct Toss {
    http: Client,
    base: Url,
    /// The whole `Authorization` header value.
    auth: String,
}

impl Toss {
    pub fn new(settings: TossSettings) -> Result<Toss, String> {
        if settings.secret_key.trim().is_empty() {
            return Err("toss: the secret key is empty".into());
        }
        let base = http_base(&settings.base_url).map_err(|e| format!("toss: {e}"))?;
        let http = client(settings.timeout).map_err(|e| format!("toss: {e}"))?;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", settings.secret_key))
        );
        Ok(Toss { http, base, auth })
    }

    fn url(&self, segments: &[&str]) -> Result<Url, GatewayError> {
        join(&self.base, segments)
            .ok_or_else(|| GatewayError::Unavailable("toss: base_url takes no path".into()))
    }

    /// One request; the failure says whether repeating it may help.
    async fn once<T: DeserializeOwned>(
        &self,
        op: Op,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, Failure> {
        let mut request = self
            .http
            .request(method, url)
            .header(AUTHORIZATION, &self.auth);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = exchange("toss", request).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                Failure::last(GatewayError::Unavailable(format!(
                    "toss: unreadable answer ({status}): {e}"
                )))
            });
        }
        let body: TossError = serde_json::from_slice(&bytes).unwrap_or_default();
        Err(map_error(op, status, &body.code, &body.message))
    }

    /// [`Toss::once`], repeated with the same idempotency key while the
    /// outcome is unknown.
    async fn call<T: DeserializeOwned>(
        &self,
        op: Op,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<T, GatewayError> {
        let url = self.url(segments)?;
        with_retries("toss", op.name(), || {
            self.once(op, method.clone(), url.clone(), body, idempotency_key)
        })
        .await
    }
}

#[async_trait]
impl PaymentGateway for Toss {
    fn provider(&self) -> &'static str {
        "toss"
    }

    async fn confirm(&self, req: &ConfirmRequest) -> Result<Approved, GatewayError> {
        let body = json!({
            "paymentKey": req.payment_key,
            "orderId": req.order_id,
            "amount": req.amount.get(),
        });
        let payment: TossPayment = self
            .call(
                Op::Confirm,
                Method::POST,
                &["v1", "payments", "confirm"],
                Some(&body),
                Some(&req.idempotency_key),
            )
            .await?;
        // A replayed confirm answers with the payment as it was approved; a
        // virtual account would say WAITING_FOR_DEPOSIT, which is not an
        // approval (and not something this port can express): leave it to
        // reconciliation.
        if payment.status != "DONE" {
            return Err(GatewayError::Unavailable(format!(
                "toss: confirm answered with status {}",
                payment.status
            )));
        }
        Ok(Approved {
            payment_key: payment.payment_key,
            amount: won(payment.total_amount)?,
            method: payment.method.unwrap_or_default(),
            approved_at: payment
                .approved_at
                .as_deref()
                .and_then(|at| parse_datetime_ms(at, 9 * 60))
                .unwrap_or_else(now_ms),
        })
    }

    async fn lookup(&self, payment_key: &str) -> Result<ProviderPayment, GatewayError> {
        let payment: TossPayment = self
            .call(
                Op::Lookup,
                Method::GET,
                &["v1", "payments", payment_key],
                None,
                None,
            )
            .await?;
        let status = status_of(&payment.status).ok_or_else(|| {
            GatewayError::Unavailable(format!("toss: unknown payment status {}", payment.status))
        })?;
        let total = won(payment.total_amount)?;
        let balance = won(payment.balance_amount)?;
        Ok(ProviderPayment {
            payment_key: payment.payment_key,
            order_id: payment.order_id,
            status,
            total,
            cancelled: total.checked_sub(balance).unwrap_or(Won::ZERO),
        })
    }

    async fn cancel(&self, req: &CancelRequest) -> Result<Cancelled, GatewayError> {
        let body = json!({
            "cancelReason": req.reason,
            "cancelAmount": req.amount.get(),
        });
        let payment: TossPayment = self
            .call(
                Op::Cancel,
                Method::POST,
                &["v1", "payments", &req.payment_key, "cancel"],
                Some(&body),
                Some(&req.idempotency_key),
            )
            .await?;
        Ok(Cancelled {
            payment_key: payment.payment_key,
            cancelled: req.amount,
            remaining: won(payment.balance_amount)?,
        })
    }
}

/// The fields of a Toss Payment object this adapter reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TossPayment {
    payment_key: String,
    order_id: String,
    status: String,
    total_amount: i64,
    balance_amount: i64,
    /// `카드`, `간편결제`, `가상계좌` ...; null before a method is chosen.
    method: Option<String>,
    /// ISO 8601 with offset, e.g. `2024-02-13T12:18:14+09:00`.
    approved_at: Option<String>,
}

/// Toss's error body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TossError {
    code: String,
    message: String,
}

/// What was asked, for reading an error code the right way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Confirm,
    Lookup,
    Cancel,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Confirm => "confirm",
            Op::Lookup => "lookup",
            Op::Cancel => "cancel",
        }
    }
}

/// A failed attempt: the error, and whether the same call may be repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) error: GatewayError,
    pub(crate) retry: bool,
}

impl Failure {
    pub(crate) fn retry(error: GatewayError) -> Failure {
        Failure { error, retry: true }
    }

    pub(crate) fn last(error: GatewayError) -> Failure {
        Failure {
            error,
            retry: false,
        }
    }
}

fn status_of(status: &str) -> Option<ProviderStatus> {
    Some(match status {
        "DONE" => ProviderStatus::Done,
        "PARTIAL_CANCELED" => ProviderStatus::PartiallyCancelled,
        "CANCELED" => ProviderStatus::Cancelled,
        "ABORTED" | "EXPIRED" => ProviderStatus::Failed,
        "READY" | "IN_PROGRESS" | "WAITING_FOR_DEPOSIT" => ProviderStatus::Pending,
        _ => return None,
    })
}

/// Codes that mean "temporarily failed, try again" (docs: error codes).
const TRANSIENT: &[&str] = &[
    "PROVIDER_ERROR",
    "FAILED_INTERNAL_SYSTEM_PROCESSING",
    "FAILED_PAYMENT_INTERNAL_SYSTEM_PROCESSING",
    "UNKNOWN_PAYMENT_ERROR",
    "FAILED_REFUND_PROCESS",
    "FAILED_METHOD_HANDLING_CANCEL",
    "FAILED_PARTIAL_REFUND",
    "COMMON_ERROR",
    "FORBIDDEN_CONSECUTIVE_REQUEST",
    "IDEMPOTENT_REQUEST_PROCESSING",
];

const NOT_FOUND: &[&str] = &[
    "NOT_FOUND_PAYMENT",
    "NOT_FOUND_PAYMENT_SESSION",
    "NOT_FOUND",
];

const NOT_CANCELABLE: &[&str] = &[
    "NOT_CANCELABLE_AMOUNT",
    "NOT_CANCELABLE_PAYMENT",
    "ALREADY_CANCELED_PAYMENT",
    "ALREADY_REFUND_PAYMENT",
    "EXCEED_CANCEL_AMOUNT_DISCOUNT_AMOUNT",
    "NOT_MATCHES_REFUNDABLE_AMOUNT",
    "NOT_ALLOWED_PARTIAL_REFUND",
    "NOT_ALLOWED_PARTIAL_REFUND_WAITING_DEPOSIT",
    "NOT_CANCELABLE_PAYMENT_FOR_DORMANT_USER",
    "EXCEED_MAX_REFUND_DUE",
    "REFUND_REJECTED",
];

/// Toss's answer (status and `{code, message}`) in our words.
fn map_error(op: Op, status: StatusCode, code: &str, message: &str) -> Failure {
    if status == StatusCode::UNAUTHORIZED || code == "UNAUTHORIZED_KEY" || code == "INVALID_API_KEY"
    {
        tracing::error!(%status, code, message, "toss refused the secret key: check the payment settings");
        return Failure::last(GatewayError::Unavailable(
            "toss: the secret key was refused".into(),
        ));
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || TRANSIENT.contains(&code)
    {
        return Failure::retry(GatewayError::Unavailable(format!(
            "toss: {status} {code}: {message}"
        )));
    }
    Failure::last(if code.is_empty() {
        GatewayError::Unavailable(format!("toss: {status} without an error body"))
    } else if code == "ALREADY_PROCESSED_PAYMENT" {
        GatewayError::AlreadyProcessed
    } else if NOT_FOUND.contains(&code) {
        GatewayError::NotFound
    } else if NOT_CANCELABLE.contains(&code) {
        GatewayError::NotCancelable(message.to_string())
    } else {
        match op {
            // REJECT_CARD_COMPANY, EXCEED_MAX_DAILY_PAYMENT_COUNT,
            // INVALID_CARD_EXPIRATION, INVALID_STOPPED_CARD, ...
            Op::Confirm => GatewayError::Declined {
                code: code.to_string(),
                message: message.to_string(),
            },
            Op::Cancel => GatewayError::NotCancelable(format!("{code}: {message}")),
            Op::Lookup => GatewayError::Unavailable(format!("toss: {status} {code}: {message}")),
        }
    })
}

// ------------------------------------------------------------ shared bits
// (also used by the KakaoPay adapter)

/// One HTTP client per adapter: the request timeout covers the whole
/// exchange; connecting gets at most [`MAX_CONNECT_TIMEOUT`] of it.
pub(crate) fn client(timeout: Duration) -> Result<Client, String> {
    if timeout.is_zero() {
        return Err("the timeout must be more than zero".into());
    }
    Client::builder()
        .connect_timeout(timeout.min(MAX_CONNECT_TIMEOUT))
        .timeout(timeout)
        .user_agent(concat!("jangteo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("http client: {e}"))
}

/// A provider's base URL: `http(s)://host[:port][/prefix]`.
pub(crate) fn http_base(base_url: &str) -> Result<Url, String> {
    let url = Url::parse(base_url).map_err(|e| format!("base_url {base_url:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(format!("base_url {base_url:?} is not an http(s) address"));
    }
    Ok(url)
}

/// `base` with `segments` appended, each percent-encoded as a path segment.
pub(crate) fn join(base: &Url, segments: &[&str]) -> Option<Url> {
    let mut url = base.clone();
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url)
}

/// Send `request` and read the whole answer.
pub(crate) async fn exchange(
    provider: &str,
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, Vec<u8>), Failure> {
    let response = request.send().await.map_err(|e| transport(provider, &e))?;
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| transport(provider, &e))?;
    Ok((status, bytes.to_vec()))
}

/// Run `attempt` until it succeeds or fails for good, at most
/// `1 + BACKOFF.len()` times, waiting `BACKOFF` between attempts. Only for
/// calls that are safe to repeat (reads, or writes with an idempotency key
/// the provider honours).
pub(crate) async fn with_retries<T, F, Fut>(
    provider: &str,
    what: &str,
    mut attempt: F,
) -> Result<T, GatewayError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Failure>>,
{
    let mut waits = BACKOFF.iter();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(Failure { error, retry: true }) => match waits.next() {
                Some(wait) => {
                    tracing::warn!(
                        provider,
                        call = what,
                        %error,
                        retry_in_ms = wait.as_millis() as u64,
                        "payment provider call failed; retrying"
                    );
                    tokio::time::sleep(*wait).await;
                }
                None => return Err(error),
            },
            Err(Failure { error, .. }) => return Err(error),
        }
    }
}

/// A transport failure (connect, timeout, broken answer): the outcome is
/// unknown, so the call may be repeated, unless the request itself could
/// not be built.
pub(crate) fn transport(provider: &str, e: &reqwest::Error) -> Failure {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let error = GatewayError::Unavailable(format!("{provider}: {what}: {e}"));
    if e.is_builder() {
        Failure::last(error)
    } else {
        Failure::retry(error)
    }
}

/// A provider's amount as [`Won`]; out of range means the answer is wrong.
pub(crate) fn won(amount: i64) -> Result<Won, GatewayError> {
    Won::bounded(amount)
        .ok_or_else(|| GatewayError::Unavailable(format!("amount {amount} out of range")))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` as unix milliseconds.
/// Without an offset the time is read at `default_offset_minutes` east of
/// UTC (KakaoPay answers in KST without one: 540). `None` for anything
/// else, including impossible dates.
pub(crate) fn parse_datetime_ms(s: &str, default_offset_minutes: i64) -> Option<i64> {
    let b = s.trim().as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && (at(10, b'T') || at(10, b't') || at(10, b' ')))
        || !(at(13, b':') && at(16, b':'))
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if at(i, b'.') || at(i, b',') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b.get(i).copied().unwrap_or(b'0') - b'0');
            }
            i += 1;
        }
        let places = i - start;
        if places == 0 {
            return None;
        }
        for _ in places..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i) {
        None => default_offset_minutes,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(i + 1, 2)?;
            let minutes_at = if at(i + 3, b':') { i + 4 } else { i + 3 };
            let minutes = digits(minutes_at, 2)?;
            if minutes_at + 2 != b.len() || hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if sign == b'-' {
                -total
            } else {
                total
            }
        }
        Some(_) => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so the leap day is the last of its year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_provider_datetimes_to_unix_ms() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z", 0), Some(0));
        assert_eq!(parse_datetime_ms("1970-01-01T09:00:00+09:00", 0), Some(0));
        // 2024-02-13T03:18:14Z
        assert_eq!(
            parse_datetime_ms("2024-02-13T12:18:14+09:00", 0),
            Some(1_707_794_294_000)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-13T12:18:14+0900", 0),
            Some(1_707_794_294_000)
        );
        // KakaoPay: KST without an offset.
        assert_eq!(
            parse_datetime_ms("2024-02-13T12:18:14", 540),
            Some(1_707_794_294_000)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29T23:59:59.5-05:30", 0),
            Some(1_709_270_999_500)
        );
        assert_eq!(
            parse_datetime_ms("2000-03-01T00:00:00.123456Z", 0),
            Some(951_868_800_123)
        );
        assert_eq!(parse_datetime_ms("1969-12-31T23:59:59Z", 0), Some(-1_000));
        assert_eq!(
            parse_datetime_ms("2100-12-31T23:59:59Z", 0),
            Some(4_133_980_799_000)
        );
        for bad in [
            "",
            "2024-02-13",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-02-13T24:00:00Z",
            "2024-02-13T12:18:14+9:00",
            "2024-02-13T12:18:14Zjunk",
            "2024-02-13T12:18:14.Z",
            "2024-02-13T12:18:14+09:00x",
            "２０２４-02-13T12:18:14Z",
            "2024/02/13T12:18:14Z",
        ] {
            assert_eq!(parse_datetime_ms(bad, 0), None, "{bad:?}");
        }
    }

    #[test]
    fn error_codes_map_onto_gateway_errors() {
        let m = |op, status: u16, code| {
            map_error(
                op,
                StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
                code,
                "m",
            )
        };
        assert_eq!(
            m(Op::Confirm, 400, "ALREADY_PROCESSED_PAYMENT").error,
            GatewayError::AlreadyProcessed
        );
        assert_eq!(
            m(Op::Confirm, 403, "REJECT_CARD_COMPANY").error,
            GatewayError::Declined {
                code: "REJECT_CARD_COMPANY".into(),
                message: "m".into()
            }
        );
        assert_eq!(
            m(Op::Lookup, 404, "NOT_FOUND_PAYMENT").error,
            GatewayError::NotFound
        );
        assert_eq!(
            m(Op::Confirm, 404, "NOT_FOUND_PAYMENT_SESSION").error,
            GatewayError::NotFound
        );
        assert_eq!(
            m(Op::Cancel, 400, "NOT_CANCELABLE_AMOUNT").error,
            GatewayError::NotCancelable("m".into())
        );
        assert!(matches!(
            m(Op::Cancel, 400, "INVALID_REFUND_ACCOUNT_INFO").error,
            GatewayError::NotCancelable(_)
        ));
        for (status, code) in [
            (500, "FAILED_INTERNAL_SYSTEM_PROCESSING"),
            (400, "PROVIDER_ERROR"),
            (500, "UNKNOWN_PAYMENT_ERROR"),
            (503, ""),
            (502, "REJECT_CARD_COMPANY"),
        ] {
            let f = m(Op::Confirm, status, code);
            assert!(
                matches!(f.error, GatewayError::Unavailable(_)) && f.retry,
                "{status} {code}: {f:?}"
            );
        }
        for (status, code) in [
            (401, "UNAUTHORIZED_KEY"),
            (403, "UNAUTHORIZED_KEY"),
            (401, ""),
        ] {
            let f = m(Op::Confirm, status, code);
            assert_eq!(
                f,
                Failure::last(GatewayError::Unavailable(
                    "toss: the secret key was refused".into()
                ))
            );
        }
        assert!(matches!(
            m(Op::Lookup, 400, "INVALID_REQUEST").error,
            GatewayError::Unavailable(_)
        ));
    }

    #[test]
    fn statuses_and_urls() {
        assert_eq!(status_of("DONE"), Some(ProviderStatus::Done));
        assert_eq!(
            status_of("PARTIAL_CANCELED"),
            Some(ProviderStatus::PartiallyCancelled)
        );
        assert_eq!(status_of("EXPIRED"), Some(ProviderStatus::Failed));
        assert_eq!(
            status_of("WAITING_FOR_DEPOSIT"),
            Some(ProviderStatus::Pending)
        );
        assert_eq!(status_of("SOMETHING_NEW"), None);
        let base = http_base("http://127.0.0.1:9/prefix/").ok();
        let url = base.and_then(|b| join(&b, &["v1", "payments", "a/b c"]));
        assert_eq!(
            url.map(String::from).as_deref(),
            Some("http://127.0.0.1:9/prefix/v1/payments/a%2Fb%20c")
        );
        assert!(http_base("ftp://x").is_err());
        assert!(Toss::new(TossSettings {
            secret_key: String::new(),
            base_url: "http://127.0.0.1:9".into(),
            timeout: Duration::from_secs(1),
        })
        .is_err());
    }
}
