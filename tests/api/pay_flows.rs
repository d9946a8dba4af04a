//! Whole payment flows through the public API against the local fake Toss
//! and KakaoPay servers (tests/api/fake_pay.rs): confirm, replays, declines,
//! outages and timeouts, compensation through the outbox, refunds retried
//! until the provider answers (or given up and shown to admins), webhook
//! reconciliation, and KakaoPay's ready / approve / cancel.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fake_pay::{FakeKakaoPay, FakeToss};
use crate::helpers::{assert_error, eventually, spawn_app_with, TestApp, User};
use crate::orders::{number, stocks};
use crate::refunds::cancel;
use crate::shop::{id, json_of, on_sale, option_id};

const TOSS_KEY: &str = "test_sk_jangteo_fake_0001";

async fn toss_app(fake: &FakeToss, extra: &[(&str, &str)]) -> TestApp {
    let base = fake.base_url();
    let mut settings = vec![
        ("toss_secret_key", TOSS_KEY),
        ("toss_base_url", base.as_str()),
    ];
    settings.extend_from_slice(extra);
    spawn_app_with(&settings).await
}

async fn buy(app: &TestApp, user: &User, option: i64, quantity: i64) -> Value {
    let r = app
        .post_json(
            "/api/orders",
            &json!({"from": "buy_now", "option_id": option, "quantity": quantity}),
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    json_of(r).await
}

async fn confirm(
    app: &TestApp,
    user: &User,
    o: &Value,
    provider: &str,
    key: &str,
) -> reqwest::Response {
    app.post_json(
        "/api/payments/confirm",
        &json!({"order_number": number(o), "payment_key": key, "amount": o["total"], "provider": provider}),
        Some(&user.token),
    )
    .await
}

async fn order_page(app: &TestApp, user: &User, o: &Value) -> Value {
    json_of(
        app.get(&format!("/api/orders/{}", number(o)), Some(&user.token))
            .await,
    )
    .await
}

#[actix_web::test]
async fn toss_confirms_once_however_often_it_is_asked() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let app = toss_app(&fake, &[]).await;
    let admin = app.admin().await;
    let buyer = app.user("t-buyer").await;
    let p = on_sale(&app, &admin, "Boy Bag", "Chanel", 30_000, &[("BOY", 5)]).await;
    let o = buy(&app, &buyer, option_id(&p, 0), 1).await;

    // A double click, a retry after a timeout, two nodes: 20 at once.
    let answers = join_all((0..20).map(|_| confirm(&app, &buyer, &o, "toss", "tgen_20x"))).await;
    for r in answers {
        assert_eq!(r.status(), StatusCode::OK);
        let v = json_of(r).await;
        assert_eq!(v["payment"]["payment_key"], "tgen_20x");
        assert_eq!(v["order"]["status"], "paid");
    }
    assert_eq!(fake.payment_count(), 1, "one payment at Toss");
    let keys: std::collections::HashSet<_> = fake
        .calls_to("confirm")
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "every confirm carried the same Idempotency-Key"
    );
    assert!(keys.iter().all(Option::is_some));
    let page = order_page(&app, &buyer, &o).await;
    assert_eq!(page["payment"]["provider"], "toss");
    assert_eq!(page["payment"]["method"], "카드");

    // Declined at Toss: 402 with Toss's code, the order stays payable.
    let o2 = buy(&app, &buyer, option_id(&p, 0), 1).await;
    fake.decline("tgen_declined");
    let e = assert_error(
        confirm(&app, &buyer, &o2, "toss", "tgen_declined").await,
        StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
    )
    .await;
    assert_eq!(e["details"]["provider_code"], "REJECT_CARD_COMPANY");
    assert_eq!(
        order_page(&app, &buyer, &o2).await["status"],
        "pending_payment"
    );

    // Toss is down (every try fails): 503 naming Toss; back up: the same
    // confirm goes through.
    fake.fail_next(100);
    let e = assert_error(
        confirm(&app, &buyer, &o2, "toss", "tgen_retry").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(e["details"]["provider"], "toss");
    fake.fail_next(0);
    let r = confirm(&app, &buyer, &o2, "toss", "tgen_retry").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        fake.payment("tgen_retry").expect("at Toss")["status"],
        "DONE"
    );

    // Amount tampered: refused before Toss is asked.
    let o3 = buy(&app, &buyer, option_id(&p, 0), 1).await;
    let before = fake.calls().len();
    let r = app
        .post_json(
            "/api/payments/confirm",
            &json!({"order_number": number(&o3), "payment_key": "tgen_x", "amount": 100, "provider": "toss"}),
            Some(&buyer.token),
        )
        .await;
    assert_error(r, StatusCode::BAD_REQUEST, "amount_mismatch").await;
    assert_eq!(fake.calls().len(), before, "Toss was not called");
}

