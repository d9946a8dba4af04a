//! Seeding through the public API (accounts, rooms, listings) and the
//! `connect` and `feed` scenarios.
//!
//! Large runs create thousands of accounts: start the server with cheap
//! password hashing for load tests (`JANGTEO_ARGON2_MEMORY_KIB=64
//! JANGTEO_ARGON2_ITERATIONS=1`) and without the per-address sign-up limit
//! (`JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000`: every account comes from
//! 127.0.0.1) and with the per-connection frame budget lifted
//! (`JANGTEO_WS_FRAMES_PER_SEC=1000000`: a publisher sends far faster than a person), as `compare.sh` does. Nothing else about the server changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::proto::{decode, Event, Target};
use crate::{histogram, loopback_only, progress, Common, ConnectArgs, FeedArgs};

/// A room to load: its key (room id for Jangteo, a name for peers) and a
/// token per member (None for peers).
pub struct SeededRoom {
    pub key: String,
    pub tokens: Vec<Option<String>>,
}

/// A tag that keeps this run's names apart from earlier runs'.
pub fn run_id() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    )
}

pub async fn post_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    answer(client.post(url).json(body), token, "POST", url).await
}

pub async fn get_json(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    answer(client.get(url), token, "GET", url).await
}

/// Send a request (signed in with `token` if any); its JSON body, or an
/// error naming the status and body if it did not succeed.
async fn answer(
    mut req: reqwest::RequestBuilder,
    token: Option<&str>,
    method: &str,
    url: &str,
) -> anyhow::Result<Value> {
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = resp.status();
    let value: Value = resp.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{method} {url}: {status} {value}");
    }
    Ok(value)
}

/// Create a user and log in; returns (id, token).
pub async fn account(
    client: &reqwest::Client,
    c: &Common,
    name: &str,
) -> anyhow::Result<(i64, String)> {
    account_at(client, &c.url, &c.password, name).await
}

/// Create a user on the node at `base` and log in there.
pub async fn account_at(
    client: &reqwest::Client,
    base: &str,
    password: &str,
    name: &str,
) -> anyhow::Result<(i64, String)> {
    let email = format!("{name}@load.test");
    post_json(
        client,
        &format!("{base}/api/auth/signup"),
        None,
        &json!({"email": email, "password": password, "nickname": name.chars().take(20).collect::<String>()}),
    )
    .await?;
    let login = post_json(
        client,
        &format!("{base}/api/auth/login"),
        None,
        &json!({"email": email, "password": password}),
    )
    .await?;
    let id = login["user"]["id"]
        .as_i64()
        .context("login without user id")?;
    let token = login["token"]
        .as_str()
        .context("login without token")?
        .to_string();
    if let Ok(dirs) = std::env::var("JT_LOAD_MAIL_DIR") {
        let dirs: Vec<std::path::PathBuf> = std::env::split_paths(&dirs).collect();
        verify(client, base, &email, &dirs).await?;
    }
    Ok((id, token))
}

/// Follow the verification link the server mailed to `email` (posting
/// listings and paying need a verified address). The servers must write
/// their mail as `.eml` files (no `smtp_url`) into their
/// `data_dir/outbox-mail`: set `JT_LOAD_MAIL_DIR` to those folders
/// (`:`-separated, one per node).
async fn verify(
    client: &reqwest::Client,
    base: &str,
    email: &str,
    dirs: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let token = loop {
        if let Some(t) = dirs.iter().find_map(|d| mailed_token(d, email)) {
            break t;
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no verification email for {email} in {dirs:?} within 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    post_json(
        client,
        &format!("{base}/api/auth/verify-email"),
        None,
        &json!({ "token": token }),
    )
    .await?;
    Ok(())
}

/// The token in a `verify-*.eml` file addressed to `email`: the link's
/// `token=` value, found in the base64 body parts.
fn mailed_token(dir: &std::path::Path, email: &str) -> Option<String> {
    use base64::Engine as _;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.starts_with("verify-") {
            continue;
        }
        let data = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if !data.contains(email) {
            continue;
        }
        // Base64 bodies: runs of long lines without spaces or colons.
        let mut chunk = String::new();
        for line in data.lines().chain(std::iter::once("")) {
            let body_line = !line.is_empty() && !line.contains(':') && !line.starts_with("--");
            if body_line {
                chunk.push_str(line.trim());
                continue;
            }
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&chunk) {
                let text = String::from_utf8_lossy(&bytes);
                if let Some(rest) = text.split("token=").nth(1) {
                    let token: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    if !token.is_empty() {
                        return Some(token);
                    }
                }
            }
            chunk.clear();
        }
    }
    None
}

