//! Local stand-ins for Toss Payments and KakaoPay: real HTTP servers on
//! 127.0.0.1 (random ports) that follow the providers' documented contracts
//! (paths, auth headers, JSON bodies, status codes, error bodies), with the
//! state in memory and controls a test can turn directly:
//!
//! - `fail_next(n)`: the next `n` calls answer 500 without doing anything
//!   (an outage in front of the provider);
//! - `lose_next(endpoint, n)`: the next `n` calls of that endpoint (the last
//!   path segment: `confirm`, `cancel`, `approve`) are carried out, but the
//!   answer is a 500 (the answer was lost on the way back);
//! - `delay(d)`: every answer takes `d` more (after the work is done);
//! - `calls()`: every request received, in order.
//!
//! Toss: `FakeToss::start(secret_key)`; `decline(payment_key)` makes the
//! card company refuse that payment; `console_cancel(payment_key)` is the
//! merchant cancelling in Toss's console; `payment(key)` is Toss's Payment
//! object. Idempotency like Toss: a request repeated with the same
//! `Idempotency-Key` on the same path gets the first answer again (status
//! and body) without being carried out again.
//!
//! KakaoPay: `FakeKakaoPay::start(secret_key, cid)`; `buyer_approves(tid)`
//! is what the buyer does on KakaoPay's page, and gives the single-use
//! `pg_token` the approval redirect would carry; `decline(tid)` makes the
//! approval fail; `payment(tid)` is the `/payment/order` answer.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use base64::Engine as _;
use serde_json::{json, Value};

/// One request a fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
}

/// What every fake has: the switches and the call log.
#[derive(Default)]
struct Common {
    calls: Vec<Call>,
    fail_next: usize,
    lose_next: HashMap<String, usize>,
    delay: Duration,
}

impl Common {
    fn arrive(&mut self, req: &HttpRequest) {
        self.calls.push(Call {
            method: req.method().to_string(),
            path: req.path().to_string(),
            idempotency_key: header(req, "idempotency-key"),
        });
    }

    /// `true` if this call is to fail at once (an outage).
    fn outage(&mut self) -> bool {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            return true;
        }
        false
    }

    /// `true` if this answer is to be lost (the work stays done).
    fn lose(&mut self, req: &HttpRequest) -> bool {
        let endpoint = req.path().rsplit('/').next().unwrap_or("");
        match self.lose_next.get_mut(endpoint) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

pub fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn reply(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).expect("status code"))
        .content_type("application/json")
        .body(body.to_string())
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running fake (also the OAuth fakes'); stopped when dropped.
pub struct Running {
    pub base_url: String,
    handle: ServerHandle,
}

impl Drop for Running {
    fn drop(&mut self) {
        // The stop command is sent at once; nothing needs to wait for it.
        std::mem::drop(self.handle.stop(false));
    }
}

pub fn serve<S, F, Fut>(state: web::Data<Mutex<S>>, handler: F) -> Running
where
    S: Send + 'static,
    F: Fn(HttpRequest, web::Bytes, web::Data<Mutex<S>>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = HttpResponse> + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a fake provider");
    let port = listener.local_addr().expect("local address").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .default_service(web::to(handler.clone()))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Running {
        base_url: format!("http://127.0.0.1:{port}"),
        handle,
    }
}

/// Unix ms as `YYYY-MM-DDTHH:MM:SS` in Korean time, with `+09:00` if asked.
pub fn kst(ms: i64, with_offset: bool) -> String {
    let secs = ms.div_euclid(1000) + 9 * 3600;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (years counted from March).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        if with_offset { "+09:00" } else { "" }
    )
}

fn now_ms() -> i64 {
    jangteo::domain::now_ms()
}

// ================================================================== Toss

struct TossState {
    common: Common,
    auth: String,
    payments: HashMap<String, Value>,
    declined: HashSet<String>,
    /// (path, idempotency key) -> the first answer.
    replies: HashMap<(String, String), (u16, Value)>,
    transactions: u64,
}

