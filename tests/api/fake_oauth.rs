//! Local stand-ins for Kakao Login and Google's OpenID Connect: real HTTP
//! servers on 127.0.0.1 (random ports) that follow the providers'
//! documented endpoints and payloads, with the state in memory.
//!
//! Both play the whole provider, including the part a person does in the
//! browser: `sign_in_as(..)` says who is signed in at the provider, and the
//! authorization endpoint then redirects straight back with a code (or,
//! after `deny_next()`, with `error=access_denied`, as when the user
//! presses "cancel" on the consent screen). Codes are single-use and bound
//! to the client, the redirect URI and the PKCE challenge; the token
//! endpoint checks `code_verifier` against the challenge (RFC 7636) and
//! answers `400 invalid_grant` otherwise, as both providers do.
//! `fail_next(n)` makes the next `n` requests answer 500 (an outage).
//!
//! Kakao: `GET /oauth/authorize`, `POST /oauth/token` (form), and the API
//! host's `GET /v2/user/me` (Bearer token), one server for both hosts.
//!
//! Google: `/.well-known/openid-configuration` (the issuer is the fake's
//! base URL), `GET /o/oauth2/v2/auth`, `POST /token`, `GET
//! /oauth2/v3/certs` (the JWKS). ID tokens are RS256, signed with the
//! committed test key `fixtures/oauth_fake_google.der`; `next_token(..)`
//! spoils the next one in a chosen way (tampered, foreign key, expired,
//! wrong audience, issuer or nonce, unknown key id).

use std::collections::HashMap;
use std::sync::Mutex;

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::fake_pay::{header, lock, serve, Running};

const GOOGLE_KEY: &[u8] = include_bytes!("fixtures/oauth_fake_google.der");
const GOOGLE_KEY_N: &str = include_str!("fixtures/oauth_fake_google.jwk-n");
const ATTACKER_KEY: &[u8] = include_bytes!("fixtures/oauth_attacker.der");
const GOOGLE_KID: &str = "fake-google-key-1";

/// A person's account at Kakao.
#[derive(Debug, Clone)]
pub struct KakaoUser {
    pub id: i64,
    pub nickname: String,
    pub email: Option<String>,
    /// `is_email_verified` and `is_email_valid`.
    pub verified: bool,
}

/// A person's account at Google.
#[derive(Debug, Clone)]
pub struct GoogleUser {
    pub sub: String,
    pub name: String,
    pub email: String,
    pub verified: bool,
}

/// How the next ID token is spoiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spoil {
    /// The payload changed after signing (another `sub`).
    Tampered,
    /// Signed with a key Google never published (same `kid`).
    ForeignKey,
    /// `exp` an hour ago.
    Expired,
    /// `aud` another client's id.
    WrongAudience,
    /// `iss` another issuer.
    WrongIssuer,
    /// `nonce` not the one the client sent.
    WrongNonce,
    /// A `kid` the JWKS does not have.
    UnknownKey,
}

struct Grant<U> {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
    user: U,
    used: bool,
}

struct OAuthState<U> {
    client_id: String,
    client_secret: Option<String>,
    redirect_uri: String,
    base_url: String,
    user: Option<U>,
    deny_next: bool,
    fail_next: usize,
    /// A path whose next request fails.
    fail_once: Option<String>,
    spoil: Option<Spoil>,
    codes: HashMap<String, Grant<U>>,
    tokens: HashMap<String, U>,
    counter: u64,
    /// Paths requested, in order.
    calls: Vec<String>,
}