/// Users and rooms for a rooms scenario. Direct rooms are pairs.
pub async fn rooms(
    c: &Common,
    n_rooms: usize,
    members: usize,
    direct: bool,
) -> anyhow::Result<Vec<SeededRoom>> {
    if c.target != Target::Jangteo {
        let tag = run_id();
        return Ok((0..n_rooms)
            .map(|i| SeededRoom {
                key: format!("room-{tag}-{i}"),
                tokens: vec![None; members],
            })
            .collect());
    }
    let client = reqwest::Client::new();
    let tag = run_id();
    let gate = Arc::new(Semaphore::new(c.seed_concurrency.max(1)));
    let bar = progress((n_rooms * members) as u64, "seeding", c.json);
    let mut tasks = Vec::new();
    for r in 0..n_rooms {
        let (client, c, gate, tag, bar) = (
            client.clone(),
            c.clone(),
            gate.clone(),
            tag.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut users = Vec::with_capacity(members);
            for m in 0..members {
                let _permit = gate.acquire().await;
                users.push(account(&client, &c, &format!("l{tag}r{r}m{m}")).await?);
                bar.inc(1);
            }
            let _permit = gate.acquire().await;
            let room = if direct {
                post_json(
                    &client,
                    &format!("{}/api/rooms", c.url),
                    Some(&users[0].1),
                    &json!({"kind": "direct", "peer": users[1].0}),
                )
                .await?
            } else {
                post_json(
                    &client,
                    &format!("{}/api/rooms", c.url),
                    Some(&users[0].1),
                    &json!({"kind": "open", "name": format!("load {tag} {r}")}),
                )
                .await?
            };
            let key = room["id"].as_i64().context("room without id")?;
            if !direct {
                for (_, token) in users.iter().skip(1) {
                    post_json(
                        &client,
                        &format!("{}/api/rooms/{key}/join", c.url),
                        Some(token),
                        &json!({}),
                    )
                    .await?;
                }
            }
            Ok::<_, anyhow::Error>(SeededRoom {
                key: key.to_string(),
                tokens: users.into_iter().map(|(_, t)| Some(t)).collect(),
            })
        }));
    }
    let mut out = Vec::with_capacity(n_rooms);
    for t in tasks {
        out.push(t.await.context("seeding task")??);
    }
    bar.finish_and_clear();
    Ok(out)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;
/// The sending half of a WebSocket.
pub type WsSink = futures_util::stream::SplitSink<Ws, Message>;
/// The receiving half of a WebSocket.
pub type WsStream = futures_util::stream::SplitStream<Ws>;

/// Open a WebSocket, say hello (joining `room` on the peers) and wait, at
/// most 30 s, until the server says the connection is ready; None if any
/// of that fails.
pub async fn open_ready(
    target: Target,
    url: &str,
    token: Option<&str>,
    room: &str,
) -> Option<(WsSink, WsStream)> {
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(target.ws_url(url, token), None, true)
            .await
            .ok()?;
    let (mut sink, mut stream) = ws.split();
    if target.waits_for_open() && !crate::proto::handshake(&mut sink, &mut stream).await {
        return None;
    }
    for m in target.hello(&[room.to_string()]) {
        sink.send(m).await.ok()?;
    }
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(t) = &msg {
            match decode(target, t) {
                Event::Ready => return Some((sink, stream)),
                Event::Reply(r) => sink.send(r).await.ok()?,
                _ => {}
            }
        }
    }
}

