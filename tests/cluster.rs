//! Several `jangteo serve` processes sharing MySQL/MariaDB, MongoDB, Redis
//! and Kafka behave as one; and what happens when a node or a backend goes
//! away.
//!
//! Uses `JT_TEST_MYSQL_URL`, `JT_TEST_REDIS_URL`, `JT_TEST_MONGODB_URL`,
//! `JT_TEST_KAFKA_BROKERS`, by default the standard local ports that
//! `scripts/services.sh up` provides. The Kafka-outage test starts a broker
//! of its own (`JT_TEST_TANSU`: the tansu binary, by default where
//! services.sh installs it) and the Redis-restart test a Redis of its own
//! (`redis-server` on the PATH), so stopping them does not disturb other
//! tests. A missing service fails the test, unless `JT_SKIP_CLUSTER=1`
//! (never honoured in CI) asks to skip it, loudly.

// Test code asserts by panicking, helpers included (clippy.toml exempts
// only `#[test]` functions themselves).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests assert by panicking"
)]

mod common;

use std::collections::{BTreeSet, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{account_on, free_port, jangteo_command, ServerProcess, Ws};
use reqwest::StatusCode;
use serde_json::{json, Value};

struct Backends {
    mysql: String,
    redis: String,
    mongodb: String,
    kafka: String,
}

/// A service setting: the variable, or the standard local address; `None`
/// (skip, loudly) if nothing answers there, except in CI where a missing
/// service fails the test.
fn required(var: &str, default: &str) -> Option<String> {
    let value = std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string());
    let hostport = value
        .split("://")
        .last()
        .unwrap_or(&value)
        .rsplit('@')
        .next()
        .unwrap_or(&value)
        .split('/')
        .next()
        .unwrap_or(&value)
        .split(',')
        .next()
        .unwrap_or(&value)
        .to_string();
    let answers = if hostport.contains(':') {
        std::net::TcpStream::connect(hostport.as_str()).is_ok()
    } else {
        std::path::Path::new(&value).exists()
    };
    if answers {
        return Some(value);
    }
    // A skipped test would show as passed: skipping takes an explicit
    // opt-out, and never in CI.
    let opted_out = std::env::var("JT_SKIP_CLUSTER").as_deref() == Ok("1");
    if opted_out && std::env::var("CI").as_deref() != Ok("true") {
        eprintln!("!!! SKIPPED cluster test (JT_SKIP_CLUSTER=1): nothing at {value} ({var}) !!!");
        return None;
    }
    panic!(
        "{var}: nothing at {value}. The cluster tests need the services \
         (scripts/services.sh up); outside CI, JT_SKIP_CLUSTER=1 skips them"
    );
}

fn backends() -> Option<Backends> {
    Some(Backends {
        mysql: required("JT_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306")?,
        redis: required("JT_TEST_REDIS_URL", "redis://127.0.0.1:6379")?,
        mongodb: required("JT_TEST_MONGODB_URL", "mongodb://127.0.0.1:27017")?,
        kafka: required("JT_TEST_KAFKA_BROKERS", "127.0.0.1:9092")?,
    })
}

fn tansu_binary() -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let cache = std::env::var("JANGTEO_CACHE").unwrap_or_else(|_| format!("{home}/.cache/jangteo"));
    format!("{cache}/tansu/bin/tansu")
}

fn wait_port(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on 127.0.0.1:{port}");
}

/// A Kafka broker of the test's own (so pausing it disturbs no other
/// test), and the backends with it in place of the shared one.
fn own_broker(b: Backends) -> Option<(Service, Backends)> {
    let tansu = required("JT_TEST_TANSU", &tansu_binary())?;
    let port = free_port();
    let listener = format!("tcp://127.0.0.1:{port}");
    let broker = Service(
        Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &listener,
                "--advertised-listener-url",
                &listener,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu"),
    );
    wait_port(port);
    Some((
        broker,
        Backends {
            kafka: format!("127.0.0.1:{port}"),
            ..b
        },
    ))
}

/// A service process of a test's own, killed on drop.
struct Service(Child);