pub struct FakeToss {
    state: web::Data<Mutex<TossState>>,
    running: Running,
}

impl FakeToss {
    pub async fn start(secret_key: &str) -> FakeToss {
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"))
        );
        let state = web::Data::new(Mutex::new(TossState {
            common: Common::default(),
            auth,
            payments: HashMap::new(),
            declined: HashSet::new(),
            replies: HashMap::new(),
            transactions: 0,
        }));
        let running = serve(state.clone(), toss_handler);
        FakeToss { state, running }
    }

    pub fn base_url(&self) -> String {
        self.running.base_url.clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut TossState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// The card company refuses this payment (403 `REJECT_CARD_COMPANY`).
    pub fn decline(&self, payment_key: &str) {
        self.with(|s| s.declined.insert(payment_key.to_string()));
    }

    pub fn fail_next(&self, n: usize) {
        self.with(|s| s.common.fail_next = n);
    }

    pub fn lose_next(&self, endpoint: &str, n: usize) {
        self.with(|s| s.common.lose_next.insert(endpoint.to_string(), n));
    }

    pub fn delay(&self, d: Duration) {
        self.with(|s| s.common.delay = d);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.common.calls.clone())
    }

    /// Calls whose path ends with `endpoint` (`confirm`, `cancel`, a key).
    pub fn calls_to(&self, endpoint: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.ends_with(&format!("/{endpoint}")))
            .collect()
    }

    pub fn payment(&self, payment_key: &str) -> Option<Value> {
        self.with(|s| s.payments.get(payment_key).cloned())
    }

    pub fn payment_count(&self) -> usize {
        self.with(|s| s.payments.len())
    }

    /// The merchant cancels the whole payment in Toss's console.
    pub fn console_cancel(&self, payment_key: &str) {
        self.with(|s| {
            s.transactions += 1;
            let tx = s.transactions;
            let p = s
                .payments
                .get_mut(payment_key)
                .expect("a payment to cancel");
            let balance = p["balanceAmount"].as_i64().expect("balanceAmount");
            toss_apply_cancel(p, balance, "상점관리자 취소", tx);
        });
    }
}

fn toss_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (status, json!({ "code": code, "message": message }))
}

async fn toss_handler(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<TossState>>,
) -> HttpResponse {
    let (status, answer, delay) = {
        let mut s = lock(&state);
        let delay = s.common.delay;
        let (status, answer) = toss_answer(&mut s, &req, &body);
        (status, answer, delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    reply(status, &answer)
}

fn toss_answer(s: &mut TossState, req: &HttpRequest, body: &[u8]) -> (u16, Value) {
    s.common.arrive(req);
    if header(req, "authorization").as_deref() != Some(s.auth.as_str()) {
        return toss_error(
            401,
            "UNAUTHORIZED_KEY",
            "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.",
        );
    }
    if s.common.outage() {
        return toss_error(
            500,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "내부 시스템 처리 작업이 실패했습니다. 잠시 후 다시 시도해주세요.",
        );
    }
    let idempotency = header(req, "idempotency-key").map(|k| (req.path().to_string(), k));
    if let Some(first) = idempotency.as_ref().and_then(|k| s.replies.get(k)) {
        return first.clone();
    }
    let answer = toss_route(s, req, body);
    if let Some(k) = idempotency {
        if req.method() == actix_web::http::Method::POST {
            s.replies.insert(k, answer.clone());
        }
    }
    if s.common.lose(req) {
        return toss_error(
            500,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "응답을 보내지 못했습니다.",
        );
    }
    answer
}

fn toss_route(s: &mut TossState, req: &HttpRequest, body: &[u8]) -> (u16, Value) {
    let segments: Vec<&str> = req.path().trim_matches('/').split('/').collect();
    let post = req.method() == actix_web::http::Method::POST;
    let get = req.method() == actix_web::http::Method::GET;
    let body: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) if get => Value::Null,
        Err(_) => return toss_error(400, "INVALID_REQUEST", "잘못된 요청입니다."),
    };
    match segments.as_slice() {
        ["v1", "payments", "confirm"] if post => toss_confirm(s, &body),
        ["v1", "payments", key] if get => match s.payments.get(*key) {
            Some(p) => (200, p.clone()),
            None => toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."),
        },
        ["v1", "payments", key, "cancel"] if post => toss_cancel(s, key, &body),
        _ => toss_error(404, "NOT_FOUND", "존재하지 않는 정보 입니다."),
    }
}

