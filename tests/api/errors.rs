//! Bad input of every kind gets a 4xx with a stable code and writes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_error, spawn_app, TestApp};

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    req.send().await.expect("request")
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
        StatusCode::CREATED
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
    assert_error(app.get("/", None).await, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .client
        .put(app.url("/api/auth/login"))
        .send()
        .await
        .expect("request");
    assert!(r.status().is_client_error());
    let body: serde_json::Value = r.json().await.expect("json envelope");
    assert!(body["code"].is_string());
}
