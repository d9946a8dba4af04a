//! Bad input of every kind gets a 4xx with a stable code and writes nothing.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, Parsed, TestApp, User};

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    raw_post_as(app, path, content_type, body, None).await
}

async fn raw_post_as(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
    user: Option<&User>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    if let Some(u) = user {
        req = req.bearer_auth(&u.token);
    }
    req.send().await.expect("request")
}

/// Bodies an endpoint with an optional body must refuse: present but not
/// JSON, of the wrong shape, or not declared JSON.
fn malformed_optional_bodies(
    field: &str,
    wrong_type: Value,
) -> Vec<(Option<&'static str>, String, StatusCode, &'static str)> {
    let json_ct = Some("application/json");
    vec![
        (
            json_ct,
            format!("{{\"{field}\": "),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            json_ct,
            "not json".into(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (json_ct, " ".into(), StatusCode::BAD_REQUEST, "bad_json"),
        (
            json_ct,
            json!({field: wrong_type}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json_ct,
            json!({"typo": 1}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json_ct,
            "[]".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("text/plain"),
            "{}".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json_ct,
            json!({field: "x".repeat(70_000)}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ]
}

#[actix_web::test]
async fn a_malformed_body_to_mark_sold_changes_nothing() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.user("ob-seller").await, app.user("ob-buyer").await);
    let r = app
        .post_json(
            "/api/listings",
            &json!({"title": "의자", "description": "튼튼함", "price": 5000, "category": "furniture"}),
            Some(&seller.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let l = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let r = app
        .post_json(
            &format!("/api/listings/{l}/chat"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert!(r.status().is_success(), "chat: {}", r.status());
    let path = format!("/api/listings/{l}/sold");
    for (ct, body, status, code) in malformed_optional_bodies("buyer_id", json!("someone")) {
        let r = raw_post_as(&app, &path, ct, body.clone(), Some(&seller)).await;
        assert_error(r, status, code).await;
        let d: Value = app
            .get(&format!("/api/listings/{l}"), Some(&seller.token))
            .await
            .parsed()
            .await;
        assert_eq!(
            (d["status"].as_str(), d["buyer_id"].as_i64()),
            (Some("selling"), None),
            "after {body:.40}"
        );
    }
    // No body at all: the defaults (sold, buyer unknown).
    let r = raw_post_as(&app, &path, None, "", Some(&seller)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.parsed().await;
    assert_eq!(
        (d["status"].as_str(), d["buyer_id"].as_i64()),
        (Some("sold"), None)
    );
}

#[actix_web::test]
async fn a_malformed_body_to_join_changes_nothing() {
    let app = spawn_app().await;
    let (owner, joiner) = (app.user("oj-owner").await, app.user("oj-joiner").await);
    let room = app.open_room(&owner, "열린 방").await;
    let path = format!("/api/rooms/{room}/join");
    for (ct, body, status, code) in malformed_optional_bodies("passcode", json!(1234)) {
        let r = raw_post_as(&app, &path, ct, body.clone(), Some(&joiner)).await;
        assert_error(r, status, code).await;
        let v: Value = app
            .get(&format!("/api/rooms/{room}"), Some(&owner.token))
            .await
            .parsed()
            .await;
        assert_eq!(v["member_count"], 1, "after {body:.40}");
        let mine = app.my_rooms(&joiner).await;
        assert!(
            mine["items"].as_array().expect("items").is_empty(),
            "after {body:.40}: {mine}"
        );
    }
    // No body at all, or `{}`: joined.
    let r = raw_post_as(&app, &path, None, "", Some(&joiner)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["member_count"], 2);
}

#[actix_web::test]
async fn malformed_bodies_are_rejected_and_nothing_is_written() {
    let app = spawn_app().await;
    let json_ct = Some("application/json");
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (json_ct, "{\"email\": ".into(), StatusCode::BAD_REQUEST, "bad_json"),
        (json_ct, "not json at all".into(), StatusCode::BAD_REQUEST, "bad_json"),
        (json_ct, String::new(), StatusCode::BAD_REQUEST, "bad_json"),
        (
            json_ct,
            json!({"email": "e@x.com", "password": 12345678, "nickname": "nick"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json_ct,
            json!({"email": "e@x.com", "nickname": "nick"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json_ct,
            json!({"email": "e@x.com", "password": "password-e", "nickname": "nick", "role": "admin"}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (json_ct, "[1, 2, 3]".into(), StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
        (
            Some("text/plain"),
            json!({"email": "e@x.com", "password": "password-e", "nickname": "nick"}).to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            None,
            json!({"email": "e@x.com", "password": "password-e", "nickname": "nick"}).to_string(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            json_ct,
            json!({"email": "e@x.com", "password": "password-e", "nickname": "x".repeat(70_000)}).to_string(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (ct, body, status, code) in cases {
        let r = raw_post(&app, "/api/auth/signup", ct, body.clone()).await;
        assert_error(r, status, code).await;
    }
    // Not one of them created the account.
    assert_error(
        app.login("e@x.com", "password-e").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.signup("e@x.com", "password-e", "nick").await.status(),
        StatusCode::ACCEPTED
    );
}

#[actix_web::test]
async fn oversized_body_without_length_is_refused() {
    let app = spawn_app().await;
    // Chunked upload (no Content-Length): the limit still applies while streaming.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..100).map(|_| Ok(vec![b' '; 1024])).collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let r = raw_post(&app, "/api/auth/login", Some("application/json"), body).await;
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[actix_web::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = spawn_app().await;
    assert_error(
        app.get("/api/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/app/js/nothing.js", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app.put("/api/auth/login", None).await;
    assert!(r.status().is_client_error());
    let body: serde_json::Value = r.json().await.expect("json envelope");
    assert!(body["code"].is_string());
}

#[actix_web::test]
async fn a_uri_over_the_limit_gets_the_envelope_and_does_nothing() {
    let app = spawn_app().await;
    // Within the default limit (8192 bytes): served as usual.
    let within = format!("/health?pad={}", "a".repeat(8_000));
    assert_eq!(app.get(&within, None).await.status(), StatusCode::OK);
    // Over it: 414 with the envelope, on known and unknown routes alike.
    for path in [
        format!("/health?pad={}", "a".repeat(8_200)),
        format!("/api/listings?q={}", "a".repeat(9_000)),
        format!("/nothing/{}", "b".repeat(9_000)),
    ] {
        assert_error(
            app.get(&path, None).await,
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
        )
        .await;
    }
    // Nothing is done: a sign-up with a long URI creates no account.
    let r = app
        .post_json(
            &format!("/api/auth/signup?pad={}", "c".repeat(9_000)),
            &json!({"email": "long@x.com", "password": "password-l", "nickname": "long"}),
            None,
        )
        .await;
    assert_error(r, StatusCode::URI_TOO_LONG, "uri_too_long").await;
    assert_error(
        app.login("long@x.com", "password-l").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    // Documented on every route.
    let doc: Value = app.get("/api-docs/openapi.json", None).await.parsed().await;
    for (path, method) in [("/api/rooms/{id}/join", "post"), ("/health", "get")] {
        assert!(
            doc["paths"][path][method]["responses"]["414"].is_object(),
            "414 of {method} {path}"
        );
    }
    // Beyond 65534 bytes the HTTP layer (actix-http's decoder, through the
    // `http` crate's Uri) refuses the request before any service of ours
    // runs: a bare 400 that no middleware can reach (docs/OPERATIONS.md).
    // This is why `max_uri_bytes` may not be set above 65534. (reqwest
    // cannot even build such a URI, hence a raw request.)
    let head = raw_http(
        &app.addr,
        &format!(
            "GET /health?pad={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "e".repeat(70_000)
        ),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head:.200}");

    // The limit is a setting.
    let small = spawn_app_with(&[("max_uri_bytes", "512")]).await;
    assert_eq!(
        small
            .get(&format!("/health?pad={}", "d".repeat(400)), None)
            .await
            .status(),
        StatusCode::OK
    );
    assert_error(
        small
            .get(&format!("/health?pad={}", "d".repeat(600)), None)
            .await,
        StatusCode::URI_TOO_LONG,
        "uri_too_long",
    )
    .await;
}

/// Send `request` as is over a fresh TCP connection to `base`
/// (`http://HOST:PORT`) and return the response as text.
async fn raw_http(base: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    tcp.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}