fn toss_confirm(s: &mut TossState, body: &Value) -> (u16, Value) {
    let (Some(key), Some(order_id), Some(amount)) = (
        body["paymentKey"].as_str(),
        body["orderId"].as_str(),
        body["amount"].as_i64(),
    ) else {
        return toss_error(400, "INVALID_REQUEST", "잘못된 요청입니다.");
    };
    if amount <= 0 {
        return toss_error(400, "INVALID_REQUEST", "잘못된 요청입니다.");
    }
    if s.payments
        .get(key)
        .is_some_and(|p| p["status"] != "ABORTED")
    {
        return toss_error(400, "ALREADY_PROCESSED_PAYMENT", "이미 처리된 결제 입니다.");
    }
    let now = now_ms();
    let mut payment = json!({
        "mId": "tosspayments",
        "version": "2022-11-16",
        "lastTransactionKey": null,
        "paymentKey": key,
        "orderId": order_id,
        "orderName": "장터 주문",
        "currency": "KRW",
        "method": "카드",
        "status": "DONE",
        "requestedAt": kst(now, true),
        "approvedAt": kst(now, true),
        "useEscrow": false,
        "cultureExpense": false,
        "card": {
            "issuerCode": "61",
            "acquirerCode": "31",
            "number": "12345678****000*",
            "installmentPlanMonths": 0,
            "isInterestFree": false,
            "approveNo": "00000000",
            "cardType": "신용",
            "ownerType": "개인",
            "acquireStatus": "READY",
            "amount": amount,
        },
        "virtualAccount": null,
        "transfer": null,
        "mobilePhone": null,
        "giftCertificate": null,
        "cashReceipt": null,
        "cashReceipts": null,
        "discount": null,
        "cancels": null,
        "secret": null,
        "type": "NORMAL",
        "easyPay": null,
        "country": "KR",
        "failure": null,
        "isPartialCancelable": true,
        "receipt": { "url": format!("https://dashboard.tosspayments.com/receipt/{key}") },
        "checkout": { "url": format!("https://api.tosspayments.com/v1/payments/{key}/checkout") },
        "totalAmount": amount,
        "balanceAmount": amount,
        "suppliedAmount": amount - amount / 11,
        "vat": amount / 11,
        "taxFreeAmount": 0,
        "taxExemptionAmount": 0,
    });
    s.transactions += 1;
    payment["lastTransactionKey"] = json!(format!("TX{:018}", s.transactions));
    if s.declined.contains(key) {
        payment["status"] = json!("ABORTED");
        payment["approvedAt"] = Value::Null;
        payment["failure"] = json!({
            "code": "REJECT_CARD_COMPANY",
            "message": "[1004] 카드사에서 결제를 거절했습니다.",
        });
        s.payments.insert(key.to_string(), payment);
        return toss_error(
            403,
            "REJECT_CARD_COMPANY",
            "[1004] 결제 승인이 거절되었습니다.",
        );
    }
    s.payments.insert(key.to_string(), payment.clone());
    (200, payment)
}

