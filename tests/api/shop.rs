//! The curated shop: catalogue (admin writes, everyone reads), options and
//! audited stock, wishlists and the cart.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, Parsed, TestApp, User};

/// Create a product as `admin`; returns the product page.
pub async fn product(app: &TestApp, admin: &User, body: Value) -> Value {
    let r = app
        .post_json("/api/admin/products", &body, Some(&admin.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED, "create product {body}");
    r.parsed().await
}

/// A product on sale with one option per `(sku, stock)`.
pub async fn on_sale(
    app: &TestApp,
    admin: &User,
    name: &str,
    brand: &str,
    price: i64,
    options: &[(&str, i64)],
) -> Value {
    product(
        app,
        admin,
        json!({
            "name": name, "brand": brand, "category": "bags", "base_price": price,
            "status": "on_sale",
            "options": options.iter().map(|(sku, stock)| json!({"label": sku, "sku": sku, "stock": stock})).collect::<Vec<_>>(),
        }),
    )
    .await
}

pub fn id(v: &Value) -> i64 {
    v["id"].as_i64().expect("id")
}

pub fn option_id(p: &Value, i: usize) -> i64 {
    p["options"][i]["id"].as_i64().expect("option id")
}

pub async fn json_of(r: reqwest::Response) -> Value {
    r.parsed().await
}

async fn list(app: &TestApp, query: &str) -> (Vec<i64>, Option<String>) {
    let r = app.get(&format!("/api/products{query}"), None).await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    let v = json_of(r).await;
    let ids = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect();
    (ids, v["next_cursor"].as_str().map(str::to_string))
}

pub async fn put(app: &TestApp, path: &str, body: &Value, token: &str) -> reqwest::Response {
    app.put_json(path, body, Some(token)).await
}

pub async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.delete(path, Some(token)).await
}

