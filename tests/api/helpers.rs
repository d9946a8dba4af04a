//! `spawn_app()`: a real server on a random port with its own SQLite file,
//! plus typed request helpers.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use jangteo::config::Config;
use jangteo::Application;
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

pub use crate::common::{eventually, refuses_connections, Ws};

pub struct TestApp {
    /// Set when running on MySQL/MariaDB.
    pub database_url: Option<String>,
    pub addr: String,
    /// Every node's address (one unless `JT_TEST_NODES=2`). API requests
    /// and WebSocket connections take turns between them, so the whole
    /// acceptance suite checks that several nodes behave as one.
    pub nodes: Vec<String>,
    turn: std::sync::atomic::AtomicUsize,
    pub client: Client,
    pub data_dir: PathBuf,
    pub app_state: actix_web::web::Data<jangteo::AppState>,
    /// The settings the nodes were started with (`restart` reuses them).
    extra: Vec<(String, String)>,
    /// One per node: tells it to stop, and its `Application::run` task.
    running: Vec<(
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    _dir: Option<tempfile::TempDir>,
}

/// Settings every test server gets: port 0, a fresh data directory, cheap
/// Argon2 parameters (the production cost is pointless in tests).
fn base_pairs(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("listen".into(), "127.0.0.1:0".into()),
        ("data_dir".into(), dir.display().to_string()),
        ("argon2_memory_kib".into(), "64".into()),
        ("argon2_iterations".into(), "1".into()),
        // Every test user signs up from 127.0.0.1.
        ("signup_max_per_address".into(), "100000".into()),
        // Tests send bursts far above a person's typing.
        ("ws_frames_per_sec".into(), "100000".into()),
        (
            "log".into(),
            std::env::var("TEST_LOG").unwrap_or_else(|_| "warn".into()),
        ),
        ("workers".into(), "2".into()),
    ]
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Spawn with extra settings, e.g. `&[("session_ttl_secs", "2")]`.
pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let mut app = spawn_app_in(path, extra).await;
    app._dir = Some(dir);
    app
}

/// With `JT_TEST_MYSQL_URL` (e.g. `mysql://root@127.0.0.1:3306`), every
/// test server runs on its own fresh MySQL/MariaDB database instead of a
/// SQLite file: the same acceptance tests, on the other relational engine.
/// The database name derives from the data directory, so a restart test
/// reopens the same one.
async fn mysql_database(data_dir: &std::path::Path) -> Option<String> {
    let base = std::env::var("JT_TEST_MYSQL_URL").ok()?;
    let name = format!("jt_{:016x}", dir_hash(data_dir));
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&base)
        .await
        .expect("JT_TEST_MYSQL_URL is set but the server does not answer");
    sqlx::Executor::execute(
        &mut conn,
        format!("CREATE DATABASE IF NOT EXISTS {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
            .as_str(),
    )
    .await
    .expect("create test database");
    Some(format!("{}/{name}", base.trim_end_matches('/')))
}

fn dir_hash(data_dir: &std::path::Path) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    h.finish()
}

