//! Sign-in with Kakao and Google against local fake providers
//! (tests/api/fake_oauth.rs): new and returning users, automatic linking
//! by verified email and the email conflict, linking and unlinking rules,
//! withdrawal, the state's rules (replay, expiry, another browser), code
//! reuse and a wrong PKCE verifier, denied consent, spoiled ID tokens and
//! provider outages. With two nodes, each request of a flow goes to the
//! next node, so the callback lands on another node than the start.

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

use crate::fake_oauth::{FakeGoogle, FakeKakao, GoogleUser, KakaoUser, Spoil};
use crate::helpers::{assert_error, spawn_app, spawn_app_with, Parsed, TestApp};

const KAKAO_ID: &str = "fake-kakao-rest-api-key";
const KAKAO_SECRET: &str = "fake-kakao-client-secret";
const KAKAO_REDIRECT: &str = "https://jangteo.test/api/auth/kakao/callback";
const GOOGLE_ID: &str = "1234-fake.apps.googleusercontent.com";
const GOOGLE_SECRET: &str = "fake-google-client-secret";
const GOOGLE_REDIRECT: &str = "https://jangteo.test/api/auth/google/callback";

struct Fakes {
    kakao: FakeKakao,
    google: FakeGoogle,
}

async fn fakes() -> Fakes {
    Fakes {
        kakao: FakeKakao::start(KAKAO_ID, Some(KAKAO_SECRET), KAKAO_REDIRECT).await,
        google: FakeGoogle::start(GOOGLE_ID, GOOGLE_SECRET, GOOGLE_REDIRECT).await,
    }
}

async fn app_with(f: &Fakes, extra: &[(&str, &str)]) -> TestApp {
    let kakao = f.kakao.base_url();
    let google = f.google.base_url();
    let mut settings = vec![
        ("kakao_client_id", KAKAO_ID),
        ("kakao_client_secret", KAKAO_SECRET),
        ("kakao_redirect_url", KAKAO_REDIRECT),
        ("kakao_auth_url", kakao.as_str()),
        ("kakao_api_url", kakao.as_str()),
        ("google_client_id", GOOGLE_ID),
        ("google_client_secret", GOOGLE_SECRET),
        ("google_redirect_url", GOOGLE_REDIRECT),
        ("google_issuer", google.as_str()),
    ];
    settings.extend_from_slice(extra);
    spawn_app_with(&settings).await
}

/// A browser: keeps cookies, follows no redirects by itself.
fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location")
        .to_string()
}

fn kakao_user(id: i64, nickname: &str, email: Option<&str>, verified: bool) -> KakaoUser {
    KakaoUser {
        id,
        nickname: nickname.to_string(),
        email: email.map(str::to_string),
        verified,
    }
}

fn google_user(sub: &str, name: &str, email: &str, verified: bool) -> GoogleUser {
    GoogleUser {
        sub: sub.to_string(),
        name: name.to_string(),
        email: email.to_string(),
        verified,
    }
}

async fn start(app: &TestApp, b: &Client, provider: &str, query: &str) -> Response {
    b.get(app.url(&format!("/api/auth/{provider}/start{query}")))
        .send()
        .await
        .expect("start")
}

/// From a start's redirect, through the provider (where the person is
/// signed in already), to the callback URL on one of our nodes.
async fn through_provider(app: &TestApp, b: &Client, started: Response) -> String {
    assert_eq!(started.status(), StatusCode::FOUND, "start redirects");
    let at_provider = b.get(location(&started)).send().await.expect("authorize");
    assert_eq!(
        at_provider.status(),
        StatusCode::FOUND,
        "provider redirects back"
    );
    let back = url::Url::parse(&location(&at_provider)).expect("callback URL");
    let query = back.query().unwrap_or("");
    app.url(&format!("{}?{query}", back.path()))
}

/// A callback URL the provider sent `b` back with (a flow started and
/// consented to, not yet used).
async fn callback_url(app: &TestApp, b: &Client, provider: &str) -> String {
    let started = start(app, b, provider, "").await;
    through_provider(app, b, started).await
}

