//! A WebSocket frame fuzzer that stays in the suite: a bounded number of
//! random and mutated valid frames (seeded, so a failure replays), sent by
//! one client while another chats in the same room. The server must answer
//! every frame it keeps with a well-formed frame or close the fuzzing
//! connection with a documented code, never panic or answer 5xx, and the
//! other client must not notice. `JT_FUZZ_FRAMES` raises the count.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};

use crate::helpers::spawn_app;

const SEED: u64 = 20_261_123;

/// A valid frame of one of the client types, for `room`.
fn valid(rng: &mut StdRng, room: i64, n: usize) -> Value {
    match rng.gen_range(0..5) {
        0 => {
            json!({"type": "send", "room": room, "client_msg_id": format!("fz{n}"), "body": "퍼징"})
        }
        1 => json!({"type": "read", "room": room, "seq": rng.gen_range(0..50)}),
        2 => json!({"type": "typing", "room": room}),
        3 => json!({"type": "resume", "rooms": {room.to_string(): rng.gen_range(0..5)}}),
        _ => json!({"type": "ping"}),
    }
}

fn weird_value(rng: &mut StdRng) -> Value {
    match rng.gen_range(0..10) {
        0 => Value::Null,
        1 => json!(-1),
        2 => json!(i64::MAX),
        3 => json!(u64::MAX),
        4 => json!(1.5e308),
        5 => json!("x".repeat(rng.gen_range(0..5000))),
        6 => json!([1, 2, 3]),
        7 => json!({"nested": {"deeper": [null]}}),
        8 => json!(true),
        _ => json!("\u{0}\u{202e}☃"),
    }
}

/// A valid frame with one field replaced, removed or added.
fn mutated(rng: &mut StdRng, room: i64, n: usize) -> String {
    let mut v = valid(rng, room, n);
    if let Some(obj) = v.as_object_mut() {
        let keys: Vec<String> = obj.keys().cloned().collect();
        match rng.gen_range(0..4) {
            0 => {
                let k = &keys[rng.gen_range(0..keys.len())];
                obj.insert(k.clone(), weird_value(rng));
            }
            1 => {
                let k = &keys[rng.gen_range(0..keys.len())];
                obj.remove(k);
            }
            2 => {
                obj.insert("extra".into(), weird_value(rng));
            }
            _ => {
                obj.insert(
                    "type".into(),
                    json!(["send", "SEND", "", "resume ", "a"][rng.gen_range(0..5)]),
                );
            }
        }
    }
    v.to_string()
}

/// Random bytes, or valid JSON cut short.
fn garbage(rng: &mut StdRng, room: i64, n: usize) -> String {
    if rng.gen_bool(0.5) {
        let s = valid(rng, room, n).to_string();
        let cut = rng.gen_range(0..s.len());
        s.chars().take(cut).collect()
    } else {
        (0..rng.gen_range(0..200))
            .map(|_| char::from(rng.gen_range(0x20u8..0x7f)))
            .collect()
    }
}

#[actix_web::test]
async fn fuzzed_frames_never_break_the_server_or_other_clients() {
    let frames: usize = std::env::var("JT_FUZZ_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let app = spawn_app().await;
    let (fuzzer, a, b) = (
        app.user("fuzzer").await,
        app.user("bystander-a").await,
        app.user("bystander-b").await,
    );
    let room = app.open_room(&a, "퍼징 방").await;
    app.join(&fuzzer, room).await;
    app.join(&b, room).await;
    let mut wa = app.ws(&a.token).await;
    let mut wb = app.ws(&b.token).await;
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut ws = app.ws(&fuzzer.token).await;
    let mut reconnects = 0;
    let mut sent = 0;
    let mut said = 0;
    while sent < frames {
        let text = match rng.gen_range(0..10) {
            0..=3 => valid(&mut rng, room, sent).to_string(),
            4..=8 => mutated(&mut rng, room, sent),
            _ => garbage(&mut rng, room, sent),
        };
        use futures_util::SinkExt as _;
        let ok = ws
            .stream
            .send(tokio_tungstenite::tungstenite::Message::Text(text))
            .await
            .is_ok();
        sent += 1;
        // Answers are drained as they come; each must be a JSON frame with
        // a type (the helper panics on anything else).
        while let Some(v) = ws.read_within(Duration::from_millis(0)).await {
            assert!(v["type"].is_string(), "{v}");
            if v["type"] == "error" {
                assert!(v["code"].is_string(), "{v}");
            }
        }
        if !ok {
            reconnects += 1;
            ws = app.ws(&fuzzer.token).await;
        }
        // Meanwhile the bystanders keep talking, undisturbed.
        if sent % 300 == 0 {
            said += 1;
            let ack = wa.say(room, &format!("by{said}"), "still fine?").await;
            let seq = ack["seq"].as_i64().expect("seq");
            wb.expect_where(|v| v["type"] == "message" && v["seq"] == seq)
                .await;
        }
    }
    // The fuzzing connection (or its replacement) still works...
    ws.send(json!({"type": "ping"})).await;
    ws.expect_where(|v| v["type"] == "pong").await;
    // ...and so does the rest of the server.
    let health = app.get("/ready", None).await;
    assert_eq!(health.status(), reqwest::StatusCode::OK);
    eprintln!("fuzzed {sent} frames, {reconnects} reconnects, {said} bystander messages");
    assert!(reconnects < frames / 10, "{reconnects} reconnects");
}