fn toss_cancel(s: &mut TossState, key: &str, body: &Value) -> (u16, Value) {
    let Some(reason) = body["cancelReason"].as_str().filter(|r| !r.is_empty()) else {
        return toss_error(400, "INVALID_REQUEST", "취소 사유를 입력해주세요.");
    };
    s.transactions += 1;
    let tx = s.transactions;
    let Some(p) = s.payments.get_mut(key) else {
        return toss_error(404, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다.");
    };
    match p["status"].as_str() {
        Some("CANCELED") => {
            return toss_error(400, "ALREADY_CANCELED_PAYMENT", "이미 취소된 결제 입니다.")
        }
        Some("DONE" | "PARTIAL_CANCELED") => {}
        _ => {
            return toss_error(
                403,
                "NOT_CANCELABLE_PAYMENT",
                "취소 할 수 없는 결제 입니다.",
            )
        }
    }
    let balance = p["balanceAmount"].as_i64().expect("balanceAmount");
    let amount = match &body["cancelAmount"] {
        Value::Null => balance,
        v => match v.as_i64() {
            Some(a) => a,
            None => return toss_error(400, "INVALID_REQUEST", "잘못된 요청입니다."),
        },
    };
    if amount <= 0 || amount > balance {
        return toss_error(400, "NOT_CANCELABLE_AMOUNT", "취소 할 수 없는 금액 입니다.");
    }
    toss_apply_cancel(p, amount, reason, tx);
    (200, p.clone())
}

fn toss_apply_cancel(p: &mut Value, amount: i64, reason: &str, tx: u64) {
    let balance = p["balanceAmount"].as_i64().expect("balanceAmount") - amount;
    let transaction_key = format!("TX{tx:018}");
    let entry = json!({
        "transactionKey": transaction_key,
        "cancelReason": reason,
        "taxExemptionAmount": 0,
        "canceledAt": kst(now_ms(), true),
        "transferDiscountAmount": 0,
        "easyPayDiscountAmount": 0,
        "receiptKey": null,
        "cancelAmount": amount,
        "taxFreeAmount": 0,
        "refundableAmount": balance,
        "cancelStatus": "DONE",
        "cancelRequestId": null,
    });
    if !p["cancels"].is_array() {
        p["cancels"] = json!([]);
    }
    if let Some(cancels) = p["cancels"].as_array_mut() {
        cancels.push(entry);
    }
    p["balanceAmount"] = json!(balance);
    p["lastTransactionKey"] = json!(transaction_key);
    p["status"] = json!(if balance == 0 {
        "CANCELED"
    } else {
        "PARTIAL_CANCELED"
    });
    p["isPartialCancelable"] = json!(balance > 0);
}

// ============================================================== KakaoPay

struct KakaoPayment {
    tid: String,
    status: &'static str,
    partner_order_id: String,
    partner_user_id: String,
    item_name: String,
    quantity: i64,
    total: i64,
    canceled: i64,
    pg_token: Option<String>,
    declined: bool,
    created_at: String,
    approved_at: Option<String>,
    canceled_at: Option<String>,
    actions: Vec<Value>,
}

impl KakaoPayment {
    fn amount(total: i64) -> Value {
        json!({
            "total": total,
            "tax_free": 0,
            "vat": total / 11,
            "point": 0,
            "discount": 0,
            "green_deposit": 0,
        })
    }

    /// The `/payment/order` answer.
    fn order(&self, cid: &str) -> Value {
        json!({
            "tid": self.tid,
            "cid": cid,
            "status": self.status,
            "partner_order_id": self.partner_order_id,
            "partner_user_id": self.partner_user_id,
            "payment_method_type": self.approved_at.as_ref().map(|_| "MONEY"),
            "amount": KakaoPayment::amount(self.total),
            "canceled_amount": KakaoPayment::amount(self.canceled),
            "cancel_available_amount": KakaoPayment::amount(self.available()),
            "item_name": self.item_name,
            "item_code": null,
            "quantity": self.quantity,
            "created_at": self.created_at,
            "approved_at": self.approved_at,
            "canceled_at": self.canceled_at,
            "selected_card_info": null,
            "payment_action_details": self.actions,
        })
    }

    fn available(&self) -> i64 {
        match self.status {
            "SUCCESS_PAYMENT" | "PART_CANCEL_PAYMENT" => self.total - self.canceled,
            _ => 0,
        }
    }
}

struct KakaoState {
    common: Common,
    secret_key: String,
    cid: String,
    payments: HashMap<String, KakaoPayment>,
    counter: u64,
}

pub struct FakeKakaoPay {
    state: web::Data<Mutex<KakaoState>>,
    running: Running,
}

impl FakeKakaoPay {
    pub async fn start(secret_key: &str, cid: &str) -> FakeKakaoPay {
        let state = web::Data::new(Mutex::new(KakaoState {
            common: Common::default(),
            secret_key: secret_key.to_string(),
            cid: cid.to_string(),
            payments: HashMap::new(),
            counter: 0,
        }));
        let running = serve(state.clone(), kakao_handler);
        FakeKakaoPay { state, running }
    }

    pub fn base_url(&self) -> String {
        self.running.base_url.clone()
    }

    fn with<R>(&self, f: impl FnOnce(&mut KakaoState) -> R) -> R {
        f(&mut lock(&self.state))
    }

    /// The buyer approves on KakaoPay's page: the `pg_token` the approval
    /// redirect carries (single use).
    pub fn buyer_approves(&self, tid: &str) -> String {
        self.with(|s| {
            s.counter += 1;
            let token = format!("pg{:018x}", s.counter.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let p = s.payments.get_mut(tid).expect("a tid from ready");
            assert_eq!(p.status, "READY", "the buyer approves a fresh payment");
            p.status = "AUTH_PASSWORD";
            p.pg_token = Some(token.clone());
            token
        })
    }

    /// The approval of this payment fails (as a card company refusal).
    pub fn decline(&self, tid: &str) {
        self.with(|s| {
            s.payments.get_mut(tid).expect("a tid from ready").declined = true;
        });
    }

    pub fn fail_next(&self, n: usize) {
        self.with(|s| s.common.fail_next = n);
    }

    pub fn lose_next(&self, endpoint: &str, n: usize) {
        self.with(|s| s.common.lose_next.insert(endpoint.to_string(), n));
    }

    pub fn delay(&self, d: Duration) {
        self.with(|s| s.common.delay = d);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|s| s.common.calls.clone())
    }

    /// Calls to `/online/v1/payment/{endpoint}`.
    pub fn calls_to(&self, endpoint: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.path == format!("/online/v1/payment/{endpoint}"))
            .collect()
    }

    /// The payment as `/payment/order` shows it.
    pub fn payment(&self, tid: &str) -> Option<Value> {
        self.with(|s| s.payments.get(tid).map(|p| p.order(&s.cid)))
    }
}