#[actix_web::test]
async fn a_slow_toss_times_out_and_the_retry_gets_the_first_answer() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let app = toss_app(&fake, &[("payment_timeout_ms", "300")]).await;
    let admin = app.admin().await;
    let buyer = app.user("slow-buyer").await;
    let p = on_sale(&app, &admin, "Kelly", "Hermes", 40_000, &[("K", 2)]).await;
    let o = buy(&app, &buyer, option_id(&p, 0), 1).await;
    // Toss approves but answers after our timeout (three tries).
    fake.delay(Duration::from_millis(800));
    assert_error(
        confirm(&app, &buyer, &o, "toss", "tgen_slow").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    fake.delay(Duration::ZERO);
    let r = confirm(&app, &buyer, &o, "toss", "tgen_slow").await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the replayed key gets Toss's first answer"
    );
    assert_eq!(fake.payment_count(), 1);
}

#[actix_web::test]
async fn an_approval_too_late_is_refunded_by_the_outbox_once_toss_answers() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let app = toss_app(
        &fake,
        &[
            ("order_payment_window_secs", "1"),
            ("outbox_poll_ms", "50"),
            ("payment_retry_base_ms", "100"),
        ],
    )
    .await;
    let admin = app.admin().await;
    let buyer = app.user("late-buyer").await;
    let p = on_sale(&app, &admin, "Lindy", "Hermes", 50_000, &[("L", 2)]).await;
    let o = buy(&app, &buyer, option_id(&p, 0), 1).await;
    // Toss approves at once but answers after the order's window closed;
    // meanwhile Toss goes down, so the compensating cancel fails now.
    fake.delay(Duration::from_millis(1600));
    let pending = confirm(&app, &buyer, &o, "toss", "tgen_late");
    let (r, ()) = futures_util::join!(pending, async {
        eventually(
            Duration::from_secs(5),
            "the confirm reached Toss",
            || async { (!fake.calls_to("confirm").is_empty()).then_some(()) },
        )
        .await;
        fake.delay(Duration::ZERO);
        fake.fail_next(3);
    });
    let e = assert_error(r, StatusCode::CONFLICT, "invalid_state").await;
    assert_eq!(e["details"]["refunded"], true);
    // The outbox retries with the same key until Toss cancels it.
    eventually(
        Duration::from_secs(20),
        "Toss cancelled the late payment",
        || async {
            let p = fake.payment("tgen_late")?;
            (p["status"] == "CANCELED").then_some(())
        },
    )
    .await;
    let keys: std::collections::HashSet<_> = fake
        .calls_to("cancel")
        .into_iter()
        .map(|c| c.idempotency_key)
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "one idempotency key for the compensation: {keys:?}"
    );
    assert_eq!(order_page(&app, &buyer, &o).await["status"], "expired");
}