impl Service {
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.0.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Node {
    child: Child,
    addr: String,
}

/// N nodes on one set of backends (a database, key prefix, Mongo database
/// and topic prefix of this test's own).
struct Cluster {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    nodes: Vec<Option<Node>>,
    client: reqwest::Client,
}

impl Cluster {
    async fn start(b: &Backends, n: usize, extra: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = format!("{:x}", rand_id());
        let db = format!("jt_c{id}");
        sqlx::any::install_default_drivers();
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&b.mysql)
            .await
            .expect("MySQL answers");
        sqlx::Executor::execute(
            &mut conn,
            format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").as_str(),
        )
        .await
        .expect("create database");
        let mut env: Vec<(String, String)> = vec![
            (
                "DATABASE_URL".into(),
                format!("{}/{db}", b.mysql.trim_end_matches('/')),
            ),
            ("REDIS_URL".into(), b.redis.clone()),
            ("REDIS_PREFIX".into(), format!("jt:c{id}:")),
            (
                "MONGODB_URL".into(),
                format!("{}/jt_c{id}", b.mongodb.trim_end_matches('/')),
            ),
            ("KAFKA_BROKERS".into(), b.kafka.clone()),
            ("KAFKA_TOPIC_PREFIX".into(), format!("jtc{id}.")),
            ("KAFKA_PARTITIONS".into(), "2".into()),
            ("ARGON2_MEMORY_KIB".into(), "64".into()),
            ("ARGON2_ITERATIONS".into(), "1".into()),
            ("SIGNUP_MAX_PER_ADDRESS".into(), "100000".into()),
            ("WS_FRAMES_PER_SEC".into(), "100000".into()),
            ("CHAT_SEND_RATE".into(), "1000".into()),
            ("CHAT_SEND_BURST".into(), "1000".into()),
            ("CHAT_DIRECT_SEND_RATE".into(), "1000".into()),
            ("CHAT_DIRECT_SEND_BURST".into(), "1000".into()),
            ("WORKERS".into(), "2".into()),
            ("LOG".into(), "warn,jangteo=info".into()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != &k.to_uppercase());
            env.push((k.to_uppercase(), v.to_string()));
        }
        let mut cluster = Cluster {
            dir,
            env,
            nodes: Vec::new(),
            client: reqwest::Client::new(),
        };
        for i in 0..n {
            let node = cluster.spawn_node(i);
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    fn spawn_node(&self, i: usize) -> Node {
        let data = self.dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&data).expect("data dir");
        let log = std::fs::File::create(self.dir.path().join(format!("node{i}.log"))).expect("log");
        let mut cmd = jangteo_command();
        for (k, v) in &self.env {
            cmd.env(format!("JANGTEO_{k}"), v);
        }
        cmd.env("JANGTEO_DATA_DIR", &data)
            .env("JANGTEO_NODE_ID", format!("node-{i}"))
            .stderr(log);
        match ServerProcess::spawn(cmd) {
            Ok(server) => Node {
                addr: server.base(),
                child: server.child,
            },
            Err(e) => {
                let log = std::fs::read_to_string(self.dir.path().join(format!("node{i}.log")))
                    .unwrap_or_default();
                panic!("node {i} did not start ({e}):\n{log}");
            }
        }
    }

    fn addr(&self, i: usize) -> &str {
        &self.nodes[i].as_ref().expect("node is running").addr
    }

    /// Start node `i` again (same data directory and settings).
    fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is still running");
        let node = self.spawn_node(i);
        self.nodes[i] = Some(node);
    }

    /// The emails every node wrote (`data_dir/outbox-mail/*.eml`).
    fn emails(&self) -> Vec<String> {
        let mut all = Vec::new();
        for i in 0..self.nodes.len() {
            let dir = self.dir.path().join(format!("node{i}/outbox-mail"));
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                // Notification emails; verification links are not counted.
                if e.path().extension().is_some_and(|x| x == "eml")
                    && e.file_name().to_string_lossy().starts_with("notification-")
                {
                    all.push(std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        all
    }

    /// A MySQL connection to this cluster's database.
    async fn db(&self) -> sqlx::AnyConnection {
        let url = self
            .env
            .iter()
            .find(|(k, _)| k == "DATABASE_URL")
            .map(|(_, v)| v.clone())
            .expect("DATABASE_URL");
        <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("MySQL answers")
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut node) = self.nodes[i].take() {
            node.child.kill().expect("SIGKILL");
            let _ = node.child.wait();
        }
    }

    async fn post(
        &self,
        node: usize,
        path: &str,
        body: Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.addr(node)))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    async fn get(&self, node: usize, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.addr(node)));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Sign up on one node, log in on another, and verify the email with
    /// the link whichever node mailed.
    async fn user(&self, name: &str) -> (i64, String) {
        let last = self.nodes.len() - 1;
        let account = account_on(&self.client, self.addr(0), self.addr(last), name).await;
        let dirs: Vec<std::path::PathBuf> = (0..self.nodes.len())
            .map(|i| self.dir.path().join(format!("node{i}/outbox-mail")))
            .collect();
        common::verify_account(
            &self.client,
            self.addr(last),
            &format!("{name}@example.com"),
            &dirs,
        )
        .await;
        account
    }

    async fn ws(&self, node: usize, token: &str) -> Ws {
        let mut ws = Ws::connect(self.addr(node), token).await;
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
        ws
    }

