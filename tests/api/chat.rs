use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, spawn_app, spawn_app_with, Ws};

#[actix_web::test]
async fn send_ack_and_delivery_to_every_device() {
    let app = spawn_app().await;
    let (a, b) = (app.user("alice").await, app.user("bob").await);
    let room = app.direct_room(&a, &b).await;
    let mut a1 = app.ws(&a.token).await;
    let mut a2 = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;

    a1.send(json!({"type": "send", "room": room, "client_msg_id": "c1", "body": "안녕하세요, 아직 판매 중인가요?"}))
        .await;
    // The sender's connection: ack first, then the message itself.
    let first = a1
        .expect_where(|v| v["type"] == "ack" || v["type"] == "message")
        .await;
    assert_eq!(first["type"], "ack", "{first}");
    assert_eq!(first["seq"], 1);
    assert_eq!(first["client_msg_id"], "c1");
    assert!(first["ts"].as_i64().expect("ts") > 0);
    for ws in [&mut a1, &mut a2, &mut b1] {
        let m = ws.expect("message").await;
        assert_eq!(m["room"], room);
        assert_eq!(m["seq"], 1);
        assert_eq!(m["sender"], a.id);
        assert_eq!(m["kind"], "text");
        assert_eq!(m["client_msg_id"], "c1");
        assert_eq!(m["body"], "안녕하세요, 아직 판매 중인가요?");
    }
    // Bob's count: one unread in this room, one in total. The message
    // carries it (no badge frame follows a delivery: the client derives it,
    // docs/PROTOCOL.md).
    assert_eq!(app.unread(&b, room).await, 1);
    // ... so no badge frame follows it (past the 100 ms coalescing window).
    b1.expect_none(Duration::from_millis(400), |v| v["type"] == "badge")
        .await;
    // Durable: in history and in Bob's room list.
    let hist = app.history(&b, room, "").await;
    assert_eq!(hist.len(), 1);
    assert_eq!(app.unread(&b, room).await, 1);
    assert_eq!(
        app.unread(&a, room).await,
        0,
        "own messages are never unread"
    );
}