fn kakao_error(status: u16, code: &str, message: &str) -> (u16, Value) {
    (
        status,
        json!({ "error_code": code, "error_message": message, "extras": null }),
    )
}

async fn kakao_handler(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<KakaoState>>,
) -> HttpResponse {
    let (status, answer, delay) = {
        let mut s = lock(&state);
        let delay = s.common.delay;
        let (status, answer) = kakao_answer(&mut s, &req, &body);
        (status, answer, delay)
    };
    if !delay.is_zero() {
        actix_web::rt::time::sleep(delay).await;
    }
    reply(status, &answer)
}

fn kakao_answer(s: &mut KakaoState, req: &HttpRequest, body: &[u8]) -> (u16, Value) {
    s.common.arrive(req);
    let expected = format!("SECRET_KEY {}", s.secret_key);
    if header(req, "authorization").as_deref() != Some(expected.as_str()) {
        return kakao_error(401, "UNAUTHORIZED", "invalid secret key");
    }
    if s.common.outage() {
        return kakao_error(500, "INTERNAL_SERVER_ERROR", "internal server error");
    }
    if req.method() != actix_web::http::Method::POST {
        return kakao_error(405, "METHOD_NOT_ALLOWED", "method not allowed");
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return kakao_error(400, "INVALID_PARAMETER", "the body is not JSON");
    };
    if body["cid"].as_str() != Some(s.cid.as_str()) {
        return kakao_error(401, "INVALID_CID", "cid is not allowed for this secret key");
    }
    let answer = match req.path() {
        "/online/v1/payment/ready" => kakao_ready(s, &body),
        "/online/v1/payment/approve" => kakao_approve(s, &body),
        "/online/v1/payment/order" => match body["tid"].as_str().and_then(|t| s.payments.get(t)) {
            Some(p) => (200, p.order(&s.cid)),
            None => kakao_error(400, "INVALID_TID", "tid does not exist"),
        },
        "/online/v1/payment/cancel" => kakao_cancel(s, &body),
        _ => kakao_error(404, "NOT_FOUND", "no such API"),
    };
    if s.common.lose(req) {
        return kakao_error(500, "INTERNAL_SERVER_ERROR", "internal server error");
    }
    answer
}