/// Spawn on an existing data directory (to test restarts).
///
/// Besides `JT_TEST_MYSQL_URL` and `JT_TEST_REDIS_URL`:
/// `JT_TEST_MONGODB_URL` (e.g. `mongodb://127.0.0.1:27017`) puts messages
/// in a MongoDB database of the test's own; `JT_TEST_KAFKA_BROKERS` (e.g.
/// `127.0.0.1:9092`) runs the bus on Kafka with topics of the test's own;
/// `JT_TEST_NODES=2` starts a second node on the same backends.
pub async fn spawn_app_in(data_dir: PathBuf, extra: &[(&str, &str)]) -> TestApp {
    let mut pairs = base_pairs(&data_dir);
    let hash = dir_hash(&data_dir);
    if let Ok(url) = std::env::var("JT_TEST_MONGODB_URL") {
        pairs.push((
            "mongodb_url".into(),
            format!("{}/jt_{hash:016x}", url.trim_end_matches('/')),
        ));
    }
    if let Ok(brokers) = std::env::var("JT_TEST_KAFKA_BROKERS") {
        pairs.push(("kafka_brokers".into(), brokers));
        pairs.push(("kafka_topic_prefix".into(), format!("jt{hash:016x}.")));
        pairs.push(("kafka_partitions".into(), "2".into()));
    }
    let node_count: usize = std::env::var("JT_TEST_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
        .max(1);
    let database_url = mysql_database(&data_dir).await;
    if let Some(url) = &database_url {
        pairs.push(("database_url".into(), url.clone()));
    }
    // With JT_TEST_REDIS_URL, sessions, rate limits and caches live in Redis
    // under a prefix of this data directory's own.
    if let Ok(url) = std::env::var("JT_TEST_REDIS_URL") {
        pairs.push(("redis_url".into(), url));
        pairs.push(("redis_prefix".into(), format!("jt:{hash:016x}:")));
    }
    pairs.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut nodes = Vec::new();
    let mut running = Vec::new();
    let mut first_state = None;
    for n in 0..node_count {
        let mut pairs = pairs.clone();
        if node_count > 1 {
            pairs.push(("node_id".into(), format!("node-{n}")));
        }
        let config = Config::from_pairs(pairs).expect("valid test config");
        jangteo::telemetry::init(&config.log, config.log_format);
        let app = Application::build(config)
            .await
            .expect("application builds");
        nodes.push(format!("http://127.0.0.1:{}", app.port()));
        first_state.get_or_insert_with(|| app.state());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = actix_web::rt::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        running.push((stop, task));
    }
    let app_state = first_state.expect("one node");
    TestApp {
        database_url,
        addr: nodes[0].clone(),
        nodes,
        turn: std::sync::atomic::AtomicUsize::new(0),
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // actix-web closes a keep-alive connection after 5 s idle; a
            // pooled connection reused at that moment fails with
            // `IncompleteMessage` (seen in a browser flow that paused a few
            // seconds between API calls). Never reuse one idle that long.
            .pool_idle_timeout(std::time::Duration::from_secs(2))
            .build()
            .expect("client"),
        data_dir,
        app_state,
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        running,
        _dir: None,
    }
}

/// A logged-in user.
pub struct User {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub token: String,
}

impl TestApp {
    /// Stop every node the way a SIGTERM does and wait until each has
    /// finished: ports closed, sessions closed, timers and background loops
    /// stopped, writes flushed, stores closed. The data (directory,
    /// databases) stays for [`TestApp::restart`].
    pub async fn stop(&mut self) {
        for (stop, task) in self.running.drain(..) {
            let _ = stop.send(());
            match tokio::time::timeout(Duration::from_secs(30), task).await {
                Ok(Ok(Ok(()))) => {}
                other => panic!("node did not stop cleanly: {other:?}"),
            }
        }
    }

    /// Stop, then start the same nodes on the same data with other settings.
    pub async fn restart_with(mut self, extra: &[(&str, &str)]) -> TestApp {
        self.stop().await;
        let mut again = spawn_app_in(self.data_dir.clone(), extra).await;
        again._dir = self._dir.take();
        again
    }

    /// Stop, then start the same nodes again on the same data.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let extra: Vec<(&str, &str)> = self
            .extra
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut again = spawn_app_in(self.data_dir.clone(), &extra).await;
        again._dir = self._dir.take();
        again
    }

    /// API paths go to the nodes in turn; operational ones (`/ready`,
    /// `/metrics`, ...) to the first node, whose state the test can reach.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/api/") {
            format!("{}{}", self.next_node(), path)
        } else {
            format!("{}{}", self.addr, path)
        }
    }

    fn next_node(&self) -> &str {
        let i = self.turn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.nodes[i % self.nodes.len()]
    }

    /// A request to the API (to the nodes in turn), with a JSON body and a
    /// bearer token when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> Response {
        let mut req = self.client.request(method, self.url(path));
        if let Some(body) = body {
            req = req.json(body);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::GET, path, None, token).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::POST, path, None, token).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::PUT, path, None, token).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.send(Method::DELETE, path, None, token).await
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(Method::POST, path, Some(body), token).await
    }

    pub async fn put_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(Method::PUT, path, Some(body), token).await
    }

    pub async fn patch_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(Method::PATCH, path, Some(body), token).await
    }

    pub async fn delete_json(&self, path: &str, body: &Value, token: Option<&str>) -> Response {
        self.send(Method::DELETE, path, Some(body), token).await
    }

    pub async fn signup(&self, email: &str, password: &str, nickname: &str) -> Response {
        self.post_json(
            "/api/auth/signup",
            &json!({"email": email, "password": password, "nickname": nickname}),
            None,
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            &json!({"email": email, "password": password}),
            None,
        )
        .await
    }

    /// Sign up and log in a fresh user whose email is verified (the link's
    /// token is made here, standing in for the mailbox; the tests of the
    /// mailed link itself read it from the email).
    pub async fn user(&self, name: &str) -> User {
        let u = self.unverified_user(name).await;
        self.verify_email(&u).await;
        u
    }

    /// Verify `u`'s email through `POST /api/auth/verify-email`.
    pub async fn verify_email(&self, u: &User) {
        let token = self
            .app_state
            .accounts
            .issue_verification_token(u.id)
            .await
            .expect("issue a token")
            .expect("the user has an unverified address");
        let r = self
            .post_json("/api/auth/verify-email", &json!({"token": token}), None)
            .await;
        assert_eq!(r.status(), StatusCode::OK, "verify {}", u.email);
    }

    /// Sign up and log in a fresh user; the email stays unverified.
    pub async fn unverified_user(&self, name: &str) -> User {
        let email = format!("{name}@example.com");
        let password = format!("{name}-password");
        let r = self.signup(&email, &password, name).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "signup {name}");
        let r = self.login(&email, &password).await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        let v = r.json::<Value>().await.expect("json");
        User {
            id: v["user"]["id"].as_i64().expect("id"),
            email,
            password,
            token: v["token"].as_str().expect("token").to_string(),
        }
    }

    pub async fn login_token(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password).await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        r.json::<Value>().await.expect("json")["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Make an admin the only supported way: the `jangteo create-admin` CLI,
    /// against this server's database while it runs.
    pub async fn admin(&self) -> User {
        let email = "admin@example.com";
        let password = "admin-password";
        let mut cmd = crate::common::jangteo_command();
        cmd.args([
            "create-admin",
            "--email",
            email,
            "--nickname",
            "관리자",
            "--password",
            password,
        ])
        .args([
            "--data-dir",
            &self.data_dir.display().to_string(),
            "--log",
            "warn",
        ]);
        if let Some(url) = &self.database_url {
            cmd.args(["--database-url", url]);
        }
        let out = cmd.output().expect("run create-admin");
        assert!(
            out.status.success(),
            "create-admin: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = self.login_token(email, password).await;
        let me: Value = self
            .get("/api/me", Some(&token))
            .await
            .json()
            .await
            .expect("json");
        User {
            id: me["id"].as_i64().expect("id"),
            email: email.into(),
            password: password.into(),
            token,
        }
    }
}

/// One request that must be refused, zero2prod-style table row:
/// (what it tries, method, path, JSON body, bearer token, status, code).
pub type Refusal<'a> = (
    &'a str,
    reqwest::Method,
    String,
    Option<Value>,
    Option<&'a str>,
    StatusCode,
    &'a str,
);