    async fn history(&self, node: usize, token: &str, room: i64) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let r = self
                .get(
                    node,
                    &format!("/api/rooms/{room}/messages?after={after}&limit=200"),
                    Some(token),
                )
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let page: Vec<Value> = r.json().await.expect("json");
            let Some(last) = page.last() else { break };
            after = last["seq"].as_i64().expect("seq");
            all.extend(page);
        }
        all
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in self.nodes.iter_mut().flatten() {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

fn rand_id() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() & 0xffff_ffff_ffff
}

/// Text messages of `room` received until every id in `want` was seen;
/// returns their seqs in arrival order (and every message frame seen).
async fn collect(ws: &mut Ws, room: i64, want: &HashSet<String>) -> Vec<i64> {
    let mut seen = HashSet::new();
    let mut seqs = Vec::new();
    while seen.len() < want.len() {
        let v = ws
            .expect_where(|v| v["type"] == "message" && v["room"] == room)
            .await;
        seqs.push(v["seq"].as_i64().expect("seq"));
        if let Some(cid) = v["client_msg_id"].as_str() {
            if want.contains(cid) {
                seen.insert(cid.to_string());
            }
        }
    }
    seqs
}

fn assert_contiguous(seqs: &[i64], who: &str) {
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "{who}: every seq once, in order: {seqs:?}");
    }
}

