//! What every integration-test binary shares: a WebSocket client for
//! protocol v1, `eventually` for conditions that become true with time,
//! `jangteo` server processes whose port is read from their log, and
//! signing up over plain HTTP. Included by `tests/api`, `tests/cli.rs` and
//! `tests/cluster.rs`; each uses a part of it.
#![allow(dead_code, reason = "each test binary uses a different part")]

use std::collections::VecDeque;
use std::future::Future;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

// ------------------------------------------------------------- eventually

/// Poll `check` until it returns `Some`, or panic with `what` after
/// `deadline`. For conditions that come true with wall-clock time (TTLs,
/// timers, idle actors): the test waits only as long as needed, and a
/// slow machine gets the whole deadline instead of a fixed sleep.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "not within {deadline:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ------------------------------------------------------- server processes

/// The `jangteo` binary with no `JANGTEO_*` setting of the caller's.
pub fn jangteo_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jangteo"));
    for (k, _) in std::env::vars() {
        if k.starts_with("JANGTEO_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A running `jangteo serve` (or other command) process.
pub struct ServerProcess {
    pub child: Child,
    /// `127.0.0.1:PORT`, as logged.
    pub addr: String,
    /// Every stdout line after the address line.
    pub lines: mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Start `cmd` with port 0 and wait for the log line naming the bound
    /// address. Stdout is taken; stderr is whatever `cmd` says.
    pub fn spawn(mut cmd: Command) -> Result<ServerProcess, String> {
        let mut child = cmd
            .env("JANGTEO_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn jangteo: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        loop {
            let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) else {
                let _ = child.kill();
                let _ = child.wait();
                return Err("the server did not log its address within 60 s".into());
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                return Ok(ServerProcess {
                    child,
                    addr,
                    lines: rx,
                });
            }
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Free a port for a service of a test's own.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Nothing accepts connections on `addr` (`127.0.0.1:PORT` or a base URL).
pub fn refuses_connections(addr: &str) -> bool {
    let hostport = addr.trim_start_matches("http://");
    std::net::TcpStream::connect(hostport).is_err()
}

// ------------------------------------------------------------ accounts

/// Sign up `name` at `base` (`http://HOST:PORT`) and log in; returns
/// (user id, session token). Password: `password-123`.
pub async fn account(client: &reqwest::Client, base: &str, name: &str) -> (i64, String) {
    account_on(client, base, base, name).await
}

/// Sign up on one node and log in on another.
pub async fn account_on(
    client: &reqwest::Client,
    signup_base: &str,
    login_base: &str,
    name: &str,
) -> (i64, String) {
    let email = format!("{name}@example.com");
    let r = client
        .post(format!("{signup_base}/api/auth/signup"))
        .json(&json!({"email": email, "password": "password-123", "nickname": name}))
        .send()
        .await
        .expect("signup");
    assert_eq!(r.status(), reqwest::StatusCode::ACCEPTED, "signup {name}");
    let r = client
        .post(format!("{login_base}/api/auth/login"))
        .json(&json!({"email": email, "password": "password-123"}))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "login {name}");
    let v = r.json::<Value>().await.expect("json");
    let id = v["user"]["id"].as_i64().expect("id");
    let token = v["token"].as_str().expect("token").to_string();
    (id, token)
}

// ---------------------------------------------------------------- email

/// Every base64 body part of an email (as sent over SMTP or written as an
/// `.eml` file), decoded and joined.
pub fn mail_text(data: &str) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    let mut in_b64_part = false;
    let mut in_body = false;
    let mut chunk = String::new();
    for line in data.lines() {
        if line
            .to_ascii_lowercase()
            .starts_with("content-transfer-encoding: base64")
        {
            in_b64_part = true;
            in_body = false;
            continue;
        }
        if in_b64_part && !in_body {
            if line.is_empty() {
                in_body = true;
            }
            continue;
        }
        if in_body {
            if line.is_empty() || line.starts_with("--") {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&chunk) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                    out.push('\n');
                }
                chunk.clear();
                in_b64_part = false;
                in_body = false;
            } else {
                chunk.push_str(line.trim());
            }
        }
    }
    out
}

/// The token of the newest verification link mailed to `email`, from the
/// `.eml` files (`verify-*.eml`) in `dirs` (each node's
/// `data_dir/outbox-mail`).
pub fn verification_token_in(dirs: &[std::path::PathBuf], email: &str) -> Option<String> {
    let mut found: Vec<(std::time::SystemTime, String)> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if !(name.starts_with("verify-") && name.ends_with(".eml")) {
                continue;
            }
            let data = std::fs::read_to_string(e.path()).unwrap_or_default();
            if !data.contains(email) {
                continue;
            }
            let text = mail_text(&data);
            let token = text.split("token=").nth(1).map(|rest| {
                rest.chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect::<String>()
            });
            let when = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            found.extend(token.filter(|t| !t.is_empty()).map(|t| (when, t)));
        }
    }
    found.sort();
    found.pop().map(|(_, t)| t)
}