/// The server's RSS from an already open `/proc/<pid>/status` (opened
/// before the connections, because holding thousands of sockets can use up
/// this process's file descriptors).
fn rss_kib(file: &mut std::fs::File) -> Option<u64> {
    use std::io::{Read as _, Seek as _};
    file.seek(std::io::SeekFrom::Start(0)).ok()?;
    let mut status = String::new();
    file.read_to_string(&mut status).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct ConnectReport {
    pub target: String,
    pub scenario: String,
    pub connections: usize,
    pub established: usize,
    pub errors: u64,
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub rss_per_connection_kib: Option<f64>,
}

/// Hold C idle connections and measure the server's RSS growth.
pub async fn connect(a: ConnectArgs) -> anyhow::Result<std::process::ExitCode> {
    loopback_only(&a.common.url)?;
    let c = &a.common;
    let tokens: Vec<Option<String>> = if c.target == Target::Jangteo {
        let client = reqwest::Client::new();
        let tag = run_id();
        let mut t = Vec::new();
        for u in 0..a.users.max(1) {
            t.push(Some(account(&client, c, &format!("c{tag}u{u}")).await?.1));
        }
        t
    } else {
        vec![None]
    };
    let mut proc_status = a
        .server_pid
        .and_then(|pid| std::fs::File::open(format!("/proc/{pid}/status")).ok());
    let rss_before = proc_status.as_mut().and_then(rss_kib);
    let room = format!("idle-{}", run_id());
    let gate = Arc::new(Semaphore::new(a.parallel.max(1)));
    let bar = progress(a.connections as u64, "connecting", c.json);
    let mut tasks = Vec::new();
    for i in 0..a.connections {
        let token = tokens[i % tokens.len()].clone();
        let (gate, target, url, room, bar) = (
            gate.clone(),
            c.target,
            c.url.clone(),
            room.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await;
            let t0 = Instant::now();
            let (sink, stream) = open_ready(target, &url, token.as_deref(), &room).await?;
            let took = t0.elapsed();
            drop(permit);
            bar.inc(1);
            Some((took, sink, stream))
        }));
    }
    let mut held = Vec::new();
    let mut errors = 0;
    let mut h = histogram();
    for t in tasks {
        match t.await.ok().flatten() {
            Some((took, sink, stream)) => {
                let _ = h.record(took.as_micros().max(1) as u64);
                held.push((sink, stream));
            }
            None => errors += 1,
        }
    }
    bar.finish_and_clear();
    // Keep answering pings while holding (socket.io disconnects otherwise).
    let deadline = Instant::now() + a.hold;
    let target = c.target;
    let mut keepers = Vec::new();
    for (mut sink, mut stream) in held.drain(..) {
        keepers.push(tokio::spawn(async move {
            while let Ok(Some(Ok(msg))) =
                tokio::time::timeout_at(deadline.into(), stream.next()).await
            {
                if let Message::Text(t) = &msg {
                    if let Event::Reply(r) = decode(target, t) {
                        let _ = sink.send(r).await;
                    }
                }
            }
            (sink, stream)
        }));
    }
    tokio::time::sleep_until(deadline.into()).await;
    let rss_after = proc_status.as_mut().and_then(rss_kib);
    let established = keepers.len();
    for k in keepers {
        let _ = k.await;
    }
    let per = match (rss_before, rss_after) {
        (Some(b), Some(a)) if established > 0 => {
            Some(a.saturating_sub(b) as f64 / established as f64)
        }
        _ => None,
    };
    let report = ConnectReport {
        target: c.target.name().into(),
        scenario: "connect".into(),
        connections: a.connections,
        established,
        errors,
        connect_p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        connect_p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        rss_per_connection_kib: per,
    };
    if c.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {} of {} connections held, {} errors; connect p50 {:.1} ms p99 {:.1} ms; server RSS {:?} -> {:?} KiB = {} KiB per connection",
            report.target,
            report.established,
            report.connections,
            report.errors,
            report.connect_p50_ms,
            report.connect_p99_ms,
            report.rss_before_kib,
            report.rss_after_kib,
            report.rss_per_connection_kib.map_or("?".to_string(), |v| format!("{v:.1}"))
        );
    }
    Ok(if errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct FeedReport {
    pub target: String,
    pub scenario: String,
    pub rate: u64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// REST feed paging at a fixed open-loop rate: follow `next_cursor` for a
/// few pages, then start over.
pub async fn feed(a: FeedArgs) -> anyhow::Result<std::process::ExitCode> {
    loopback_only(&a.common.url)?;
    if a.common.target != Target::Jangteo {
        bail!("the feed scenario is Jangteo only (peers have no REST feed)");
    }
    let c = &a.common;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let (_, token) = account(&client, c, &format!("f{}", run_id())).await?;
    let gate = Arc::new(Semaphore::new(c.seed_concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..a.listings {
        let (client, url, token, gate) =
            (client.clone(), c.url.clone(), token.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _p = gate.acquire().await;
            post_json(
                &client,
                &format!("{url}/api/listings"),
                Some(&token),
                &json!({"title": format!("부하 테스트 물건 {i}"), "price": 1000 + i as i64 * 10, "category": "other"}),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.context("seed task")??;
    }
    let interval = Duration::from_secs_f64(1.0 / a.rate.max(1) as f64);
    let start = Instant::now();
    let mut next = Duration::ZERO;
    let results = Arc::new(tokio::sync::Mutex::new((histogram(), 0u64, 0u64)));
    let mut inflight = Vec::new();
    let mut cursor: Option<String> = None;
    let mut depth = 0;
    let cursor_cell = Arc::new(tokio::sync::Mutex::new(None::<String>));
    while next < a.duration {
        tokio::time::sleep_until((start + next).into()).await;
        let intended = start + next;
        next += interval;
        if depth >= 5 {
            cursor = None;
            depth = 0;
        } else if let Some(c) = cursor_cell.lock().await.take() {
            cursor = Some(c);
        }
        depth += 1;
        let url = match &cursor {
            Some(cur) => format!("{}/api/listings?limit={}&cursor={cur}", c.url, a.page),
            None => format!("{}/api/listings?limit={}", c.url, a.page),
        };
        let (client, results, cell) = (client.clone(), results.clone(), cursor_cell.clone());
        inflight.push(tokio::spawn(async move {
            let r = client.get(&url).send().await;
            let ok = match r {
                Ok(resp) if resp.status().is_success() => {
                    let v: Value = resp.json().await.unwrap_or(Value::Null);
                    if let Some(c) = v["next_cursor"].as_str() {
                        *cell.lock().await = Some(c.to_string());
                    }
                    true
                }
                _ => false,
            };
            let mut g = results.lock().await;
            let _ = g.0.record(intended.elapsed().as_micros().max(1) as u64);
            g.1 += 1;
            if !ok {
                g.2 += 1;
            }
        }));
    }
    for t in inflight {
        let _ = t.await;
    }
    let g = results.lock().await;
    let report = FeedReport {
        target: "jangteo".into(),
        scenario: "feed".into(),
        rate: a.rate,
        requests: g.1,
        errors: g.2,
        requests_per_sec: g.1 as f64 / start.elapsed().as_secs_f64(),
        p50_ms: g.0.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: g.0.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: g.0.max() as f64 / 1000.0,
    };
    if c.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "feed: {} requests at {}/s ({:.0}/s achieved), {} errors; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            report.requests, report.rate, report.requests_per_sec, report.errors, report.p50_ms, report.p99_ms, report.max_ms
        );
    }
    Ok(if report.errors == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