#[actix_web::test]
async fn seqs_are_gap_free_under_concurrent_senders() {
    let app = spawn_app_with(&[("chat_send_rate", "1000"), ("chat_send_burst", "1000")]).await;
    let owner = app.user("owner").await;
    let room = app.open_room(&owner, "동시성").await;
    let mut users = Vec::new();
    for i in 0..4 {
        let u = app.user(&format!("sender{i}")).await;
        app.join(&u, room).await;
        users.push(u);
    }
    let per_user = 25;
    let mut tasks = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let mut ws = app.ws(&u.token).await;
        tasks.push(actix_web::rt::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..per_user {
                ws.send(json!({"type": "send", "room": room, "client_msg_id": format!("{i}-{n}"), "body": format!("msg {n}")}))
                    .await;
            }
            for _ in 0..per_user {
                let ack = ws.expect("ack").await;
                seqs.push(ack["seq"].as_i64().expect("seq"));
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t.await.expect("task");
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(seqs, sorted, "one connection's acks arrive in seq order");
        all.extend(seqs);
    }
    all.sort();
    let hist = app.history(&owner, room, "?limit=200").await;
    let stored: Vec<i64> = hist
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    // 4 join messages + 100 sends, numbered 1..=104 with no gap.
    assert_eq!(stored, (1..=104).collect::<Vec<_>>());
    assert_eq!(all.len(), 100);
    all.dedup();
    assert_eq!(all.len(), 100, "no seq acked twice");
}

#[actix_web::test]
async fn duplicate_client_msg_id_returns_the_original_ack() {
    let app = spawn_app().await;
    let (a, b) = (app.user("dup-a").await, app.user("dup-b").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut wb = app.ws(&b.token).await;
    let first = wa.say(room, "same-id", "처음").await;
    wb.expect("message").await;
    // Resent while connected, and again from a new connection (as after a
    // reconnect): the same ack, no new message.
    let again = wa.say(room, "same-id", "처음").await;
    assert_eq!(first["seq"], again["seq"]);
    assert_eq!(first["ts"], again["ts"]);
    let mut wa2 = app.ws(&a.token).await;
    let third = wa2.say(room, "same-id", "다른 본문이라도").await;
    assert_eq!(first["seq"], third["seq"]);
    wb.expect_none(Duration::from_millis(300), |v| v["type"] == "message")
        .await;
    assert_eq!(app.history(&a, room, "").await.len(), 1);
    // Another sender may use the same client id.
    let other = app.ws(&b.token).await.say(room, "same-id", "제 것").await;
    assert_eq!(other["seq"], 2);
}

/// Read `room` up to `seq` and wait for that room's badge: (unread, total).
async fn read_for_badge(ws: &mut Ws, room: i64, seq: i64) -> (Option<i64>, Option<i64>) {
    ws.send(json!({"type": "read", "room": room, "seq": seq}))
        .await;
    let badge = ws
        .expect_where(|v| v["type"] == "badge" && v["room"] == room)
        .await;
    (badge["unread"].as_i64(), badge["total"].as_i64())
}

/// A badge's total counts every room's deliveries, not only the room that
/// was read, and never the user's own messages (the counts are derived
/// from each room's delivered seq and the user's read pointers when the
/// badge is sent, not kept per delivery).
#[actix_web::test]
async fn a_badge_total_counts_the_other_rooms_and_never_your_own_messages() {
    let app = spawn_app().await;
    let (a, b, c) = (
        app.user("writer-a").await,
        app.user("reader-b").await,
        app.user("writer-c").await,
    );
    let first = app.direct_room(&a, &b).await;
    let second = app.direct_room(&c, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut wb = app.ws(&b.token).await;
    let mut wc = app.ws(&c.token).await;
    wa.say(first, "a1", "하나").await;
    wa.say(first, "a2", "둘").await;
    wb.say(second, "b1", "내 메시지").await;
    wc.say(second, "c1", "셋").await;
    wb.expect_where(|v| v["type"] == "message" && v["room"] == second && v["seq"] == 2)
        .await;
    wb.expect_where(|v| v["type"] == "message" && v["room"] == first && v["seq"] == 2)
        .await;

    // Reading the second room: 0 there, and the first room's 2 in the total.
    assert_eq!(read_for_badge(&mut wb, second, 2).await, (Some(0), Some(2)));
    // Half of the first room: 1 left, and that is the whole total (b's own
    // message in the second room never counted).
    assert_eq!(read_for_badge(&mut wb, first, 1).await, (Some(1), Some(1)));
    assert_eq!(app.unread(&b, first).await, 1);
    assert_eq!(app.unread(&b, second).await, 0);
}

#[actix_web::test]
async fn reading_on_one_device_clears_the_badge_on_the_others_and_sends_a_receipt() {
    let app = spawn_app().await;
    let (a, b) = (app.user("sender").await, app.user("reader").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut b1 = app.ws(&b.token).await;
    let mut b2 = app.ws(&b.token).await;
    for i in 1..=3 {
        wa.say(room, &format!("m{i}"), &format!("message {i}"))
            .await;
    }
    for ws in [&mut b1, &mut b2] {
        ws.expect_where(|v| v["type"] == "message" && v["seq"] == 3)
            .await;
    }
    assert_eq!(app.unread(&b, room).await, 3);

    b1.send(json!({"type": "read", "room": room, "seq": 2}))
        .await;
    for ws in [&mut b1, &mut b2] {
        let badge = ws
            .expect_where(|v| v["type"] == "badge" && v["unread"] == 1)
            .await;
        assert_eq!(badge["total"], 1);
    }
    let receipt = wa.expect("receipt").await;
    assert_eq!(
        (receipt["user"].as_i64(), receipt["seq"].as_i64()),
        (Some(b.id), Some(2))
    );

    // REST read has the same effect; reading past the end clamps.
    let r = app
        .put_json(
            &format!("/api/rooms/{room}/read"),
            &json!({"seq": 99}),
            Some(&b.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["unread"], 0);
    b2.expect_where(|v| v["type"] == "badge" && v["unread"] == 0)
        .await;
    let receipt = wa
        .expect_where(|v| v["type"] == "receipt" && v["seq"] == 3)
        .await;
    assert_eq!(receipt["user"], b.id);
    assert_eq!(app.unread(&b, room).await, 0);
    // Read pointers never move back.
    app.client
        .put(app.url(&format!("/api/rooms/{room}/read")))
        .bearer_auth(&b.token)
        .json(&json!({"seq": 1}))
        .send()
        .await
        .expect("read");
    assert_eq!(app.unread(&b, room).await, 0);
}

#[actix_web::test]
async fn resume_after_a_dropped_connection_loses_and_doubles_nothing() {
    // Sends in bursts: no direct-room rate limit in the way.
    let app = spawn_app_with(&[
        ("chat_direct_send_rate", "1000"),
        ("chat_direct_send_burst", "1000"),
    ])
    .await;
    let (a, b) = (app.user("talker").await, app.user("commuter").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut wb = app.ws(&b.token).await;
    for i in 1..=5 {
        wa.say(room, &format!("before-{i}"), "before the tunnel")
            .await;
    }
    let seen = wb.messages_through(room, 5).await;
    assert_eq!(seen.len(), 5);
    drop(wb); // the train enters a tunnel

    // Alice keeps talking while Bob is away, and while he reconnects.
    let sender = actix_web::rt::spawn(async move {
        for i in 1..=40 {
            wa.say(room, &format!("during-{i}"), "안 들려요?").await;
            if i % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        wa
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let mut wb = app.ws_raw(&b.token).await;
    wb.send(json!({"type": "resume", "rooms": {room.to_string(): 5}}))
        .await;
    let _wa = sender.await.expect("sender");
    let got = wb.messages_through(room, 45).await;
    let seqs: Vec<i64> = got
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (6..=45).collect::<Vec<_>>(),
        "every missed message once, in order"
    );
    let resumed = wb.expect("resumed").await;
    assert_eq!(resumed["room"], room);
    let through = resumed["through"].as_i64().expect("through");
    assert!((5..=45).contains(&through));
    wb.expect_none(Duration::from_millis(300), |v| v["type"] == "message")
        .await;
}

#[actix_web::test]
async fn kicked_and_banned_members_are_removed_live() {
    let app = spawn_app().await;
    let owner = app.user("방장").await;
    let (c, d) = (app.user("kicked").await, app.user("watcher").await);
    let room = app.open_room(&owner, "동네 모임").await;
    app.join(&c, room).await;
    app.join(&d, room).await;
    let mut wo = app.ws(&owner.token).await;
    let mut wc = app.ws(&c.token).await;
    let mut wd = app.ws(&d.token).await;
    wo.say(room, "hello", "어서 오세요").await;
    wc.expect_where(|v| v["type"] == "message" && v["body"] == "어서 오세요")
        .await;

    // Only the owner moderates.
    let r = app
        .post_json(
            &format!("/api/rooms/{room}/kick"),
            &json!({"user_id": d.id}),
            Some(&c.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_owner").await;

    let r = app
        .post_json(
            &format!("/api/rooms/{room}/kick"),
            &json!({"user_id": c.id}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let removed = wc.expect("removed").await;
    assert_eq!(
        (removed["room"].as_i64(), removed["reason"].as_str()),
        (Some(room), Some("kicked"))
    );
    let notice = wd
        .expect_where(|v| {
            v["type"] == "message" && v["kind"] == "system" && v["payload"]["event"] == "kicked"
        })
        .await;
    assert_eq!(notice["payload"]["user"], c.id);
    wo.say(room, "after-kick", "안 보여야 함").await;
    wd.expect_where(|v| v["type"] == "message" && v["body"] == "안 보여야 함")
        .await;
    // Nothing from the kick on reaches the kicked user (frames from before
    // the kick, e.g. the watcher's join notice, may still sit in the backlog).
    let kick_seq = notice["seq"].as_i64().unwrap_or(i64::MAX);
    wc.expect_none(Duration::from_millis(300), |v| {
        v["type"] == "message" && v["seq"].as_i64().unwrap_or(0) >= kick_seq
    })
    .await;
    // The kicked user can no longer send, nor read history.
    wc.send(json!({"type": "send", "room": room, "client_msg_id": "x", "body": "여보세요"}))
        .await;
    let err = wc.expect("error").await;
    assert_eq!(err["code"], "not_member");
    assert_eq!(err["client_msg_id"], "x");
    assert_error(
        app.get(&format!("/api/rooms/{room}/messages"), Some(&c.token))
            .await,
        StatusCode::FORBIDDEN,
        "not_member",
    )
    .await;
    // A kick is not a ban: they may come back...
    app.join(&c, room).await;
    // ...but a ban keeps them out until lifted.
    let r = app
        .post_json(
            &format!("/api/rooms/{room}/ban"),
            &json!({"user_id": c.id}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wc.expect_where(|v| v["type"] == "removed" && v["reason"] == "banned")
        .await;
    let r = app
        .post_json(
            &format!("/api/rooms/{room}/join"),
            &json!({}),
            Some(&c.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "banned").await;
    let r = app
        .post_json(
            &format!("/api/rooms/{room}/unban"),
            &json!({"user_id": c.id}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.join(&c, room).await;
    // The owner cannot be kicked.
    let r = app
        .post_json(
            &format!("/api/rooms/{room}/kick"),
            &json!({"user_id": owner.id}),
            Some(&owner.token),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;
}

#[actix_web::test]
async fn direct_rooms_have_a_send_rate_limit_too() {
    // One token per 10 s, bursts of 5: a quick burst of 12 gets exactly 5
    // through.
    let app = spawn_app_with(&[
        ("chat_direct_send_rate", "0.1"),
        ("chat_direct_send_burst", "5"),
    ])
    .await;
    let (a, b) = (app.user("fast-a").await, app.user("fast-b").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    const BURST: usize = 12;
    for k in 0..BURST {
        wa.send(json!({"type": "send", "room": room, "client_msg_id": format!("f-{k}"), "body": format!("빨리 {k}")}))
            .await;
    }
    let (mut acked, mut limited) = (Vec::new(), Vec::new());
    for _ in 0..BURST {
        let v = wa
            .expect_where(|v| v["type"] == "ack" || v["type"] == "error")
            .await;
        let cid = v["client_msg_id"].as_str().expect("cid").to_string();
        if v["type"] == "ack" {
            acked.push(cid);
        } else {
            assert_eq!(
                (v["code"].as_str(), v["room"].as_i64()),
                (Some("rate_limited"), Some(room)),
                "{v}"
            );
            limited.push(cid);
        }
    }
    assert_eq!(
        acked,
        (0..5).map(|k| format!("f-{k}")).collect::<Vec<_>>(),
        "the burst goes through, in order"
    );
    assert_eq!(limited.len(), BURST - 5, "the excess is refused");
    // Nothing was stored for the refused sends.
    let history = app.history(&b, room, "").await;
    let stored: Vec<&str> = history
        .iter()
        .filter_map(|m| m["client_msg_id"].as_str())
        .collect();
    assert_eq!(stored, acked, "{history:?}");
    // Each member has a bucket of their own.
    let mut wb = app.ws(&b.token).await;
    wb.say(room, "b-1", "나도").await;
}
