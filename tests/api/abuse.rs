//! Security round 2: the surfaces an outside probe abused (issue 27). One
//! test per class of hole, each written to fail on the code before the
//! fix (checked against f805f61), and each running on all three engines.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app};
use crate::orders::{add_to_cart, number, stocks};
use crate::refunds::{cancel, line};
use crate::shop::{id, json_of, option_id, product};

/// Every series of `/metrics` whose name starts with `name{`.
fn series<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}{{");
    text.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[actix_web::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = spawn_app().await;
    // Warm up: one of each ordinary kind of request.
    assert_eq!(app.get("/health", None).await.status(), StatusCode::OK);
    let _ = app.get("/api/listings", None).await;
    let before = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    let base = series(&before, "jangteo_http_requests_total").len();

    // Property: whatever methods and paths a client makes up, the label
    // sets stay within the bounded set (methods we serve or OTHER, route
    // patterns or `unmatched`, known statuses).
    let mut rng = StdRng::seed_from_u64(27_001);
    for i in 0..300 {
        let len = rng.gen_range(1..12);
        let method: String = (0..len)
            .map(|_| char::from(rng.gen_range(b'A'..=b'Z')))
            .collect();
        let method = Method::from_bytes(format!("{method}{i}").as_bytes()).expect("token");
        let path = format!("/{}/{}", rng.gen::<u32>(), rng.gen::<u16>());
        let r = app
            .client
            .request(method, app.url(&path))
            .send()
            .await
            .expect("request");
        assert!(r.status().is_client_error(), "{}", r.status());
        let r = app.get(&format!("/api/{}", rng.gen::<u64>()), None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let after = app
        .get("/metrics", None)
        .await
        .text()
        .await
        .expect("metrics");
    let requests = series(&after, "jangteo_http_requests_total");
    assert!(
        requests.len() <= base + 6,
        "{} series after 600 odd requests (from {base}):\n{}",
        requests.len(),
        requests.join("\n")
    );
    for s in requests
        .iter()
        .chain(series(&after, "jangteo_http_request_duration_seconds_bucket").iter())
    {
        let method = s
            .split("method=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .expect("method label");
        assert!(
            ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"].contains(&method),
            "{s}"
        );
        let route = s
            .split("route=\"")
            .nth(1)
            .and_then(|m| m.split('"').next())
            .expect("route label");
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "an unbounded route label: {s}"
        );
        assert!(!route.chars().any(|c| c.is_ascii_digit()), "{s}");
    }
    assert!(after.len() < before.len() + 16_384, "{}", after.len());
}

/// A product whose second option costs nothing (a free gift option).
async fn with_free_option(
    app: &crate::helpers::TestApp,
    admin: &crate::helpers::User,
    base: i64,
) -> Value {
    product(
        app,
        admin,
        json!({
            "name": format!("Gift box {base}"), "brand": "Jangteo", "category": "bags",
            "base_price": base, "status": "on_sale",
            "options": [
                {"label": "paid", "sku": format!("GB{base}-P"), "stock": 5},
                {"label": "free", "sku": format!("GB{base}-F"), "stock": 5, "price_delta": -base},
            ],
        }),
    )
    .await
}

#[actix_web::test]
async fn free_lines_are_cancelled_without_a_refund() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let buyer = app.user("free-buyer").await;
    let p = with_free_option(&app, &admin, 10_000).await;
    add_to_cart(&app, &buyer, option_id(&p, 0), 1).await;
    add_to_cart(&app, &buyer, option_id(&p, 1), 2).await;
    let o = crate::refunds::pay_cart(&app, &buyer, "pk-free-1").await;
    assert_eq!(o["total"], 10_000);
    let n = number(&o);
    let free = o["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .position(|l| l["unit_price"] == 0)
        .expect("a free line");

    // The buyer cancels one free unit: no money moves, no 500.
    let one = json!({"lines": [{"line_id": line(&o, free), "quantity": 1}]});
    let r = cancel(&app, &buyer, &n, Some(one.clone())).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "partially_cancelled", "{v}");
    assert_eq!(v["refunds"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["payment"]["cancelled_amount"], 0, "{v}");
    // An admin cancels the other free unit.
    let r = app
        .post_json(
            &format!("/api/admin/orders/{n}/cancel"),
            &one,
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![4, 5]);
    // The paid line is still refundable, and then the order is cancelled.
    let r = cancel(&app, &buyer, &n, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(v["refunds"][0]["amount"], 10_000, "{v}");
    assert_eq!(v["payment"]["status"], "cancelled", "{v}");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5, 5]);
    assert_error(
        cancel(&app, &buyer, &n, None).await,
        StatusCode::CONFLICT,
        "invalid_state",
    )
    .await;

    // A whole 0-won order (free option alone) is cancelled in full.
    let p = with_free_option(&app, &admin, 20_000).await;
    add_to_cart(&app, &buyer, option_id(&p, 1), 1).await;
    let o = crate::refunds::pay_cart(&app, &buyer, "pk-free-2").await;
    assert_eq!(o["total"], 0);
    let r = cancel(&app, &buyer, &number(&o), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v = json_of(r).await;
    assert_eq!(v["status"], "cancelled", "{v}");
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![5, 5]);
}

#[actix_web::test]
async fn notification_streams_share_the_per_user_connection_budget() {
    let app = crate::helpers::spawn_app_with(&[
        ("ws_max_connections_per_user", "3"),
        ("sse_keepalive_secs", "1"),
    ])
    .await;
    let u = app.user("streamer").await;
    let other = app.user("bystander").await;
    // Every connection to the first node: the budget is per server.
    let sse = |token: &str| {
        app.client
            .get(format!("{}/api/notifications/stream", app.addr))
            .bearer_auth(token)
            .send()
    };
    let first = sse(&u.token).await.expect("stream");
    assert_eq!(first.status(), StatusCode::OK);
    let second = sse(&u.token).await.expect("stream");
    assert_eq!(second.status(), StatusCode::OK);
    let ws = crate::helpers::Ws::connect(&app.addr, &u.token).await;
    // The fourth connection of either kind is refused, with Retry-After.
    let r = sse(&u.token).await.expect("stream");
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(crate::helpers::Ws::try_connect(&app.addr, &u.token)
        .await
        .is_err());
    // Somebody else is not affected.
    let theirs = sse(&other.token).await.expect("stream");
    assert_eq!(theirs.status(), StatusCode::OK);
    // A closed stream gives its place back.
    drop(first);
    let again = crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "a place is free again after a stream closed",
        || async {
            let r = sse(&u.token).await.expect("stream");
            (r.status() == StatusCode::OK).then_some(r)
        },
    )
    .await;
    drop((second, ws, again, theirs));
}

#[actix_web::test]
async fn cookie_authenticated_changes_from_other_sites_are_refused() {
    let app = spawn_app().await;
    let u = app.user("cookie-user").await;
    let admin = app.admin().await;
    let p = crate::shop::on_sale(&app, &admin, "Cookie jar", "Jar", 5_000, &[("CJ-1", 9)]).await;
    let cookie = format!("jangteo_session={}", u.token);
    let own = app.addr.clone();
    let other_port = format!("http://127.0.0.1:{}", crate::common::free_port());
    let add = json!({"option_id": option_id(&p, 0), "quantity": 1});
    for (what, headers) in [
        ("another site", vec![("origin", "https://evil.example")]),
        (
            "another port of the same host",
            vec![
                ("origin", other_port.as_str()),
                ("sec-fetch-site", "same-site"),
            ],
        ),
        ("a cross-site fetch", vec![("sec-fetch-site", "cross-site")]),
        ("an opaque origin", vec![("origin", "null")]),
    ] {
        for (method, path, body) in [
            (Method::POST, "/api/auth/logout", None),
            (Method::POST, "/api/cart/items", Some(add.clone())),
            (Method::DELETE, "/api/me", None),
        ] {
            let mut req = app
                .client
                .request(method.clone(), format!("{own}{path}"))
                .header("cookie", &cookie);
            for (k, v) in &headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = &body {
                req = req.json(b);
            }
            let r = req.send().await.expect("request");
            let e = assert_error(r, StatusCode::FORBIDDEN, "cross_origin").await;
            assert!(e["message"].is_string(), "{what}: {method} {path}");
        }
    }
    // Nothing happened: still signed in, the cart is empty.
    let me = app.get("/api/me", Some(&u.token)).await;
    assert_eq!(me.status(), StatusCode::OK);
    let cart = json_of(app.get("/api/cart", Some(&u.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(0), "{cart}");

    // The app's own pages, and bearer-token clients from anywhere, may.
    let r = app
        .client
        .post(format!("{own}/api/cart/items"))
        .header("cookie", &cookie)
        .header("origin", own.as_str())
        .header("sec-fetch-site", "same-origin")
        .json(&add)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .client
        .post(format!("{own}/api/cart/items"))
        .bearer_auth(&u.token)
        .header("origin", "https://evil.example")
        .json(&add)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    // A cookie request with no browser headers (not a browser) passes too.
    let r = app
        .client
        .post(format!("{own}/api/auth/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("request");
    assert!(r.status().is_success(), "{}", r.status());
}

#[actix_web::test]
async fn limits_hold_under_parallel_requests() {
    let app = spawn_app().await;
    let u = app.user("racer").await;
    // 60 different keywords at once against a limit of 30.
    let adds = (0..60).map(|i| {
        let (app, token) = (&app, u.token.clone());
        async move {
            app.post_json(
                "/api/me/keywords",
                &json!({"keyword": format!("키워드{i:02}")}),
                Some(&token),
            )
            .await
            .status()
        }
    });
    let statuses = futures_util::future::join_all(adds).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 30, "{statuses:?}");
    assert!(statuses
        .iter()
        .all(|s| *s == StatusCode::CREATED || *s == StatusCode::UNPROCESSABLE_ENTITY));
    let mine = json_of(app.get("/api/me/keywords", Some(&u.token)).await).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(30));

    // The cart holds at most 50 lines, as many as an order takes, also
    // when they are added in parallel.
    let admin = app.admin().await;
    let options: Vec<Value> = (0..60)
        .map(|i| json!({"label": format!("L{i}"), "sku": format!("RACE-{i}"), "stock": 5}))
        .collect();
    let p = product(
        &app,
        &admin,
        json!({"name": "Many options", "brand": "Race", "category": "bags", "base_price": 1_000,
               "status": "on_sale", "options": options}),
    )
    .await;
    let adds = (0..60).map(|i| {
        let (app, token, option) = (&app, u.token.clone(), option_id(&p, i));
        async move {
            app.post_json(
                "/api/cart/items",
                &json!({"option_id": option, "quantity": 1}),
                Some(&token),
            )
            .await
        }
    });
    let mut refused = 0;
    for r in futures_util::future::join_all(adds).await {
        if r.status() != StatusCode::OK {
            let e = assert_error(r, StatusCode::CONFLICT, "limit_reached").await;
            assert_eq!(e["details"]["limit"], "cart_lines");
            assert_eq!(e["details"]["max"], 50);
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    let cart = json_of(app.get("/api/cart", Some(&u.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(50));
    // More of a line already there is still fine.
    let r = app
        .post_json(
            "/api/cart/items",
            &json!({"option_id": cart["lines"][0]["option_id"], "quantity": 1}),
            Some(&u.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_web::test]
async fn staff_names_and_invisible_characters_are_not_nicknames() {
    let app = spawn_app().await;
    for (i, nickname) in [
        "관리자",
        "장터 운영자",
        "Admin",
        "jangteo_official",
        "고객센터",
        "abc\u{202E}def",
        "zero\u{200B}width",
        "\u{3164}\u{3164}\u{3164}",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("nick{i}@example.com");
        let e = assert_error(
            app.signup(&email, "password-123", nickname).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(e["details"]["nickname"].is_string(), "{nickname}: {e}");
        // Nothing was created: the address is still free.
        assert_error(
            app.login(&email, "password-123").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
        assert_eq!(
            app.signup(&email, "password-123", &format!("손님{i}"))
                .await
                .status(),
            StatusCode::ACCEPTED
        );
        assert_eq!(
            app.login(&email, "password-123").await.status(),
            StatusCode::OK
        );
    }
    // Renaming to a staff name is refused too; ordinary names pass.
    let u = app.user("plain-user").await;
    assert_error(
        app.patch_json("/api/me", &json!({"nickname": "운영팀"}), Some(&u.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let r = app
        .patch_json("/api/me", &json!({"nickname": "배드민턴"}), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_stock_adjustment_of_i64_min_is_refused_not_wrapped() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let p = crate::shop::on_sale(&app, &admin, "Wrap", "Wrap", 1_000, &[("WR-1", 7)]).await;
    let o = option_id(&p, 0);
    for delta in [i64::MIN, i64::MIN + 1, -1_000_001, 1_000_001, i64::MAX] {
        let e = assert_error(
            app.post_json(
                &format!("/api/admin/options/{o}/stock-adjustments"),
                &json!({"delta": delta, "reason": "probe"}),
                Some(&admin.token),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert!(e["details"]["delta"].is_string(), "{delta}: {e}");
    }
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![7]);
}

#[actix_web::test]
async fn every_response_refuses_framing_and_swagger_has_a_policy() {
    let app = spawn_app().await;
    for path in [
        "/swagger-ui/",
        "/api-docs/openapi.json",
        "/health",
        "/api/listings",
        "/nope",
    ] {
        let r = app
            .client
            .get(format!("{}{path}", app.addr))
            .send()
            .await
            .expect("request");
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    let r = app
        .client
        .get(format!("{}/swagger-ui/", app.addr))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    // The web client keeps its own policy.
    let r = app
        .client
        .get(format!("{}/", app.addr))
        .send()
        .await
        .expect("request");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(csp.contains("connect-src"), "{csp}");
}

#[actix_web::test]
async fn the_emailed_link_verifies_the_address_once() {
    let app = spawn_app().await;
    let u = app.unverified_user("verify-me").await;
    let me = |token: String| {
        let app = &app;
        async move { json_of(app.get("/api/me", Some(&token)).await).await }
    };
    assert_eq!(me(u.token.clone()).await["email_verified"], false);
    let dirs = [app.data_dir.join("outbox-mail")];
    let token = crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the verification email is written",
        || async { crate::common::verification_token_in(&dirs, &u.email) },
    )
    .await;
    assert!(token.len() >= 43, "256 random bits: {token}");
    let verify = |t: String| {
        let app = &app;
        async move {
            app.post_json("/api/auth/verify-email", &json!({ "token": t }), None)
                .await
        }
    };
    let truncated: String = token.chars().take(20).collect();
    for bad in [String::new(), "nonsense".to_string(), truncated] {
        assert_error(verify(bad).await, StatusCode::BAD_REQUEST, "token_invalid").await;
    }
    assert_eq!(me(u.token.clone()).await["email_verified"], false);
    let r = verify(token.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json_of(r).await["email_verified"], true);
    assert_eq!(me(u.token.clone()).await["email_verified"], true);
    // Single use, and nothing to resend once verified.
    assert_error(
        verify(token).await,
        StatusCode::BAD_REQUEST,
        "token_invalid",
    )
    .await;
    assert_error(
        app.post_json("/api/auth/verify-email/resend", &json!({}), Some(&u.token))
            .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;

    // Resending is throttled (3 an hour by default), and needs a session.
    let v = app.unverified_user("verify-later").await;
    assert_error(
        app.post_json("/api/auth/verify-email/resend", &json!({}), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    for _ in 0..3 {
        let r = app
            .post_json("/api/auth/verify-email/resend", &json!({}), Some(&v.token))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = app
        .post_json("/api/auth/verify-email/resend", &json!({}), Some(&v.token))
        .await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Any of the links works; the newest one here.
    let dirs = [app.data_dir.join("outbox-mail")];
    let token = crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "a verification email for the second user",
        || async { crate::common::verification_token_in(&dirs, &v.email) },
    )
    .await;
    assert_eq!(verify(token).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn only_verified_addresses_get_emails_and_at_most_a_few_a_day() {
    let sink = crate::smtp_sink::SmtpSink::start().await;
    let url = sink.url();
    let app = crate::helpers::spawn_app_with(&[
        ("smtp_url", url.as_str()),
        ("outbox_poll_ms", "50"),
        ("mail_daily_max_per_recipient", "3"),
    ])
    .await;
    let admin = app.admin().await;
    // Someone signed up with a stranger's address, asks for keyword alerts
    // by email and a seller posts matches: the stranger gets the
    // verification link, and nothing else (the alerts stay in the app).
    let squatter = app.unverified_user("stranger").await;
    let r = app
        .put_json(
            "/api/me/notification_settings",
            &json!({"items": [{"kind": "keyword.match", "email": true}]}),
            Some(&squatter.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post_json(
            "/api/me/keywords",
            &json!({"keyword": "자전거"}),
            Some(&squatter.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let seller = app.user("bike-seller").await;
    for i in 0..3 {
        crate::market::listing(&app, &seller, &format!("자전거 {i}"), 10_000).await;
    }
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the keyword alerts, in the app",
        || async {
            let v = json_of(
                app.get("/api/me/notifications", Some(&squatter.token))
                    .await,
            )
            .await;
            (v["items"].as_array().map_or(0, Vec::len) >= 3).then_some(())
        },
    )
    .await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "the verification link",
        || async {
            (sink
                .verification_mails()
                .iter()
                .any(|m| m.to == vec![squatter.email.clone()]))
            .then_some(())
        },
    )
    .await;
    let p = crate::shop::on_sale(
        &app,
        &admin,
        "Mailer",
        "Mail",
        1_000,
        &[("ML-1", 50), ("ML-2", 50)],
    )
    .await;
    let buyer = app.user("daily-buyer").await;
    for i in 0..5 {
        crate::refunds::paid_order(&app, &buyer, &p, 1, 1, &format!("pk-daily-{i}")).await;
    }
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "receipts to the verified buyer",
        || async { (sink.mails().len() >= 2).then_some(()) },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
    let to = |address: &str| {
        let mut all = sink.mails();
        all.extend(sink.verification_mails());
        all.into_iter()
            .filter(|m| m.to == vec![address.to_string()])
            .collect::<Vec<_>>()
    };
    assert!(
        to(&squatter.email)
            .iter()
            .all(|m| m.subject() == crate::smtp_sink::VERIFY_SUBJECT),
        "no receipt to an address nobody verified"
    );
    // Five receipts (and maybe the link) against a limit of three a day.
    assert_eq!(to(&buyer.email).len(), 3, "the daily limit");
}

#[actix_web::test]
async fn an_unverified_account_browses_and_chats_but_does_not_sell_or_pay() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let seller = app.user("verified-seller").await;
    let u = app.unverified_user("not-yet").await;
    let listing = crate::market::listing(&app, &seller, "책상", 30_000).await;
    let p = crate::shop::on_sale(&app, &admin, "Lamp", "Lamp", 9_000, &[("LP-1", 3)]).await;
    add_to_cart(&app, &u, option_id(&p, 0), 1).await;
    // An order placed while verified, to try paying it after a refusal.
    let refusals = vec![
        (
            "post a listing",
            Method::POST,
            "/api/listings".to_string(),
            Some(
                json!({"title": "의자", "description": "", "price": 1000, "category": "furniture"}),
            ),
        ),
        (
            "order from the cart",
            Method::POST,
            "/api/orders".to_string(),
            Some(json!({"from": "cart"})),
        ),
        (
            "buy a used listing",
            Method::POST,
            format!("/api/listings/{listing}/order"),
            None,
        ),
        (
            "confirm a payment",
            Method::POST,
            "/api/payments/confirm".to_string(),
            Some(
                json!({"order_number": "X", "payment_key": "k", "amount": 1, "provider": "sandbox"}),
            ),
        ),
        (
            "ready a payment",
            Method::POST,
            "/api/payments/ready".to_string(),
            Some(json!({"order_number": "X", "provider": "kakaopay"})),
        ),
    ];
    for (what, method, path, body) in refusals {
        let mut req = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&u.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let e = assert_error(r, StatusCode::FORBIDDEN, "email_unverified").await;
        assert!(e["message"].is_string(), "{what}");
    }
    // Nothing was written: no listing, no order, the cart and stock as they were.
    let mine = json_of(
        app.get(&format!("/api/listings?seller={}", u.id), None)
            .await,
    )
    .await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(0), "{mine}");
    let orders = json_of(app.get("/api/me/orders", Some(&u.token)).await).await;
    assert_eq!(
        orders["items"].as_array().map(Vec::len),
        Some(0),
        "{orders}"
    );
    let cart = json_of(app.get("/api/cart", Some(&u.token)).await).await;
    assert_eq!(cart["lines"].as_array().map(Vec::len), Some(1));
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![3]);
    let l = json_of(app.get(&format!("/api/listings/{listing}"), None).await).await;
    assert_eq!(l["status"], "selling");
    // Browsing and chatting are open to it.
    let room = crate::market::chat_about(&app, &u, listing).await;
    assert!(room > 0);
    // Once verified, the same requests go through.
    app.verify_email(&u).await;
    crate::market::listing(&app, &u, "의자", 1_000).await;
    let r = app
        .post_json("/api/orders", &json!({"from": "cart"}), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn one_buyer_cannot_hoard_stock_or_listings() {
    let app =
        crate::helpers::spawn_app_with(&[("max_unpaid_orders", "2"), ("max_unpaid_units", "5")])
            .await;
    let admin = app.admin().await;
    let hoarder = app.user("hoarder").await;
    let other = app.user("honest").await;
    let p = crate::shop::on_sale(&app, &admin, "Limited", "Ltd", 1_000, &[("LTD-1", 20)]).await;
    let o = option_id(&p, 0);
    let buy = |user: &crate::helpers::User, quantity: i64| {
        let (app, token) = (&app, user.token.clone());
        async move {
            app.post_json(
                "/api/orders",
                &json!({"from": "buy_now", "option_id": o, "quantity": quantity}),
                Some(&token),
            )
            .await
        }
    };
    let first = json_of(buy(&hoarder, 2).await).await;
    assert_eq!(buy(&hoarder, 2).await.status(), StatusCode::CREATED);
    // A third unpaid order: refused, nothing reserved.
    let e = assert_error(
        buy(&hoarder, 1).await,
        StatusCode::CONFLICT,
        "limit_reached",
    )
    .await;
    assert_eq!(e["details"]["limit"], "unpaid_orders");
    assert_eq!(e["details"]["max"], 2);
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![16]);
    // Paying one frees a place, but units held unpaid are bounded too.
    let r = app
        .post_json(
            "/api/payments/confirm",
            &json!({"order_number": number(&first), "payment_key": "pk-hoard", "amount": first["total"], "provider": "sandbox"}),
            Some(&hoarder.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let e = assert_error(
        buy(&hoarder, 4).await,
        StatusCode::CONFLICT,
        "limit_reached",
    )
    .await;
    assert_eq!(e["details"]["limit"], "unpaid_units");
    assert_eq!(buy(&hoarder, 3).await.status(), StatusCode::CREATED);
    assert_eq!(stocks(&app, &admin, id(&p)).await, vec![13]);
    // Somebody else is not affected.
    assert_eq!(buy(&other, 5).await.status(), StatusCode::CREATED);

    // A used listing cannot be held by cancelling and ordering it again.
    let seller = app.user("listing-owner").await;
    let listing = crate::market::listing(&app, &seller, "자전거", 50_000).await;
    let grabber = app.user("grabber").await;
    let r = app
        .post_json(
            &format!("/api/listings/{listing}/order"),
            &json!({}),
            Some(&grabber.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let n = number(&json_of(r).await);
    assert_eq!(
        cancel(&app, &grabber, &n, None).await.status(),
        StatusCode::OK
    );
    let r = app
        .post_json(
            &format!("/api/listings/{listing}/order"),
            &json!({}),
            Some(&grabber.token),
        )
        .await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry > 1_000 && retry <= 1_800, "{retry}");
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    let l = json_of(app.get(&format!("/api/listings/{listing}"), None).await).await;
    assert_eq!(l["status"], "selling", "free for others meanwhile");
    let r = app
        .post_json(
            &format!("/api/listings/{listing}/order"),
            &json!({}),
            Some(&other.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[actix_web::test]
async fn listing_floods_are_throttled_and_alert_a_watcher_a_few_times() {
    let app = crate::helpers::spawn_app_with(&[
        ("listings_per_hour", "5"),
        ("keyword_alerts_per_seller_per_hour", "2"),
    ])
    .await;
    let spammer = app.user("spammer").await;
    let watcher = app.user("kw-watch").await;
    let r = app
        .post_json(
            "/api/me/keywords",
            &json!({"keyword": "아이폰"}),
            Some(&watcher.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let post = |title: String| {
        let (app, token) = (&app, spammer.token.clone());
        async move {
            app.post_json(
                "/api/listings",
                &json!({"title": title, "description": "", "price": 1000, "category": "digital"}),
                Some(&token),
            )
            .await
        }
    };
    // An invalid form does not count against the limit.
    assert_error(
        post(String::new()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let posts = futures_util::future::join_all((0..8).map(|i| post(format!("아이폰 {i}")))).await;
    let created = posts
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED)
        .count();
    assert_eq!(created, 5);
    for r in posts
        .into_iter()
        .filter(|r| r.status() != StatusCode::CREATED)
    {
        assert!(r.headers().contains_key("retry-after"));
        assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
    let mine = json_of(
        app.get(&format!("/api/listings?seller={}", spammer.id), None)
            .await,
    )
    .await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(5));
    // Five matching listings, two alerts for the watcher.
    let alerts = crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "two keyword alerts",
        || async {
            let n = keyword_alerts(&app, &watcher.token).await;
            (n >= 2).then_some(n)
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    assert_eq!((alerts, keyword_alerts(&app, &watcher.token).await), (2, 2));
    // Another seller's listing still reaches the watcher.
    let other = app.user("kw-other-seller").await;
    crate::market::listing(&app, &other, "아이폰 팝니다", 500_000).await;
    crate::helpers::eventually(
        std::time::Duration::from_secs(10),
        "an alert about another seller",
        || async { (keyword_alerts(&app, &watcher.token).await == 3).then_some(()) },
    )
    .await;
}

/// How many keyword alerts are in the inbox of `token`'s user.
async fn keyword_alerts(app: &crate::helpers::TestApp, token: &str) -> usize {
    let v = json_of(app.get("/api/me/notifications", Some(token)).await).await;
    v["items"].as_array().map_or(0, |a| {
        a.iter().filter(|n| n["kind"] == "keyword.match").count()
    })
}

#[actix_web::test]
async fn uploads_have_a_rate_a_quota_and_unused_ones_are_swept() {
    use crate::market::{image_bytes, upload};
    let app = crate::helpers::spawn_app_with(&[
        ("uploads_per_hour", "6"),
        ("media_quota_mib", "1"),
        // 7.2 s: long enough for the uploads below to be used before a
        // sweep may take them on a slow machine, short enough to see it.
        ("media_orphan_hours", "0.002"),
        ("media_sweep_secs", "1"),
    ])
    .await;
    let u = app.user("uploader-q").await;
    // A big, noisy PNG: a few of them pass the 1 MiB quota.
    let noisy = |seed: u32| {
        let img = image::RgbImage::from_fn(400, 400, |x, y| {
            let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503) ^ seed)
                .wrapping_mul(2_246_822_519);
            image::Rgb([(v >> 24) as u8, (v >> 16) as u8, (v >> 8) as u8])
        });
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("png");
        out.into_inner()
    };
    let big = noisy(1);
    assert!(big.len() > 400_000, "{}", big.len());
    let mut kept = Vec::new();
    let mut refused = None;
    for i in 0..4 {
        let r = upload(&app, &u, "big.png", noisy(i)).await;
        if r.status() == StatusCode::CREATED {
            kept.push(json_of(r).await);
        } else {
            refused = Some(assert_error(r, StatusCode::CONFLICT, "limit_reached").await);
            break;
        }
    }
    let e = refused.expect("the quota refuses one of four");
    assert_eq!(e["details"]["limit"], "storage");
    assert_eq!(kept.len(), 2, "two fit in 1 MiB");
    // Small ones still fit, up to the hourly count (6, refused ones included).
    let small = image_bytes(image::ImageFormat::Png, 8, 8);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(upload(&app, &u, "s.png", small.clone()).await.status());
    }
    assert_eq!(
        statuses,
        vec![
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ],
        "the fourth passes the hourly limit (3 earlier uploads counted)"
    );
    // One of the big ones goes into a listing; the other is never used.
    let used = kept[0]["id"].as_i64().expect("id");
    let unused_url = kept[1]["url"].as_str().expect("url").to_string();
    let used_url = kept[0]["url"].as_str().expect("url").to_string();
    let r = app
        .post_json(
            "/api/listings",
            &json!({"title": "사진 있는 물건", "description": "", "price": 1000, "category": "digital", "images": [used]}),
            Some(&u.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    crate::helpers::eventually(
        std::time::Duration::from_secs(20),
        "the unused upload is swept",
        || async {
            (app.get(&unused_url, None).await.status() == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    assert_eq!(app.get(&used_url, None).await.status(), StatusCode::OK);
}
