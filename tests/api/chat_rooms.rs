//! Rooms over REST, denials, bad frames, slow consumers, actor lifecycle.

use std::time::Duration;

use futures_util::SinkExt as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, Parsed, Ws};

#[actix_web::test]
async fn direct_rooms_are_get_or_create_and_race_safe() {
    let app = spawn_app().await;
    let (a, b) = (app.user("buyer").await, app.user("seller").await);
    let bodies: Vec<(Value, &str)> = (0..6)
        .map(|i| {
            let (me, peer) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
            (
                json!({"kind": "direct", "peer": peer.id}),
                me.token.as_str(),
            )
        })
        .collect();
    let calls = bodies
        .iter()
        .map(|(body, token)| app.post_json("/api/rooms", body, Some(token)));
    let responses = futures_util::future::join_all(calls).await;
    let mut ids = Vec::new();
    let mut created = 0;
    for r in responses {
        if r.status() == StatusCode::CREATED {
            created += 1;
        } else {
            assert_eq!(r.status(), StatusCode::OK);
        }
        ids.push(
            r.json::<Value>().await.expect("json")["id"]
                .as_i64()
                .expect("id"),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one room for the pair");
    assert_eq!(created, 1);

    let body = assert_error(
        app.post_json(
            "/api/rooms",
            &json!({"kind": "direct", "peer": a.id}),
            Some(&a.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(body["details"]["peer"].is_string());
    let create = |what, body: Value, token, status, code| {
        (
            what,
            Method::POST,
            "/api/rooms".to_string(),
            Some(body),
            token,
            status,
            code,
        )
    };
    app.assert_refusals(vec![
        create(
            "a peer that does not exist",
            json!({"kind": "direct", "peer": 9999}),
            Some(a.token.as_str()),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        create(
            "no session",
            json!({"kind": "direct", "peer": b.id}),
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        create(
            "an unknown kind",
            json!({"kind": "group", "peer": b.id}),
            Some(a.token.as_str()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ])
    .await;

    // A third user sees nothing of it.
    let c = app.user("stranger").await;
    let room = ids[0];
    assert_error(
        app.get(&format!("/api/rooms/{room}"), Some(&c.token)).await,
        StatusCode::FORBIDDEN,
        "not_member",
    )
    .await;
    assert_error(
        app.post_json(
            &format!("/api/rooms/{room}/join"),
            &json!({}),
            Some(&c.token),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    let listed = app.my_rooms(&a).await;
    assert_eq!(listed["items"][0]["peer"]["id"], b.id);
    assert_eq!(listed["items"][0]["kind"], "direct");
}

#[actix_web::test]
async fn open_rooms_search_join_passcode_capacity() {
    let app = spawn_app().await;
    let owner = app.user("host").await;
    let r = app
        .post_json(
            "/api/rooms",
            &json!({"kind": "open", "name": "  강남 중고거래 모임 ", "description": "아이폰 직거래", "capacity": 3, "passcode": "1234"}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let room: Value = r.parsed().await;
    assert_eq!(room["name"], "강남 중고거래 모임");
    assert_eq!(room["has_passcode"], true);
    assert_eq!(room["member_count"], 1);
    assert!(room.get("passcode").is_none() && room.get("passcode_hash").is_none());
    let id = room["id"].as_i64().expect("id");
    app.open_room(&owner, "English book club").await;

    let searcher = app.user("searcher").await;
    let found: Value = app
        .get("/api/rooms?q=%EC%A4%91%EA%B3%A0", Some(&searcher.token))
        .await
        .parsed()
        .await; // q=중고
    assert_eq!(found["items"].as_array().expect("items").len(), 1);
    assert_eq!(found["items"][0]["id"], id);
    let found: Value = app
        .get("/api/rooms?q=book", Some(&searcher.token))
        .await
        .parsed()
        .await;
    assert_eq!(found["items"][0]["name"], "English book club");
    let found: Value = app
        .get("/api/rooms?q=%25", Some(&searcher.token))
        .await
        .parsed()
        .await; // a literal %
    assert_eq!(found["items"].as_array().expect("items").len(), 0);
    let page: Value = app
        .get("/api/rooms?limit=1", Some(&searcher.token))
        .await
        .parsed()
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    let cursor = page["next_cursor"].as_str().expect("cursor");
    let page2: Value = app
        .get(
            &format!("/api/rooms?limit=1&cursor={cursor}"),
            Some(&searcher.token),
        )
        .await
        .parsed()
        .await;
    assert_ne!(page2["items"][0]["id"], page["items"][0]["id"]);
    let list = |what, query: &str, token, status, code| {
        (
            what,
            Method::GET,
            format!("/api/rooms{query}"),
            None,
            token,
            status,
            code,
        )
    };
    app.assert_refusals(vec![
        list(
            "limit 0",
            "?limit=0",
            Some(searcher.token.as_str()),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        list(
            "a cursor that is not one",
            "?cursor=abc",
            Some(searcher.token.as_str()),
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        ),
        list(
            "no session",
            "",
            None,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
    ])
    .await;

    // Passcode: missing or wrong -> 403, right -> joined.
    let j = app.user("joiner").await;
    assert_error(
        app.post_json(&format!("/api/rooms/{id}/join"), &json!({}), Some(&j.token))
            .await,
        StatusCode::FORBIDDEN,
        "bad_passcode",
    )
    .await;
    assert_error(
        app.post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "0000"}),
            Some(&j.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "bad_passcode",
    )
    .await;
    let r = app
        .post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "1234"}),
            Some(&j.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["member_count"], 2);
    // Joining twice is harmless.
    let r = app
        .post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "1234"}),
            Some(&j.token),
        )
        .await;
    assert_eq!(r.json::<Value>().await.expect("json")["member_count"], 2);
    // Capacity 3: the third joiner fits, the fourth does not.
    let k = app.user("third").await;
    assert_eq!(
        app.post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "1234"}),
            Some(&k.token)
        )
        .await
        .status(),
        StatusCode::OK
    );
    let late = app.user("latecomer").await;
    assert_error(
        app.post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "1234"}),
            Some(&late.token),
        )
        .await,
        StatusCode::CONFLICT,
        "room_full",
    )
    .await;
    assert_error(
        app.post_json("/api/rooms/424242/join", &json!({}), Some(&late.token))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Leaving frees a place; the owner must hand over first.
    assert_error(
        app.post_json(
            &format!("/api/rooms/{id}/leave"),
            &json!({}),
            Some(&owner.token),
        )
        .await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(
        app.post_json(
            &format!("/api/rooms/{id}/leave"),
            &json!({}),
            Some(&k.token)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.post_json(
            &format!("/api/rooms/{id}/leave"),
            &json!({}),
            Some(&k.token),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_member",
    )
    .await;
    assert_eq!(
        app.post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "1234"}),
            Some(&late.token)
        )
        .await
        .status(),
        StatusCode::OK
    );
    let r = app
        .post_json(
            &format!("/api/rooms/{id}/owner"),
            &json!({"user_id": j.id}),
            Some(&j.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_owner").await;
    let r = app
        .post_json(
            &format!("/api/rooms/{id}/owner"),
            &json!({"user_id": j.id}),
            Some(&owner.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.expect("json")["owner_id"], j.id);
    assert_eq!(
        app.post_json(
            &format!("/api/rooms/{id}/leave"),
            &json!({}),
            Some(&owner.token)
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );

    // Validation.
    let body = assert_error(
        app.post_json(
            "/api/rooms",
            &json!({"kind": "open", "name": "", "capacity": 5000, "passcode": "1"}),
            Some(&owner.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    for f in ["name", "capacity", "passcode"] {
        assert!(body["details"][f].is_string(), "{f}: {body}");
    }
}

#[actix_web::test]
async fn wrong_passcodes_are_throttled() {
    let app = spawn_app_with(&[("login_max_failures", "2")]).await;
    let owner = app.user("locked").await;
    let r = app
        .post_json(
            "/api/rooms",
            &json!({"kind": "open", "name": "비밀방", "passcode": "secret"}),
            Some(&owner.token),
        )
        .await;
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let g = app.user("guesser").await;
    for _ in 0..2 {
        assert_error(
            app.post_json(
                &format!("/api/rooms/{id}/join"),
                &json!({"passcode": "guess"}),
                Some(&g.token),
            )
            .await,
            StatusCode::FORBIDDEN,
            "bad_passcode",
        )
        .await;
    }
    assert_error(
        app.post_json(
            &format!("/api/rooms/{id}/join"),
            &json!({"passcode": "secret"}),
            Some(&g.token),
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
    )
    .await;
}

#[actix_web::test]
async fn non_members_are_denied_everywhere() {
    let app = spawn_app().await;
    let owner = app.user("member").await;
    let outsider = app.user("outsider").await;
    let room = app.open_room(&owner, "members only").await;
    let mut wo = app.ws(&owner.token).await;
    wo.say(room, "m1", "secret plans").await;
    let t = Some(outsider.token.as_str());
    for path in [
        format!("/api/rooms/{room}/messages"),
        format!("/api/rooms/{room}/members"),
    ] {
        assert_error(app.get(&path, t).await, StatusCode::FORBIDDEN, "not_member").await;
    }
    let r = app
        .put_json(
            &format!("/api/rooms/{room}/read"),
            &json!({"seq": 1}),
            Some(&outsider.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_member").await;
    let r = app
        .patch_json(
            &format!("/api/rooms/{room}/messages/1"),
            &json!({"body": "x"}),
            Some(&outsider.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_member").await;
    // Open rooms are visible (to decide whether to join), flagged as not joined.
    let v: Value = app
        .get(&format!("/api/rooms/{room}"), t)
        .await
        .parsed()
        .await;
    assert_eq!(v["is_member"], false);

    let mut wx = app.ws(&outsider.token).await;
    wx.send(json!({"type": "send", "room": room, "client_msg_id": "sneak", "body": "hi"}))
        .await;
    let e = wx.expect("error").await;
    assert_eq!(
        (
            e["code"].as_str(),
            e["room"].as_i64(),
            e["client_msg_id"].as_str()
        ),
        (Some("not_member"), Some(room), Some("sneak"))
    );
    wx.send(json!({"type": "read", "room": room, "seq": 1}))
        .await;
    assert_eq!(wx.expect("error").await["code"], "not_member");
    wx.send(json!({"type": "typing", "room": room})).await;
    assert_eq!(wx.expect("error").await["code"], "not_member");
    wx.send(json!({"type": "resume", "rooms": {room.to_string(): 0}}))
        .await;
    assert_eq!(wx.expect("error").await["code"], "not_member");
    wx.send(json!({"type": "send", "room": 777777, "client_msg_id": "nowhere", "body": "hi"}))
        .await;
    assert_eq!(wx.expect("error").await["code"], "room_not_found");
    wx.expect_none(Duration::from_millis(200), |v| v["type"] == "message")
        .await;
    // Nothing the outsider did reached the room.
    assert_eq!(app.history(&owner, room, "").await.len(), 1);
}

#[actix_web::test]
async fn websocket_requires_authentication_and_accepts_three_ways() {
    let app = spawn_app().await;
    let u = app.user("socket").await;
    let port = app.addr.rsplit(':').next().expect("port").to_string();
    // No credentials: 401 before the upgrade.
    let err = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
        .await
        .expect_err("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 401),
        other => panic!("expected HTTP 401, got {other:?}"),
    }
    let err = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws?token=forged"))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, tokio_tungstenite::tungstenite::Error::Http(ref r) if r.status() == 401),
        "{err:?}"
    );
    // ?token= works...
    let (mut s, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws?token={}", u.token))
            .await
            .expect("query token");
    s.send(Message::Text(json!({"type": "ping"}).to_string()))
        .await
        .expect("send");
    // ...and so does the cookie.
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut req = format!("ws://127.0.0.1:{port}/ws")
        .into_client_request()
        .expect("req");
    req.headers_mut().insert(
        "cookie",
        format!("jangteo_session={}", u.token).parse().expect("hdr"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("cookie auth");
    // A plain GET is not an upgrade.
    assert_error(
        app.get("/ws", Some(&u.token)).await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
}

#[actix_web::test]
async fn websocket_upgrades_from_unlisted_origins_are_refused() {
    let app = spawn_app_with(&[(
        "ws_allowed_origins",
        "https://jangteo.example, http://localhost:3000",
    )])
    .await;
    let u = app.user("origin").await;
    let bearer = format!("Bearer {}", u.token);
    let cookie = format!("jangteo_session={}", u.token);
    for bad in [
        "https://evil.example",
        "null",
        "https://jangteo.example.evil.example",
        "http://jangteo.example",
        "https://jangteo.example:8443",
    ] {
        // A foreign page riding on the cookie (cross-site WebSocket
        // hijacking), and a client with a bearer token alike.
        for auth in [
            ("cookie", cookie.as_str()),
            ("authorization", bearer.as_str()),
        ] {
            let err = Ws::handshake(&app.addr, &[auth, ("origin", bad)])
                .await
                .err()
                .unwrap_or_else(|| panic!("{bad}: upgraded"));
            let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
                panic!("{bad}: expected an HTTP refusal, got {err:?}");
            };
            assert_eq!(resp.status(), 403, "{bad}");
            if let Some(body) = resp.body().as_deref().filter(|b| !b.is_empty()) {
                let body: Value = serde_json::from_slice(body).expect("envelope");
                assert_eq!(body["code"], "forbidden", "{bad}: {body}");
            }
        }
        // The same refusal carries the envelope (checked before anything
        // else, so also on a request that is not an upgrade).
        let r = app
            .client
            .get(app.url("/ws"))
            .bearer_auth(&u.token)
            .header("origin", bad)
            .send()
            .await
            .expect("request");
        assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    }
    // Listed origins (in any case) connect, and so do clients that send no
    // Origin at all (apps, not browsers).
    for origin in [
        Some("https://jangteo.example"),
        Some("HTTP://LOCALHOST:3000"),
        None,
    ] {
        let mut headers = vec![("authorization", bearer.as_str())];
        headers.extend(origin.map(|o| ("origin", o)));
        let mut ws = Ws::handshake(&app.addr, &headers)
            .await
            .unwrap_or_else(|e| panic!("{origin:?}: {e}"));
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
    }
    // Unset (the embedded default): the server's own origin only (the
    // web client is served from it), not any page's.
    let open = spawn_app().await;
    let v = open.user("anywhere").await;
    let auth = format!("Bearer {}", v.token);
    match Ws::handshake(
        &open.addr,
        &[("authorization", &auth), ("origin", "https://evil.example")],
    )
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::FORBIDDEN);
        }
        other => panic!("a foreign origin by default: {:?}", other.map(|_| ())),
    }
    let own = open.addr.clone();
    let mut ws = Ws::handshake(&open.addr, &[("authorization", &auth), ("origin", &own)])
        .await
        .expect("the server's own origin");
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
}

#[actix_web::test]
async fn bad_frames_get_errors_and_the_connection_stays_usable() {
    let app = spawn_app_with(&[("chat_send_rate", "1"), ("chat_send_burst", "2")]).await;
    let u = app.user("clumsy").await;
    let room = app.open_room(&u, "테스트").await;
    let mut ws = app.ws(&u.token).await;
    let cases: Vec<(String, &str)> = vec![
        ("{not json".into(), "bad_json"),
        (json!({"room": room}).to_string(), "invalid_frame"),
        (json!({"type": "shout", "room": room}).to_string(), "unknown_type"),
        (json!({"type": "send", "room": room}).to_string(), "invalid_frame"),
        (json!({"type": "send", "room": "one", "client_msg_id": "a", "body": "b"}).to_string(), "invalid_frame"),
        (json!({"type": "send", "room": room, "client_msg_id": "", "body": "b"}).to_string(), "validation_failed"),
        (json!({"type": "send", "room": room, "client_msg_id": "x".repeat(65), "body": "b"}).to_string(), "validation_failed"),
        (json!({"type": "send", "room": room, "client_msg_id": "long", "body": "가".repeat(4001)}).to_string(), "validation_failed"),
        (json!({"type": "send", "room": room, "client_msg_id": "blank", "body": "   "}).to_string(), "validation_failed"),
        (json!({"type": "read", "room": room, "seq": -1}).to_string(), "invalid_frame"),
        (json!({"type": "resume", "rooms": {"abc": 1}}).to_string(), "invalid_frame"),
    ];
    for (text, code) in cases {
        ws.stream
            .send(Message::Text(text.clone()))
            .await
            .expect("send");
        // With two nodes the room's own `joined` event can reach this
        // socket through the bus after it connected: frames other than
        // errors are set aside.
        let e = ws.expect("error").await;
        assert_eq!(e["code"], code, "{text} -> {e}");
        assert!(e["message"].is_string());
    }
    let e = {
        ws.stream.send(Message::Text(json!({"type": "send", "room": room, "client_msg_id": "long2", "body": "가".repeat(4001)}).to_string())).await.expect("send");
        ws.expect("error").await
    };
    assert_eq!(e["client_msg_id"], "long2", "errors name the client id");
    ws.stream
        .send(Message::Binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(ws.expect("error").await["code"], "invalid_frame");
    // Still usable; and the send rate limit in open rooms (burst 2).
    ws.say(room, "ok-1", "first").await;
    ws.say(room, "ok-2", "second").await;
    ws.send(json!({"type": "send", "room": room, "client_msg_id": "ok-3", "body": "third"}))
        .await;
    let e = ws.expect_where(|v| v["client_msg_id"] == "ok-3").await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("rate_limited"))
    );
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
    // Nothing invalid was stored.
    assert_eq!(app.history(&u, room, "").await.len(), 2);
    // A frame over the size limit closes the connection (1009).
    ws.stream
        .send(Message::Text("x".repeat(70_000)))
        .await
        .expect("send");
    assert!(
        ws.read_within(Duration::from_secs(5)).await.is_none(),
        "closed"
    );
}

#[actix_web::test]
async fn history_pages_edits_and_deletions() {
    // Writes pages of history in bursts: no rate limit in the way.
    let app = spawn_app_with(&[
        ("chat_direct_send_rate", "1000"),
        ("chat_direct_send_burst", "1000"),
    ])
    .await;
    let (a, b) = (app.user("writer").await, app.user("editor-peer").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut wb = app.ws(&b.token).await;
    for i in 1..=30 {
        wa.say(room, &format!("h{i}"), &format!("message {i}"))
            .await;
    }
    let latest = app.history(&b, room, "?limit=10").await;
    let seqs: Vec<i64> = latest
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (21..=30).collect::<Vec<_>>());
    let older = app.history(&b, room, "?before=21&limit=10").await;
    assert_eq!(older[0]["seq"], 11);
    assert_eq!(older[9]["seq"], 20);
    let newer = app.history(&b, room, "?after=25").await;
    assert_eq!(newer.len(), 5);
    for query in ["limit=201", "before=3&after=1", "before=x"] {
        assert_error(
            app.get(
                &format!("/api/rooms/{room}/messages?{query}"),
                Some(&b.token),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    }

    // Edit own message: others see message_updated.
    let r = app
        .patch_json(
            &format!("/api/rooms/{room}/messages/30"),
            &json!({"body": "고쳤어요"}),
            Some(&a.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let up = wb.expect("message_updated").await;
    assert_eq!(
        (
            up["seq"].as_i64(),
            up["body"].as_str(),
            up["deleted"].as_bool()
        ),
        (Some(30), Some("고쳤어요"), Some(false))
    );
    assert!(up["edited_at"].as_i64().is_some());
    // Not someone else's.
    let r = app
        .patch_json(
            &format!("/api/rooms/{room}/messages/30"),
            &json!({"body": "hacked"}),
            Some(&b.token),
        )
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .delete(&format!("/api/rooms/{room}/messages/29"), Some(&b.token))
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "forbidden").await;
    let r = app
        .patch_json(
            &format!("/api/rooms/{room}/messages/30"),
            &json!({"body": ""}),
            Some(&a.token),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = app
        .patch_json(
            &format!("/api/rooms/{room}/messages/999"),
            &json!({"body": "x"}),
            Some(&a.token),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;
    // Delete: history keeps the seq, without the text.
    let r = app
        .delete(&format!("/api/rooms/{room}/messages/29"), Some(&a.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let up = wb
        .expect_where(|v| v["type"] == "message_updated" && v["seq"] == 29)
        .await;
    assert_eq!(up["deleted"], true);
    let last = app.history(&b, room, "?after=28").await;
    assert_eq!(
        (last[0]["deleted"].as_bool(), last[0]["body"].as_str()),
        (Some(true), Some(""))
    );
    assert_eq!(
        (last[1]["body"].as_str(), last[1]["edited_at"].is_i64()),
        (Some("고쳤어요"), true)
    );
    let r = app
        .patch_json(
            &format!("/api/rooms/{room}/messages/29"),
            &json!({"body": "undo"}),
            Some(&a.token),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "conflict").await;
}

#[actix_web::test]
async fn my_rooms_lists_latest_first_with_previews_and_total() {
    let app = spawn_app().await;
    let me = app.user("busy").await;
    let (p, q) = (app.user("peer-p").await, app.user("peer-q").await);
    let r1 = app.direct_room(&me, &p).await;
    let r2 = app.direct_room(&me, &q).await;
    let mut wp = app.ws(&p.token).await;
    let mut wq = app.ws(&q.token).await;
    wp.say(r1, "p1", "첫 번째 방").await;
    wp.say(r1, "p2", "또 왔어요").await;
    wq.say(r2, "q1", "두 번째 방").await;
    let rooms = app.my_rooms(&me).await;
    assert_eq!(rooms["total_unread"], 3);
    let items = rooms["items"].as_array().expect("items");
    assert_eq!(items[0]["id"], r2, "latest activity first");
    assert_eq!(items[0]["last_message"]["body"], "두 번째 방");
    assert_eq!(items[0]["peer"]["nickname"], "peer-q");
    assert_eq!(
        (
            items[1]["unread"].as_i64(),
            items[1]["last_seq"].as_i64(),
            items[1]["last_read_seq"].as_i64()
        ),
        (Some(2), Some(2), Some(0))
    );
    assert_error(
        app.get("/api/me/rooms", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[actix_web::test]
async fn a_slow_client_is_disconnected_without_slowing_the_room() {
    let app = spawn_app_with(&[
        ("ws_outbound_queue", "64"),
        ("chat_direct_send_rate", "100000"),
        ("chat_direct_send_burst", "100000"),
    ])
    .await;
    let (a, b) = (app.user("firehose").await, app.user("sleepy").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut fast = app.ws(&b.token).await;
    let mut slow = app.ws_small_buffer(&b.token).await; // never reads while the burst goes on
                                                        // 600 x 12 KB is more than the server's socket buffer (4 MiB at most
                                                        // here), the client's 8 KiB and the queues together.
    let n: i64 = 600;
    let fast_reader = actix_web::rt::spawn(async move { fast.messages_through(room, n).await });
    let body = "가".repeat(4000);
    for chunk in 0..n / 10 {
        for i in 0..10 {
            wa.send(json!({"type": "send", "room": room, "client_msg_id": format!("f{chunk}-{i}"), "body": body}))
                .await;
        }
        for _ in 0..10 {
            wa.expect("ack").await;
        }
        wa.backlog.clear();
    }
    // The fast device got everything.
    let got = fast_reader.await.expect("reader");
    assert_eq!(got.len() as i64, n);
    // The slow one was cut off with 4008 at some point.
    assert_eq!(slow.close_frame().await, Some(4008));
    // It comes back with resume and gets the rest.
    let mut again = app.ws_raw(&b.token).await;
    again
        .send(json!({"type": "resume", "rooms": {room.to_string(): 0}}))
        .await;
    let all = again.messages_through(room, n).await;
    let seqs: Vec<i64> = all
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    let metrics = app.get("/metrics", None).await.text().await.expect("text");
    assert!(
        metrics.contains("jangteo_ws_overflow_disconnects_total 1"),
        "{metrics}"
    );
}

#[actix_web::test]
async fn idle_room_actors_stop_and_rebuild_from_the_store() {
    let app = spawn_app_with(&[("chat_room_idle_secs", "1")]).await;
    let (a, b) = (app.user("idle-a").await, app.user("idle-b").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    let mut wb = app.ws(&b.token).await;
    wa.say(room, "i1", "one").await;
    wb.expect("message").await;
    assert_eq!(app.app_state.hub.active_rooms(), 1);
    eventually(
        Duration::from_secs(10),
        "the idle actor stopped",
        || async { (app.app_state.hub.active_rooms() == 0).then_some(()) },
    )
    .await;
    // A fresh actor continues the sequence and still knows the members and
    // read pointers.
    let ack = wa.say(room, "i2", "two").await;
    assert_eq!(ack["seq"], 2);
    let m = wb.expect("message").await;
    assert_eq!(m["seq"], 2);
    assert_eq!(app.unread(&b, room).await, 2);
    // Duplicate detection survives the restart of the actor too.
    let dup = wa.say(room, "i1", "one").await;
    assert_eq!(dup["seq"], 1);
}

#[actix_web::test]
async fn chat_state_survives_a_server_restart() {
    let app = spawn_app().await;
    let (a, b) = (app.user("persist-a").await, app.user("persist-b").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    for i in 1..=3 {
        wa.say(room, &format!("r{i}"), "before restart").await;
    }
    drop(wa);
    let app = app.restart().await;
    assert_eq!(app.unread(&b, room).await, 3);
    let mut wa = app.ws(&a.token).await;
    assert_eq!(wa.say(room, "r4", "after restart").await["seq"], 4);
    assert_eq!(
        wa.say(room, "r1", "again").await["seq"],
        1,
        "old client ids still deduplicate"
    );
    let mut wb = app.ws_raw(&b.token).await;
    wb.send(json!({"type": "resume", "rooms": {room.to_string(): 1}}))
        .await;
    let seqs: Vec<i64> = wb
        .messages_through(room, 4)
        .await
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, vec![2, 3, 4]);
}

#[actix_web::test]
async fn typing_and_presence_reach_the_peer() {
    let app = spawn_app().await;
    let (a, b) = (app.user("typer").await, app.user("watcher2").await);
    let room = app.direct_room(&a, &b).await;
    let mut wb = app.ws(&b.token).await;
    let mut wa = app.ws(&a.token).await;
    let p = wb.expect("presence").await;
    assert_eq!(
        (p["user"].as_i64(), p["online"].as_bool()),
        (Some(a.id), Some(true))
    );
    let p = wa.expect("presence").await;
    assert_eq!(
        (p["user"].as_i64(), p["online"].as_bool()),
        (Some(b.id), Some(true)),
        "snapshot on connect"
    );
    wa.send(json!({"type": "typing", "room": room})).await;
    let t = wb.expect("typing").await;
    assert_eq!(
        (t["room"].as_i64(), t["user"].as_i64()),
        (Some(room), Some(a.id))
    );
    wa.expect_none(Duration::from_millis(200), |v| v["type"] == "typing")
        .await;
    drop(wa);
    let p = wb
        .expect_where(|v| v["type"] == "presence" && v["online"] == false)
        .await;
    assert_eq!(p["user"], a.id);
}

#[actix_web::test]
async fn open_rooms_show_history_from_join_on() {
    let app = spawn_app().await;
    let owner = app.user("early").await;
    let room = app.open_room(&owner, "히스토리").await;
    let mut wo = app.ws(&owner.token).await;
    wo.say(room, "e1", "before you came").await;
    let late = app.user("late").await;
    app.join(&late, room).await;
    wo.say(room, "e2", "after you came").await;
    let hist = app.history(&late, room, "").await;
    let kinds: Vec<(&str, &str)> = hist
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or(""),
                m["body"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(hist.len(), 2, "{kinds:?}");
    assert_eq!(hist[0]["payload"]["event"], "joined");
    assert_eq!(hist[1]["body"], "after you came");
    assert_eq!(app.unread(&late, room).await, 1, "own join notice is read");
}

#[actix_web::test]
async fn silent_connections_time_out_and_pongs_keep_them_alive() {
    let app = spawn_app_with(&[("ws_heartbeat_secs", "1"), ("ws_idle_timeout_secs", "2")]).await;
    let u = app.user("sleeper").await;
    // This client answers pings (tungstenite does while reading): it stays.
    let mut alive = app.ws(&u.token).await;
    // This one goes silent: it does not read, so it never answers.
    let mut silent = app.ws(&u.token).await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(4500);
    while tokio::time::Instant::now() < deadline {
        let _ = alive.read_within(Duration::from_millis(200)).await;
    }
    // Reading now finds the connection closed by the server: a close frame
    // (1001, going away), or, once the client's late pongs hit the closed
    // socket, a reset. What must not happen is a connection still open.
    let closed = loop {
        match tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut silent.stream),
        )
        .await
        {
            Ok(Some(Ok(Message::Close(frame)))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1001));
                break true;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => break true,
            Err(_) => break false,
        }
    };
    assert!(closed, "the silent connection was closed by the server");
    alive.send(json!({"type": "ping"})).await;
    alive.expect("pong").await;
}

/// Forty guesses at once: only the limit's worth are checked.
#[actix_web::test]
async fn concurrent_passcode_guesses_cannot_pass_the_limit() {
    let app = spawn_app_with(&[("login_max_failures", "5")]).await;
    let owner = app.user("vault-owner").await;
    let r = app
        .post_json(
            "/api/rooms",
            &json!({"kind": "open", "name": "금고", "passcode": "secret"}),
            Some(&owner.token),
        )
        .await;
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let g = app.user("swarm").await;
    let path = format!("/api/rooms/{id}/join");
    let bodies: Vec<Value> = (0..40)
        .map(|i| json!({"passcode": format!("guess{i}")}))
        .collect();
    let guesses = bodies
        .iter()
        .map(|body| app.post_json(&path, body, Some(&g.token)));
    let answers = futures_util::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|r| r.status() == StatusCode::FORBIDDEN)
        .count();
    let refused = answers
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((checked, refused), (5, 35));
}

/// A client that resumes a long history and never reads: the server holds
/// a bounded read-ahead, and a write that stays blocked past the idle
/// timeout closes the connection with 4008 (the heartbeat cannot run while
/// a write blocks, so the write itself is bounded).
#[actix_web::test]
async fn a_resume_that_is_never_read_is_cut_off() {
    let app = spawn_app_with(&[
        ("ws_idle_timeout_secs", "2"),
        ("ws_heartbeat_secs", "1"),
        ("chat_direct_send_rate", "10000"),
        ("chat_direct_send_burst", "10000"),
    ])
    .await;
    let (a, b) = (app.user("historian").await, app.user("hoarder").await);
    let room = app.direct_room(&a, &b).await;
    let mut wa = app.ws(&a.token).await;
    // 600 x 12 KB: more than the socket buffers on both sides.
    let n: i64 = 600;
    let body = "가".repeat(4000);
    for chunk in 0..n / 20 {
        for i in 0..20 {
            wa.send(json!({"type": "send", "room": room, "client_msg_id": format!("h{chunk}-{i}"), "body": body}))
                .await;
        }
        for _ in 0..20 {
            wa.expect("ack").await;
        }
        wa.backlog.clear();
    }
    let mut hoarder = app.ws_small_buffer(&b.token).await;
    hoarder
        .send(json!({"type": "resume", "rooms": {room.to_string(): 0}}))
        .await;
    // Not reading for longer than the idle timeout...
    tokio::time::sleep(Duration::from_secs(5)).await;
    // ...gets the connection closed behind what was already in flight.
    assert_eq!(hoarder.close_frame().await, Some(4008));
    // (`wa` stayed silent past the idle timeout too.) The server is fine,
    // and a reader resumes everything.
    drop(wa);
    let mut wa = app.ws(&a.token).await;
    wa.send(json!({"type": "ping"})).await;
    wa.expect("pong").await;
    let mut reader = app.ws_raw(&b.token).await;
    reader
        .send(json!({"type": "resume", "rooms": {room.to_string(): 0}}))
        .await;
    let seqs: Vec<i64> = reader
        .messages_through(room, n)
        .await
        .iter()
        .map(|m| m["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
}

/// Frames for rooms that do not exist are answered without keeping actors
/// (or store lookups) around for them.
#[actix_web::test]
async fn frames_for_made_up_rooms_leave_no_actors_behind() {
    let app = spawn_app().await;
    let u = app.user("prober").await;
    let mut ws = app.ws(&u.token).await;
    let n = 300;
    for i in 0..n {
        let room = 1_000_000 + i;
        let frame = match i % 3 {
            0 => json!({"type": "typing", "room": room}),
            1 => json!({"type": "read", "room": room, "seq": 1}),
            _ => {
                json!({"type": "send", "room": room, "client_msg_id": format!("p{i}"), "body": "x"})
            }
        };
        ws.send(frame).await;
    }
    for _ in 0..n {
        let e = ws.expect("error").await;
        assert_eq!(e["code"], "room_not_found", "{e}");
    }
    eventually(Duration::from_secs(5), "no room actors left", || async {
        (app.app_state.hub.active_rooms() == 0).then_some(())
    })
    .await;
    // Repeated probes of the same ids are refused from memory.
    for i in 0..n {
        ws.send(json!({"type": "typing", "room": 1_000_000 + i}))
            .await;
    }
    for _ in 0..n {
        ws.expect("error").await;
    }
    assert_eq!(app.app_state.hub.active_rooms(), 0);
    // A real room still works.
    let other = app.user("real-peer").await;
    let room = app.direct_room(&u, &other).await;
    assert_eq!(ws.say(room, "real-1", "hello").await["seq"], 1);
}

/// A connection's frames are budgeted: a flood is dropped with one
/// rate_limited error a second.
#[actix_web::test]
async fn a_frame_flood_is_dropped_with_one_warning() {
    let app = spawn_app_with(&[("ws_frames_per_sec", "5")]).await;
    let u = app.user("flooder").await;
    let mut ws = app.ws_raw(&u.token).await;
    for _ in 0..60 {
        ws.send(json!({"type": "ping"})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    while let Some(v) = ws.read_within(Duration::from_millis(500)).await {
        match v["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if v["code"] == "rate_limited" => limited += 1,
            _ => {}
        }
    }
    assert!(
        (10..=12).contains(&pongs),
        "burst of 10 (+ refill): {pongs}"
    );
    assert_eq!(limited, 1);
    // Within budget again after a pause.
    tokio::time::sleep(Duration::from_millis(400)).await;
    ws.send(json!({"type": "ping"})).await;
    ws.expect("pong").await;
}

/// A frame header announcing more than the limit closes the connection
/// with 1009 at once, even with no payload behind it.
#[actix_web::test]
async fn an_oversized_frame_header_alone_is_refused() {
    use tokio::io::AsyncWriteExt as _;
    let app = spawn_app().await;
    let u = app.user("announcer").await;
    let mut ws = app.ws(&u.token).await;
    let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.stream.get_mut() else {
        panic!("plain TCP");
    };
    // FIN + text, masked, 64-bit length of 1 GiB, mask key; no payload.
    let mut header = vec![0x81, 0xFF];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    tcp.write_all(&header).await.expect("write header");
    let started = std::time::Instant::now();
    assert_eq!(ws.close_frame().await, Some(1009));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A client frame as RFC 6455 wants it: masked (with a fixed key).
fn masked_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let key = [9u8, 8, 7, 6];
    assert!(payload.len() < 126, "short frames only");
    let mut out = vec![first_byte, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// A WebSocket upgrade request written by hand, for `path`, with the key
/// from RFC 6455's example.
fn raw_upgrade(path: &str, token: Option<&str>) -> String {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{auth}\r\n"
    )
}

/// Connect to `base` by plain TCP, write `bytes`, and read until the
/// server closes (or 10 s pass).
async fn raw_exchange(base: &str, bytes: &[u8], until: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let port = base.rsplit(':').next().expect("port");
    let mut tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .expect("connect");
    tcp.write_all(bytes).await.expect("write");
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    while !until(&got) {
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    got
}

/// Frames a client sends right behind its upgrade request, before it has
/// the 101, are served: the socket changes hands with what was read past
/// the request head.
#[actix_web::test]
async fn frames_sent_with_the_upgrade_request_are_served() {
    let app = spawn_app().await;
    let u = app.user("eager").await;
    let mut bytes = raw_upgrade("/ws", Some(&u.token)).into_bytes();
    bytes.extend(masked_frame(0x81, br#"{"type":"ping"}"#));
    let got = raw_exchange(&app.addr, &bytes, |got| {
        String::from_utf8_lossy(got).contains(r#""type":"pong""#)
    })
    .await;
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101"), "{text}");
    // RFC 6455's worked example: this key, this accept.
    assert!(
        text.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{text}"
    );
    assert!(text.contains(r#""type":"pong""#), "{text}");
}

/// An upgrade request is answered by the same application as any other:
/// refusals carry the usual error envelope, and the connection is closed
/// after them.
#[actix_web::test]
async fn refused_upgrades_get_the_usual_errors() {
    let app = spawn_app().await;
    let u = app.user("versioned").await;
    let ends = |got: &[u8]| String::from_utf8_lossy(got).ends_with('}');
    // Signed in, but asking for a WebSocket version the server does not speak.
    let old_version = raw_upgrade("/ws", Some(&u.token))
        .replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8");
    for (path, request, status, code) in [
        ("/ws", raw_upgrade("/ws", None), "401", "unauthenticated"),
        ("/ws", old_version, "400", "invalid_parameter"),
        (
            "/no-such-path",
            raw_upgrade("/no-such-path", None),
            "404",
            "not_found",
        ),
    ] {
        let got = raw_exchange(&app.addr, request.as_bytes(), ends).await;
        let text = String::from_utf8_lossy(&got);
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}")),
            "{path}: {text}"
        );
        assert!(
            text.to_ascii_lowercase().contains("connection: close"),
            "{path}: {text}"
        );
        assert!(
            text.contains(&format!(r#""code":"{code}""#)),
            "{path}: {text}"
        );
    }
}

/// Frames that break RFC 6455 close with 1002; text that is not UTF-8
/// with 1007.
#[actix_web::test]
async fn broken_frames_close_with_the_protocol_codes() {
    use tokio::io::AsyncWriteExt as _;
    let app = spawn_app().await;
    let u = app.user("sloppy").await;
    let cases: [(Vec<u8>, u16); 4] = [
        // Unmasked.
        (vec![0x81, 0x02, b'h', b'i'], 1002),
        // Reserved bit set, no extension negotiated.
        (masked_frame(0xC1, b"hi"), 1002),
        // A continuation with nothing to continue.
        (masked_frame(0x80, b"hi"), 1002),
        (masked_frame(0x81, &[0xFF, 0xFE, 0xFD]), 1007),
    ];
    for (frame, code) in cases {
        let mut ws = app.ws(&u.token).await;
        let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = ws.stream.get_mut() else {
            panic!("plain TCP");
        };
        tcp.write_all(&frame).await.expect("write frame");
        assert_eq!(ws.close_frame().await, Some(code), "{frame:?}");
    }
}

#[actix_web::test]
async fn connections_per_user_are_capped_before_the_upgrade() {
    let app = spawn_app_with(&[("ws_max_connections_per_user", "2")]).await;
    let (u, other) = (app.user("devices").await, app.user("other").await);
    let auth = format!("Bearer {}", u.token);
    // Always the first node: the cap is per node.
    let connect = |auth: String| {
        let addr = app.addr.clone();
        async move { Ws::handshake(&addr, &[("authorization", auth.as_str())]).await }
    };
    let mut first = connect(auth.clone()).await.expect("first connection");
    let mut second = connect(auth.clone()).await.expect("second connection");
    for ws in [&mut first, &mut second] {
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
    }
    // The third is refused before the upgrade...
    let err = connect(auth.clone())
        .await
        .err()
        .expect("a third connection is refused");
    let tokio_tungstenite::tungstenite::Error::Http(resp) = err else {
        panic!("expected an HTTP refusal, got {err:?}");
    };
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    if let Some(body) = resp.body().as_deref().filter(|b| !b.is_empty()) {
        let body: Value = serde_json::from_slice(body).expect("envelope");
        assert_eq!(body["code"], "rate_limited", "{body}");
    }
    // ...with the envelope (the same request through an HTTP client).
    let r = app
        .client
        .get(app.url("/ws"))
        .bearer_auth(&u.token)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .expect("request");
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // The refusals changed nothing: both connections still work.
    for ws in [&mut first, &mut second] {
        ws.send(json!({"type": "ping"})).await;
        ws.expect("pong").await;
    }
    // Another user is not affected.
    let mut theirs = connect(format!("Bearer {}", other.token))
        .await
        .expect("another user");
    theirs.send(json!({"type": "ping"})).await;
    theirs.expect("pong").await;
    // Closing one frees its place.
    first.stream.close(None).await.expect("close");
    drop(first);
    let mut again = eventually(Duration::from_secs(10), "a freed place", || {
        let auth = auth.clone();
        let connect = &connect;
        async move { connect(auth).await.ok() }
    })
    .await;
    again.send(json!({"type": "ping"})).await;
    again.expect("pong").await;
}