async fn open_room(c: &Cluster, node: usize, token: &str, name: &str) -> i64 {
    let r = c
        .post(
            node,
            "/api/rooms",
            json!({"kind": "open", "name": name}),
            Some(token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id")
}

async fn join(c: &Cluster, node: usize, token: &str, room: i64) {
    let r = c
        .post(
            node,
            &format!("/api/rooms/{room}/join"),
            json!({}),
            Some(token),
        )
        .await;
    assert!(r.status().is_success(), "join: {}", r.status());
}

async fn direct(c: &Cluster, node: usize, token: &str, peer: i64) -> i64 {
    let r = c
        .post(
            node,
            "/api/rooms",
            json!({"kind": "direct", "peer": peer}),
            Some(token),
        )
        .await;
    assert!(r.status().is_success());
    r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id")
}

#[actix_web::test]
async fn members_on_three_nodes_see_every_message_once_in_order() {
    let Some(b) = backends() else { return };
    let c = Cluster::start(&b, 3, &[]).await;
    let (_, t0) = c.user("c-owner").await;
    let (u1, t1) = c.user("c-one").await;
    let (u2, t2) = c.user("c-two").await;
    let room = open_room(&c, 0, &t0, "세 노드 방").await;
    // A second room raced the same way: a node's batches then hold both
    // rooms, and a seq lost in one must not upset the other.
    let other = open_room(&c, 0, &t0, "두 번째 방").await;
    for r in [room, other] {
        join(&c, 1, &t1, r).await;
        join(&c, 2, &t2, r).await;
    }
    let mut ws = [c.ws(0, &t0).await, c.ws(1, &t1).await, c.ws(2, &t2).await];

    // Everyone sends at once, each from their own node, to both rooms in
    // turn: seqs are claimed concurrently by three nodes.
    const EACH: usize = 40;
    let mut want = HashSet::new();
    let mut want_other = HashSet::new();
    for (i, w) in ws.iter_mut().enumerate() {
        for k in 0..EACH {
            let cid = format!("n{i}-{k}");
            want.insert(cid.clone());
            w.send(json!({"type": "send", "room": room, "client_msg_id": cid, "body": format!("{i}번 노드 {k}")}))
                .await;
            let cid = format!("o{i}-{k}");
            want_other.insert(cid.clone());
            w.send(json!({"type": "send", "room": other, "client_msg_id": cid, "body": format!("{i}번 노드 {k}")}))
                .await;
        }
    }
    let mut results = Vec::new();
    for (i, w) in ws.iter_mut().enumerate() {
        let seqs = collect(w, room, &want).await;
        assert_contiguous(&seqs, &format!("member on node {i}"));
        results.push(seqs);
        let seqs = collect(w, other, &want_other).await;
        assert_contiguous(&seqs, &format!("member on node {i}, second room"));
    }
    for (r, want) in [(other, &want_other), (room, &want)] {
        let history = c.history(1, &t1, r).await;
        let stored: Vec<i64> = history
            .iter()
            .map(|m| m["seq"].as_i64().unwrap_or(0))
            .collect();
        assert_eq!(
            stored,
            (1..=stored.len() as i64).collect::<Vec<_>>(),
            "gap-free in the store"
        );
        let cids: HashSet<String> = history
            .iter()
            .filter_map(|m| m["client_msg_id"].as_str().map(str::to_string))
            .collect();
        assert_eq!(&cids, want, "every message stored once");
        if r == room {
            for seqs in &results {
                assert_eq!(seqs.last(), stored.last(), "everyone saw the end");
            }
        }
    }

    // Receipts, badges, typing and presence across nodes, in a direct room
    // between users on nodes 1 and 2 (user 2 has a second device on node 0).
    let dm = direct(&c, 1, &t1, u2).await;
    let mut w2b = c.ws(0, &t2).await;
    let sent = ws[1].say(dm, "dm-1", "안녕하세요").await;
    let seq = sent["seq"].as_i64().expect("seq");
    ws[2]
        .expect_where(|v| v["type"] == "message" && v["room"] == dm)
        .await;
    // The second device gets the message (its count follows from it).
    w2b.expect_where(|v| v["type"] == "message" && v["room"] == dm && v["seq"] == seq)
        .await;
    ws[2]
        .send(json!({"type": "read", "room": dm, "seq": seq}))
        .await;
    let receipt = ws[1]
        .expect_where(|v| v["type"] == "receipt" && v["room"] == dm)
        .await;
    assert_eq!(
        (receipt["user"].as_i64(), receipt["seq"].as_i64()),
        (Some(u2), Some(seq))
    );
    w2b.expect_where(|v| v["type"] == "badge" && v["room"] == dm && v["unread"] == 0)
        .await;
    ws[2].send(json!({"type": "typing", "room": dm})).await;
    let typing = ws[1].expect("typing").await;
    assert_eq!(typing["user"], u2);

    // Kicked on node 0, removed live on node 2.
    let r = c
        .post(
            0,
            &format!("/api/rooms/{room}/kick"),
            json!({"user_id": u2}),
            Some(&t0),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let removed = ws[2]
        .expect_where(|v| v["type"] == "removed" && v["room"] == room)
        .await;
    assert_eq!(removed["reason"], "kicked");
    let after = ws[0].say(room, "after-kick", "이제 안 보임").await;
    let after_seq = after["seq"].as_i64().expect("seq");
    ws[1]
        .expect_where(|v| v["type"] == "message" && v["seq"] == after_seq && v["room"] == room)
        .await;
    ws[2]
        .expect_none(Duration::from_millis(500), |v| {
            v["type"] == "message" && v["room"] == room && v["seq"].as_i64() >= Some(after_seq)
        })
        .await;
    let _ = u1;
}

#[actix_web::test]
async fn a_node_killed_under_traffic_loses_and_doubles_nothing() {
    let Some(b) = backends() else { return };
    let mut c = Cluster::start(&b, 2, &[]).await;
    let (_, ts) = c.user("k-sender").await;
    let (ur, tr) = c.user("k-reader").await;
    let room = direct(&c, 0, &ts, ur).await;
    // The sender and one of the reader's devices are on node 0 (which
    // dies); the reader's other device is on node 1.
    let mut sender = c.ws(0, &ts).await;
    let mut reader0 = c.ws(0, &tr).await;
    let mut reader1 = c.ws(1, &tr).await;

    const TOTAL: usize = 200;
    let cid = |k: usize| format!("k-{k}");
    let mut acked: BTreeSet<i64> = BTreeSet::new();
    let mut last_seen0 = 0;
    // First half, acknowledged.
    for k in 0..TOTAL / 2 {
        sender
            .send(json!({"type": "send", "room": room, "client_msg_id": cid(k), "body": format!("메시지 {k}")}))
            .await;
    }
    for _ in 0..TOTAL / 2 {
        let ack = sender.expect("ack").await;
        acked.insert(ack["seq"].as_i64().expect("seq"));
    }
    // More in flight, then node 0 dies with them.
    for k in TOTAL / 2..TOTAL * 3 / 4 {
        sender
            .send(json!({"type": "send", "room": room, "client_msg_id": cid(k), "body": format!("메시지 {k}")}))
            .await;
    }
    // What reader0 saw before the crash.
    while let Some(v) = reader0.read_within(Duration::from_millis(50)).await {
        if v["type"] == "message" && v["room"] == room {
            let s = v["seq"].as_i64().expect("seq");
            assert_eq!(s, last_seen0 + 1, "reader on node 0 in order");
            last_seen0 = s;
        }
    }
    c.kill9(0);

    // The sender reconnects to node 1 and resends everything it has no
    // ack for (same client ids), then the rest.
    let mut sender = c.ws(1, &ts).await;
    for k in TOTAL / 2..TOTAL {
        let ack = sender.say(room, &cid(k), &format!("메시지 {k}")).await;
        acked.insert(ack["seq"].as_i64().expect("seq"));
    }
    // The reader's dead device reconnects to node 1 and resumes.
    let mut reader0 = Ws::connect(c.addr(1), &tr).await;
    reader0
        .send(json!({"type": "resume", "rooms": {room.to_string(): last_seen0}}))
        .await;
    let seqs_of = |frames: Vec<Value>| -> Vec<i64> {
        frames
            .iter()
            .map(|m| m["seq"].as_i64().unwrap_or(0))
            .collect()
    };
    let resumed = seqs_of(reader0.messages_through(room, TOTAL as i64).await);
    assert_eq!(
        resumed,
        (last_seen0 + 1..=TOTAL as i64).collect::<Vec<_>>(),
        "the resumed device gets the rest, once, in order"
    );
    let live = seqs_of(reader1.messages_through(room, TOTAL as i64).await);
    assert_eq!(
        live,
        (1..=TOTAL as i64).collect::<Vec<_>>(),
        "the device on the surviving node saw everything once, in order"
    );

    let history = c.history(1, &tr, room).await;
    let seqs: Vec<i64> = history
        .iter()
        .map(|m| m["seq"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(
        seqs,
        (1..=TOTAL as i64).collect::<Vec<_>>(),
        "each message stored once, no gaps"
    );
    assert_eq!(acked.len(), TOTAL, "every message acknowledged once");
    assert_eq!(acked.iter().copied().collect::<Vec<_>>(), seqs);
}

#[actix_web::test]
async fn a_kafka_outage_delays_cross_node_delivery_and_loses_nothing() {
    let Some(b) = backends() else { return };
    let Some((broker, own)) = own_broker(b) else {
        return;
    };
    let c = Cluster::start(&own, 2, &[]).await;
    let (_, ta) = c.user("o-a").await;
    let (ub, tb) = c.user("o-b").await;
    let room = direct(&c, 0, &ta, ub).await;
    let mut wa = c.ws(0, &ta).await;
    let mut wb = c.ws(1, &tb).await;
    wa.say(room, "before", "전").await;
    wb.expect_where(|v| v["type"] == "message" && v["client_msg_id"] == "before")
        .await;

    // The broker stops answering (paused, like a partition).
    broker.signal("-STOP");
    // Sends still succeed: a message is durable in the store before its
    // ack; Kafka only carries it to the other nodes.
    let mut want = HashSet::new();
    for k in 0..20 {
        let cid = format!("during-{k}");
        wa.say(room, &cid, "장애 중").await;
        want.insert(cid);
    }
    // The other node does not have them yet, but its clients can read them.
    wb.expect_none(Duration::from_millis(300), |v| v["type"] == "message")
        .await;
    assert_eq!(c.history(1, &tb, room).await.len(), 21);
    let r = c.get(0, "/ready", None).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    assert!(body["details"]["kafka"].is_string(), "{body}");

    broker.signal("-CONT");
    let seqs = collect(&mut wb, room, &want).await;
    assert_eq!(
        seqs,
        (2..=21).collect::<Vec<_>>(),
        "caught up, in order, once"
    );
    let r = c.get(0, "/ready", None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A room's actor that starts on a node while messages committed on
/// another node are still on their way through Kafka: the load already sees
/// them, so their events come as old news. They must reach the members here
/// anyway, once and in order, whether the actor was started by another
/// node's event (the join itself) or by a member here (typing).
#[actix_web::test]
async fn an_actor_started_while_events_are_in_flight_delivers_them() {
    let Some(b) = backends() else { return };
    let Some((broker, own)) = own_broker(b) else {
        return;
    };
    let c = Cluster::start(&own, 2, &[]).await;
    let (_, ta) = c.user("f-owner").await;
    let (ub, tb) = c.user("f-guest").await;
    let mut wa = c.ws(0, &ta).await;
    // Created through the API: no room actor on either node yet.
    let by_event = open_room(&c, 0, &ta, "이벤트로 깨어나는 방").await;
    let by_member = open_room(&c, 0, &ta, "타이핑으로 깨어나는 방").await;
    let mut wb = c.ws(1, &tb).await;
    let joined = |room: i64| {
        move |v: &Value| {
            v["type"] == "message"
                && v["room"] == room
                && v["payload"]["event"] == "joined"
                && v["payload"]["user"] == ub
        }
    };

    broker.signal("-STOP");
    // The guest joins both on node 1: committed, its events held up.
    join(&c, 1, &tb, by_event).await;
    join(&c, 1, &tb, by_member).await;
    let seq_of = |room: i64| {
        let c = &c;
        let tb = tb.clone();
        async move {
            let h = c.history(1, &tb, room).await;
            h.last().expect("the join message")["seq"]
                .as_i64()
                .expect("seq")
        }
    };
    let (seq_event, seq_member) = (seq_of(by_event).await, seq_of(by_member).await);

    // The owner types in one room: node 0 starts its actor now, whose load
    // sees the join, and delivers it though no event has come.
    wa.send(json!({"type": "typing", "room": by_member})).await;
    let m = wa.expect_where(joined(by_member)).await;
    assert_eq!(m["seq"], seq_member);

    // The broker answers again: the held events arrive. The other room's
    // actor is started by the member_added event (its load sees the join
    // message, whose event comes right after): the join is delivered too.
    broker.signal("-CONT");
    let m = wa.expect_where(joined(by_event)).await;
    assert_eq!(m["seq"], seq_event);

    // Both rooms go on, every message once and in order.
    let mut want = HashSet::new();
    for (room, cid) in [(by_event, "after-e"), (by_member, "after-m")] {
        wb.say(room, cid, "다시 연결됐어요").await;
        want.insert(cid.to_string());
    }
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        let v = wa.expect("message").await;
        let cid = v["client_msg_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a message twice or out of place: {v}"));
        seen.push((
            v["room"].as_i64().expect("room"),
            v["seq"].as_i64().expect("seq"),
            cid.to_string(),
        ));
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (by_event, seq_event + 1, "after-e".to_string()),
            (by_member, seq_member + 1, "after-m".to_string()),
        ]
    );
    wa.expect_none(Duration::from_millis(500), |v| v["type"] == "message")
        .await;
}

#[actix_web::test]
async fn a_redis_restart_signs_users_out_clearly_and_loses_no_data() {
    let Some(b) = backends() else { return };
    let port = free_port();
    let start_redis = || {
        Service(
            Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .stdout(Stdio::null())
                .spawn()
                .expect("redis-server on the PATH"),
        )
    };
    let redis = start_redis();
    wait_port(port);
    let own = Backends {
        redis: format!("redis://127.0.0.1:{port}"),
        ..b
    };
    let c = Cluster::start(&own, 2, &[]).await;
    let (_, ta) = c.user("r-a").await;
    let (ub, tb) = c.user("r-b").await;
    let room = direct(&c, 0, &ta, ub).await;
    let mut wa = c.ws(1, &ta).await;
    wa.say(room, "r-1", "레디스 전").await;

    drop(redis);
    let r = c.get(0, "/ready", None).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.expect("json");
    assert!(body["details"]["redis"].is_string(), "{body}");

    let _redis = start_redis();
    wait_port(port);
    // Sessions lived in Redis: a clear 401, never a 500.
    for node in 0..2 {
        let r = c.get(node, "/api/me", Some(&ta)).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["code"], "unauthenticated");
    }
    // Logging in again works and nothing was lost.
    let r = c
        .post(
            0,
            "/api/auth/login",
            json!({"email": "r-b@example.com", "password": "password-123"}),
            None,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let tb2 = r.json::<Value>().await.expect("json")["token"]
        .as_str()
        .expect("token")
        .to_string();
    let history = c.history(1, &tb2, room).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["body"], "레디스 전");
    let _ = tb;
    let r = c.get(0, "/ready", None).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_reservation_timer_fires_once_in_the_cluster() {
    let Some(b) = backends() else { return };
    let c = Cluster::start(&b, 2, &[("reservation_sweep_secs", "1")]).await;
    let (_, ts) = c.user("t-seller").await;
    let (ub, tb) = c.user("t-buyer").await;
    let r = c
        .post(
            0,
            "/api/listings",
            json!({"title": "자전거", "description": "거의 새것", "price": 50000, "category": "sports"}),
            Some(&ts),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let listing = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let r = c
        .post(
            1,
            &format!("/api/listings/{listing}/chat"),
            json!({}),
            Some(&tb),
        )
        .await;
    assert!(r.status().is_success());
    let room = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("room");
    let until = jangteo::domain::now_ms() + 2500;
    let r = c
        .post(
            0,
            &format!("/api/listings/{listing}/reservation"),
            json!({"buyer_id": ub, "until": until}),
            Some(&ts),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Both nodes have armed it by now (node 1 through its sweep).
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let history = c.history(1, &tb, room).await;
    let expired = history
        .iter()
        .filter(|m| m["kind"] == "system" && m["payload"]["event"] == "reservation_expired")
        .count();
    assert_eq!(expired, 1, "one expiry in the cluster: {history:?}");
    let r = c
        .get(1, &format!("/api/listings/{listing}"), Some(&ts))
        .await;
    assert_eq!(r.json::<Value>().await.expect("json")["status"], "selling");
}

#[actix_web::test]
async fn a_consuming_node_killed_mid_stream_leaves_exactly_one_notification_per_event() {
    let Some(b) = backends() else { return };
    let mut c = Cluster::start(&b, 2, &BULK_SELLER).await;
    let (_, watcher) = c.user("n-watcher").await;
    let (_, seller) = c.user("n-seller").await;
    let r = c
        .post(
            1,
            "/api/me/keywords",
            json!({"keyword": "자전거"}),
            Some(&watcher),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // Both nodes consume every alarm; node 0 dies halfway through a stream
    // of new listings posted on node 1. Each listing must give the watcher
    // exactly one notification: never none (node 1 still consumes), never
    // two (node 0 may have made some before dying; the unique key holds).
    const TOTAL: usize = 40;
    let mut ids = BTreeSet::new();
    for k in 0..TOTAL {
        if k == TOTAL / 2 {
            c.kill9(0);
        }
        let r = c
            .post(
                1,
                "/api/listings",
                json!({"title": format!("자전거 {k}호"), "description": "상태 좋아요", "price": 50_000, "category": "sports"}),
                Some(&seller),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        ids.insert(v["id"].as_i64().expect("id"));
    }
    let links = common::eventually(
        Duration::from_secs(20),
        "a notification per listing",
        || async {
            let r = c
                .get(1, "/api/me/notifications?limit=100", Some(&watcher))
                .await;
            let v: Value = r.json().await.ok()?;
            let links: Vec<String> = v["items"]
                .as_array()?
                .iter()
                .filter(|n| n["kind"] == "keyword.match")
                .filter_map(|n| n["link"].as_str().map(str::to_string))
                .collect();
            (links.len() >= TOTAL).then_some(links)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again: Value = c
        .get(1, "/api/me/notifications?limit=100", Some(&watcher))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        again["items"].as_array().map(Vec::len),
        Some(TOTAL),
        "none twice"
    );
    let want: BTreeSet<String> = ids.iter().map(|id| format!("/listings/{id}")).collect();
    let got: BTreeSet<String> = links.into_iter().collect();
    assert_eq!(got, want, "one per listing");
}

/// A user's notifications of one kind: their links.
async fn notification_links(c: &Cluster, node: usize, token: &str, kind: &str) -> Vec<String> {
    let r = c
        .get(node, "/api/me/notifications?limit=100", Some(token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|n| n["kind"] == kind)
        .filter_map(|n| n["link"].as_str().map(str::to_string))
        .collect()
}

#[actix_web::test]
async fn a_broker_outage_delays_notifications_and_emails_and_loses_or_doubles_none() {
    let Some(b) = backends() else { return };
    let Some((broker, own)) = own_broker(b) else {
        return;
    };
    let c = Cluster::start(&own, 2, &BULK_SELLER).await;
    let (_, watcher) = c.user("bo-watcher").await;
    let (_, seller) = c.user("bo-seller").await;
    let r = c
        .post(
            0,
            "/api/me/keywords",
            json!({"keyword": "캠핑"}),
            Some(&watcher),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .client
        .put(format!("{}/api/me/notification_settings", c.addr(0)))
        .bearer_auth(&watcher)
        .json(&json!({"items": [{"kind": "keyword.match", "email": true}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);

    // The broker stops answering (paused, like a partition): listings are
    // still created (their events wait in the outbox with the listing).
    broker.signal("-STOP");
    const TOTAL: usize = 10;
    let mut want = BTreeSet::new();
    for k in 0..TOTAL {
        let r = c
            .post(
                k % 2,
                "/api/listings",
                json!({"title": format!("캠핑 의자 {k}"), "description": "거의 새것", "price": 20_000, "category": "sports"}),
                Some(&seller),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        want.insert(format!("/listings/{}", v["id"].as_i64().expect("id")));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        notification_links(&c, 1, &watcher, "keyword.match")
            .await
            .is_empty(),
        "nothing can be announced while the broker is away"
    );

    broker.signal("-CONT");
    common::eventually(
        Duration::from_secs(60),
        "a notification per listing once the broker is back",
        || async {
            let links = notification_links(&c, 1, &watcher, "keyword.match").await;
            (links.len() >= TOTAL).then_some(())
        },
    )
    .await;
    common::eventually(Duration::from_secs(30), "an email per listing", || async {
        (c.emails().len() >= TOTAL).then_some(())
    })
    .await;
    // Let any duplicate (a retried publish, two nodes handling each event)
    // surface before counting.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let links = notification_links(&c, 0, &watcher, "keyword.match").await;
    assert_eq!(links.len(), TOTAL, "none twice: {links:?}");
    assert_eq!(links.into_iter().collect::<BTreeSet<_>>(), want);
    // One .eml per notification (named by its id), all to the watcher.
    let emails = c.emails();
    assert_eq!(emails.len(), TOTAL, "one email per event");
    assert!(
        emails.iter().all(|e| e.contains("bo-watcher@example.com")),
        "every email to the watcher"
    );
}

/// One seller posts a listing per event, more than `listings_per_hour`,
/// and every one must reach the watcher (past
/// `keyword_alerts_per_seller_per_hour`): these tests are about delivery.
const BULK_SELLER: [(&str, &str); 2] = [
    ("listings_per_hour", "100000"),
    ("keyword_alerts_per_seller_per_hour", "100000"),
];

#[actix_web::test]
async fn events_published_while_every_node_is_down_are_notified_at_restart() {
    let Some(b) = backends() else { return };
    let mut c = Cluster::start(&b, 1, &[]).await;
    let (_, watcher) = c.user("rs-watcher").await;
    let (_, seller) = c.user("rs-seller").await;
    let r = c
        .post(
            0,
            "/api/me/keywords",
            json!({"keyword": "텐트"}),
            Some(&watcher),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = c
        .post(
            0,
            "/api/listings",
            json!({"title": "텐트 4인용", "description": "한 번 사용", "price": 90_000, "category": "sports"}),
            Some(&seller),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    common::eventually(
        Duration::from_secs(20),
        "the first notification",
        || async {
            let links = notification_links(&c, 0, &watcher, "keyword.match").await;
            (links.len() == 1).then_some(())
        },
    )
    .await;
    // The node saves how far it got (about every second).
    common::eventually(Duration::from_secs(20), "a saved position", || async {
        let mut db = c.db().await;
        let n: (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM consumer_positions WHERE consumer = 'notifications'",
        )
        .fetch_one(&mut db)
        .await
        .ok()?;
        (n.0 > 0).then_some(())
    })
    .await;

    // Every node is down; an event is published meanwhile (by a producer
    // of the test's own, on the cluster's topic).
    c.kill9(0);
    let prefix = c
        .env
        .iter()
        .find(|(k, _)| k == "KAFKA_TOPIC_PREFIX")
        .map(|(_, v)| v.clone())
        .expect("prefix");
    let bus = jangteo::bus::kafka::KafkaBus::connect(
        &b.kafka,
        &prefix,
        "test-producer",
        2,
        0,
        10,
        &[jangteo::bus::TOPIC_ALARMS],
    )
    .await
    .expect("Kafka answers");
    let event = jangteo::bus::Event::new(
        "admin.broadcast",
        0,
        json!({"title": "점검 안내", "body": "오늘 밤 점검이 있어요", "link": "/notices/1", "admin": 0}),
    );
    jangteo::bus::Bus::publish(&bus, jangteo::bus::TOPIC_ALARMS, event)
        .await
        .expect("published");
    bus.close();

    // The node comes back and reads on from its saved position.
    c.restart(0);
    common::eventually(
        Duration::from_secs(20),
        "the broadcast published while down",
        || async {
            let links = notification_links(&c, 0, &watcher, "broadcast").await;
            (links.len() == 1).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        notification_links(&c, 0, &watcher, "broadcast").await,
        vec!["/notices/1".to_string()]
    );
    assert_eq!(
        notification_links(&c, 0, &watcher, "keyword.match")
            .await
            .len(),
        1,
        "the replayed first event did not notify twice"
    );
}

/// The chat hub's reader skips its own node's records (by their header,
/// before decoding) and hears every other node's; a plain live reader of
/// the same topic still hears both.
#[actix_web::test]
async fn a_node_reads_the_other_nodes_chat_records_and_skips_its_own() {
    let Some(b) = backends() else { return };
    let prefix = format!("jt_own_{}.", rand_id());
    let topics = [jangteo::bus::TOPIC_CHAT];
    let a = jangteo::bus::kafka::KafkaBus::connect(&b.kafka, &prefix, "node-a", 2, 0, 10, &topics)
        .await
        .expect("Kafka answers");
    let other =
        jangteo::bus::kafka::KafkaBus::connect(&b.kafka, &prefix, "node-b", 2, 0, 10, &topics)
            .await
            .expect("Kafka answers");
    let mut others = jangteo::bus::Bus::subscribe_others(&a, jangteo::bus::TOPIC_CHAT);
    let mut all = jangteo::bus::Bus::subscribe(&a, jangteo::bus::TOPIC_CHAT);
    // The readers start at the topic's end once assigned: publish until
    // the first of the other node's records arrives.
    let mut heard = None;
    // Record n from each node.
    let pair = |n: i64| {
        let (a, other) = (&a, &other);
        async move {
            for (bus, kind) in [(a, "test.mine"), (other, "test.theirs")] {
                let e = jangteo::bus::Event::new(kind, 1, json!({"n": n}));
                jangteo::bus::Bus::publish(bus, jangteo::bus::TOPIC_CHAT, e)
                    .await
                    .expect("published");
            }
        }
    };
    for n in 0..50 {
        pair(n).await;
        if let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(300), others.recv()).await {
            heard = Some(e);
            break;
        }
    }
    let first = heard.expect("the other node's records arrive");
    assert_eq!(first.kind, "test.theirs");
    assert_eq!(first.node, "node-b");
    let n = first.data["n"].as_i64().expect("n");
    // Everything after that: only the other node's, in order, none of ours.
    for m in n + 1..n + 4 {
        pair(m).await;
    }
    for m in n + 1..n + 4 {
        let e = tokio::time::timeout(Duration::from_secs(10), others.recv())
            .await
            .expect("in time")
            .expect("an event");
        assert_eq!(
            (e.kind.as_str(), e.data["n"].as_i64()),
            ("test.theirs", Some(m))
        );
    }
    // The plain reader hears this node's own records too.
    let mut kinds = HashSet::new();
    while kinds.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(10), all.recv())
            .await
            .expect("in time")
            .expect("an event");
        kinds.insert(e.kind);
    }
    a.close();
    other.close();
}