impl TestApp {
    /// Send every row and check its status and error code.
    pub async fn assert_refusals(&self, cases: Vec<Refusal<'_>>) {
        for (what, method, path, body, token, status, code) in cases {
            let mut req = self.client.request(method.clone(), self.url(&path));
            if let Some(body) = &body {
                req = req.json(body);
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.expect("request");
            assert_eq!(r.status(), status, "{what}: {method} {path}");
            let body: Value = r.json().await.expect("error body is JSON");
            assert_eq!(body["code"], code, "{what}: {method} {path}: {body}");
            assert!(body["message"].is_string(), "{what}: {body}");
        }
    }
}

/// The JSON body of a response, whatever its status (a body that is not
/// JSON fails the test).
pub trait Parsed {
    async fn parsed<T: serde::de::DeserializeOwned>(self) -> T;
}

impl Parsed for Response {
    async fn parsed<T: serde::de::DeserializeOwned>(self) -> T {
        self.json().await.expect("json")
    }
}

/// Assert status and error code; return the error body.
pub async fn assert_error(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status for expected code {code}");
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(body["message"].is_string(), "body: {body}");
    body
}

impl TestApp {
    /// Connect with a bearer header and synchronise (ping/pong), so live
    /// events flow at once.
    pub async fn ws(&self, token: &str) -> Ws {
        let mut ws = self.ws_raw(token).await;
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
        ws
    }

    /// Connect with a tiny, fixed TCP receive buffer (no kernel
    /// auto-tuning): a client that stops reading stalls the server quickly.
    pub async fn ws_small_buffer(&self, token: &str) -> Ws {
        let port: u16 = self
            .addr
            .rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("port");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(8 * 1024).expect("rcvbuf");
        let tcp = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("connect");
        let mut req = format!("ws://127.0.0.1:{port}/ws")
            .into_client_request()
            .expect("request");
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (stream, _) =
            tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
                .await
                .expect("ws handshake");
        let mut ws = Ws {
            stream,
            backlog: VecDeque::new(),
        };
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
        ws
    }

    /// Connect without sending anything (for resume-first tests).
    pub async fn ws_raw(&self, token: &str) -> Ws {
        Ws::connect(self.next_node(), token).await
    }

    pub async fn open_room(&self, owner: &User, name: &str) -> i64 {
        let r = self
            .post_json(
                "/api/rooms",
                &json!({"kind": "open", "name": name}),
                Some(&owner.token),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.expect("json")["id"]
            .as_i64()
            .expect("id")
    }

    pub async fn direct_room(&self, a: &User, b: &User) -> i64 {
        let r = self
            .post_json(
                "/api/rooms",
                &json!({"kind": "direct", "peer": b.id}),
                Some(&a.token),
            )
            .await;
        assert!(r.status().is_success(), "direct room: {}", r.status());
        r.json::<Value>().await.expect("json")["id"]
            .as_i64()
            .expect("id")
    }

    pub async fn join(&self, user: &User, room: i64) {
        let r = self
            .post_json(
                &format!("/api/rooms/{room}/join"),
                &json!({}),
                Some(&user.token),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "join");
    }

    pub async fn my_rooms(&self, user: &User) -> Value {
        let r = self.get("/api/me/rooms", Some(&user.token)).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }

    pub async fn unread(&self, user: &User, room: i64) -> i64 {
        let rooms = self.my_rooms(user).await;
        rooms["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|r| r["id"] == room)
            .map(|r| r["unread"].as_i64().expect("unread"))
            .expect("room listed")
    }

    pub async fn history(&self, user: &User, room: i64, query: &str) -> Vec<Value> {
        let r = self
            .get(
                &format!("/api/rooms/{room}/messages{query}"),
                Some(&user.token),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.expect("json")
    }
}