fn kakao_ready(s: &mut KakaoState, body: &Value) -> (u16, Value) {
    let text = |k: &str| {
        body[k]
            .as_str()
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let (
        Some(order_id),
        Some(user_id),
        Some(item_name),
        Some(quantity),
        Some(total),
        Some(tax_free),
        Some(_),
        Some(_),
        Some(_),
    ) = (
        text("partner_order_id"),
        text("partner_user_id"),
        text("item_name"),
        body["quantity"].as_i64(),
        body["total_amount"].as_i64(),
        body["tax_free_amount"].as_i64(),
        text("approval_url"),
        text("cancel_url"),
        text("fail_url"),
    )
    else {
        return kakao_error(400, "INVALID_PARAMETER", "a required parameter is missing");
    };
    if quantity < 1 || total < 1 || tax_free < 0 || tax_free > total {
        return kakao_error(400, "INVALID_PARAMETER", "invalid amount or quantity");
    }
    s.counter += 1;
    let tid = format!("T{:019}", 7_000_000_000_000_000_000u64 + s.counter);
    let created_at = kst(now_ms(), false);
    s.payments.insert(
        tid.clone(),
        KakaoPayment {
            tid: tid.clone(),
            status: "READY",
            partner_order_id: order_id,
            partner_user_id: user_id,
            item_name,
            quantity,
            total,
            canceled: 0,
            pg_token: None,
            declined: false,
            created_at: created_at.clone(),
            approved_at: None,
            canceled_at: None,
            actions: Vec::new(),
        },
    );
    let page = format!("https://online-pay.kakao.com/mockup/v1/{tid}");
    (
        200,
        json!({
            "tid": tid,
            "tms_result": false,
            "created_at": created_at,
            "next_redirect_pc_url": format!("{page}/info"),
            "next_redirect_mobile_url": format!("{page}/mInfo"),
            "next_redirect_app_url": format!("{page}/aInfo"),
            "android_app_scheme": format!("kakaotalk://kakaopay/pg?url={page}/order"),
            "ios_app_scheme": format!("kakaotalk://kakaopay/pg?url={page}/order"),
        }),
    )
}

fn kakao_approve(s: &mut KakaoState, body: &Value) -> (u16, Value) {
    s.counter += 1;
    let aid = format!("A{:019}", 7_000_000_000_000_000_000u64 + s.counter);
    let cid = s.cid.clone();
    let Some(p) = body["tid"].as_str().and_then(|t| s.payments.get_mut(t)) else {
        return kakao_error(400, "INVALID_TID", "tid does not exist");
    };
    if p.status != "AUTH_PASSWORD" {
        return kakao_error(
            400,
            "PAYMENT_NOT_READY_TO_APPROVE",
            "the payment is not waiting for approval",
        );
    }
    if body["pg_token"].as_str().is_none() || body["pg_token"].as_str() != p.pg_token.as_deref() {
        return kakao_error(400, "INVALID_PG_TOKEN", "pg_token is invalid");
    }
    if body["partner_order_id"].as_str() != Some(p.partner_order_id.as_str())
        || body["partner_user_id"].as_str() != Some(p.partner_user_id.as_str())
    {
        return kakao_error(
            400,
            "INVALID_PARAMETER",
            "partner_order_id or partner_user_id differs from the ready request",
        );
    }
    p.pg_token = None;
    if p.declined {
        p.status = "FAIL_PAYMENT";
        return (
            400,
            json!({
                "error_code": -780,
                "error_message": "approval failure!",
                "extras": {
                    "method_result_code": "8008",
                    "method_result_message": "카드사 승인이 거절되었습니다.",
                },
            }),
        );
    }
    let now = kst(now_ms(), false);
    p.status = "SUCCESS_PAYMENT";
    p.approved_at = Some(now.clone());
    p.actions.push(json!({
        "aid": aid,
        "approved_at": now,
        "amount": p.total,
        "point_amount": 0,
        "discount_amount": 0,
        "green_deposit": 0,
        "payment_action_type": "PAYMENT",
        "payload": null,
    }));
    (
        200,
        json!({
            "aid": aid,
            "tid": p.tid,
            "cid": cid,
            "partner_order_id": p.partner_order_id,
            "partner_user_id": p.partner_user_id,
            "payment_method_type": "MONEY",
            "amount": KakaoPayment::amount(p.total),
            "card_info": null,
            "item_name": p.item_name,
            "item_code": null,
            "quantity": p.quantity,
            "created_at": p.created_at,
            "approved_at": now,
            "payload": null,
        }),
    )
}

fn kakao_cancel(s: &mut KakaoState, body: &Value) -> (u16, Value) {
    s.counter += 1;
    let aid = format!("A{:019}", 7_000_000_000_000_000_000u64 + s.counter);
    let cid = s.cid.clone();
    let Some(p) = body["tid"].as_str().and_then(|t| s.payments.get_mut(t)) else {
        return kakao_error(400, "INVALID_TID", "tid does not exist");
    };
    let (Some(amount), Some(tax_free)) = (
        body["cancel_amount"].as_i64(),
        body["cancel_tax_free_amount"].as_i64(),
    ) else {
        return kakao_error(400, "INVALID_PARAMETER", "a required parameter is missing");
    };
    if !matches!(p.status, "SUCCESS_PAYMENT" | "PART_CANCEL_PAYMENT") {
        return kakao_error(
            400,
            "PAYMENT_NOT_CANCELABLE",
            "the payment is not in a cancelable state",
        );
    }
    if amount < 1 || amount > p.available() || tax_free != 0 {
        return kakao_error(
            400,
            "INVALID_CANCEL_AMOUNT",
            "cancel_amount is more than the cancel available amount",
        );
    }
    let now = kst(now_ms(), false);
    p.canceled += amount;
    p.status = if p.canceled == p.total {
        "CANCEL_PAYMENT"
    } else {
        "PART_CANCEL_PAYMENT"
    };
    p.canceled_at = Some(now.clone());
    p.actions.push(json!({
        "aid": aid,
        "approved_at": now,
        "amount": amount,
        "point_amount": 0,
        "discount_amount": 0,
        "green_deposit": 0,
        "payment_action_type": "CANCEL",
        "payload": null,
    }));
    (
        200,
        json!({
            "aid": aid,
            "tid": p.tid,
            "cid": cid,
            "status": p.status,
            "partner_order_id": p.partner_order_id,
            "partner_user_id": p.partner_user_id,
            "payment_method_type": "MONEY",
            "amount": KakaoPayment::amount(p.total),
            "approved_cancel_amount": KakaoPayment::amount(amount),
            "canceled_amount": KakaoPayment::amount(p.canceled),
            "cancel_available_amount": KakaoPayment::amount(p.available()),
            "item_name": p.item_name,
            "item_code": null,
            "quantity": p.quantity,
            "created_at": p.created_at,
            "approved_at": p.approved_at,
            "canceled_at": now,
            "payload": null,
        }),
    )
}