#[actix_web::test]
async fn admins_build_the_catalogue_and_everyone_else_is_refused() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.user("shopper").await;
    let draft = product(
        &app,
        &admin,
        json!({
            "name": "클래식 플랩 백", "brand": "CHANEL", "category": "bags",
            "description": "램스킨, 골드 메탈", "base_price": 13_000_000,
            "options": [
                {"label": "스몰 / 블랙", "sku": "CF-S-BK", "stock": 2},
                {"label": "미디엄 / 블랙", "sku": "CF-M-BK", "price_delta": 1_000_000, "stock": 5},
            ],
        }),
    )
    .await;
    let p = id(&draft);
    assert_eq!(draft["status"], "draft", "new products start as drafts");
    assert_eq!(draft["options"][1]["price"], 14_000_000);
    assert_eq!(draft["options"][0]["stock"], 2, "admins see exact stock");

    // A draft is the admins' own: the public (and shoppers) get 404.
    for token in [None, Some(shopper.token.as_str())] {
        assert_error(
            app.get(&format!("/api/products/{p}"), token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert!(!list(&app, "").await.0.contains(&p));
    let r = app
        .get(&format!("/api/products/{p}"), Some(&admin.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Every admin route refuses shoppers (403) and strangers (401).
    let o = option_id(&draft, 0);
    let admin_routes: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/api/admin/products".into(),
            Some(json!({"name": "x", "brand": "y", "category": "bags", "base_price": 1})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/products/{p}"),
            Some(json!({"status": "on_sale"})),
        ),
        (Method::DELETE, format!("/api/admin/products/{p}"), None),
        (
            Method::POST,
            format!("/api/admin/products/{p}/options"),
            Some(json!({"label": "L", "sku": "NEW-1"})),
        ),
        (
            Method::PATCH,
            format!("/api/admin/options/{o}"),
            Some(json!({"label": "L"})),
        ),
        (Method::DELETE, format!("/api/admin/options/{o}"), None),
        (
            Method::PUT,
            format!("/api/admin/options/{o}/stock"),
            Some(json!({"stock": 100, "reason": "x"})),
        ),
        (
            Method::POST,
            format!("/api/admin/options/{o}/stock-adjustments"),
            Some(json!({"delta": 1, "reason": "x"})),
        ),
        (
            Method::GET,
            format!("/api/admin/options/{o}/stock-adjustments"),
            None,
        ),
    ];
    let mut refusals = Vec::new();
    for (method, path, body) in &admin_routes {
        refusals.push((
            "a shopper",
            method.clone(),
            path.clone(),
            body.clone(),
            Some(shopper.token.as_str()),
            StatusCode::FORBIDDEN,
            "forbidden",
        ));
        refusals.push((
            "a stranger",
            method.clone(),
            path.clone(),
            body.clone(),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ));
    }
    app.assert_refusals(refusals).await;
    let still = json_of(
        app.get(&format!("/api/products/{p}"), Some(&admin.token))
            .await,
    )
    .await;
    assert_eq!(still["status"], "draft", "refused requests changed nothing");
    assert_eq!(still["options"].as_array().map(Vec::len), Some(2));
    assert_eq!(still["options"][0]["stock"], 2);

    // Bad input is refused, naming the fields, and writes nothing.
    let r = app
        .post_json(
            "/api/admin/products",
            &json!({"name": " ", "brand": "B", "category": "cars", "base_price": -5,
                    "options": [{"label": "a", "sku": "bad sku", "stock": -1},
                                {"label": "b", "sku": "DUP"}, {"label": "c", "sku": "DUP"}]}),
            Some(&admin.token),
        )
        .await;
    let e = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    for field in [
        "name",
        "category",
        "base_price",
        "options.sku",
        "options.stock",
    ] {
        assert!(e["details"][field].is_string(), "{field}: {e}");
    }
    let r = app
        .post_json(
            "/api/admin/products",
            &json!({"name": "n", "brand": "b", "category": "bags", "base_price": 1000,
                    "options": [{"label": "a", "sku": "CF-S-BK"}]}),
            Some(&admin.token),
        )
        .await;
    let e = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(e["details"]["options.sku"].is_string(), "{e}");
    let r = app
        .post_json(
            "/api/admin/products",
            &json!({"name": "n", "brand": "b", "category": "bags", "base_price": 1000, "colour": "red"}),
            Some(&admin.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;
    assert_eq!(list(&app, "").await.0, Vec::<i64>::new());

    // Publish, add an option, edit and remove options.
    let r = app
        .patch_json(
            &format!("/api/admin/products/{p}"),
            &json!({"status": "on_sale", "base_price": 12_500_000}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let public = json_of(app.get(&format!("/api/products/{p}"), None).await).await;
    assert_eq!(public["status"], "on_sale");
    assert_eq!(public["options"][0]["price"], 12_500_000);
    assert_eq!(public["options"][0]["stock_state"], "low");
    assert_eq!(
        public["options"][0]["stock"], 2,
        "low stock shows the count"
    );
    assert_eq!(public["options"][1]["stock_state"], "in_stock");
    assert!(
        public["options"][1]["stock"].is_null(),
        "plenty: no exact count"
    );
    let r = app
        .post_json(
            &format!("/api/admin/products/{p}/options"),
            &json!({"label": "라지 / 베이지", "sku": "CF-L-BE", "price_delta": 2_000_000, "stock": 0}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v = json_of(r).await;
    assert_eq!(v["options"].as_array().map(Vec::len), Some(3));
    assert_eq!(v["options"][2]["stock_state"], "sold_out");
    let large = option_id(&v, 2);
    let r = app
        .patch_json(
            &format!("/api/admin/options/{large}"),
            &json!({"price_delta": -13_000_000}),
            Some(&admin.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .patch_json(
            &format!("/api/admin/options/{large}"),
            &json!({"label": "라지 / 크림"}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(json_of(r).await["options"][2]["label"], "라지 / 크림");
    assert_eq!(
        delete(&app, &format!("/api/admin/options/{large}"), &admin.token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let public = json_of(app.get(&format!("/api/products/{p}"), None).await).await;
    assert_eq!(public["options"].as_array().map(Vec::len), Some(2));

    // Hide, show, delete.
    app.patch_json(
        &format!("/api/admin/products/{p}"),
        &json!({"status": "hidden"}),
        Some(&admin.token),
    )
    .await;
    assert_error(
        app.get(&format!("/api/products/{p}"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.patch_json(
        &format!("/api/admin/products/{p}"),
        &json!({"status": "on_sale"}),
        Some(&admin.token),
    )
    .await;
    assert!(list(&app, "").await.0.contains(&p));
    assert_eq!(
        delete(&app, &format!("/api/admin/products/{p}"), &admin.token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    for token in [None, Some(admin.token.as_str())] {
        assert_error(
            app.get(&format!("/api/products/{p}"), token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert!(!list(&app, "").await.0.contains(&p));
}

#[actix_web::test]
async fn the_product_list_filters_sorts_searches_and_pages_stably() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let fan = app.user("fan").await;
    let bag = on_sale(
        &app,
        &admin,
        "Classic Flap Bag",
        "CHANEL",
        13_000_000,
        &[("S1", 3)],
    )
    .await;
    let watch = product(
        &app,
        &admin,
        json!({"name": "서브마리너 데이트", "brand": "Rolex", "category": "watches",
               "base_price": 15_000_000, "status": "on_sale",
               "options": [{"label": "41mm", "sku": "SUB-41", "stock": 1}]}),
    )
    .await;
    let ring = product(
        &app,
        &admin,
        json!({"name": "러브 링", "brand": "Cartier", "category": "jewelry",
               "description": "18K 옐로우 골드", "base_price": 2_500_000, "status": "on_sale",
               "options": [{"label": "52", "sku": "LOVE-52", "stock": 0}]}),
    )
    .await;
    let scarf = on_sale(
        &app,
        &admin,
        "실크 스카프",
        "Hermès",
        700_000,
        &[("SC-1", 10)],
    )
    .await;
    let soldout = product(
        &app,
        &admin,
        json!({"name": "Kelly 25", "brand": "Hermès", "category": "bags",
               "base_price": 30_000_000, "status": "sold_out",
               "options": [{"label": "gold", "sku": "KELLY-25", "stock": 4}]}),
    )
    .await;
    let _draft = product(
        &app,
        &admin,
        json!({"name": "Draft", "brand": "X", "category": "bags", "base_price": 1}),
    )
    .await;
    let (bag, watch, ring, scarf, soldout) =
        (id(&bag), id(&watch), id(&ring), id(&scarf), id(&soldout));

    assert_eq!(
        list(&app, "").await.0,
        vec![soldout, scarf, ring, watch, bag],
        "newest first; drafts left out; sold out products still shown"
    );
    assert_eq!(
        list(&app, "?category=bags").await.0,
        vec![soldout, scarf, bag]
    );
    assert_eq!(list(&app, "?brand=hermès").await.0, vec![soldout, scarf]);
    assert_eq!(
        list(&app, "?min_price=1000000&max_price=14000000").await.0,
        vec![ring, bag]
    );
    assert_eq!(
        list(&app, "?in_stock=true").await.0,
        vec![scarf, watch, bag],
        "in stock: on sale with an option in stock"
    );
    assert_eq!(list(&app, "?q=%EB%A7%81").await.0, vec![ring], "링");
    assert_eq!(
        list(&app, "?q=%EA%B3%A8%EB%93%9C").await.0,
        vec![ring],
        "골드 in the description"
    );
    assert_eq!(
        list(&app, "?q=FLAP").await.0,
        vec![bag],
        "English, any case"
    );
    assert_eq!(list(&app, "?q=rolex").await.0, vec![watch], "the brand too");
    assert_eq!(
        list(&app, "?sort=price_asc").await.0,
        vec![scarf, ring, bag, watch, soldout]
    );
    assert_eq!(
        list(&app, "?sort=price_desc").await.0,
        vec![soldout, watch, bag, ring, scarf]
    );
    // Popular: most wishlisted first.
    for (p, n) in [(ring, 2), (watch, 1)] {
        for i in 0..n {
            let u = app.user(&format!("w{p}-{i}")).await;
            let r = put(
                &app,
                &format!("/api/products/{p}/wishlist"),
                &json!({}),
                &u.token,
            )
            .await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }
    assert_eq!(
        list(&app, "?sort=popular").await.0,
        vec![ring, watch, soldout, scarf, bag]
    );

    // Keyset pages stay exact while products are added between them.
    for sort in ["newest", "price_asc", "price_desc", "popular"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut added = 0;
        loop {
            let q = match &cursor {
                Some(c) => format!("?sort={sort}&limit=2&cursor={c}"),
                None => format!("?sort={sort}&limit=2"),
            };
            let (ids, next) = list(&app, &q).await;
            seen.extend(ids);
            // Something new arrives between pages (newest: ahead of the
            // cursor, so not on later pages).
            added += 1;
            on_sale(
                &app,
                &admin,
                &format!("new {sort} {added}"),
                "New",
                if sort == "price_asc" { 1 } else { 99_000_000 },
                &[(&format!("N-{sort}-{added}"), 1)],
            )
            .await;
            match next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{sort}: no product twice: {seen:?}"
        );
        for p in [bag, watch, ring, scarf, soldout] {
            assert!(seen.contains(&p), "{sort}: {p} skipped: {seen:?}");
        }
    }

    // Bad parameters.
    let (_, cursor) = list(&app, "?sort=price_asc&limit=1").await;
    let c = cursor.expect("more pages");
    for q in [
        format!("?sort=price_desc&cursor={c}"),
        "?cursor=garbage".to_string(),
        "?limit=0".to_string(),
        "?limit=101".to_string(),
        "?sort=cheapest".to_string(),
    ] {
        assert_error(
            app.get(&format!("/api/products{q}"), None).await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }
    assert_error(
        app.get("/api/products?category=cars", None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.get("/api/products?min_price=10&max_price=5", None)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;

    // The wishlist: idempotent, counted, paged, mine only.
    for p in [bag, watch, ring] {
        for _ in 0..2 {
            let r = put(
                &app,
                &format!("/api/products/{p}/wishlist"),
                &json!({}),
                &fan.token,
            )
            .await;
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }
    let v = json_of(
        app.get(&format!("/api/products/{ring}"), Some(&fan.token))
            .await,
    )
    .await;
    assert_eq!(v["wishlist_count"], 3);
    assert_eq!(v["in_wishlist"], true);
    let first = json_of(app.get("/api/me/wishlist?limit=2", Some(&fan.token)).await).await;
    let ids: Vec<i64> = first["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| id(&i["product"]))
        .collect();
    assert_eq!(ids.len(), 2);
    let c = first["next_cursor"].as_str().expect("next");
    let second = json_of(
        app.get(
            &format!("/api/me/wishlist?limit=2&cursor={c}"),
            Some(&fan.token),
        )
        .await,
    )
    .await;
    let mut all = ids.clone();
    all.extend(
        second["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| id(&i["product"])),
    );
    all.sort();
    let mut want = vec![bag, watch, ring];
    want.sort();
    assert_eq!(all, want);
    assert!(second["next_cursor"].is_null());
    let r = delete(&app, &format!("/api/products/{ring}/wishlist"), &fan.token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let v = json_of(
        app.get(&format!("/api/products/{ring}"), Some(&fan.token))
            .await,
    )
    .await;
    assert_eq!(v["wishlist_count"], 2);
    assert_eq!(v["in_wishlist"], false);
    let other = app.user("other-fan").await;
    let mine = json_of(app.get("/api/me/wishlist", Some(&other.token)).await).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0));
    assert_error(
        app.get("/api/me/wishlist", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let draft = product(
        &app,
        &admin,
        json!({"name": "Secret", "brand": "X", "category": "bags", "base_price": 1}),
    )
    .await;
    assert_error(
        put(
            &app,
            &format!("/api/products/{}/wishlist", id(&draft)),
            &json!({}),
            &fan.token,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[actix_web::test]
async fn stock_changes_are_audited_never_negative_and_low_stock_is_announced_once() {
    let app = spawn_app().await;
    let mut events = app
        .app_state
        .engines()
        .bus
        .subscribe(jangteo::bus::TOPIC_ALARMS);
    let admin = app.admin().await;
    let p = on_sale(
        &app,
        &admin,
        "Speedy 30",
        "Louis Vuitton",
        2_000_000,
        &[("SP-30", 20)],
    )
    .await;
    let o = option_id(&p, 0);
    let stock = |v: &Value| v["stock"].as_i64().expect("stock");

    let r = put(
        &app,
        &format!("/api/admin/options/{o}/stock"),
        &json!({"stock": 10, "reason": "실사 재고 조정"}),
        &admin.token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(stock(&json_of(r).await), 10);
    let adjust = |delta: i64, reason: &'static str| {
        let app = &app;
        let token = admin.token.clone();
        async move {
            app.post_json(
                &format!("/api/admin/options/{o}/stock-adjustments"),
                &json!({"delta": delta, "reason": reason}),
                Some(&token),
            )
            .await
        }
    };
    let r = adjust(-7, "파손 7개").await;
    let v = json_of(r).await;
    assert_eq!(stock(&v), 3);
    assert_eq!(v["stock_state"], "low");
    let r = adjust(-1, "샘플").await;
    assert_eq!(stock(&json_of(r).await), 2);
    let e = assert_error(
        adjust(-5, "too many").await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;
    assert!(e["message"].as_str().unwrap_or("").contains('2'), "{e}");
    for (body, field) in [
        (json!({"delta": 0, "reason": "x"}), "delta"),
        (json!({"delta": 1, "reason": "  "}), "reason"),
    ] {
        let r = app
            .post_json(
                &format!("/api/admin/options/{o}/stock-adjustments"),
                &body,
                Some(&admin.token),
            )
            .await;
        let e = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert!(e["details"][field].is_string(), "{e}");
    }
    let r = put(
        &app,
        &format!("/api/admin/options/{o}/stock"),
        &json!({"stock": -1, "reason": "x"}),
        &admin.token,
    )
    .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = adjust(10, "입고").await;
    assert_eq!(stock(&json_of(r).await), 12);
    let r = adjust(-10, "대량 주문").await;
    assert_eq!(stock(&json_of(r).await), 2);

    // The audit trail: who, when, why, newest first, paged.
    let r = app
        .get(
            &format!("/api/admin/options/{o}/stock-adjustments"),
            Some(&admin.token),
        )
        .await;
    let history = json_of(r).await;
    let rows = history.as_array().expect("array");
    let deltas: Vec<i64> = rows
        .iter()
        .map(|h| h["delta"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(deltas, vec![-10, 10, -1, -7, -10]);
    let afters: Vec<i64> = rows
        .iter()
        .map(|h| h["stock_after"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(afters, vec![2, 12, 2, 3, 10]);
    assert!(rows.iter().all(|h| h["admin_id"] == admin.id));
    assert_eq!(rows[4]["reason"], "실사 재고 조정");
    let before = rows[1]["id"].as_i64().expect("id");
    let page = json_of(
        app.get(
            &format!("/api/admin/options/{o}/stock-adjustments?before={before}&limit=2"),
            Some(&admin.token),
        )
        .await,
    )
    .await;
    let deltas: Vec<i64> = page
        .as_array()
        .expect("array")
        .iter()
        .map(|h| h["delta"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(deltas, vec![-1, -7]);
    assert_error(
        app.post_json(
            "/api/admin/options/999999/stock-adjustments",
            &json!({"delta": 1, "reason": "x"}),
            Some(&admin.token),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // The public sees "only 2 left"; admins hear about low stock once per
    // crossing (10 -> 3 and 12 -> 2), not on every sale below it.
    let public = json_of(app.get(&format!("/api/products/{}", id(&p)), None).await).await;
    assert_eq!(public["options"][0]["stock_state"], "low");
    assert_eq!(public["options"][0]["stock"], 2);
    let mut lows = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while lows.len() < 2 && tokio::time::Instant::now() < deadline {
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            if e.kind == "stock.low" {
                lows.push(e.data["stock"].as_i64().unwrap_or(-1));
            }
        }
    }
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
        if e.kind == "stock.low" {
            lows.push(e.data["stock"].as_i64().unwrap_or(-1));
        }
    }
    assert_eq!(lows, vec![3, 2]);
}

#[actix_web::test]
async fn the_cart_shows_current_prices_and_keeps_unavailable_lines() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (kim, lee) = (app.user("cart-kim").await, app.user("cart-lee").await);
    let tote = on_sale(
        &app,
        &admin,
        "Book Tote",
        "Dior",
        4_000_000,
        &[("BT-M", 10), ("BT-L", 1)],
    )
    .await;
    let belt = on_sale(&app, &admin, "H 벨트", "Hermès", 1_000_000, &[("HB-90", 5)]).await;
    let empty = on_sale(&app, &admin, "Empty", "X", 10, &[("EMPTY-1", 0)]).await;
    let (medium, large, belt_o) = (
        option_id(&tote, 0),
        option_id(&tote, 1),
        option_id(&belt, 0),
    );
    let add = |user: &User, option: i64, quantity: i64| {
        let token = user.token.clone();
        let app = &app;
        async move {
            app.post_json(
                "/api/cart/items",
                &json!({"option_id": option, "quantity": quantity}),
                Some(&token),
            )
            .await
        }
    };
    assert_eq!(add(&kim, medium, 2).await.status(), StatusCode::OK);
    let cart = json_of(add(&kim, medium, 3).await).await;
    assert_eq!(cart["lines"][0]["quantity"], 5, "adding again adds up");
    assert_eq!(cart["total"], 20_000_000);
    let e = assert_error(
        add(&kim, medium, 95).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["details"]["quantity"].is_string(), "{e}");
    for q in [0, 100, -1] {
        assert_error(
            add(&kim, belt_o, q).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let e = assert_error(
        add(&kim, option_id(&empty, 0), 1).await,
        StatusCode::CONFLICT,
        "out_of_stock",
    )
    .await;
    assert_eq!(e["details"]["options"][0], option_id(&empty, 0));
    assert_error(
        add(&kim, 999_999, 1).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(add(&kim, large, 1).await.status(), StatusCode::OK);
    assert_eq!(add(&kim, belt_o, 1).await.status(), StatusCode::OK);

    // The price shown is always the current one.
    app.patch_json(
        &format!("/api/admin/products/{}", id(&tote)),
        &json!({"base_price": 4_200_000}),
        Some(&admin.token),
    )
    .await;
    let cart = json_of(app.get("/api/cart", Some(&kim.token)).await).await;
    let lines = cart["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["unit_price"], 4_200_000);
    assert_eq!(lines[0]["line_total"], 21_000_000);
    assert_eq!(cart["total"], 21_000_000 + 4_200_000 + 1_000_000);
    assert!(lines.iter().all(|l| l["available"] == true));

    // Sold out, hidden or short lines stay, shown unavailable, out of the total.
    put(
        &app,
        &format!("/api/admin/options/{large}/stock"),
        &json!({"stock": 0, "reason": "sold in store"}),
        &admin.token,
    )
    .await;
    app.patch_json(
        &format!("/api/admin/products/{}", id(&belt)),
        &json!({"status": "hidden"}),
        Some(&admin.token),
    )
    .await;
    let cart = json_of(app.get("/api/cart", Some(&kim.token)).await).await;
    let lines = cart["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 3, "nothing silently dropped");
    let by_option = |o: i64| {
        lines
            .iter()
            .find(|l| l["option_id"] == o)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_option(medium)["available"], true);
    assert_eq!(by_option(large)["available"], false);
    assert_eq!(by_option(large)["stock_state"], "sold_out");
    assert_eq!(by_option(belt_o)["available"], false);
    assert_eq!(cart["total"], 21_000_000);
    // A line asking for more than is left is unavailable too.
    let r = app
        .patch_json(
            &format!("/api/cart/items/{medium}"),
            &json!({"quantity": 11}),
            Some(&kim.token),
        )
        .await;
    let cart = json_of(r).await;
    assert_eq!(cart["lines"][0]["available"], false);
    assert_eq!(cart["total"], 0);
    for q in [0, 100] {
        let r = app
            .patch_json(
                &format!("/api/cart/items/{medium}"),
                &json!({"quantity": q}),
                Some(&kim.token),
            )
            .await;
        assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }

    // Carts are private: another user cannot see or touch Kim's lines.
    let cart = json_of(app.get("/api/cart", Some(&lee.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(0));
    let r = app
        .patch_json(
            &format!("/api/cart/items/{medium}"),
            &json!({"quantity": 1}),
            Some(&lee.token),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    assert_error(
        delete(&app, &format!("/api/cart/items/{medium}"), &lee.token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        delete(&app, "/api/cart", &lee.token).await.status(),
        StatusCode::NO_CONTENT
    );
    let cart = json_of(app.get("/api/cart", Some(&kim.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(3));
    assert_error(
        app.get("/api/cart", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    // Remove a line, then empty the cart.
    assert_eq!(
        delete(&app, &format!("/api/cart/items/{large}"), &kim.token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let cart = json_of(app.get("/api/cart", Some(&kim.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        delete(&app, "/api/cart", &kim.token).await.status(),
        StatusCode::NO_CONTENT
    );
    let cart = json_of(app.get("/api/cart", Some(&kim.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(0));
    assert_eq!(cart["total"], 0);
}

async fn upload_image(app: &TestApp, user: &User) -> i64 {
    let bytes = crate::market::image_bytes(image::ImageFormat::Jpeg, 400, 300);
    let r = crate::market::upload(app, user, "bag.jpg", bytes).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    id(&json_of(r).await)
}

#[actix_web::test]
async fn product_images_come_from_the_media_pipeline_and_must_be_the_admins_own() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let shopper = app.user("img-shopper").await;
    let (front, side, foreign) = (
        upload_image(&app, &admin).await,
        upload_image(&app, &admin).await,
        upload_image(&app, &shopper).await,
    );
    let body = |images: Vec<i64>| {
        json!({"name": "Kelly 28", "brand": "Hermès", "category": "bags", "base_price": 20_000_000,
               "status": "on_sale", "images": images, "options": [{"label": "gold", "sku": format!("K28-{}", images.len()), "stock": 1}]})
    };
    let e = assert_error(
        app.post_json(
            "/api/admin/products",
            &body(vec![front, foreign]),
            Some(&admin.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(e["details"]["images"].is_string(), "{e}");
    let p = product(&app, &admin, body(vec![front, side])).await;
    assert_eq!(p["images"].as_array().map(Vec::len), Some(2));
    assert_eq!(p["images"][0]["id"], front);
    let thumb = p["thumbnail_url"].as_str().expect("thumbnail").to_string();
    let r = app.get(&thumb, None).await;
    assert_eq!(r.status(), StatusCode::OK, "{thumb}");
    let list = json_of(app.get("/api/products", None).await).await;
    assert_eq!(list["items"][0]["thumbnail_url"], thumb.as_str());
    // Replacing the images.
    let r = app
        .patch_json(
            &format!("/api/admin/products/{}", id(&p)),
            &json!({"images": [side]}),
            Some(&admin.token),
        )
        .await;
    let v = json_of(r).await;
    assert_eq!(v["images"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["images"][0]["id"], side);
}

/// Every signed-in route of the shop refuses strangers (401) and bad
/// bodies (400 / 422), and changes nothing.
#[actix_web::test]
async fn shop_routes_refuse_strangers_and_bad_bodies() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let buyer = app.user("guard-buyer").await;
    let p = on_sale(&app, &admin, "Guarded", "X", 10_000, &[("GUARD", 3)]).await;
    let (pid, o) = (id(&p), option_id(&p, 0));
    let n = "261127-ABCDEFGHJK";
    let signed_in: Vec<(Method, String, Option<Value>)> = vec![
        (Method::PUT, format!("/api/products/{pid}/wishlist"), None),
        (
            Method::DELETE,
            format!("/api/products/{pid}/wishlist"),
            None,
        ),
        (Method::GET, "/api/me/wishlist".into(), None),
        (Method::GET, "/api/cart".into(), None),
        (
            Method::POST,
            "/api/cart/items".into(),
            Some(json!({"option_id": o, "quantity": 1})),
        ),
        (
            Method::PATCH,
            format!("/api/cart/items/{o}"),
            Some(json!({"quantity": 1})),
        ),
        (Method::DELETE, format!("/api/cart/items/{o}"), None),
        (Method::DELETE, "/api/cart".into(), None),
        (
            Method::POST,
            "/api/orders".into(),
            Some(json!({"from": "buy_now", "option_id": o, "quantity": 1})),
        ),
        (Method::GET, "/api/me/orders".into(), None),
        (Method::GET, format!("/api/orders/{n}"), None),
        (Method::GET, format!("/api/orders/{n}/status"), None),
        (Method::POST, format!("/api/orders/{n}/cancel"), None),
        (Method::POST, "/api/listings/1/order".into(), None),
        (
            Method::POST,
            "/api/payments/confirm".into(),
            Some(
                json!({"order_number": n, "payment_key": "k", "amount": 1, "provider": "sandbox"}),
            ),
        ),
        (
            Method::POST,
            format!("/api/products/{pid}/reviews"),
            Some(json!({"line_id": 1, "rating": 5, "text": "x"})),
        ),
        (
            Method::PATCH,
            format!("/api/products/{pid}/reviews/1"),
            Some(json!({"rating": 1})),
        ),
        (
            Method::DELETE,
            format!("/api/products/{pid}/reviews/1"),
            None,
        ),
        (Method::GET, "/api/admin/outbox".into(), None),
    ];
    app.assert_refusals(
        signed_in
            .into_iter()
            .map(|(method, path, body)| {
                (
                    "a stranger",
                    method,
                    path,
                    body,
                    None,
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                )
            })
            .collect(),
    )
    .await;

    // Bodies that do not parse or do not fit are refused before anything runs.
    let t = Some(buyer.token.as_str());
    type Bad<'a> = (&'a str, Method, String, Option<Value>, StatusCode, &'a str);
    let bad: Vec<Bad<'_>> = vec![
        (
            "order: unknown source",
            Method::POST,
            "/api/orders".into(),
            Some(json!({"from": "gift"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "order: quantity as text",
            Method::POST,
            "/api/orders".into(),
            Some(json!({"from": "buy_now", "option_id": o, "quantity": "two"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "cart: unknown field",
            Method::POST,
            "/api/cart/items".into(),
            Some(json!({"option_id": o, "quantity": 1, "colour": "red"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "cart: missing quantity",
            Method::POST,
            "/api/cart/items".into(),
            Some(json!({"option_id": o})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "confirm: amount as text",
            Method::POST,
            "/api/payments/confirm".into(),
            Some(
                json!({"order_number": n, "payment_key": "k", "amount": "1", "provider": "sandbox"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "review: no text",
            Method::POST,
            format!("/api/products/{pid}/reviews"),
            Some(json!({"line_id": 1, "rating": 5})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "cart line id out of range",
            Method::PATCH,
            "/api/cart/items/99999999999999999999".into(),
            Some(json!({"quantity": 1})),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
    ];
    app.assert_refusals(
        bad.into_iter()
            .map(|(what, method, path, body, status, code)| {
                (what, method, path, body, t, status, code)
            })
            .collect(),
    )
    .await;
    for (path, truncated) in [
        ("/api/orders", "{\"from\": "),
        ("/api/cart/items", "{\"option_id\": "),
        ("/api/payments/confirm", "{\"amount\": "),
    ] {
        let r = app
            .client
            .post(app.url(path))
            .bearer_auth(&buyer.token)
            .header("content-type", "application/json")
            .body(truncated)
            .send()
            .await
            .expect("post");
        assert_error(r, StatusCode::BAD_REQUEST, "bad_json").await;
    }
    // Nothing was written by any of it.
    let cart = json_of(app.get("/api/cart", Some(&buyer.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(0));
    let mine = json_of(app.get("/api/me/orders", Some(&buyer.token)).await).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0));
    let v = json_of(
        app.get(&format!("/api/products/{pid}"), Some(&admin.token))
            .await,
    )
    .await;
    assert_eq!(v["options"][0]["stock"], 3);
}
