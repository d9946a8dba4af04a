//! Cancelling paid orders (sandbox provider): whole or per line with
//! quantities, the stock back exactly once, the order `partially_cancelled`
//! then `cancelled`, the provider refunding each cancel once; the policy
//! (window, reviewed lines, quantities) and who may cancel.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp, User};
use crate::orders::{add_to_cart, number, stocks};
use crate::shop::{id, json_of, on_sale, option_id};

/// A paid cart order of `a` x option 0 and `b` x option 1.
pub async fn paid_order(
    app: &TestApp,
    buyer: &User,
    product: &Value,
    a: i64,
    b: i64,
    key: &str,
) -> Value {
    add_to_cart(app, buyer, option_id(product, 0), a).await;
    add_to_cart(app, buyer, option_id(product, 1), b).await;
    pay_cart(app, buyer, key).await
}

/// Order the cart and pay it with the sandbox; the paid order.
pub async fn pay_cart(app: &TestApp, buyer: &User, key: &str) -> Value {
    let r = app
        .post_json("/api/orders", &json!({"from": "cart"}), Some(&buyer.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let o = json_of(r).await;
    let r = app
        .post_json(
            "/api/payments/confirm",
            &json!({"order_number": number(&o), "payment_key": key, "amount": o["total"], "provider": "sandbox"}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    json_of(r).await["order"].clone()
}

pub fn line(o: &Value, i: usize) -> i64 {
    o["lines"][i]["line_id"].as_i64().expect("line id")
}

pub async fn cancel(app: &TestApp, user: &User, n: &str, body: Option<Value>) -> reqwest::Response {
    let path = format!("/api/orders/{n}/cancel");
    match body {
        Some(b) => app.post_json(&path, &b, Some(&user.token)).await,
        None => app.post(&path, Some(&user.token)).await,
    }
}

#[actix_web::test]
async fn paid_lines_are_cancelled_in_parts_until_nothing_is_left() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("c-buyer").await, app.user("c-other").await);
    let p = on_sale(
        &app,
        &admin,
        "Speedy 25",
        "Louis Vuitton",
        10_000,
        &[("S25-A", 5), ("S25-B", 5)],
    )
    .await;
    let o = paid_order(&app, &buyer, &p, 3, 2, "pk-parts").await;
    let n = number(&o);
    assert_eq!(o["total"], 50_000);
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![2, 3]);

    // Strangers and bad lines change nothing.
    let one =
        json!({"lines": [{"line_id": line(&o, 0), "quantity": 1}], "reason": "색상이 달라요"});
    assert_error(
        cancel(&app, &other, &n, Some(one.clone())).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        cancel(
            &app,
            &buyer,
            &n,
            Some(json!({"lines": [{"line_id": 999_999, "quantity": 1}]})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        cancel(
            &app,
            &buyer,
            &n,
            Some(json!({"lines": [{"line_id": line(&o, 0), "quantity": 0}]})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        cancel(
            &app,
            &buyer,
            &n,
            Some(json!({"lines": [{"line_id": line(&o, 0), "quantity": "1"}]})),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    assert_error(
        app.post_json(
            &format!("/api/admin/orders/{n}/cancel"),
            &one,
            Some(&buyer.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![2, 3]);

    // One of the three: partially cancelled, one back on the shelf, refunded.
    let r = cancel(&app, &buyer, &n, Some(one)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "partially_cancelled");
    assert_eq!(v["lines"][0]["cancelled_quantity"], 1);
    assert_eq!(v["refunds"][0]["amount"], 10_000);
    assert_eq!(
        v["refunds"][0]["status"], "done",
        "the sandbox refunds at once"
    );
    assert_eq!(v["refunds"][0]["reason"], "색상이 달라요");
    assert_eq!(v["payment"]["cancelled_amount"], 10_000);
    assert_eq!(v["payment"]["status"], "partially_cancelled");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![3, 3]);

    // Not more than is left (2 of line 0).
    let e = assert_error(
        cancel(
            &app,
            &buyer,
            &n,
            Some(json!({"lines": [{"line_id": line(&o, 0), "quantity": 3}]})),
        )
        .await,
        StatusCode::CONFLICT,
        "cancel_refused",
    )
    .await;
    assert_eq!(e["details"]["rule"], "quantity");
    assert_eq!(e["details"]["left"], 2);

    // No body: everything left. The order is cancelled, all stock back once.
    let r = cancel(&app, &buyer, &n, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["refunds"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["refunds"][1]["amount"], 40_000);
    assert_eq!(v["payment"]["cancelled_amount"], 50_000);
    assert_eq!(v["payment"]["status"], "cancelled");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5, 5]);

    // Nothing more to cancel; the stock does not move again.
    assert_error(
        cancel(&app, &buyer, &n, None).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5, 5]);
    let page = json_of(
        app.get(&format!("/api/orders/{n}"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(page["refunds"].as_array().map(Vec::len), Some(2));
}

#[actix_web::test]
async fn reviewed_lines_stay_and_late_buyers_are_sent_to_the_shop() {
    // A zero-hour window: every buyer cancel is late; admins still can.
    let app = spawn_app_with(&[("cancel_window_hours", "0")]).await;
    let admin = app.admin().await;
    let buyer = app.user("w-buyer").await;
    let p = on_sale(
        &app,
        &admin,
        "Alma BB",
        "Louis Vuitton",
        20_000,
        &[("AL-A", 5), ("AL-B", 5)],
    )
    .await;
    let o = paid_order(&app, &buyer, &p, 1, 2, "pk-window").await;
    let n = number(&o);
    let e = assert_error(
        cancel(&app, &buyer, &n, None).await,
        StatusCode::CONFLICT,
        "cancel_refused",
    )
    .await;
    assert_eq!(e["details"]["rule"], "window_passed");

    // The buyer reviews line 0: it can no longer be cancelled, by anyone.
    let r = app
        .post_json(
            &format!("/api/products/{}/reviews", id(&p)),
            &json!({"line_id": line(&o, 0), "rating": 5, "text": "가볍고 수납이 좋아요"}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let admin_cancel = |body: Value| {
        let (app, token, n) = (&app, admin.token.clone(), n.clone());
        async move {
            app.post_json(
                &format!("/api/admin/orders/{n}/cancel"),
                &body,
                Some(&token),
            )
            .await
        }
    };
    let e = assert_error(
        admin_cancel(json!({"lines": [{"line_id": line(&o, 0), "quantity": 1}]})).await,
        StatusCode::CONFLICT,
        "cancel_refused",
    )
    .await;
    assert_eq!(e["details"]["rule"], "reviewed");

    // "Everything" skips the reviewed line: the order stays partly paid.
    let r = admin_cancel(json!({"reason": "품절로 인한 취소"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "partially_cancelled");
    assert_eq!(v["refunds"][0]["amount"], 40_000);
    assert_eq!(v["refunds"][0]["source"], "admin");
    assert_eq!(v["lines"][0]["cancelled_quantity"], 0);
    assert_eq!(v["lines"][1]["cancelled_quantity"], 2);
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![4, 5]);
    let e = assert_error(
        admin_cancel(json!({})).await,
        StatusCode::CONFLICT,
        "cancel_refused",
    )
    .await;
    assert_eq!(e["details"]["rule"], "nothing_left");
}

#[actix_web::test]
async fn an_unpaid_order_is_still_cancelled_without_a_refund() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let buyer = app.user("u-buyer").await;
    let p = on_sale(
        &app,
        &admin,
        "Pochette",
        "Louis Vuitton",
        5_000,
        &[("PO", 3)],
    )
    .await;
    let r = app
        .post_json(
            "/api/orders",
            &json!({"from": "buy_now", "option_id": option_id(&p, 0), "quantity": 2}),
            Some(&buyer.token),
        )
        .await;
    let o = json_of(r).await;
    // Lines are for paid orders only.
    assert_error(
        cancel(
            &app,
            &buyer,
            &number(&o),
            Some(json!({"lines": [{"line_id": line(&o, 0), "quantity": 1}]})),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    let r = cancel(&app, &buyer, &number(&o), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "cancelled_by_user");
    assert_eq!(v["refunds"], json!([]));
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![3]);
}
