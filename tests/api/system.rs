use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, refuses_connections, spawn_app, spawn_app_with, Parsed};

#[actix_web::test]
async fn health_and_ready() {
    let app = spawn_app().await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "ok");

    let r = app.get("/ready", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.parsed().await;
    assert_eq!(body["checks"]["database"], "ok");
}

#[actix_web::test]
async fn ready_names_the_failing_backend() {
    let app = spawn_app().await;
    // A closed pool is what a lost database looks like to the server.
    app.app_state.engines().sql.close().await;
    let body = assert_error(
        app.get("/ready", None).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert!(body["message"].as_str().expect("msg").contains("database"));
    assert!(body["details"]["database"].is_string());
    // Liveness is unaffected.
    assert_eq!(app.get("/health", None).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn request_id_is_echoed_or_generated() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .expect("request");
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .expect("request");
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
}

#[actix_web::test]
async fn metrics_in_prometheus_text() {
    let app = spawn_app().await;
    app.get("/health", None).await;
    app.get("/api/me", None).await;
    let r = app.get("/metrics", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("text/plain"));
    let text = r.text().await.expect("text");
    assert!(
        text.contains("# TYPE jangteo_http_requests_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            r#"jangteo_http_requests_total{method="GET",route="/health",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="/api/me",status="401""#), "{text}");
    assert!(
        text.contains("jangteo_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[actix_web::test]
async fn metrics_can_require_a_token_or_be_turned_off() {
    const TOKEN: &str = "scrape-token-0123456789";
    let app = spawn_app_with(&[("metrics_token", TOKEN)]).await;
    let metrics = |auth: Option<&'static str>| {
        let mut req = app.client.get(app.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send()
    };
    for (what, auth) in [
        ("no Authorization", None),
        ("a wrong token", Some("Bearer scrape-token-0123456788")),
        ("a prefix of the token", Some("Bearer scrape-token")),
        ("another scheme", Some("Basic c2NyYXBlOnRva2Vu")),
        ("an empty bearer", Some("Bearer ")),
    ] {
        let r = metrics(auth).await.expect("request");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let body: Value = r.json().await.expect("envelope");
        assert_eq!(body["code"], "unauthenticated", "{what}: {body}");
    }
    // A user's session token is no metrics token either.
    let u = app.user("scraper").await;
    assert_error(
        app.get("/metrics", Some(&u.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let r = metrics(Some("Bearer scrape-token-0123456789"))
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.expect("text");
    assert!(text.contains("jangteo_http_requests_total"), "{text}");

    // Turned off: as if the route did not exist, token or not.
    let off = spawn_app_with(&[("metrics_enabled", "false"), ("metrics_token", TOKEN)]).await;
    for auth in [None, Some(format!("Bearer {TOKEN}"))] {
        let mut req = off.client.get(off.url("/metrics"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        assert_error(
            req.send().await.expect("request"),
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    // The default stays public (see metrics_in_prometheus_text).
}

#[actix_web::test]
async fn openapi_covers_every_route_and_swagger_is_served() {
    let app = spawn_app().await;
    let r = app.get("/api-docs/openapi.json", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.parsed().await;
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let expected = [
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
        ("/api/auth/signup", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/verify-email", "post"),
        ("/api/auth/verify-email/resend", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/providers", "get"),
        ("/api/auth/{provider}/start", "get"),
        ("/api/auth/{provider}/callback", "get"),
        ("/api/me/identities", "get"),
        ("/api/me/identities/{provider}", "post"),
        ("/api/me/identities/{provider}", "delete"),
        ("/api/me", "get"),
        ("/api/me", "patch"),
        ("/api/me", "delete"),
        ("/api/users/{id}", "get"),
        ("/api/admin/users", "get"),
        ("/ws", "get"),
        ("/api/rooms", "post"),
        ("/api/rooms", "get"),
        ("/api/rooms/{id}", "get"),
        ("/api/rooms/{id}/join", "post"),
        ("/api/rooms/{id}/leave", "post"),
        ("/api/rooms/{id}/kick", "post"),
        ("/api/rooms/{id}/ban", "post"),
        ("/api/rooms/{id}/unban", "post"),
        ("/api/rooms/{id}/owner", "post"),
        ("/api/rooms/{id}/members", "get"),
        ("/api/me/rooms", "get"),
        ("/api/rooms/{id}/messages", "get"),
        ("/api/rooms/{id}/read", "put"),
        ("/api/rooms/{id}/messages/{seq}", "patch"),
        ("/api/rooms/{id}/messages/{seq}", "delete"),
        ("/api/media", "post"),
        ("/media/{key}", "get"),
        ("/api/listings", "post"),
        ("/api/listings", "get"),
        ("/api/listings/{id}", "get"),
        ("/api/listings/{id}", "patch"),
        ("/api/listings/{id}", "delete"),
        ("/api/listings/{id}/favourite", "put"),
        ("/api/listings/{id}/favourite", "delete"),
        ("/api/me/favourites", "get"),
        ("/api/regions", "get"),
        ("/api/regions/{code}", "get"),
        ("/api/me/neighbourhoods", "post"),
        ("/api/me/neighbourhoods", "get"),
        ("/api/me/neighbourhoods/{code}", "put"),
        ("/api/me/neighbourhoods/{code}", "delete"),
        ("/api/users/{id}/block", "put"),
        ("/api/users/{id}/block", "delete"),
        ("/api/me/blocks", "get"),
        ("/api/reports", "post"),
        ("/api/admin/reports", "get"),
        ("/api/listings/{id}/chat", "post"),
        ("/api/listings/{id}/chats", "get"),
        ("/api/listings/{id}/reservation", "post"),
        ("/api/listings/{id}/reservation", "delete"),
        ("/api/listings/{id}/sold", "post"),
        ("/api/listings/{id}/reviews", "post"),
        ("/api/products", "get"),
        ("/api/products/{id}", "get"),
        ("/api/products/{id}/wishlist", "put"),
        ("/api/products/{id}/wishlist", "delete"),
        ("/api/me/wishlist", "get"),
        ("/api/admin/products", "post"),
        ("/api/admin/products/{id}", "patch"),
        ("/api/admin/products/{id}", "delete"),
        ("/api/admin/products/{id}/options", "post"),
        ("/api/admin/options/{id}", "patch"),
        ("/api/admin/options/{id}", "delete"),
        ("/api/admin/options/{id}/stock", "put"),
        ("/api/admin/options/{id}/stock-adjustments", "post"),
        ("/api/admin/options/{id}/stock-adjustments", "get"),
        ("/api/cart", "get"),
        ("/api/cart/items", "post"),
        ("/api/cart/items/{option_id}", "patch"),
        ("/api/cart/items/{option_id}", "delete"),
        ("/api/cart", "delete"),
        ("/api/orders", "post"),
        ("/api/listings/{id}/order", "post"),
        ("/api/me/orders", "get"),
        ("/api/orders/{number}", "get"),
        ("/api/orders/{number}/status", "get"),
        ("/api/orders/{number}/cancel", "post"),
        ("/api/admin/orders/{number}/cancel", "post"),
        ("/api/admin/outbox", "get"),
        ("/api/payments/ready", "post"),
        ("/api/payments/webhooks/toss", "post"),
        ("/api/admin/payments/failures", "get"),
        ("/api/me/notifications", "get"),
        ("/api/me/notifications/unread_count", "get"),
        ("/api/me/notifications/read_all", "post"),
        ("/api/me/notifications/{id}/read", "post"),
        ("/api/me/notifications/{id}", "delete"),
        ("/api/me/notification_settings", "get"),
        ("/api/me/notification_settings", "put"),
        ("/api/admin/notifications/broadcast", "post"),
        ("/api/notifications/stream", "get"),
        ("/api/me/keywords", "get"),
        ("/api/me/keywords", "post"),
        ("/api/me/keywords/{keyword}", "delete"),
        ("/api/rooms/{id}/mute", "put"),
        ("/api/payments/confirm", "post"),
        ("/api/payments/providers", "get"),
        ("/api/products/{id}/reviews", "post"),
        ("/api/products/{id}/reviews", "get"),
        ("/api/products/{id}/reviews/{review_id}", "patch"),
        ("/api/products/{id}/reviews/{review_id}", "delete"),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let documented: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |m| m.len()))
        .sum();
    assert_eq!(
        documented,
        expected.len(),
        "a route is documented but not in this test's list"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let r = app.get("/swagger-ui/", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("html");
    assert!(html.contains("swagger"), "{html}");
    let r = app.get("/swagger-ui/swagger-ui.css", None).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "vendored assets are served offline"
    );
}

#[actix_web::test]
async fn a_stopped_server_is_stopped() {
    let mut app = spawn_app().await;
    let u = app.user("stopper").await;
    let mut ws = app.ws(&u.token).await;
    let state = app.app_state.clone();
    assert_eq!(state.market.pending_timers().await, Some(0));
    let nodes = app.nodes.clone();
    app.stop().await;
    for node in &nodes {
        assert!(
            refuses_connections(node),
            "{node} still accepts connections"
        );
    }
    // Open sockets were told to reconnect elsewhere...
    let close = ws.close_frame().await;
    assert_eq!(close, Some(1012), "service restart close code");
    // ...and background work is gone with the server: the timer actor of
    // the stopped instance answers nothing any more.
    assert_eq!(state.market.pending_timers().await, None);
    // The same data starts again.
    let app = app.restart().await;
    assert_eq!(
        app.get("/api/me", Some(&u.token)).await.status(),
        reqwest::StatusCode::OK
    );
}

#[actix_web::test]
async fn the_web_client_is_served_from_the_binary_and_revalidated() {
    let app = spawn_app().await;
    let page = app.get("/", None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let h = page.headers().clone();
    assert_eq!(h["content-type"], "text/html; charset=utf-8");
    let csp = h["content-security-policy"].to_str().expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(h["cache-control"], "no-cache");
    let html = page.text().await.expect("html");
    assert!(html.contains(r#"<html lang="ko">"#) && html.contains("/app/js/app.js"));
    // Every script the page loads is there, as JavaScript.
    let js = app.get("/app/js/app.js", None).await;
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(js.headers()["x-content-type-options"], "nosniff");
    let etag = js.headers()["etag"].to_str().expect("etag").to_string();
    let body = js.text().await.expect("js");
    for module in ["./api.js", "./live.js", "./ui.js", "./views/room.js"] {
        assert!(body.contains(module), "app.js imports {module}");
        let path = format!("/app/js/{}", module.trim_start_matches("./"));
        assert_eq!(
            app.get(&path, None).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // Unchanged files answer 304 to a revalidation; a stale tag gets the file.
    let again = app
        .client
        .get(app.url("/app/js/app.js"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let stale = app
        .client
        .get(app.url("/app/js/app.js"))
        .header("if-none-match", "\"0000000000000000\"")
        .send()
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::OK);
    // Payment providers send the buyer back to the app.
    let back = app
        .get("/pay/return?provider=kakaopay&order=1&result=cancel", None)
        .await;
    assert_eq!(back.status(), StatusCode::OK);
    assert_eq!(back.headers()["content-type"], "text/html; charset=utf-8");
    // Nothing outside the embedded files is reachable through /app/.
    for path in [
        "/app/../Cargo.toml",
        "/app/%2e%2e/Cargo.toml",
        "/app/",
        "/app/js/",
    ] {
        let r = app.get(path, None).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