impl<U> OAuthState<U> {
    fn new(client_id: &str, client_secret: Option<&str>, redirect_uri: &str) -> Self {
        OAuthState {
            client_id: client_id.to_string(),
            client_secret: client_secret.map(str::to_string),
            redirect_uri: redirect_uri.to_string(),
            base_url: String::new(),
            user: None,
            deny_next: false,
            fail_next: 0,
            fail_once: None,
            spoil: None,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            counter: 0,
            calls: Vec::new(),
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}-{}-{}", self.counter, jangteo::domain::now_ms())
    }
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn json_reply(status: u16, body: &Value) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("status code"))
        .json(body)
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The authorization endpoint: the person is signed in already and
/// consents (or declines); back to the client's redirect URI.
fn authorize<U: Clone>(req: &HttpRequest, s: &mut OAuthState<U>, oidc: bool) -> HttpResponse {
    let q = query(req);
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != s.client_id {
        return json_reply(
            400,
            &json!({"error": "invalid_client", "error_description": "unknown client_id"}),
        );
    }
    if get("redirect_uri") != s.redirect_uri {
        return json_reply(
            400,
            &json!({"error": "redirect_uri_mismatch", "error_description": "redirect_uri is not registered"}),
        );
    }
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").is_empty()
        || (oidc && (!get("scope").split(' ').any(|x| x == "openid") || get("nonce").is_empty()))
    {
        return json_reply(400, &json!({"error": "invalid_request"}));
    }
    let mut back = url::Url::parse(&s.redirect_uri).expect("redirect uri");
    {
        let mut pairs = back.query_pairs_mut();
        if std::mem::take(&mut s.deny_next) {
            pairs
                .append_pair("error", "access_denied")
                .append_pair("error_description", "User denied access");
        } else {
            let Some(user) = s.user.clone() else {
                return json_reply(400, &json!({"error": "login_required"}));
            };
            let code = s.next_id("code");
            s.codes.insert(
                code.clone(),
                Grant {
                    client_id: s.client_id.clone(),
                    redirect_uri: s.redirect_uri.clone(),
                    challenge: get("code_challenge"),
                    nonce: q.get("nonce").cloned(),
                    user,
                    used: false,
                },
            );
            pairs.append_pair("code", &code);
        }
        if let Some(state) = q.get("state") {
            pairs.append_pair("state", state);
        }
    }
    HttpResponse::Found()
        .insert_header((LOCATION, back.to_string()))
        .finish()
}

/// The token endpoint's checks, shared: client, code (single use), its
/// redirect URI and the PKCE verifier. `Err` is the provider's answer
/// (status and body).
fn redeem<U: Clone>(
    s: &mut OAuthState<U>,
    f: &HashMap<String, String>,
    invalid_client: Value,
    invalid_grant: Value,
) -> Result<(U, Option<String>), (u16, Value)> {
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    if get("grant_type") != "authorization_code" {
        return Err((400, json!({"error": "unsupported_grant_type"})));
    }
    if get("client_id") != s.client_id
        || s.client_secret
            .as_deref()
            .is_some_and(|sec| get("client_secret") != sec)
    {
        return Err((401, invalid_client));
    }
    let Some(grant) = s.codes.get_mut(&get("code")) else {
        return Err((400, invalid_grant));
    };
    if grant.used
        || grant.client_id != get("client_id")
        || grant.redirect_uri != get("redirect_uri")
        || grant.challenge != s256(&get("code_verifier"))
    {
        // A code is spent by any attempt to redeem it (RFC 6749 4.1.2).
        grant.used = true;
        return Err((400, invalid_grant));
    }
    grant.used = true;
    Ok((grant.user.clone(), grant.nonce.clone()))
}

// ================================================================= Kakao

pub struct FakeKakao {
    state: web::Data<Mutex<OAuthState<KakaoUser>>>,
    running: Running,
}

