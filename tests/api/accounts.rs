use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, Parsed, Ws};

#[actix_web::test]
async fn signup_normalises_email_and_hides_the_password() {
    let app = spawn_app().await;
    let r = app
        .signup("  Kim@Example.COM ", "correct horse", " 김당근 ")
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.parsed().await;
    assert_eq!(body, json!({"email": "kim@example.com"}), "nothing else");
    let r = app.login("kim@example.com", "correct horse").await;
    let body: Value = r.parsed().await;
    let body = &body["user"];
    assert_eq!(body["email"], "kim@example.com");
    assert_eq!(body["nickname"], "김당근");
    assert_eq!(body["role"], "user");
    assert_eq!(body["email_verified"], false);
    assert!(body["id"].as_i64().expect("id") > 0);
    assert!(body.get("password").is_none() && body.get("password_hash").is_none());
    // The normalised address logs in, whatever its spelling.
    assert_eq!(
        app.login("KIM@example.com ", "correct horse")
            .await
            .status(),
        StatusCode::OK
    );
}

/// A registered address gets the same answer as a new one (sign-up does
/// not tell who has an account), changes nothing, and its owner is told.
#[actix_web::test]
async fn duplicate_email_changes_nothing_and_is_not_revealed() {
    let app = spawn_app().await;
    let first = app.signup("a@x.com", "password-one", "first").await;
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.parsed().await;
    let again = app.signup(" A@X.COM", "password-two", "second").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let again: Value = again.parsed().await;
    assert_eq!(first, again, "the same answer");
    // The original account is untouched: old password works, new one does not.
    assert_eq!(
        app.login("a@x.com", "password-one").await.status(),
        StatusCode::OK
    );
    assert_error(
        app.login("a@x.com", "password-two").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}

#[actix_web::test]
async fn concurrent_signups_with_one_email_create_one_account() {
    let app = spawn_app().await;
    let names: Vec<String> = (0..8).map(|i| format!("racer{i}")).collect();
    let attempts = names
        .iter()
        .map(|n| app.signup("race@x.com", "password-race", n));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert!(
        statuses.iter().all(|s| *s == StatusCode::ACCEPTED),
        "{statuses:?}"
    );
    // One account: exactly one of the nicknames is there.
    let r = app.login("race@x.com", "password-race").await;
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value = r.parsed().await;
    assert!(names.iter().any(|n| me["user"]["nickname"] == n.as_str()));
    let admin = app.admin().await;
    let users: Value = app
        .get("/api/admin/users?limit=100", Some(&admin.token))
        .await
        .parsed()
        .await;
    let racers = users["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|u| u["email"] == "race@x.com")
        .count();
    assert_eq!(racers, 1, "{users}");
}

#[actix_web::test]
async fn signup_validation_names_every_bad_field() {
    let app = spawn_app().await;
    let body = assert_error(
        app.signup("not-an-email", "short", "x").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    for field in ["email", "password", "nickname"] {
        assert!(body["details"][field].is_string(), "{field}: {body}");
    }
    let long = "p".repeat(129);
    let body = assert_error(
        app.signup("ok@x.com", &long, "okay").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["password"]
        .as_str()
        .expect("reason")
        .contains("128"));
    let body = assert_error(
        app.signup("ok@x.com", "password-ok", &"가".repeat(21))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["nickname"].is_string());
    // Exactly 8 and exactly 128 characters are fine (Korean counts per character).
    assert_eq!(
        app.signup("eight@x.com", "비밀번호가긴편이", "eight")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.signup("max@x.com", &"p".repeat(128), "maxed")
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    // None of the rejected attempts wrote anything: the address is still free.
    assert_error(
        app.login("ok@x.com", "password-ok").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.signup("ok@x.com", "password-ok", "okay").await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.login("ok@x.com", "password-ok").await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn login_issues_a_token_and_an_httponly_cookie() {
    let app = spawn_app().await;
    app.signup("c@x.com", "password-c", "cookie").await;
    let r = app.login("c@x.com", "password-c").await;
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(cookie.starts_with("jangteo_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let body: Value = r.parsed().await;
    let token = body["token"].as_str().expect("token");
    assert!(token.len() >= 40);
    assert_eq!(body["user"]["email"], "c@x.com");
    assert!(body["expires_at"].as_i64().expect("expiry") > 0);

    // Bearer header authenticates.
    let me: Value = app.get("/api/me", Some(token)).await.parsed().await;
    assert_eq!(me["email"], "c@x.com");
    // So does the cookie alone.
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", format!("jangteo_session={token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    app.signup("w@x.com", "password-w", "wrong").await;
    let a = assert_error(
        app.login("w@x.com", "not-the-password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let b = assert_error(
        app.login("nobody@x.com", "not-the-password").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(a, b);
}

#[actix_web::test]
async fn repeated_failures_are_refused_per_email() {
    let app = spawn_app_with(&[("login_max_failures", "3")]).await;
    app.signup("t@x.com", "password-t", "target").await;
    app.signup("o@x.com", "password-o", "other").await;
    for _ in 0..3 {
        assert_error(
            app.login("t@x.com", "guess-guess").await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    // Even the right password is refused now, with a Retry-After.
    let r = app.login("t@x.com", "password-t").await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .expect("hdr")
        .parse()
        .expect("secs");
    assert!((1..=900).contains(&retry), "{retry}");
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Another account from the same address is still below the address limit.
    assert_eq!(
        app.login("o@x.com", "password-o").await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn repeated_failures_from_one_address_are_refused() {
    let app = spawn_app_with(&[("login_max_failures", "2")]).await;
    app.signup("v@x.com", "password-v", "victim").await;
    // 2 x 4 = 8 failures spread over many emails trip the per-address limit.
    for i in 0..8 {
        app.login(&format!("spray{i}@x.com"), "guess-guess").await;
    }
    assert_error(
        app.login("v@x.com", "password-v").await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[actix_web::test]
async fn me_requires_a_valid_session() {
    let app = spawn_app().await;
    let unauthenticated = |what, token| {
        (
            what,
            Method::GET,
            "/api/me".to_string(),
            None,
            token,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
    };
    app.assert_refusals(vec![
        unauthenticated("no token", None),
        unauthenticated("a made-up token", Some("made-up-token")),
    ])
    .await;
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .expect("request");
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", "jangteo_session=forged")
        .send()
        .await
        .expect("request");
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn logout_kills_only_that_session() {
    let app = spawn_app().await;
    let u = app.user("leaver").await;
    let other_device = app.login_token(&u.email, &u.password).await;
    let r = app
        .post_json("/api/auth/logout", &json!({}), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let cookie = r.headers()["set-cookie"].to_str().expect("cookie");
    assert!(cookie.contains("Max-Age=0"), "{cookie}");
    assert_error(
        app.get("/api/me", Some(&u.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.get("/api/me", Some(&other_device)).await.status(),
        StatusCode::OK
    );
    assert_error(
        app.post_json("/api/auth/logout", &json!({}), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[actix_web::test]
async fn sessions_slide_and_expire() {
    // TTL 3 s: the expiry slides on use (at most every 300 ms). Each wait
    // keeps at least a second of slack against a loaded machine.
    let app = spawn_app_with(&[("session_ttl_secs", "3")]).await;
    let u = app.user("slider").await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let r = app
        .client
        .get(app.url("/api/me"))
        .header("cookie", format!("jangteo_session={}", u.token))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    // A cookie session that slid gets its cookie re-issued.
    let cookie = r
        .headers()
        .get("set-cookie")
        .expect("refreshed cookie")
        .to_str()
        .expect("str");
    assert!(cookie.contains(&u.token), "{cookie}");
    tokio::time::sleep(Duration::from_millis(1800)).await;
    // 3.6 s after login: alive only because the use at 1.8 s slid it.
    assert_eq!(
        app.get("/api/me", Some(&u.token)).await.status(),
        StatusCode::OK
    );
    // Unused from then on, it lapses 3 s after that last use. (No polling
    // here: every use would slide it again.)
    tokio::time::sleep(Duration::from_millis(3300)).await;
    assert_error(
        app.get("/api/me", Some(&u.token)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[actix_web::test]
async fn sessions_survive_a_restart() {
    let app = spawn_app().await;
    let u = app.user("stayer").await;
    let again = app.restart().await;
    let me: Value = again.get("/api/me", Some(&u.token)).await.parsed().await;
    assert_eq!(me["id"], u.id);
}

#[actix_web::test]
async fn nickname_change() {
    let app = spawn_app().await;
    let u = app.user("nick").await;
    let r = app
        .patch_json("/api/me", &json!({"nickname": "  새이름 "}), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["nickname"], "새이름");
    assert_error(
        app.patch_json("/api/me", &json!({"nickname": "x"}), Some(&u.token))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.patch_json("/api/me", &json!({}), Some(&u.token)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.patch_json("/api/me", &json!({"nickname": "hacker"}), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let me: Value = app.get("/api/me", Some(&u.token)).await.parsed().await;
    assert_eq!(me["nickname"], "새이름");
}

#[actix_web::test]
async fn password_change_needs_the_current_one_and_signs_out_other_devices() {
    let app = spawn_app().await;
    let u = app.user("changer").await;
    let other = app.login_token(&u.email, &u.password).await;

    let body = assert_error(
        app.patch_json(
            "/api/me",
            &json!({"new_password": "brand-new-pass"}),
            Some(&u.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["current_password"].is_string(), "{body}");
    let body = assert_error(
        app.patch_json(
            "/api/me",
            &json!({"current_password": "wrong-wrong", "new_password": "brand-new-pass"}),
            Some(&u.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["details"]["current_password"], "is incorrect");
    assert_error(
        app.patch_json(
            "/api/me",
            &json!({"current_password": u.password, "new_password": "short"}),
            Some(&u.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // Nothing changed so far.
    assert_eq!(
        app.get("/api/me", Some(&other)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.login(&u.email, &u.password).await.status(),
        StatusCode::OK
    );

    let r = app
        .patch_json(
            "/api/me",
            &json!({"current_password": u.password, "new_password": "brand-new-pass"}),
            Some(&u.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.get("/api/me", Some(&u.token)).await.status(),
        StatusCode::OK,
        "this device stays in"
    );
    assert_error(
        app.get("/api/me", Some(&other)).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.login(&u.email, &u.password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        app.login(&u.email, "brand-new-pass").await.status(),
        StatusCode::OK
    );
}

#[actix_web::test]
async fn withdrawal_revokes_everything_and_frees_the_email() {
    let app = spawn_app().await;
    let u = app.user("quitter").await;
    let other = app.login_token(&u.email, &u.password).await;

    assert_error(
        app.delete_json(
            "/api/me",
            &json!({"password": "wrong-wrong"}),
            Some(&u.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_error(
        app.delete_json("/api/me", &json!({"password": u.password}), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_eq!(
        app.get("/api/me", Some(&u.token)).await.status(),
        StatusCode::OK,
        "failed attempts change nothing"
    );

    let r = app
        .delete_json("/api/me", &json!({"password": u.password}), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for token in [&u.token, &other] {
        assert_error(
            app.get("/api/me", Some(token)).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    assert_error(
        app.login(&u.email, &u.password).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;

    // Others see a placeholder under the old id.
    let public: Value = app
        .get(&format!("/api/users/{}", u.id), None)
        .await
        .parsed()
        .await;
    assert_eq!(public["withdrawn"], true);
    assert_eq!(public["nickname"], "(탈퇴한 사용자)");

    // The address may sign up again, as a new account.
    let r = app.signup(&u.email, "another-password", "reborn").await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app.login(&u.email, "another-password").await;
    assert_eq!(r.status(), StatusCode::OK);
    let new_id = r.json::<Value>().await.expect("json")["user"]["id"]
        .as_i64()
        .expect("id");
    assert_ne!(new_id, u.id);
}

#[actix_web::test]
async fn public_profiles() {
    let app = spawn_app().await;
    let u = app.user("seller").await;
    let p: Value = app
        .get(&format!("/api/users/{}", u.id), None)
        .await
        .parsed()
        .await;
    assert_eq!(p["nickname"], "seller");
    assert_eq!(p["withdrawn"], false);
    assert!(p.get("email").is_none(), "no email in public view: {p}");
    assert_error(
        app.get("/api/users/999999", None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/api/users/abc", None).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

#[actix_web::test]
async fn admin_endpoints_are_for_admins_only() {
    let app = spawn_app().await;
    let u = app.user("plain").await;
    assert_error(
        app.get("/api/admin/users", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    assert_error(
        app.get("/api/admin/users", Some(&u.token)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let admin = app.admin().await;
    let me: Value = app.get("/api/me", Some(&admin.token)).await.parsed().await;
    assert_eq!(me["role"], "admin");
    let page: Value = app
        .get("/api/admin/users?limit=1", Some(&admin.token))
        .await
        .parsed()
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    assert_eq!(page["items"][0]["email"], u.email);
    let after = page["next_after"].as_i64().expect("more pages");
    let page: Value = app
        .get(
            &format!("/api/admin/users?limit=50&after={after}"),
            Some(&admin.token),
        )
        .await
        .parsed()
        .await;
    assert_eq!(page["items"][0]["role"], "admin");
    assert!(page["next_after"].is_null());
    assert_error(
        app.get("/api/admin/users?limit=0", Some(&admin.token))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.get("/api/admin/users?limit=lots", Some(&admin.token))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

/// A WebSocket opened with a session closes (4001) when that session ends,
/// on whichever node it is connected to (with two nodes, REST calls and
/// sockets take turns between them).
#[actix_web::test]
async fn ended_sessions_close_their_sockets_everywhere() {
    let app = spawn_app().await;
    let u = app.user("revoked").await;
    let second = app.login_token(&u.email, &u.password).await;
    let third = app.login_token(&u.email, &u.password).await;
    let mut first_ws = app.ws(&u.token).await;
    let mut second_ws = app.ws(&second).await;
    let mut third_ws = app.ws(&third).await;

    // Logout ends that session only.
    let r = app
        .post_json("/api/auth/logout", &json!({}), Some(&u.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(first_ws.close_frame().await, Some(4001));
    second_ws.send(json!({"type": "ping"})).await;
    second_ws.expect("pong").await;

    // A password change ends every other session.
    let r = app
        .patch_json(
            "/api/me",
            &json!({"current_password": u.password, "new_password": "brand-new-pass"}),
            Some(&second),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(third_ws.close_frame().await, Some(4001));
    second_ws.send(json!({"type": "ping"})).await;
    second_ws.expect("pong").await;

    // Withdrawal ends them all.
    let r = app
        .delete_json(
            "/api/me",
            &json!({"password": "brand-new-pass"}),
            Some(&second),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(second_ws.close_frame().await, Some(4001));
    // And a new connection with any of them is refused.
    for token in [&u.token, &second, &third] {
        assert!(Ws::try_connect(&app.addr, token).await.is_err());
    }
}

/// Long-lived connections re-check their session: an idle one closes when
/// the session expires, a used one keeps it alive like requests do.
#[actix_web::test]
async fn sockets_recheck_session_expiry() {
    let app = spawn_app_with(&[("session_ttl_secs", "2"), ("ws_session_check_secs", "1")]).await;
    let u = app.user("expiring").await;
    let active = app.login_token(&u.email, &u.password).await;
    let mut idle_ws = app.ws(&u.token).await;
    let mut active_ws = app.ws(&active).await;
    let started = std::time::Instant::now();
    let mut idle_closed = None;
    while started.elapsed() < Duration::from_secs(6) {
        active_ws.send(json!({"type": "ping"})).await;
        active_ws.expect("pong").await;
        if idle_closed.is_none() {
            if let Some(code) = idle_ws.closed_within(Duration::from_millis(300)).await {
                idle_closed = Some(code);
            }
        } else {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    assert_eq!(
        idle_closed,
        Some(Some(4001)),
        "the idle socket's session expired"
    );
    // The active one outlived its 2 s TTL because it was used.
    active_ws.send(json!({"type": "ping"})).await;
    active_ws.expect("pong").await;
}

#[actix_web::test]
async fn signups_are_throttled_per_address() {
    let app = spawn_app_with(&[("signup_max_per_address", "2")]).await;
    for i in 0..2 {
        let r = app
            .signup(&format!("s{i}@x.com"), "password-s", &format!("s{i}"))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let r = app.signup("s2@x.com", "password-s", "s2").await;
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Nothing was created by the refused one.
    assert_error(
        app.login("s2@x.com", "password-s").await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
}

/// Forty wrong passwords at once for one account: only the limit's worth
/// are checked. The owner, from another address, is not locked out.
#[actix_web::test]
async fn concurrent_guesses_cannot_pass_the_limit_nor_lock_the_owner_out() {
    let app = spawn_app_with(&[("login_max_failures", "5"), ("trust_forwarded_for", "true")]).await;
    app.signup("victim@x.com", "password-v", "victim").await;
    let from = |ip: &'static str, password: &'static str| {
        app.client
            .post(app.url("/api/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": "victim@x.com", "password": password}))
            .send()
    };
    let answers = futures_util::future::join_all((0..40).map(|_| from("203.0.113.9", "guess")))
        .await
        .into_iter()
        .map(|r| r.expect("request").status())
        .collect::<Vec<_>>();
    let checked = answers
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    // At most the limit (fewer when the per-address counter, charged by
    // the same requests, fills first).
    assert!((1..=5).contains(&checked), "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        40 - checked
    );
    // The attacker's address stays refused, even with the right password...
    assert_eq!(
        from("203.0.113.9", "password-v")
            .await
            .expect("request")
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // ...but the owner signs in from their own.
    assert_eq!(
        from("198.51.100.7", "password-v")
            .await
            .expect("request")
            .status(),
        StatusCode::OK
    );
}
