//! Shop orders: stock reserved atomically (never oversold), prices fixed
//! at order time, private to their buyer, cancelled or expired exactly once
//! with the stock given back once.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, User};
use crate::shop::{id, json_of, on_sale, option_id};

/// The exact stock of a product's options, as an admin sees it.
pub async fn stocks(app: &TestApp, admin: &User, product: i64) -> Vec<i64> {
    let v = json_of(
        app.get(&format!("/api/products/{product}"), Some(&admin.token))
            .await,
    )
    .await;
    v["options"]
        .as_array()
        .expect("options")
        .iter()
        .map(|o| o["stock"].as_i64().expect("stock"))
        .collect()
}

async fn buy_now(app: &TestApp, user: &User, option: i64, quantity: i64) -> reqwest::Response {
    app.post_json(
        "/api/orders",
        &json!({"from": "buy_now", "option_id": option, "quantity": quantity}),
        Some(&user.token),
    )
    .await
}

pub async fn add_to_cart(app: &TestApp, user: &User, option: i64, quantity: i64) {
    let r = app
        .post_json(
            "/api/cart/items",
            &json!({"option_id": option, "quantity": quantity}),
            Some(&user.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK, "add to cart");
}

pub fn number(order: &Value) -> String {
    order["order_number"]
        .as_str()
        .expect("order number")
        .to_string()
}

async fn my_order_count(app: &TestApp, user: &User) -> usize {
    let v = json_of(app.get("/api/me/orders?limit=100", Some(&user.token)).await).await;
    v["items"].as_array().map_or(0, Vec::len)
}

#[actix_web::test]
async fn orders_reserve_stock_fix_prices_and_stay_private() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("o-buyer").await, app.user("o-other").await);
    let bag = on_sale(
        &app,
        &admin,
        "Lady Dior",
        "Dior",
        7_000_000,
        &[("LD-S", 5), ("LD-M", 3)],
    )
    .await;
    let (small, medium) = (option_id(&bag, 0), option_id(&bag, 1));
    let p = id(&bag);

    // From the cart: every line, priced now, the cart emptied of them.
    add_to_cart(&app, &buyer, small, 2).await;
    add_to_cart(&app, &buyer, medium, 1).await;
    let before = crate::shop::json_of(app.get("/api/cart", Some(&buyer.token)).await).await;
    assert_eq!(before["total"], 21_000_000);
    let r = app
        .post_json("/api/orders", &json!({"from": "cart"}), Some(&buyer.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order = json_of(r).await;
    let n = number(&order);
    assert_eq!(order["status"], "pending_payment");
    assert_eq!(order["total"], 21_000_000);
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(order["lines"][0]["unit_price"], 7_000_000);
    assert_eq!(order["lines"][0]["amount"], 14_000_000);
    assert!(n.len() == 17 && n.as_bytes()[6] == b'-', "{n}");
    let window =
        order["expires_at"].as_i64().unwrap_or(0) - order["created_at"].as_i64().unwrap_or(0);
    assert_eq!(window, 600_000, "the default payment window is 10 minutes");
    assert_eq!(stocks(&app, &admin, p).await, vec![3, 2], "reserved");
    let cart = json_of(app.get("/api/cart", Some(&buyer.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(0));

    // The order keeps the price it was placed at.
    app.patch_json(
        &format!("/api/admin/products/{p}"),
        &json!({"base_price": 9_000_000}),
        Some(&admin.token),
    )
    .await;
    let again = json_of(
        app.get(&format!("/api/orders/{n}"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(again["total"], 21_000_000);
    assert_eq!(again["lines"][1]["unit_price"], 7_000_000);

    // Buy now, and the refusals: nothing reserved, nothing created.
    let r = buy_now(&app, &buyer, medium, 1).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(json_of(r).await["total"], 9_000_000);
    assert_eq!(stocks(&app, &admin, p).await, vec![3, 1]);
    let e = assert_error(
        buy_now(&app, &buyer, medium, 2).await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    assert_eq!(e["details"]["options"], json!([medium]));
    add_to_cart(&app, &buyer, small, 3).await;
    add_to_cart(&app, &buyer, medium, 1).await;
    app.post_json(
        "/api/cart/items",
        &json!({"option_id": medium, "quantity": 1}),
        Some(&buyer.token),
    )
    .await;
    let e = assert_error(
        app.post_json("/api/orders", &json!({"from": "cart"}), Some(&buyer.token))
            .await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    assert_eq!(
        e["details"]["options"],
        json!([medium]),
        "only the short line is named"
    );
    assert_eq!(
        stocks(&app, &admin, p).await,
        vec![3, 1],
        "the other line was not reserved either"
    );
    let cart = json_of(app.get("/api/cart", Some(&buyer.token)).await).await;
    assert_eq!(
        cart["lines"].as_array().map(Vec::len),
        Some(2),
        "a refused order leaves the cart alone"
    );
    // Only the selected lines.
    let r = app
        .post_json(
            "/api/orders",
            &json!({"from": "cart", "option_ids": [small]}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(stocks(&app, &admin, p).await, vec![0, 1]);
    let cart = json_of(app.get("/api/cart", Some(&buyer.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(1));
    for (body, field) in [
        (
            json!({"from": "cart", "option_ids": [999_999]}),
            "option_ids",
        ),
        (
            json!({"from": "buy_now", "option_id": medium, "quantity": 0}),
            "quantity",
        ),
        (
            json!({"from": "buy_now", "option_id": medium, "quantity": 100}),
            "quantity",
        ),
    ] {
        let e = assert_error(
            app.post_json("/api/orders", &body, Some(&buyer.token))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(e["details"][field].is_string(), "{e}");
    }
    let e = assert_error(
        app.post_json("/api/orders", &json!({"from": "cart"}), Some(&other.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(
        e["details"]["option_ids"]
            .as_str()
            .unwrap_or("")
            .contains("empty"),
        "{e}"
    );
    assert_error(
        app.post_json(
            "/api/orders",
            &json!({"from": "wishlist"}),
            Some(&buyer.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_body",
    )
    .await;
    app.patch_json(
        &format!("/api/admin/products/{p}"),
        &json!({"status": "hidden"}),
        Some(&admin.token),
    )
    .await;
    let e = assert_error(
        buy_now(&app, &buyer, medium, 1).await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    assert_eq!(e["details"]["options"], json!([medium]));
    assert_eq!(stocks(&app, &admin, p).await, vec![0, 1]);
    assert_eq!(my_order_count(&app, &buyer).await, 3);

    // Private: the buyer and admins see it, anyone else gets 404.
    for path in [
        format!("/api/orders/{n}"),
        format!("/api/orders/{n}/status"),
    ] {
        assert_error(
            app.get(&path, Some(&other.token)).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        assert_error(
            app.get(&path, None).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        assert_eq!(
            app.get(&path, Some(&buyer.token)).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            app.get(&path, Some(&admin.token)).await.status(),
            StatusCode::OK
        );
    }
    assert_error(
        app.post_json(
            &format!("/api/orders/{n}/cancel"),
            &json!({}),
            Some(&other.token),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for bad in ["nope", "261127-AAAAAAAAAA", "%2E%2E"] {
        assert_error(
            app.get(&format!("/api/orders/{bad}"), Some(&buyer.token))
                .await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    let status = json_of(
        app.get(&format!("/api/orders/{n}/status"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(status["status"], "pending_payment");
    assert_eq!(status["total"], 21_000_000);
    assert_eq!(my_order_count(&app, &other).await, 0);

    // My orders: newest first, paged.
    let first = json_of(app.get("/api/me/orders?limit=2", Some(&buyer.token)).await).await;
    assert_eq!(first["items"].as_array().map(Vec::len), Some(2));
    let before = first["next_before"].as_i64().expect("more");
    let rest = json_of(
        app.get(
            &format!("/api/me/orders?limit=2&before={before}"),
            Some(&buyer.token),
        )
        .await,
    )
    .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        rest["items"][0]["order_number"],
        n.as_str(),
        "the first order comes last"
    );
}

#[actix_web::test]
async fn cancels_and_expiries_end_orders_once_and_give_the_stock_back_once() {
    let app = spawn_app_with(&[("order_payment_window_secs", "2"), ("outbox_poll_ms", "50")]).await;
    let admin = app.admin().await;
    let buyer = app.user("c-buyer").await;
    let watch = on_sale(
        &app,
        &admin,
        "Nautilus",
        "Patek Philippe",
        90_000_000,
        &[("NA-1", 4)],
    )
    .await;
    let (o, p) = (option_id(&watch, 0), id(&watch));

    // The buyer's cancel: stock back at once, and only once.
    let order = json_of(buy_now(&app, &buyer, o, 3).await).await;
    let n = number(&order);
    assert_eq!(stocks(&app, &admin, p).await, vec![1]);
    let r = app
        .post_json(
            &format!("/api/orders/{n}/cancel"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "cancelled_by_user");
    assert!(v["lines"][0]["restored_at"].is_i64());
    assert_eq!(stocks(&app, &admin, p).await, vec![4]);
    assert_error(
        app.post_json(
            &format!("/api/orders/{n}/cancel"),
            &json!({}),
            Some(&buyer.token),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    let status = json_of(
        app.get(&format!("/api/orders/{n}/status"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(status["status"], "cancelled_by_user");

    // Expiry: the status polled while pending (and so cached) turns into
    // `expired` by itself, and the stock comes back once.
    let order = json_of(buy_now(&app, &buyer, o, 4).await).await;
    let n = number(&order);
    assert_eq!(stocks(&app, &admin, p).await, vec![0]);
    let status = json_of(
        app.get(&format!("/api/orders/{n}/status"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(status["status"], "pending_payment");
    eventually(Duration::from_secs(15), "the order expires", || async {
        let s = json_of(
            app.get(&format!("/api/orders/{n}/status"), Some(&buyer.token))
                .await,
        )
        .await;
        (s["status"] == "expired").then_some(())
    })
    .await;
    eventually(Duration::from_secs(10), "the stock comes back", || async {
        (stocks(&app, &admin, p).await == vec![4]).then_some(())
    })
    .await;
    let v = json_of(
        app.get(&format!("/api/orders/{n}"), Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(v["status"], "expired");
    assert!(v["lines"][0]["restored_at"].is_i64());
    assert_error(
        app.post_json(
            &format!("/api/orders/{n}/cancel"),
            &json!({}),
            Some(&buyer.token),
        )
        .await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    // Nothing left to do, nothing failed; and nothing more comes back later.
    eventually(Duration::from_secs(10), "the outbox drains", || async {
        let pending = json_of(
            app.get("/api/admin/outbox?status=pending", Some(&admin.token))
                .await,
        )
        .await;
        (pending.as_array().map_or(1, Vec::len) == 0).then_some(())
    })
    .await;
    let dead = json_of(app.get("/api/admin/outbox", Some(&admin.token)).await).await;
    assert_eq!(dead, json!([]));
    let done = json_of(
        app.get("/api/admin/outbox?status=done", Some(&admin.token))
            .await,
    )
    .await;
    let kinds: Vec<&str> = done
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["kind"].as_str())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "order_expire").count(), 2);
    assert_eq!(kinds.iter().filter(|k| **k == "stock_restore").count(), 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stocks(&app, &admin, p).await, vec![4]);
    assert_error(
        app.get("/api/admin/outbox", Some(&buyer.token)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.get("/api/admin/outbox?status=weird", Some(&admin.token))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

#[actix_web::test]
async fn concurrent_buyers_never_oversell_and_expiry_restores_exactly() {
    const UNITS: i64 = 40;
    const BUYERS: usize = 120;
    let app = spawn_app_with(&[("order_payment_window_secs", "6"), ("outbox_poll_ms", "50")]).await;
    let admin = app.admin().await;
    let item = on_sale(
        &app,
        &admin,
        "Birkin 30",
        "Hermès",
        25_000_000,
        &[("BK-30", UNITS)],
    )
    .await;
    let (o, p) = (option_id(&item, 0), id(&item));
    let mut buyers = Vec::with_capacity(BUYERS);
    for i in 0..BUYERS {
        buyers.push(app.user(&format!("race{i}")).await);
    }
    let results = futures_util::future::join_all(buyers.iter().map(|b| {
        let app = &app;
        async move { buy_now(app, b, o, 1).await.status() }
    }))
    .await;
    let created = results
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let refused = results
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!(
        created as i64, UNITS,
        "exactly the stock was sold: {results:?}"
    );
    assert_eq!(
        refused,
        BUYERS - UNITS as usize,
        "everyone else: out_of_stock"
    );
    assert_eq!(stocks(&app, &admin, p).await, vec![0], "never negative");
    eventually(
        Duration::from_secs(30),
        "every unpaid order expires and gives its unit back",
        || async { (stocks(&app, &admin, p).await == vec![UNITS]).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stocks(&app, &admin, p).await, vec![UNITS], "and not more");
}

#[actix_web::test]
async fn a_used_listing_is_held_by_its_order_and_released_when_the_order_ends() {
    let app = spawn_app_with(&[("order_payment_window_secs", "2"), ("outbox_poll_ms", "50")]).await;
    let mut events = app
        .app_state
        .engines()
        .bus
        .subscribe(jangteo::bus::TOPIC_ALARMS);
    let (seller, buyer, late) = (
        app.user("l-seller").await,
        app.user("l-buyer").await,
        app.user("l-late").await,
    );
    let l = crate::market::listing(&app, &seller, "아이패드 미니 6", 420_000).await;
    let status = |_: &TestApp, l: i64| {
        let path = format!("/api/listings/{l}");
        let token = seller.token.clone();
        let app = &app;
        async move {
            json_of(app.get(&path, Some(&token)).await).await["status"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
    };
    let order_it = |user: &User| {
        let (path, token) = (format!("/api/listings/{l}/order"), user.token.clone());
        let app = &app;
        async move { app.post_json(&path, &json!({}), Some(&token)).await }
    };

    let r = order_it(&buyer).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let order = json_of(r).await;
    assert_eq!(order["total"], 420_000);
    assert_eq!(order["listing_id"], l);
    assert_eq!(order["lines"][0]["listing_id"], l);
    assert_eq!(order["lines"][0]["product_name"], "아이패드 미니 6");
    assert_eq!(status(&app, l).await, "reserved");
    let page = json_of(
        app.get(&format!("/api/listings/{l}"), Some(&seller.token))
            .await,
    )
    .await;
    assert_eq!(page["reserved_for"], buyer.id);
    // Held: nobody else can order it, and the seller never could.
    assert_error(order_it(&late).await, StatusCode::CONFLICT, "invalid_state").await;
    assert_error(order_it(&seller).await, StatusCode::CONFLICT, "conflict").await;
    assert_error(
        app.post_json("/api/listings/999999/order", &json!({}), Some(&buyer.token))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.post_json(&format!("/api/listings/{l}/order"), &json!({}), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // The buyer's cancel puts it back on sale at once.
    let n = number(&order);
    let r = app
        .post_json(
            &format!("/api/orders/{n}/cancel"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(json_of(r).await["status"], "cancelled_by_user");
    assert_eq!(status(&app, l).await, "selling");

    // An order left unpaid expires and releases the listing by itself.
    let r = order_it(&late).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let n = number(&json_of(r).await);
    assert_eq!(status(&app, l).await, "reserved");
    eventually(
        Duration::from_secs(15),
        "the listing is released",
        || async { (status(&app, l).await == "selling").then_some(()) },
    )
    .await;
    let v = json_of(
        app.get(&format!("/api/orders/{n}"), Some(&late.token))
            .await,
    )
    .await;
    assert_eq!(v["status"], "expired");
    // Chats and the bus heard each step, in order.
    let mut kinds = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
        if e.kind.starts_with("reservation.") && e.data["listing"] == l {
            kinds.push(e.kind.clone());
        }
        if kinds.len() == 4 {
            break;
        }
    }
    assert_eq!(
        kinds,
        vec![
            "reservation.created",
            "reservation.cancelled",
            "reservation.created",
            "reservation.expired"
        ]
    );
}