async fn kakao_handler(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<OAuthState<KakaoUser>>>,
) -> HttpResponse {
    let mut s = lock(&state);
    s.calls.push(req.path().to_string());
    if s.fail_once.as_deref() == Some(req.path()) {
        s.fail_once = None;
        return json_reply(500, &json!({"msg": "internal server error", "code": -1}));
    }
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return json_reply(500, &json!({"msg": "internal server error", "code": -1}));
    }
    match (req.method().as_str(), req.path()) {
        ("GET", "/oauth/authorize") => authorize(&req, &mut s, false),
        ("POST", "/oauth/token") => {
            let f = form(&body);
            let redeemed = redeem(
                &mut s,
                &f,
                json!({"error": "invalid_client", "error_description": "Bad client credentials", "error_code": "KOE010"}),
                json!({"error": "invalid_grant", "error_description": "authorization code not found for code", "error_code": "KOE320"}),
            );
            match redeemed {
                Err((status, body)) => json_reply(status, &body),
                Ok((user, _)) => {
                    let token = s.next_id("kakao-at");
                    s.tokens.insert(token.clone(), user);
                    json_reply(
                        200,
                        &json!({"token_type": "bearer", "access_token": token, "expires_in": 21599,
                                "refresh_token": s.next_id("kakao-rt"), "refresh_token_expires_in": 5_183_999,
                                "scope": "account_email profile_nickname"}),
                    )
                }
            }
        }
        ("GET", "/v2/user/me") => {
            let token = header(&req, "authorization")
                .and_then(|h| h.strip_prefix("Bearer ").map(str::to_string))
                .unwrap_or_default();
            let Some(u) = s.tokens.get(&token) else {
                return json_reply(
                    401,
                    &json!({"msg": "this access token does not exist", "code": -401}),
                );
            };
            let mut account = json!({
                "profile_nickname_needs_agreement": false,
                "profile": {"nickname": u.nickname, "is_default_nickname": false},
            });
            if let Some(email) = &u.email {
                account["has_email"] = json!(true);
                account["email_needs_agreement"] = json!(false);
                account["is_email_valid"] = json!(u.verified);
                account["is_email_verified"] = json!(u.verified);
                account["email"] = json!(email);
            }
            json_reply(
                200,
                &json!({"id": u.id, "connected_at": "2026-11-27T01:02:03Z",
                        "properties": {"nickname": u.nickname}, "kakao_account": account}),
            )
        }
        _ => json_reply(404, &json!({"msg": "not found", "code": -404})),
    }
}

impl FakeKakao {
    pub async fn start(
        client_id: &str,
        client_secret: Option<&str>,
        redirect_uri: &str,
    ) -> FakeKakao {
        let state = web::Data::new(Mutex::new(OAuthState::new(
            client_id,
            client_secret,
            redirect_uri,
        )));
        let running = serve(state.clone(), kakao_handler);
        lock(&state).base_url = running.base_url.clone();
        FakeKakao { state, running }
    }

    pub fn base_url(&self) -> String {
        self.running.base_url.clone()
    }

    pub fn sign_in_as(&self, user: &KakaoUser) {
        lock(&self.state).user = Some(user.clone());
    }

    /// The next authorization is declined by the user.
    pub fn deny_next(&self) {
        lock(&self.state).deny_next = true;
    }

    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }

    /// The next request of `path` fails.
    pub fn fail_once(&self, path: &str) {
        lock(&self.state).fail_once = Some(path.to_string());
    }

    pub fn calls(&self) -> Vec<String> {
        lock(&self.state).calls.clone()
    }
}

// ================================================================ Google

pub struct FakeGoogle {
    state: web::Data<Mutex<OAuthState<GoogleUser>>>,
    running: Running,
}