/// The callback was refused for its state, for this reason.
async fn state_refused(r: Response, reason: &str) {
    let e = assert_error(r, StatusCode::BAD_REQUEST, "oauth_state_invalid").await;
    assert_eq!(e["details"]["reason"], reason, "{e}");
}

async fn call(b: &Client, url: &str) -> Response {
    b.get(url).send().await.expect("callback")
}

/// A whole sign-in in a browser: the callback's response.
async fn sign_in(app: &TestApp, b: &Client, provider: &str) -> Response {
    let cb = callback_url(app, b, provider).await;
    call(b, &cb).await
}

/// The callback's body, after checking it signed in and redirected.
async fn signed_in(r: Response, outcome: &str) -> Value {
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "callback answers 303");
    assert_eq!(location(&r), "/");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("jangteo_session=") && c.contains("HttpOnly"));
    let body: Value = r.parsed().await;
    assert_eq!(body["outcome"], outcome, "{body}");
    if outcome != "linked" {
        assert!(cookie, "session cookie set like a password login");
        assert!(body["token"].is_string());
    }
    body
}

async fn me(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/me", Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.parsed().await
}

async fn identities(app: &TestApp, token: &str) -> Value {
    let r = app.get("/api/me/identities", Some(token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.parsed().await
}

fn token_of(body: &Value) -> String {
    body["token"].as_str().expect("token").to_string()
}

#[actix_web::test]
async fn kakao_signs_up_a_new_user_and_signs_the_same_user_in_again() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    // Someone already uses the Kakao nickname: the new account's is made unique.
    app.user("홍길동").await;
    f.kakao.sign_in_as(&kakao_user(
        4_100_001,
        "홍길동",
        Some("hong@kakao.test"),
        true,
    ));

    let b = browser();
    let started = start(&app, &b, "kakao", "").await;
    let authorize = url::Url::parse(&location(&started)).expect("url");
    let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(authorize.path(), "/oauth/authorize");
    assert_eq!(q["client_id"], KAKAO_ID);
    assert_eq!(q["redirect_uri"], KAKAO_REDIRECT);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 43);
    let cookie = started
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("binding cookie")
        .to_string();
    assert!(
        cookie.starts_with("jangteo_oauth=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let cb = through_provider(&app, &b, started).await;
    let body = signed_in(call(&b, &cb).await, "signed_up").await;
    let token = token_of(&body);
    let first = me(&app, &token).await;
    assert_eq!(first["email"], "hong@kakao.test");
    let nickname = first["nickname"].as_str().expect("nickname");
    assert!(
        nickname.starts_with("홍길동") && nickname != "홍길동",
        "{nickname}"
    );
    let ids = identities(&app, &token).await;
    assert_eq!(ids["has_password"], false);
    assert_eq!(ids["identities"][0]["provider"], "kakao");
    assert_eq!(ids["identities"][0]["email"], "hong@kakao.test");
    // The callback's cookie alone is a session, as after a password login.
    let by_cookie = b.get(app.url("/api/me")).send().await.expect("me");
    assert_eq!(by_cookie.status(), StatusCode::OK);

    // Returning, in another browser: the same account, no second one.
    let again = signed_in(sign_in(&app, &browser(), "kakao").await, "signed_in").await;
    assert_eq!(again["user"]["id"], first["id"]);
    // A password login for the account's email is not a way in.
    let r = app.login("hong@kakao.test", "anything-at-all").await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        f.kakao
            .calls()
            .iter()
            .filter(|c| *c == "/v2/user/me")
            .count(),
        2
    );
}

#[actix_web::test]
async fn google_links_by_verified_email_and_refuses_an_unverified_one() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    let kim = app.user("kim").await;
    let lee = app.user("lee").await;

    // Verified at Google, and the address is kim's: kim signs in, linked.
    f.google
        .sign_in_as(&google_user("g-100", "Kim", "kim@example.com", true));
    let body = signed_in(
        sign_in(&app, &browser(), "google").await,
        "signed_in_linked",
    )
    .await;
    assert_eq!(body["user"]["id"], kim.id);
    let ids = identities(&app, &kim.token).await;
    assert_eq!(ids["has_password"], true);
    assert_eq!(ids["identities"][0]["provider"], "google");
    let again = signed_in(sign_in(&app, &browser(), "google").await, "signed_in").await;
    assert_eq!(again["user"]["id"], kim.id);

    // Not verified at Google, and the address is lee's: no way into lee's
    // account, and no second account with lee's address either.
    f.google
        .sign_in_as(&google_user("g-200", "Impostor", "lee@example.com", false));
    let e = assert_error(
        sign_in(&app, &browser(), "google").await,
        StatusCode::CONFLICT,
        "email_conflict",
    )
    .await;
    assert_eq!(e["details"]["provider"], "google");
    assert_eq!(identities(&app, &lee.token).await["identities"], json!([]));

    // Verified, but lee's account has another Google identity already.
    let b = browser();
    f.google
        .sign_in_as(&google_user("g-300", "Lee", "lee-g@example.com", true));
    let r = link(&app, &b, &lee.token, "google").await;
    signed_in(r, "linked").await;
    f.google
        .sign_in_as(&google_user("g-301", "Lee Two", "lee@example.com", true));
    assert_error(
        sign_in(&app, &browser(), "google").await,
        StatusCode::CONFLICT,
        "email_conflict",
    )
    .await;

    // An unverified address nobody uses: a new account without an email.
    f.google
        .sign_in_as(&google_user("g-400", "Park", "park@example.com", false));
    let body = signed_in(sign_in(&app, &browser(), "google").await, "signed_up").await;
    assert_eq!(me(&app, &token_of(&body)).await["email"], "");
    let r = app
        .signup("park@example.com", "park-password", "park")
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(
        app.login("park@example.com", "park-password")
            .await
            .status(),
        StatusCode::OK,
        "the address stays free"
    );
}