#[actix_web::test]
async fn refunds_are_retried_until_toss_makes_them_or_shown_to_admins() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let app = toss_app(
        &fake,
        &[
            ("outbox_poll_ms", "50"),
            ("payment_retry_base_ms", "100"),
            ("payment_max_attempts", "3"),
        ],
    )
    .await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("rf-buyer").await, app.user("rf-other").await);
    let p = on_sale(&app, &admin, "Picotin", "Hermes", 10_000, &[("PI", 10)]).await;
    let o = buy(&app, &buyer, option_id(&p, 0), 4).await;
    assert_eq!(
        confirm(&app, &buyer, &o, "toss", "tgen_refund")
            .await
            .status(),
        StatusCode::OK
    );
    let line = o["lines"][0]["line_id"].as_i64().expect("line");

    // Toss is down when the buyer cancels one: our side is done at once
    // (stock back, order partly cancelled), the refund follows.
    fake.fail_next(3);
    let r = cancel(
        &app,
        &buyer,
        &number(&o),
        Some(json!({"lines": [{"line_id": line, "quantity": 1}]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "partially_cancelled");
    assert_eq!(v["refunds"][0]["status"], "pending");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![7]);
    eventually(Duration::from_secs(10), "the refund is made", || async {
        let page = order_page(&app, &buyer, &o).await;
        (page["refunds"][0]["status"] == "done").then_some(())
    })
    .await;
    let at_toss = fake.payment("tgen_refund").expect("payment");
    assert_eq!(at_toss["status"], "PARTIAL_CANCELED");
    assert_eq!(at_toss["balanceAmount"], 30_000, "refunded once");

    // Toss stays down: the outbox gives up after 3 attempts; admins see it.
    fake.fail_next(1_000);
    let r = cancel(&app, &buyer, &number(&o), None).await;
    assert_eq!(json_of(r).await["status"], "cancelled");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![10]);
    let failures = eventually(
        Duration::from_secs(15),
        "the refund is given up",
        || async {
            let v = json_of(
                app.get("/api/admin/payments/failures", Some(&admin.token))
                    .await,
            )
            .await;
            (v["items"].as_array().map_or(0, Vec::len) == 1).then_some(v)
        },
    )
    .await;
    assert_eq!(failures["items"][0]["kind"], "refund");
    assert_eq!(failures["items"][0]["order_number"], number(&o));
    assert_eq!(failures["items"][0]["amount"], 30_000);
    assert_eq!(
        order_page(&app, &buyer, &o).await["refunds"][1]["status"],
        "failed"
    );
    assert_error(
        app.get("/api/admin/payments/failures", Some(&other.token))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.get("/api/admin/payments/failures?limit=0", Some(&admin.token))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    fake.fail_next(0);
}

#[actix_web::test]
async fn a_cancel_in_the_toss_console_cancels_the_order_through_the_webhook() {
    let fake = FakeToss::start(TOSS_KEY).await;
    let app = toss_app(&fake, &[("outbox_poll_ms", "50")]).await;
    let admin = app.admin().await;
    let buyer = app.user("wh-buyer").await;
    let p = on_sale(&app, &admin, "Evelyne", "Hermes", 20_000, &[("EV", 5)]).await;
    let o = buy(&app, &buyer, option_id(&p, 0), 2).await;
    assert_eq!(
        confirm(&app, &buyer, &o, "toss", "tgen_console")
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![3]);

    // A webhook that lies (says CANCELED while Toss says DONE) changes nothing.
    let hook = |status: &str, at: &str| {
        json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": at,
               "data": {"paymentKey": "tgen_console", "orderId": number(&o), "status": status}})
    };
    let r = app
        .post_json(
            "/api/payments/webhooks/toss",
            &hook("CANCELED", "2026-11-27T10:00:00.000000"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        order_page(&app, &buyer, &o).await["status"],
        "paid",
        "the body is not trusted"
    );

    // The merchant cancels in Toss's console; Toss tells us (twice).
    fake.console_cancel("tgen_console");
    for _ in 0..2 {
        let r = app
            .post_json(
                "/api/payments/webhooks/toss",
                &hook("CANCELED", "2026-11-27T10:05:00.000000"),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let page = eventually(
        Duration::from_secs(10),
        "the order follows Toss",
        || async {
            let page = order_page(&app, &buyer, &o).await;
            (page["status"] == "cancelled").then_some(page)
        },
    )
    .await;
    assert_eq!(page["refunds"].as_array().map(Vec::len), Some(1), "once");
    assert_eq!(page["refunds"][0]["source"], "provider");
    assert_eq!(page["refunds"][0]["status"], "done");
    assert_eq!(page["payment"]["status"], "cancelled");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5]);
    // A later redelivery is harmless.
    let r = app
        .post_json(
            "/api/payments/webhooks/toss",
            &hook("CANCELED", "2026-11-27T10:06:00.000000"),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        order_page(&app, &buyer, &o).await["refunds"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5]);
    // Garbage is refused; unknown payments are acknowledged and ignored.
    let r = app
        .post_json(
            "/api/payments/webhooks/toss",
            &json!({"eventType": "PAYMENT_STATUS_CHANGED"}),
            None,
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post_json(
            "/api/payments/webhooks/toss",
            &json!({"data": {"paymentKey": "nobody"}}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_web::test]
async fn kakaopay_ready_approve_and_cancel() {
    let fake = FakeKakaoPay::start("DEVjangteo_fake_secret", "TC0ONETIME").await;
    let base = fake.base_url();
    let app = spawn_app_with(&[
        ("kakaopay_secret_key", "DEVjangteo_fake_secret"),
        ("kakaopay_cid", "TC0ONETIME"),
        ("kakaopay_base_url", base.as_str()),
    ])
    .await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("k-buyer").await, app.user("k-other").await);
    let p = on_sale(&app, &admin, "캠핑 의자", "Helinox", 12_000, &[("CH", 5)]).await;
    let o = buy(&app, &buyer, option_id(&p, 0), 3).await;

    // Confirm before ready: refused; ready by a stranger: not found.
    assert_error(
        confirm(&app, &buyer, &o, "kakaopay", "T000").await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    let ready = |user: &User, provider: &str| {
        let (app, token, body) = (
            &app,
            user.token.clone(),
            json!({"order_number": number(&o), "provider": provider}),
        );
        async move {
            app.post_json("/api/payments/ready", &body, Some(&token))
                .await
        }
    };
    assert_error(
        ready(&other, "kakaopay").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        ready(&buyer, "sandbox").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let r = ready(&buyer, "kakaopay").await;
    assert_eq!(r.status(), StatusCode::OK);
    let rd = json_of(r).await;
    let tid = rd["payment_key"].as_str().expect("tid").to_string();
    assert!(rd["redirect_pc_url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http")));

    // The buyer approves on KakaoPay's page and comes back with a pg_token.
    let token = fake.buyer_approves(&tid);
    let body = |key: &str, pg: &str| json!({"order_number": number(&o), "payment_key": key, "amount": 36_000, "provider": "kakaopay", "pg_token": pg});
    assert_error(
        app.post_json(
            "/api/payments/confirm",
            &body("T-other", &token),
            Some(&buyer.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let r = app
        .post_json(
            "/api/payments/confirm",
            &body(&tid, &token),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["order"]["status"], "paid");
    assert_eq!(v["payment"]["provider"], "kakaopay");
    // Replayed: the same answer, no second approval.
    let r = app
        .post_json(
            "/api/payments/confirm",
            &body(&tid, &token),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(fake.calls_to("approve").len(), 1);

    // Cancel one, then the rest.
    let line = o["lines"][0]["line_id"].as_i64().expect("line");
    let r = cancel(
        &app,
        &buyer,
        &number(&o),
        Some(json!({"lines": [{"line_id": line, "quantity": 1}]})),
    )
    .await;
    assert_eq!(json_of(r).await["refunds"][0]["status"], "done");
    let at_kakao = fake.payment(&tid).expect("payment");
    assert_eq!(at_kakao["status"], "PART_CANCEL_PAYMENT", "{at_kakao}");
    let r = cancel(&app, &buyer, &number(&o), None).await;
    let v = json_of(r).await;
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["refunds"][1]["status"], "done");
    assert_eq!(
        fake.payment(&tid).expect("payment")["status"],
        "CANCEL_PAYMENT"
    );
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5]);
}

/// Anybody can post to the webhook: forged ones must not make us call Toss
/// or fill the outbox (issue 27, finding 5).
#[actix_web::test]
async fn forged_webhooks_cost_no_provider_calls_and_stay_bounded() {
    let fake = FakeToss::start(TOSS_KEY).await;
    // Nobody works reconciles here, so waiting jobs stay visible.
    let app = toss_app(
        &fake,
        &[
            ("webhook_per_minute_per_address", "400"),
            ("webhook_queue_max", "1"),
            (
                "outbox_kinds",
                "order_expire,stock_restore,listing_release,payment_cancel,payment_refund,email_send,email_verify,event_publish",
            ),
        ],
    )
    .await;
    let admin = app.admin().await;
    let buyer = app.user("wh-forged").await;
    let p = on_sale(&app, &admin, "Kelly", "Hermes", 10_000, &[("KL", 5)]).await;
    let a = buy(&app, &buyer, option_id(&p, 0), 1).await;
    assert_eq!(
        confirm(&app, &buyer, &a, "toss", "tgen_known_a")
            .await
            .status(),
        StatusCode::OK
    );
    let b = buy(&app, &buyer, option_id(&p, 0), 1).await;
    assert_eq!(
        confirm(&app, &buyer, &b, "toss", "tgen_known_b")
            .await
            .status(),
        StatusCode::OK
    );
    let calls_before = fake.calls().len();
    let jobs = || async {
        let v = json_of(
            app.get(
                "/api/admin/outbox?status=pending&limit=100",
                Some(&admin.token),
            )
            .await,
        )
        .await;
        v.as_array().map_or(0, |a| {
            a.iter()
                .filter(|j| j["kind"] == "payment_reconcile")
                .count()
        })
    };
    // 300 forged webhooks for payments that are not ours, each with its own
    // made-up event: acknowledged, and nothing done.
    let forged = (0..300).map(|i| {
        let app = &app;
        async move {
            app.post_json(
                "/api/payments/webhooks/toss",
                &json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": format!("2026-12-06T00:00:{i:02}"),
                        "data": {"paymentKey": format!("forged-{i}"), "status": "CANCELED"}}),
                None,
            )
            .await
            .status()
        }
    });
    let statuses = join_all(forged).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    // A burst for one real payment: one waiting reconcile, not fifty.
    for i in 0..50 {
        let r = app
            .post_json(
                "/api/payments/webhooks/toss",
                &json!({"eventType": "PAYMENT_STATUS_CHANGED", "createdAt": format!("2026-12-06T00:01:{i:02}"),
                        "data": {"paymentKey": "tgen_known_a", "status": "DONE"}}),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(jobs().await, 1);
    // The queue is full (webhook_queue_max = 1): another payment's change
    // waits for the provider to deliver it again.
    let r = app
        .post_json(
            "/api/payments/webhooks/toss",
            &json!({"data": {"paymentKey": "tgen_known_b", "status": "DONE"}}),
            None,
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "busy").await;
    assert_eq!(jobs().await, 1);
    assert_eq!(fake.calls().len(), calls_before, "Toss was not called");
    // One address may send only so many (400 a minute here).
    let mut limited = false;
    for _ in 0..100 {
        let r = app
            .post_json(
                "/api/payments/webhooks/toss",
                &json!({"data": {"paymentKey": "forged-x"}}),
                None,
            )
            .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            limited = true;
            break;
        }
    }
    assert!(limited, "the per-address limit holds");
}
