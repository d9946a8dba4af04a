//! Paying orders with the built-in sandbox provider: checks before the
//! provider is called, idempotent confirms, declines, provider errors, and
//! a late approval that is refunded.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, Parsed, TestApp, User};
use crate::shop::{id, json_of, on_sale, option_id};

async fn order(app: &TestApp, user: &User, option: i64) -> Value {
    let r = app
        .post_json(
            "/api/orders",
            &json!({"from": "buy_now", "option_id": option, "quantity": 1}),
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    json_of(r).await
}

async fn confirm(
    app: &TestApp,
    user: &User,
    number: &str,
    key: &str,
    amount: Value,
) -> reqwest::Response {
    app.post_json(
        "/api/payments/confirm",
        &json!({"order_number": number, "payment_key": key, "amount": amount, "provider": "sandbox"}),
        Some(&user.token),
    )
    .await
}

fn number(o: &Value) -> String {
    o["order_number"].as_str().expect("number").to_string()
}

#[actix_web::test]
async fn an_order_is_paid_once_after_every_check_passes() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("p-buyer").await, app.user("p-other").await);
    let p = on_sale(
        &app,
        &admin,
        "Jackie 1961",
        "Gucci",
        3_200_000,
        &[("J61", 5)],
    )
    .await;
    let o = order(&app, &buyer, option_id(&p, 0)).await;
    let n = number(&o);

    // Checked before the provider is called; nothing changes.
    let e = assert_error(
        confirm(&app, &buyer, &n, "pk-1", json!(3_100_000)).await,
        StatusCode::BAD_REQUEST,
        "amount_mismatch",
    )
    .await;
    assert_eq!(e["details"]["expected"], 3_200_000);
    assert_error(
        confirm(&app, &other, &n, "pk-1", json!(3_200_000)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        confirm(&app, &buyer, "261127-AAAAAAAAAA", "pk-1", json!(3_200_000)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app
        .post_json(
            "/api/payments/confirm",
            &json!({"order_number": n, "payment_key": "pk-1", "amount": 3_200_000, "provider": "paypal"}),
            Some(&buyer.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_error(
        confirm(&app, &buyer, &n, "", json!(3_200_000)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.post_json("/api/payments/confirm", &json!({}), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let order_id: i64 = {
        let detail = app
            .app_state
            .engines()
            .sql
            .orders()
            .order_by_number(&n)
            .await
            .expect("query")
            .expect("order");
        detail.id
    };
    assert_eq!(
        app.app_state
            .engines()
            .sql
            .payments()
            .payment_event_count(order_id, "confirm")
            .await
            .expect("count"),
        0,
        "no refused confirm reached the provider"
    );

    // Twenty identical confirms at once (double clicks, retries, both
    // nodes): one payment, the same answer to all.
    let answers = futures_util::future::join_all(
        (0..20).map(|_| confirm(&app, &buyer, &n, "pk-1", json!(3_200_000))),
    )
    .await;
    let mut bodies = Vec::new();
    for r in answers {
        assert_eq!(r.status(), StatusCode::OK);
        bodies.push(json_of(r).await);
    }
    assert!(
        bodies.iter().all(|b| b["payment"] == bodies[0]["payment"]),
        "{bodies:?}"
    );
    assert_eq!(bodies[0]["order"]["status"], "paid");
    assert!(bodies[0]["order"]["paid_at"].is_i64());
    assert_eq!(bodies[0]["payment"]["amount"], 3_200_000);
    assert_eq!(bodies[0]["payment"]["status"], "done");
    let status = json_of(
        app.get(&format!("/api/orders/{n}/status"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(status["status"], "paid", "the status cache knows at once");
    let page = json_of(
        app.get(&format!("/api/orders/{n}"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(page["payment"]["amount"], 3_200_000);
    assert_eq!(page["payment"]["provider"], "sandbox");
    // A different payment for a paid order is refused.
    assert_error(
        confirm(&app, &buyer, &n, "pk-2", json!(3_200_000)).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    // (Cancelling a paid order is a refund: tests/api/refunds.rs.)
    let v = json_of(
        app.get(&format!("/api/products/{}", id(&p)), Some(&admin.token))
            .await,
    )
    .await;
    assert_eq!(v["options"][0]["stock"], 4, "the paid unit stays sold");
}

#[actix_web::test]
async fn declines_and_provider_errors_leave_the_order_payable() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let buyer = app.user("d-buyer").await;
    // Sandbox magic: ...444 declines, ...555 fails like a provider error.
    let declined = on_sale(&app, &admin, "Declined", "X", 10_444, &[("DECL", 5)]).await;
    let flaky = on_sale(&app, &admin, "Flaky", "X", 10_555, &[("FLAKY", 5)]).await;
    let o = order(&app, &buyer, option_id(&declined, 0)).await;
    let e = assert_error(
        confirm(&app, &buyer, &number(&o), "pk-d", json!(10_444)).await,
        StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
    )
    .await;
    assert_eq!(e["details"]["provider_code"], "REJECT_CARD_COMPANY");
    let status = json_of(
        app.get(
            &format!("/api/orders/{}/status", number(&o)),
            Some(&buyer.token),
        )
        .await,
    )
    .await;
    assert_eq!(status["status"], "pending_payment");
    let o = order(&app, &buyer, option_id(&flaky, 0)).await;
    let e = assert_error(
        confirm(&app, &buyer, &number(&o), "pk-f", json!(10_555)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert!(
        e["message"].as_str().unwrap_or("").contains("sandbox"),
        "{e}"
    );
}

#[actix_web::test]
async fn an_expired_order_is_not_paid() {
    let app = spawn_app_with(&[("order_payment_window_secs", "1"), ("outbox_poll_ms", "50")]).await;
    let admin = app.admin().await;
    let buyer = app.user("e-buyer").await;
    let p = on_sale(&app, &admin, "Late", "X", 50_000, &[("LATE", 1)]).await;
    let o = order(&app, &buyer, option_id(&p, 0)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_error(
        confirm(&app, &buyer, &number(&o), "pk-late", json!(50_000)).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
}

#[actix_web::test]
async fn an_approval_that_comes_after_the_order_expired_is_refunded() {
    // The sandbox approves `...777` amounts after 1.5 s; the order's window
    // is 1 s, so it expires while the provider is still thinking.
    let app = spawn_app_with(&[("order_payment_window_secs", "1"), ("outbox_poll_ms", "50")]).await;
    let admin = app.admin().await;
    let buyer = app.user("s-buyer").await;
    let p = on_sale(&app, &admin, "Slow", "X", 20_777, &[("SLOW", 1)]).await;
    let o = order(&app, &buyer, option_id(&p, 0)).await;
    let e = assert_error(
        confirm(&app, &buyer, &number(&o), "pk-slow", json!(20_777)).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert_eq!(e["details"]["refunded"], true, "{e}");
    let detail = app
        .app_state
        .engines()
        .sql
        .orders()
        .order_by_number(&number(&o))
        .await
        .expect("query")
        .expect("order");
    assert_eq!(detail.status.as_str(), "expired");
    let sql = &app.app_state.engines().sql;
    assert_eq!(
        sql.payments()
            .payment_event_count(detail.id, "compensate")
            .await
            .expect("count"),
        1
    );
    assert!(
        sql.payments()
            .payment_of_order(detail.id)
            .await
            .expect("query")
            .is_none(),
        "no payment kept"
    );
}

#[actix_web::test]
async fn a_paid_listing_order_sells_the_listing_to_its_buyer() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.user("u-seller").await, app.user("u-buyer").await);
    let l = crate::market::listing(&app, &seller, "캠핑 의자 2개", 35_000).await;
    let r = app
        .post_json(
            &format!("/api/listings/{l}/order"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = json_of(r).await;
    let r = confirm(&app, &buyer, &number(&o), "pk-used", json!(35_000)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["order"]["status"], "paid");
    let page = json_of(
        app.get(&format!("/api/listings/{l}"), Some(&seller.token))
            .await,
    )
    .await;
    assert_eq!(page["status"], "sold");
    assert_eq!(page["buyer_id"], buyer.id);
    // A real deal: both sides may now review it.
    let r = app
        .post_json(
            &format!("/api/listings/{l}/reviews"),
            &json!({"rating": "good", "tags": ["kind"]}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn buyers_of_paid_lines_review_products_once_each() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("r-buyer").await, app.user("r-other").await);
    let p = on_sale(
        &app,
        &admin,
        "Neverfull MM",
        "Louis Vuitton",
        2_500_000,
        &[("NF-MM", 9)],
    )
    .await;
    let (pid, o) = (id(&p), option_id(&p, 0));
    let unpaid = order(&app, &buyer, o).await;
    let paid = order(&app, &buyer, o).await;
    let r = confirm(&app, &buyer, &number(&paid), "pk-r", json!(2_500_000)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let line = |o: &Value| o["lines"][0]["line_id"].as_i64().expect("line id");
    let write = |user: &User, line: i64, rating: i64| {
        let (app, token) = (&app, user.token.clone());
        async move {
            app.post_json(
                &format!("/api/products/{pid}/reviews"),
                &json!({"line_id": line, "rating": rating, "text": "가죽이 튼튼하고 예뻐요"}),
                Some(&token),
            )
            .await
        }
    };
    // Only a paid line, only its buyer, only once.
    assert_error(
        write(&buyer, line(&unpaid), 5).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert_error(
        write(&other, line(&paid), 5).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        write(&buyer, line(&paid), 6).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let r = write(&buyer, line(&paid), 4).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let review = json_of(r).await;
    assert_error(
        write(&buyer, line(&paid), 5).await,
        StatusCode::CONFLICT,
        "already_reviewed",
    )
    .await;
    let page = json_of(app.get(&format!("/api/products/{pid}"), None).await).await;
    assert_eq!(page["review_count"], 1);
    assert_eq!(page["rating"], 4.0);

    // Edit and delete: the author (delete: or an admin), the average follows.
    let rid = review["id"].as_i64().expect("id");
    let path = format!("/api/products/{pid}/reviews/{rid}");
    assert_error(
        app.patch_json(&path, &json!({"rating": 1}), Some(&other.token))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let r = app
        .patch_json(&path, &json!({"rating": 2}), Some(&buyer.token))
        .await;
    assert_eq!(json_of(r).await["rating"], 2);
    let page = json_of(app.get(&format!("/api/products/{pid}"), None).await).await;
    assert_eq!(page["rating"], 2.0);
    let list = json_of(app.get(&format!("/api/products/{pid}/reviews"), None).await).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["author_id"], buyer.id);
    let r = app.delete(&path, Some(&other.token)).await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app.delete(&path, Some(&admin.token)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let page = json_of(app.get(&format!("/api/products/{pid}"), None).await).await;
    assert_eq!(page["review_count"], 0);
    assert!(page["rating"].is_null());
}

#[actix_web::test]
async fn production_refuses_the_sandbox() {
    let app = spawn_app_with(&[("env", "production")]).await;
    let admin = app.admin().await;
    let buyer = app.user("prod-buyer").await;
    let p = on_sale(&app, &admin, "Real", "X", 10_000, &[("REAL", 1)]).await;
    let o = order(&app, &buyer, option_id(&p, 0)).await;
    let e = assert_error(
        confirm(&app, &buyer, &number(&o), "pk-prod", json!(10_000)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["details"]["provider"].is_string(), "{e}");
}

#[actix_web::test]
async fn the_checkout_learns_which_providers_are_on() {
    let dev = spawn_app().await;
    let r = dev.get("/api/payments/providers", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.parsed().await;
    assert_eq!(v["providers"], json!(["sandbox"]));
    // Production never offers the sandbox; with no keys, nothing.
    let prod = spawn_app_with(&[("env", "production")]).await;
    let v: Value = prod
        .get("/api/payments/providers", None)
        .await
        .parsed()
        .await;
    assert_eq!(v["providers"], json!([]));
}
