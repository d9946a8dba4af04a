//! The `jangteo` binary itself: configuration errors, port 0, migrations,
//! create-admin, graceful shutdown.

// Test code asserts by panicking, helpers included (clippy.toml exempts
// only `#[test]` functions themselves).
#![expect(clippy::expect_used, reason = "tests assert by panicking")]

mod common;

use std::process::{Command, Stdio};

use common::{account, jangteo_command as jangteo, ServerProcess, Ws};

#[test]
fn unknown_environment_setting_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jangteo()
        .current_dir(dir.path())
        .env("JANGTEO_LISTN", "127.0.0.1:0")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("JANGTEO_LISTN") && err.contains("listn"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "nothing created on a config error"
    );
}

#[test]
fn invalid_values_fail_naming_the_setting_and_layer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jangteo()
        .current_dir(dir.path())
        .env("JANGTEO_LISTEN", "not-an-address")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`listen`") && err.contains("JANGTEO_LISTEN"),
        "{err}"
    );

    std::fs::write(
        dir.path().join("jangteo.toml"),
        "max_body_bytes = \"lots\"\n",
    )
    .expect("write");
    let out = jangteo()
        .current_dir(dir.path())
        .arg("migrate")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`max_body_bytes`") && err.contains("jangteo.toml"),
        "{err}"
    );

    let out = jangteo()
        .current_dir(dir.path())
        .args(["--set", "nonsense=1", "migrate"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nonsense`"));
}

#[test]
fn migrate_creates_the_database_under_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jangteo()
        .current_dir(dir.path())
        .env("JANGTEO_DATA_DIR", "store")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("store/jangteo.db").exists());
    // Idempotent.
    let out = jangteo()
        .current_dir(dir.path())
        .env("JANGTEO_DATA_DIR", "store")
        .arg("migrate")
        .output()
        .expect("run");
    assert!(out.status.success());
}

/// Start `jangteo` (serve by default) in `dir` with port 0 and cheap
/// Argon2, and wait for the log line that names the bound address.
fn start(dir: &std::path::Path, args: &[&str]) -> ServerProcess {
    let mut cmd = jangteo();
    cmd.current_dir(dir)
        .env("JANGTEO_ARGON2_MEMORY_KIB", "64")
        .env("JANGTEO_ARGON2_ITERATIONS", "1")
        .args(args)
        .stderr(Stdio::null());
    let server = ServerProcess::spawn(cmd).expect("server starts");
    assert!(
        !server.addr.ends_with(":0"),
        "the real port is logged, not 0: {}",
        server.addr
    );
    server
}

fn terminate(server: ServerProcess) -> Vec<String> {
    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    terminate_signalled(server)
}

/// Wait for a server that was already sent SIGTERM.
fn terminate_signalled(mut server: ServerProcess) -> Vec<String> {
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "graceful exit on SIGTERM: {exit:?}");
    server.lines.try_iter().collect()
}

async fn direct_room(base: &str, token: &str, peer: i64) -> i64 {
    let room: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/api/rooms"))
        .bearer_auth(token)
        .json(&serde_json::json!({"kind": "direct", "peer": peer}))
        .send()
        .await
        .expect("room")
        .json()
        .await
        .expect("json");
    room["id"].as_i64().expect("id")
}

#[tokio::test]
async fn serves_on_port_zero_and_shuts_down_gracefully() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(dir.path(), &[]);
    let r = reqwest::get(format!("http://{}/ready", server.addr))
        .await
        .expect("ready");
    assert_eq!(r.status(), 200);
    // The embedded default: a SQLite file under ./data, created on start.
    assert!(dir.path().join("data/jangteo.db").exists());

    // An open WebSocket is closed with 1012 (restart) so the client resumes elsewhere.
    let client = reqwest::Client::new();
    let (_, token) = account(&client, &server.base(), "sigterm").await;
    let mut ws = Ws::connect(&server.base(), &token).await;
    ws.send(serde_json::json!({"type": "ping"})).await;
    ws.expect("pong").await;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill")
        .success());
    assert_eq!(ws.close_frame().await, Some(1012));
    let rest = terminate_signalled(server);
    assert!(
        rest.iter().any(|l| l.contains("shutdown complete")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn acknowledged_messages_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 50 sends in one burst: no direct-room rate limit in the way.
    let unlimited = [
        "--set",
        "chat_direct_send_rate=1000",
        "--set",
        "chat_direct_send_burst=1000",
    ];
    let mut server = start(dir.path(), &unlimited);
    let client = reqwest::Client::new();
    let (_, token_a) = account(&client, &server.base(), "durable-a").await;
    let (b, token_b) = account(&client, &server.base(), "durable-b").await;
    let room = direct_room(&server.base(), &token_a, b).await;
    let mut ws = Ws::connect(&server.base(), &token_a).await;
    for i in 0..50 {
        ws.send(serde_json::json!({"type": "send", "room": room, "client_msg_id": format!("k{i}"), "body": "must survive"}))
            .await;
    }
    let mut acked = Vec::new();
    while acked.len() < 50 {
        let v = ws.expect("ack").await;
        acked.push(v["seq"].as_i64().expect("seq"));
    }
    // No goodbye: the process dies the moment the last ack is read.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("wait");

    let server = start(dir.path(), &[]);
    let history: Vec<serde_json::Value> = reqwest::Client::new()
        .get(format!(
            "http://{}/api/rooms/{room}/messages?limit=200",
            server.addr
        ))
        .bearer_auth(&token_b)
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let stored: Vec<i64> = history
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    for seq in &acked {
        assert!(
            stored.contains(seq),
            "acked seq {seq} lost; stored {stored:?}"
        );
    }
    assert_eq!(stored, (1..=50).collect::<Vec<_>>());
    terminate(server);
}

#[tokio::test]
async fn create_admin_then_log_in_as_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = jangteo()
        .current_dir(dir.path())
        .args([
            "create-admin",
            "--email",
            "Root@Example.com",
            "--nickname",
            "운영자",
        ])
        .env("JANGTEO_ARGON2_MEMORY_KIB", "64")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "admin-secret-pass").expect("write password");
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("root@example.com"));

    // A second run for the same email refuses unless asked to promote.
    let out = jangteo()
        .current_dir(dir.path())
        .args([
            "create-admin",
            "--email",
            "root@example.com",
            "--nickname",
            "again",
            "--password",
            "admin-secret-pass",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email_taken"));

    let server = start(dir.path(), &["serve"]);
    let client = reqwest::Client::new();
    let login: serde_json::Value = client
        .post(format!("http://{}/api/auth/login", server.addr))
        .json(&serde_json::json!({"email": "root@example.com", "password": "admin-secret-pass"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    assert_eq!(login["user"]["role"], "admin");
    let token = login["token"].as_str().expect("token");
    let r = client
        .get(format!("http://{}/api/admin/users", server.addr))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin list");
    assert_eq!(r.status(), 200);
    terminate(server);
}

#[test]
fn promote_existing_makes_an_account_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |extra: &[&str]| {
        jangteo()
            .current_dir(dir.path())
            .env("JANGTEO_ARGON2_MEMORY_KIB", "64")
            .args([
                "create-admin",
                "--email",
                "p@x.com",
                "--nickname",
                "promoted",
                "--password",
                "password-p",
            ])
            .args(extra)
            .output()
            .expect("run")
    };
    assert!(run(&[]).status.success());
    let out = run(&["--promote-existing"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------- resource bounds

/// Peak resident memory of a process so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Production-cost Argon2 (19 MiB per hash): 96 concurrent sign-ups used to
/// run 96 hashes at once (over 1 GB, kept by the allocator). Now at most one
/// per core runs, the queue is bounded, and the rest are told `busy`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_signups_and_uploads_keep_memory_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = jangteo();
    cmd.current_dir(dir.path())
        .env("JANGTEO_SIGNUP_MAX_PER_ADDRESS", "100000")
        .stderr(Stdio::null());
    let server = ServerProcess::spawn(cmd).expect("server starts");
    let base = server.base();
    let client = reqwest::Client::new();
    let (_, token) = account(&client, &base, "uploader").await;
    let before = peak_rss_kib(server.child.id());

    let signups = (0..96).map(|i| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            client
                .post(format!("{base}/api/auth/signup"))
                .json(&serde_json::json!({
                    "email": format!("flood{i}@example.com"),
                    "password": "password-123",
                    "nickname": format!("flood{i}"),
                }))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    });
    let mut created = 0;
    let mut busy = 0;
    for s in futures_util::future::join_all(signups).await {
        match s.expect("task") {
            202 => created += 1,
            503 => busy += 1,
            other => panic!("sign-up answered {other}"),
        }
    }
    assert!(created > 0, "some sign-ups went through");
    let after_signups = peak_rss_kib(server.child.id());

    // Eight uploads at once of a 4000 x 3000 JPEG (36 MB of pixels each).
    let photo = {
        let img = image::RgbImage::from_fn(4000, 3000, |x, y| {
            image::Rgb([(x % 251) as u8, (y % 241) as u8, ((x + y) % 239) as u8])
        });
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut out),
                image::ImageFormat::Jpeg,
            )
            .expect("encode");
        out
    };
    let uploads = (0..8).map(|_| {
        let (client, base, token, photo) =
            (client.clone(), base.clone(), token.clone(), photo.clone());
        tokio::spawn(async move {
            let part = reqwest::multipart::Part::bytes(photo)
                .file_name("photo.jpg")
                .mime_str("image/jpeg")
                .expect("mime");
            client
                .post(format!("{base}/api/media"))
                .bearer_auth(token)
                .multipart(reqwest::multipart::Form::new().part("file", part))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    });
    for s in futures_util::future::join_all(uploads).await {
        let status = s.expect("task");
        assert!(status == 201 || status == 503, "upload answered {status}");
    }
    let after_uploads = peak_rss_kib(server.child.id());
    eprintln!(
        "peak RSS: {before} KiB at start, {after_signups} KiB after 96 sign-ups \
         ({created} created, {busy} busy), {after_uploads} KiB after 8 uploads"
    );
    // Two hashes of 19 MiB at a time, not 96.
    assert!(
        after_signups < before + 200 * 1024,
        "sign-ups grew the peak from {before} to {after_signups} KiB"
    );
    // Two decodes of 36 MB at a time (plus thumbnails and bodies), not 8.
    assert!(
        after_uploads < after_signups + 400 * 1024,
        "uploads grew the peak from {after_signups} to {after_uploads} KiB"
    );
    terminate(server);
}

/// An order that expired just before its node died gets its stock back
/// once, after the restart: the `stock_restore` job was written in the
/// same transaction as the expiry, so it survives the crash in the outbox.
/// The first node works only `order_expire` jobs (`outbox_kinds`), which
/// holds the crash window open for as long as the test needs.
#[tokio::test]
async fn stock_of_an_order_that_expired_before_a_crash_comes_back_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = jangteo()
        .current_dir(dir.path())
        .env("JANGTEO_ARGON2_MEMORY_KIB", "64")
        .args([
            "create-admin",
            "--email",
            "shop@example.com",
            "--nickname",
            "샵주인",
            "--password",
            "admin-secret-pass",
        ])
        .output()
        .expect("create-admin");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut server = start(
        dir.path(),
        &[
            "--set",
            "order_payment_window_secs=1",
            "--set",
            "outbox_poll_ms=50",
            "--set",
            // Verification emails still go out, so the buyer may order.
            "outbox_kinds=order_expire,email_verify",
        ],
    );
    let client = reqwest::Client::new();
    let base = server.base();
    let admin: serde_json::Value = client
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"email": "shop@example.com", "password": "admin-secret-pass"}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let admin = admin["token"].as_str().expect("token").to_string();
    let product: serde_json::Value = client
        .post(format!("{base}/api/admin/products"))
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"name": "Tank", "brand": "Cartier", "category": "watches",
            "base_price": 5_000_000, "status": "on_sale",
            "options": [{"label": "L", "sku": "TANK-L", "stock": 5}]}),
        )
        .send()
        .await
        .expect("product")
        .json()
        .await
        .expect("json");
    let (p, o) = (
        product["id"].as_i64().expect("id"),
        product["options"][0]["id"].as_i64().expect("option"),
    );
    let (_, buyer) = account(&client, &base, "crash-buyer").await;
    common::verify_account(
        &client,
        &base,
        "crash-buyer@example.com",
        &[dir.path().join("data/outbox-mail")],
    )
    .await;
    let order: serde_json::Value = client
        .post(format!("{base}/api/orders"))
        .bearer_auth(&buyer)
        .json(&serde_json::json!({"from": "buy_now", "option_id": o, "quantity": 2}))
        .send()
        .await
        .expect("order")
        .json()
        .await
        .expect("json");
    let number = order["order_number"].as_str().expect("number").to_string();
    let stock = |base: String, admin: String| async move {
        let v: serde_json::Value = reqwest::Client::new()
            .get(format!("{base}/api/products/{p}"))
            .bearer_auth(admin)
            .send()
            .await
            .expect("product")
            .json()
            .await
            .expect("json");
        v["options"][0]["stock"].as_i64().expect("stock")
    };
    assert_eq!(stock(base.clone(), admin.clone()).await, 3);
    common::eventually(
        std::time::Duration::from_secs(15),
        "the order expires",
        || async {
            let v: serde_json::Value = reqwest::Client::new()
                .get(format!("{base}/api/orders/{number}"))
                .bearer_auth(&buyer)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["status"] == "expired").then_some(())
        },
    )
    .await;
    // Expired, its stock not back yet: the restore waits in the outbox.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(stock(base.clone(), admin.clone()).await, 3);
    let pending: serde_json::Value = client
        .get(format!("{base}/api/admin/outbox?status=pending"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("outbox")
        .json()
        .await
        .expect("json");
    // (Next to it wait the expiry's event and, later, its email.)
    assert!(
        pending
            .as_array()
            .expect("jobs")
            .iter()
            .any(|j| j["kind"] == "stock_restore"),
        "{pending}"
    );
    server.child.kill().expect("kill -9");
    server.child.wait().expect("wait");

    let server = start(dir.path(), &["--set", "outbox_poll_ms=50"]);
    let base = server.base();
    common::eventually(
        std::time::Duration::from_secs(15),
        "the stock comes back after the restart",
        || {
            let (base, admin) = (base.clone(), admin.clone());
            async move { (stock(base, admin).await == 5).then_some(()) }
        },
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        stock(base.clone(), admin.clone()).await,
        5,
        "once, not twice"
    );
    let done: serde_json::Value = client
        .get(format!("{base}/api/admin/outbox?status=done"))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("outbox")
        .json()
        .await
        .expect("json");
    let restores = done
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["kind"] == "stock_restore")
        .count();
    assert_eq!(restores, 1, "{done}");
    terminate(server);
}