/// Follow the verification link mailed to `email` (written as `.eml` by
/// one of the nodes whose mail folders are `dirs`).
pub async fn verify_account(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    dirs: &[std::path::PathBuf],
) {
    let token = eventually(
        Duration::from_secs(30),
        "the verification email is written",
        || async { verification_token_in(dirs, email) },
    )
    .await;
    let r = client
        .post(format!("{base}/api/auth/verify-email"))
        .json(&json!({ "token": token }))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "verify {email}");
}

// ------------------------------------------------------------ WebSocket

pub type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client speaking protocol v1.
pub struct Ws {
    pub stream: WsStream,
    /// Frames read but not yet consumed by an `expect`.
    pub backlog: VecDeque<Value>,
}

pub const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    /// Connect to the node at `base` (`http://127.0.0.1:PORT`) without
    /// sending anything.
    pub async fn connect(base: &str, token: &str) -> Ws {
        Ws::try_connect(base, token).await.expect("ws connect")
    }

    pub async fn try_connect(base: &str, token: &str) -> Result<Ws, String> {
        let mut req = format!(
            "ws://127.0.0.1:{}/ws",
            base.rsplit(':').next().expect("port")
        )
        .into_client_request()
        .map_err(|e| e.to_string())?;
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
        let (stream, _) = tokio_tungstenite::connect_async(req)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Ws {
            stream,
            backlog: VecDeque::new(),
        })
    }

    /// Open `/ws` on the node at `base` with these request headers (e.g.
    /// `authorization`, `origin`) and nothing else; a refused upgrade is
    /// the handshake error, whose `Http` variant holds status and body.
    pub async fn handshake(
        base: &str,
        headers: &[(&str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!(
            "ws://127.0.0.1:{}/ws",
            base.rsplit(':').next().expect("port")
        )
        .into_client_request()?;
        for (name, value) in headers {
            req.headers_mut().append(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name"),
                value.parse().expect("header value"),
            );
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await?;
        Ok(Ws {
            stream,
            backlog: VecDeque::new(),
        })
    }

    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string()))
            .await
            .expect("ws send");
    }

    /// The next JSON frame (from the backlog first).
    pub async fn next(&mut self) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        self.read().await.expect("a frame before the timeout")
    }

    /// Read one frame from the socket, or None on timeout/close.
    pub async fn read_within(&mut self, within: Duration) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(within, self.stream.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Text(t) => {
                    return Some(serde_json::from_str(&t).expect("server frames are JSON"))
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    async fn read(&mut self) -> Option<Value> {
        self.read_within(WAIT).await
    }

    /// The first frame of type `ty`; frames of other types are kept.
    pub async fn expect(&mut self, ty: &str) -> Value {
        self.expect_where(|v| v["type"] == ty).await
    }

    pub async fn expect_where(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i).expect("present");
        }
        loop {
            let v = self
                .read()
                .await
                .expect("expected frame before the timeout");
            if pred(&v) {
                return v;
            }
            self.backlog.push_back(v);
        }
    }

    /// Nothing matching arrives within `within`.
    pub async fn expect_none(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) {
        assert!(
            !self.backlog.iter().any(&pred),
            "unexpected frame in backlog: {:?}",
            self.backlog
        );
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match self.read_within(left).await {
                Some(v) => {
                    assert!(!pred(&v), "unexpected frame {v}");
                    self.backlog.push_back(v);
                }
                None => return,
            }
        }
    }

    /// Read until the server closes the connection; the close code, or
    /// `None` if the connection ended without a close frame (or stayed open
    /// for 30 s).
    pub async fn close_frame(&mut self) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, self.stream.next()).await
        {
            if let Message::Close(frame) = frame {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    }

    /// `Some(close code)` if the server closed the connection within
    /// `within` (frames read meanwhile are kept in the backlog), `None` if
    /// it is still open.
    pub async fn closed_within(&mut self, within: Duration) -> Option<Option<u16>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return Some(None),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Some(frame.map(|f| u16::from(f.code)))
                }
                Ok(Some(Ok(Message::Text(t)))) => {
                    if let Ok(v) = serde_json::from_str(&t) {
                        self.backlog.push_back(v);
                    }
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Send a chat message and wait for its ack.
    pub async fn say(&mut self, room: i64, cid: &str, body: &str) -> Value {
        self.send(json!({"type": "send", "room": room, "client_msg_id": cid, "body": body}))
            .await;
        let cid = cid.to_string();
        let v = self
            .expect_where(|v| {
                (v["type"] == "ack" || v["type"] == "error") && v["client_msg_id"] == cid.as_str()
            })
            .await;
        assert_eq!(v["type"], "ack", "send failed: {v}");
        v
    }

    /// Messages of `room` until one with seq `through` (inclusive), in
    /// arrival order.
    pub async fn messages_through(&mut self, room: i64, through: i64) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self
                .expect_where(|v| v["type"] == "message" && v["room"] == room)
                .await;
            let seq = v["seq"].as_i64().expect("seq");
            out.push(v);
            if seq >= through {
                return out;
            }
        }
    }
}