fn id_token(s: &mut OAuthState<GoogleUser>, user: &GoogleUser, nonce: Option<&str>) -> String {
    let spoil = s.spoil.take();
    let now = jangteo::domain::now_ms() / 1000;
    let mut claims = json!({
        "iss": s.base_url, "azp": s.client_id, "aud": s.client_id, "sub": user.sub,
        "email": user.email, "email_verified": user.verified, "name": user.name,
        "nonce": nonce, "iat": now, "exp": now + 3600,
    });
    match spoil {
        Some(Spoil::Expired) => {
            claims["iat"] = json!(now - 7200);
            claims["exp"] = json!(now - 3600);
        }
        Some(Spoil::WrongAudience) => {
            claims["aud"] = json!("someone-else.apps.googleusercontent.com")
        }
        Some(Spoil::WrongIssuer) => claims["iss"] = json!("https://accounts.evil.example"),
        Some(Spoil::WrongNonce) => claims["nonce"] = json!("not-the-nonce"),
        _ => {}
    }
    let mut head = Header::new(Algorithm::RS256);
    head.kid = Some(if spoil == Some(Spoil::UnknownKey) {
        "rotated-away".to_string()
    } else {
        GOOGLE_KID.to_string()
    });
    let key = if spoil == Some(Spoil::ForeignKey) {
        ATTACKER_KEY
    } else {
        GOOGLE_KEY
    };
    let token = encode(&head, &claims, &EncodingKey::from_rsa_der(key)).expect("sign ID token");
    if spoil != Some(Spoil::Tampered) {
        return token;
    }
    // Same header and signature, another payload: someone else's `sub`.
    let parts: Vec<&str> = token.split('.').collect();
    claims["sub"] = json!("someone-else");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).expect("claims"));
    format!("{}.{payload}.{}", parts[0], parts[2])
}

async fn google_handler(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<OAuthState<GoogleUser>>>,
) -> HttpResponse {
    let mut s = lock(&state);
    s.calls.push(req.path().to_string());
    if s.fail_next > 0 {
        s.fail_next -= 1;
        return json_reply(500, &json!({"error": "internal_failure"}));
    }
    let base = s.base_url.clone();
    match (req.method().as_str(), req.path()) {
        ("GET", "/.well-known/openid-configuration") => json_reply(
            200,
            &json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/o/oauth2/v2/auth"),
                "token_endpoint": format!("{base}/token"),
                "userinfo_endpoint": format!("{base}/v1/userinfo"),
                "jwks_uri": format!("{base}/oauth2/v3/certs"),
                "response_types_supported": ["code", "token", "id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile"],
                "code_challenge_methods_supported": ["plain", "S256"],
            }),
        ),
        ("GET", "/o/oauth2/v2/auth") => authorize(&req, &mut s, true),
        ("POST", "/token") => {
            let f = form(&body);
            let redeemed = redeem(
                &mut s,
                &f,
                json!({"error": "invalid_client", "error_description": "Unauthorized"}),
                json!({"error": "invalid_grant", "error_description": "Bad Request"}),
            );
            match redeemed {
                Err((status, body)) => json_reply(status, &body),
                Ok((user, nonce)) => {
                    let token = id_token(&mut s, &user, nonce.as_deref());
                    let access = s.next_id("ya29");
                    s.tokens.insert(access.clone(), user);
                    json_reply(
                        200,
                        &json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer",
                                "scope": "openid https://www.googleapis.com/auth/userinfo.email https://www.googleapis.com/auth/userinfo.profile",
                                "id_token": token}),
                    )
                }
            }
        }
        ("GET", "/oauth2/v3/certs") => json_reply(
            200,
            &json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": GOOGLE_KID,
                              "n": GOOGLE_KEY_N.trim(), "e": "AQAB"}]}),
        ),
        _ => json_reply(404, &json!({"error": "not_found"})),
    }
}

impl FakeGoogle {
    pub async fn start(client_id: &str, client_secret: &str, redirect_uri: &str) -> FakeGoogle {
        let state = web::Data::new(Mutex::new(OAuthState::new(
            client_id,
            Some(client_secret),
            redirect_uri,
        )));
        let running = serve(state.clone(), google_handler);
        lock(&state).base_url = running.base_url.clone();
        FakeGoogle { state, running }
    }

    /// Also the issuer.
    pub fn base_url(&self) -> String {
        self.running.base_url.clone()
    }

    pub fn sign_in_as(&self, user: &GoogleUser) {
        lock(&self.state).user = Some(user.clone());
    }

    pub fn deny_next(&self) {
        lock(&self.state).deny_next = true;
    }

    pub fn fail_next(&self, n: usize) {
        lock(&self.state).fail_next = n;
    }

    /// Spoil the next ID token.
    pub fn next_token(&self, spoil: Spoil) {
        lock(&self.state).spoil = Some(spoil);
    }
}