/// Link `provider` to the account of `token` in browser `b`: the callback.
async fn link(app: &TestApp, b: &Client, token: &str, provider: &str) -> Response {
    let r = b
        .post(app.url(&format!("/api/me/identities/{provider}")))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .expect("link");
    assert_eq!(r.status(), StatusCode::OK, "link starts");
    let body: Value = r.parsed().await;
    let at_provider = b
        .get(body["authorize_url"].as_str().expect("authorize_url"))
        .send()
        .await
        .expect("authorize");
    assert_eq!(at_provider.status(), StatusCode::FOUND);
    let back = url::Url::parse(&location(&at_provider)).expect("url");
    call(
        b,
        &app.url(&format!("{}?{}", back.path(), back.query().unwrap_or(""))),
    )
    .await
}

#[actix_web::test]
async fn linking_and_unlinking_follow_the_rules_and_withdrawal_removes_identities() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    let kim = app.user("kim").await;
    let lee = app.user("lee").await;
    let mina = kakao_user(5_000_001, "미나", None, false);

    // Identities are the signed-in user's own business.
    let r = app
        .post_json("/api/me/identities/kakao", &json!({}), None)
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = app.get("/api/me/identities", None).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = app
        .delete_json("/api/me/identities/kakao", &json!({}), None)
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A linking request that does not fit: nothing starts.
    let r = app
        .post_json(
            "/api/me/identities/kakao",
            &json!({"return_to": "https://evil.example/"}),
            Some(&kim.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .post_json(
            "/api/me/identities/kakao",
            &json!({"return_to": "/", "user_id": lee.id}),
            Some(&kim.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_body").await;

    // kim links a Kakao account; it then signs kim in.
    f.kakao.sign_in_as(&mina);
    let body = signed_in(link(&app, &browser(), &kim.token, "kakao").await, "linked").await;
    assert_eq!(body["user"]["id"], kim.id);
    assert!(body["token"].is_null(), "linking issues no session");
    let via = signed_in(sign_in(&app, &browser(), "kakao").await, "signed_in").await;
    assert_eq!(via["user"]["id"], kim.id);

    // The same Kakao account cannot be lee's too, and kim cannot link a
    // second Kakao account.
    assert_error(
        link(&app, &browser(), &lee.token, "kakao").await,
        StatusCode::CONFLICT,
        "identity_taken",
    )
    .await;
    f.kakao
        .sign_in_as(&kakao_user(5_000_002, "other", None, false));
    assert_error(
        link(&app, &browser(), &kim.token, "kakao").await,
        StatusCode::CONFLICT,
        "already_linked",
    )
    .await;

    // kim has a password: Kakao may go. Unlinking what is not linked: 404.
    let r = app
        .delete_json("/api/me/identities/kakao", &json!({}), Some(&kim.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .delete_json("/api/me/identities/kakao", &json!({}), Some(&kim.token))
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    let r = app
        .delete_json("/api/me/identities/naver", &json!({}), Some(&kim.token))
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;

    // An account made by Kakao has no password: its only identity stays,
    // until a second way in exists.
    f.kakao
        .sign_in_as(&kakao_user(5_000_003, "준호", None, false));
    let junho = signed_in(sign_in(&app, &browser(), "kakao").await, "signed_up").await;
    let junho_token = token_of(&junho);
    let r = app
        .delete_json("/api/me/identities/kakao", &json!({}), Some(&junho_token))
        .await;
    let e = assert_error(r, StatusCode::CONFLICT, "last_sign_in_method").await;
    assert_eq!(e["details"]["provider"], "kakao");
    f.google
        .sign_in_as(&google_user("g-junho", "Junho", "junho@gmail.test", true));
    signed_in(
        link(&app, &browser(), &junho_token, "google").await,
        "linked",
    )
    .await;
    let r = app
        .delete_json("/api/me/identities/kakao", &json!({}), Some(&junho_token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .delete_json("/api/me/identities/google", &json!({}), Some(&junho_token))
        .await;
    assert_error(r, StatusCode::CONFLICT, "last_sign_in_method").await;
    // A first password is a second way in (nothing to confirm it with).
    let r = app
        .patch_json(
            "/api/me",
            &json!({"new_password": "junho-password-1"}),
            Some(&junho_token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(identities(&app, &junho_token).await["has_password"], true);

    // A Kakao-only account withdraws without a password; its identity goes
    // with it, and the same Kakao account then makes a new account.
    f.kakao
        .sign_in_as(&kakao_user(5_000_004, "수아", None, false));
    let sua = signed_in(sign_in(&app, &browser(), "kakao").await, "signed_up").await;
    let r = app
        .delete_json("/api/me", &json!({}), Some(&token_of(&sua)))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let anew = signed_in(sign_in(&app, &browser(), "kakao").await, "signed_up").await;
    assert_ne!(anew["user"]["id"], sua["user"]["id"]);
    // An account with a password still confirms it.
    let r = app
        .delete_json("/api/me", &json!({}), Some(&lee.token))
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[actix_web::test]
async fn a_state_is_single_use_short_lived_and_bound_to_its_browser() {
    let f = fakes().await;
    let app = app_with(&f, &[("oauth_flow_ttl_secs", "2")]).await;
    f.kakao
        .sign_in_as(&kakao_user(6_000_001, "상태", None, false));

    // Used once, then a replay of the very same callback URL is refused.
    let b = browser();
    let cb = callback_url(&app, &b, "kakao").await;
    signed_in(call(&b, &cb).await, "signed_up").await;
    state_refused(call(&b, &cb).await, "replayed").await;

    // The callback URL carried to another browser (login CSRF): refused,
    // and it does not use the flow up for its own browser.
    let cb = callback_url(&app, &b, "kakao").await;
    state_refused(call(&browser(), &cb).await, "browser").await;
    signed_in(call(&b, &cb).await, "signed_in").await;

    // Unknown, missing, or another provider's state.
    state_refused(
        call(
            &b,
            &app.url("/api/auth/kakao/callback?code=x&state=made-up"),
        )
        .await,
        "unknown",
    )
    .await;
    state_refused(
        call(&b, &app.url("/api/auth/kakao/callback?code=x")).await,
        "missing",
    )
    .await;
    let cb = callback_url(&app, &b, "kakao").await;
    state_refused(
        call(&b, &cb.replace("/kakao/", "/google/")).await,
        "unknown",
    )
    .await;

    // Too slow: the flow expired.
    let cb = callback_url(&app, &b, "kakao").await;
    tokio::time::sleep(std::time::Duration::from_millis(2_300)).await;
    state_refused(call(&b, &cb).await, "expired").await;

    // return_to: a path on this site only, and honoured.
    let r = start(&app, &b, "kakao", "?return_to=https://evil.example/").await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = start(&app, &b, "kakao", "?return_to=//evil.example/").await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let started = start(&app, &b, "kakao", "?return_to=/chats%3Froom%3D7").await;
    let cb = through_provider(&app, &b, started).await;
    let r = call(&b, &cb).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/chats?room=7");
}

#[actix_web::test]
async fn a_reused_code_or_a_code_for_another_verifier_signs_nobody_in() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    f.kakao
        .sign_in_as(&kakao_user(7_000_001, "코드", None, false));
    let b = browser();

    // Flow A completes; its code is spent.
    let cb_a = callback_url(&app, &b, "kakao").await;
    signed_in(call(&b, &cb_a).await, "signed_up").await;
    let code_a = query_param(&cb_a, "code");

    // Flow B's state with A's spent code: Kakao says invalid_grant.
    let cb_b = callback_url(&app, &b, "kakao").await;
    let state_b = query_param(&cb_b, "state");
    let e = assert_error(
        call(
            &b,
            &app.url(&format!(
                "/api/auth/kakao/callback?code={code_a}&state={state_b}"
            )),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "oauth_code_invalid",
    )
    .await;
    assert_eq!(e["details"]["provider"], "kakao");

    // An injected code: C's code (issued for C's challenge) presented with
    // D's state, so our server sends D's verifier. PKCE refuses it, at
    // Kakao and at Google.
    assert_error(
        call(&b, &injected_callback(&app, &b, "kakao").await).await,
        StatusCode::BAD_REQUEST,
        "oauth_code_invalid",
    )
    .await;
    f.google
        .sign_in_as(&google_user("g-pkce", "Pkce", "pkce@gmail.test", true));
    assert_error(
        call(&b, &injected_callback(&app, &b, "google").await).await,
        StatusCode::BAD_REQUEST,
        "oauth_code_invalid",
    )
    .await;
}

/// A callback URL with the code of one flow and the state of another.
async fn injected_callback(app: &TestApp, b: &Client, provider: &str) -> String {
    let cb_c = callback_url(app, b, provider).await;
    let cb_d = callback_url(app, b, provider).await;
    app.url(&format!(
        "/api/auth/{provider}/callback?code={}&state={}",
        query_param(&cb_c, "code"),
        query_param(&cb_d, "state")
    ))
}

fn query_param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{name} in {url}"))
}

#[actix_web::test]
async fn declined_consent_signs_nobody_in() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    f.kakao
        .sign_in_as(&kakao_user(8_000_001, "거절", None, false));
    f.kakao.deny_next();
    let e = assert_error(
        sign_in(&app, &browser(), "kakao").await,
        StatusCode::FORBIDDEN,
        "oauth_denied",
    )
    .await;
    assert_eq!(e["details"]["error"], "access_denied");
    assert_eq!(e["details"]["provider"], "kakao");
    f.google
        .sign_in_as(&google_user("g-no", "No", "no@gmail.test", true));
    f.google.deny_next();
    assert_error(
        sign_in(&app, &browser(), "google").await,
        StatusCode::FORBIDDEN,
        "oauth_denied",
    )
    .await;
    // A real browser (it asks for HTML) is sent back to the web client's
    // login screen with the code, not shown a JSON body.
    f.kakao.deny_next();
    let b = browser();
    let started = start(&app, &b, "kakao", "").await;
    let back = through_provider(&app, &b, started).await;
    let r = b
        .get(&back)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/#/login?oauth_error=oauth_denied&provider=kakao"
    );
    // A provider name nobody knows is named in no redirect.
    let r = b
        .get(app.url("/api/auth/myspace/callback?code=x&state=y"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(!location(&r).contains("provider="), "{}", location(&r));
    assert!(location(&r).starts_with("/#/login?oauth_error="));
    // Nothing was created: the next (consenting) sign-ins are sign-ups.
    signed_in(sign_in(&app, &browser(), "kakao").await, "signed_up").await;
    signed_in(sign_in(&app, &browser(), "google").await, "signed_up").await;
}

#[actix_web::test]
async fn a_spoiled_google_id_token_signs_nobody_in() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    f.google.sign_in_as(&google_user(
        "g-victim",
        "Victim",
        "victim@gmail.test",
        true,
    ));
    for (spoil, reason) in [
        (Spoil::Tampered, "signature"),
        (Spoil::ForeignKey, "signature"),
        (Spoil::Expired, "expired"),
        (Spoil::WrongAudience, "audience"),
        (Spoil::WrongIssuer, "issuer"),
        (Spoil::WrongNonce, "nonce"),
        (Spoil::UnknownKey, "key"),
    ] {
        f.google.next_token(spoil);
        let e = assert_error(
            sign_in(&app, &browser(), "google").await,
            StatusCode::UNAUTHORIZED,
            "oauth_token_invalid",
        )
        .await;
        assert_eq!(e["details"]["reason"], reason, "{spoil:?}");
    }
    // Nobody was created along the way, and a sound token still works.
    let body = signed_in(sign_in(&app, &browser(), "google").await, "signed_up").await;
    assert_eq!(body["user"]["email"], "victim@gmail.test");
    assert_eq!(
        identities(&app, &token_of(&body)).await["identities"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[actix_web::test]
async fn a_provider_outage_is_a_503_naming_the_provider() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    f.kakao
        .sign_in_as(&kakao_user(9_000_001, "장애", None, false));
    f.google
        .sign_in_as(&google_user("g-down", "Down", "down@gmail.test", true));

    // Kakao's token endpoint fails (after the browser came back).
    let b = browser();
    let cb = callback_url(&app, &b, "kakao").await;
    f.kakao.fail_next(1);
    let e = assert_error(
        call(&b, &cb).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(e["details"]["provider"], "kakao");
    assert!(e["message"].as_str().is_some_and(|m| m.contains("Kakao")));
    // Its profile endpoint fails after a good token answer.
    let cb = callback_url(&app, &b, "kakao").await;
    f.kakao.fail_once("/v2/user/me");
    let e = assert_error(
        call(&b, &cb).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(e["details"]["provider"], "kakao");
    // Back up: a new flow signs in (the failed ones created nothing).
    f.kakao.fail_next(0);
    signed_in(sign_in(&app, &browser(), "kakao").await, "signed_up").await;

    // Google's discovery fails on a node that has not read it yet: the
    // start itself answers 503. With two nodes the other may have it
    // cached; fail enough requests for both.
    let fresh = app_with(&f, &[]).await;
    f.google.fail_next(2);
    let e = assert_error(
        start(&fresh, &browser(), "google", "").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
    assert_eq!(e["details"]["provider"], "google");
    f.google.fail_next(0);
    signed_in(sign_in(&fresh, &browser(), "google").await, "signed_up").await;
}

#[actix_web::test]
async fn providers_without_settings_are_off() {
    let app = spawn_app().await;
    let r = app.get("/api/auth/providers", None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"providers": []})
    );
    for path in [
        "/api/auth/kakao/start",
        "/api/auth/google/start",
        "/api/auth/kakao/callback?code=x&state=y",
        "/api/auth/naver/start",
    ] {
        assert_error(
            app.get(path, None).await,
            StatusCode::NOT_FOUND,
            "provider_disabled",
        )
        .await;
    }
    let kim = app.user("kim").await;
    let r = app
        .post_json("/api/me/identities/google", &json!({}), Some(&kim.token))
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "provider_disabled").await;

    let f = fakes().await;
    let on = app_with(&f, &[]).await;
    let r = on.get("/api/auth/providers", None).await;
    assert_eq!(
        r.json::<Value>().await.expect("json"),
        json!({"providers": ["kakao", "google"]})
    );
    // Starting is throttled per address (each start writes a flow).
    let b = browser();
    let mut last = StatusCode::OK;
    for _ in 0..31 {
        last = start(&on, &b, "kakao", "").await.status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn two_first_sign_ins_of_one_person_at_once_make_one_account() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    f.kakao
        .sign_in_as(&kakao_user(9_500_001, "동시", None, false));
    // Two devices come back from Kakao at the same moment (with two nodes,
    // on different nodes).
    let (b1, b2) = (browser(), browser());
    let cb1 = callback_url(&app, &b1, "kakao").await;
    let cb2 = callback_url(&app, &b2, "kakao").await;
    let (r1, r2) = tokio::join!(call(&b1, &cb1), call(&b2, &cb2));
    assert_eq!(r1.status(), StatusCode::SEE_OTHER);
    assert_eq!(r2.status(), StatusCode::SEE_OTHER);
    let (a, b): (Value, Value) = (r1.parsed().await, r2.parsed().await);
    assert_eq!(a["user"]["id"], b["user"]["id"], "one account");
    let mut outcomes = [
        a["outcome"].as_str().unwrap_or("").to_string(),
        b["outcome"].as_str().unwrap_or("").to_string(),
    ];
    outcomes.sort();
    assert_eq!(outcomes, ["signed_in", "signed_up"]);
}

/// Someone signs up with another person's address and a password of their
/// own (we send a link, which they cannot follow). When the address's
/// owner signs in with a provider that verified it, the account becomes
/// theirs: the squatter's password stops working and their sessions end.
#[actix_web::test]
async fn a_verified_provider_sign_in_takes_an_address_back_from_a_squatter() {
    let f = fakes().await;
    let app = app_with(&f, &[]).await;
    let squatter = app.unverified_user("victim").await;
    assert_eq!(me(&app, &squatter.token).await["email_verified"], false);

    f.google
        .sign_in_as(&google_user("g-900", "Victim", "victim@example.com", true));
    let body = signed_in(
        sign_in(&app, &browser(), "google").await,
        "signed_in_linked",
    )
    .await;
    assert_eq!(body["password_removed"], true, "{body}");
    assert_eq!(body["user"]["id"], squatter.id);
    assert_eq!(body["user"]["email_verified"], true);
    let owner = token_of(&body);
    // The squatter is out: their session ended, their password is gone.
    let r = app.get("/api/me", Some(&squatter.token)).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let r = app.login(&squatter.email, &squatter.password).await;
    assert_error(r, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let ids = identities(&app, &owner).await;
    assert_eq!(ids["has_password"], false);

    // A verified account is linked as before and keeps its password.
    let kim = app.user("kim2").await;
    f.google
        .sign_in_as(&google_user("g-901", "Kim", "kim2@example.com", true));
    let body = signed_in(
        sign_in(&app, &browser(), "google").await,
        "signed_in_linked",
    )
    .await;
    assert_eq!(body["password_removed"], false);
    assert_eq!(me(&app, &kim.token).await["id"], kim.id);
    assert_eq!(identities(&app, &kim.token).await["has_password"], true);
}
