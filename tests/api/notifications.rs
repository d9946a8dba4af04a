//! Notifications: an event that happens through the public API gives the
//! user exactly one notification (also with two nodes, each consuming every
//! event), pushed live to every device and kept in the inbox; read, delete,
//! preferences and broadcasts; nobody touches another user's inbox.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, eventually, spawn_app, spawn_app_with, TestApp, User};
use crate::market::{chat_about, listing};
use crate::refunds::{cancel, line, paid_order};
use crate::shop::{json_of, on_sale, option_id, put};

async fn inbox(app: &TestApp, user: &User, query: &str) -> Value {
    json_of(
        app.get(&format!("/api/me/notifications{query}"), Some(&user.token))
            .await,
    )
    .await
}

/// Wait until the inbox holds `n` notifications of `kind`, and return them.
async fn wait_for(app: &TestApp, user: &User, kind: &str, n: usize) -> Vec<Value> {
    let items = eventually(
        Duration::from_secs(10),
        &format!("{n} x {kind}"),
        || async {
            let v = inbox(app, user, "?limit=100").await;
            let of_kind: Vec<Value> = v["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter(|i| i["kind"] == kind)
                .cloned()
                .collect();
            (of_kind.len() >= n).then_some(of_kind)
        },
    )
    .await;
    // And no more arrive (a second node, a redelivery).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = inbox(app, user, "?limit=100").await;
    let again = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == kind)
        .count();
    assert_eq!(again, n, "exactly {n} x {kind}");
    items
}

#[actix_web::test]
async fn a_payment_and_its_cancel_reach_the_buyer_once_live_and_in_the_inbox() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (buyer, other) = (app.user("n-buyer").await, app.user("n-other").await);
    // Two devices of the buyer (with two nodes: one on each).
    let mut phone = app.ws(&buyer.token).await;
    let mut laptop = app.ws(&buyer.token).await;
    let p = on_sale(
        &app,
        &admin,
        "Saddle",
        "Dior",
        10_000,
        &[("SA", 10), ("SB", 10)],
    )
    .await;
    let o = paid_order(&app, &buyer, &p, 2, 1, "pk-notify").await;
    let approved = wait_for(&app, &buyer, "payment.approved", 1).await;
    assert_eq!(approved[0]["title"], "결제가 완료되었어요");
    assert!(
        approved[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("30,000원")),
        "{}",
        approved[0]
    );
    assert_eq!(
        approved[0]["link"],
        format!("/orders/{}", o["order_number"].as_str().expect("n"))
    );
    assert_eq!(approved[0]["read"], false);
    for ws in [&mut phone, &mut laptop] {
        let f = ws.expect("notification").await;
        assert_eq!(f["notification"]["id"], approved[0]["id"]);
        let b = ws.expect("notification_badge").await;
        assert_eq!(b["unread"], 1);
    }

    // A partial cancel: one more, and the live count follows.
    let n = o["order_number"].as_str().expect("n");
    let r = cancel(
        &app,
        &buyer,
        n,
        Some(json!({"lines": [{"line_id": line(&o, 0), "quantity": 1}]})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled = wait_for(&app, &buyer, "payment.cancelled", 1).await;
    assert_eq!(cancelled[0]["title"], "결제가 부분 취소되었어요");
    let b = phone
        .expect_where(|f| f["type"] == "notification_badge" && f["unread"] == 2)
        .await;
    assert_eq!(b["unread"], 2);
    let v = json_of(
        app.get("/api/me/notifications/unread_count", Some(&buyer.token))
            .await,
    )
    .await;
    assert_eq!(v["unread"], 2);
    assert_eq!(
        inbox(&app, &other, "").await["items"],
        json!([]),
        "nothing for others"
    );

    // Read one (not someone else's), the badge follows on every device.
    let first = approved[0]["id"].as_i64().expect("id");
    assert_error(
        app.post_json(
            &format!("/api/me/notifications/{first}/read"),
            &json!({}),
            Some(&other.token),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let r = app
        .post_json(
            &format!("/api/me/notifications/{first}/read"),
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(json_of(r).await["unread"], 1);
    laptop
        .expect_where(|f| f["type"] == "notification_badge" && f["unread"] == 1)
        .await;
    let unread = inbox(&app, &buyer, "?unread=true").await;
    assert_eq!(unread["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(unread["items"][0]["kind"], "payment.cancelled");

    // Paging, read all, delete.
    let page = inbox(&app, &buyer, "?limit=1").await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let next = page["next_before"].as_i64().expect("next_before");
    let rest = inbox(&app, &buyer, &format!("?limit=1&before={next}")).await;
    assert_eq!(rest["items"][0]["id"], first);
    let r = app
        .post_json(
            "/api/me/notifications/read_all",
            &json!({}),
            Some(&buyer.token),
        )
        .await;
    assert_eq!(json_of(r).await["unread"], 0);
    let del = |user: &User| {
        let (app, token) = (&app, user.token.clone());
        async move {
            app.client
                .delete(app.url(&format!("/api/me/notifications/{first}")))
                .bearer_auth(token)
                .send()
                .await
                .expect("delete")
        }
    };
    assert_error(del(&other).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(del(&buyer).await.status(), StatusCode::OK);
    assert_error(del(&buyer).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        inbox(&app, &buyer, "").await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_error(
        app.get("/api/me/notifications?limit=0", Some(&buyer.token))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_parameter",
    )
    .await;
    assert_error(
        app.get("/api/me/notifications", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

#[actix_web::test]
async fn a_kind_switched_off_is_not_shown() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let buyer = app.user("pref-buyer").await;
    let prefs = json_of(
        app.get("/api/me/notification_settings", Some(&buyer.token))
            .await,
    )
    .await;
    let approved = prefs["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["kind"] == "payment.approved")
        .cloned()
        .expect("payment.approved");
    assert_eq!(
        (approved["in_app"].as_bool(), approved["email"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(
        !prefs["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|p| p["kind"] == "admin.stock_low"),
        "admin kinds are not offered to users"
    );
    let r = put(
        &app,
        "/api/me/notification_settings",
        &json!({"items": [{"kind": "nope"}]}),
        &buyer.token,
    )
    .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let r = put(
        &app,
        "/api/me/notification_settings",
        &json!({"items": [{"kind": "payment.approved", "in_app": false}]}),
        &buyer.token,
    )
    .await;
    let v = json_of(r).await;
    let now = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["kind"] == "payment.approved")
        .cloned()
        .expect("kind");
    assert_eq!(
        (now["in_app"].as_bool(), now["email"].as_bool()),
        (Some(false), Some(true))
    );

    let p = on_sale(
        &app,
        &admin,
        "Bobby",
        "Dior",
        5_000,
        &[("BA", 5), ("BB", 5)],
    )
    .await;
    let o = paid_order(&app, &buyer, &p, 1, 1, "pk-pref").await;
    // The cancel is still shown: only the approval was switched off.
    let n = o["order_number"].as_str().expect("n");
    assert_eq!(cancel(&app, &buyer, n, None).await.status(), StatusCode::OK);
    wait_for(&app, &buyer, "payment.cancelled", 1).await;
    let v = inbox(&app, &buyer, "").await;
    assert!(!v["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|i| i["kind"] == "payment.approved"));
    assert_eq!(v["unread"], 1);
}

#[actix_web::test]
async fn both_sides_hear_of_reservations_and_the_buyer_is_asked_for_a_review() {
    let app = spawn_app().await;
    let (seller, buyer) = (app.user("nr-seller").await, app.user("nr-buyer").await);
    let l = listing(&app, &seller, "캠핑 의자 2개", 40_000).await;
    chat_about(&app, &buyer, l).await;
    let path = format!("/api/listings/{l}/reservation");
    let r = app
        .post_json(&path, &json!({"buyer_id": buyer.id}), Some(&seller.token))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let made = wait_for(&app, &buyer, "reservation.created", 1).await;
    assert!(
        made[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("캠핑 의자 2개")),
        "{}",
        made[0]
    );
    let r = app.delete(&path, Some(&seller.token)).await;
    assert!(r.status().is_success());
    wait_for(&app, &buyer, "reservation.cancelled", 1).await;
    wait_for(&app, &seller, "reservation.cancelled", 1).await;
    let r = app
        .post_json(
            &format!("/api/listings/{l}/sold"),
            &json!({"buyer_id": buyer.id}),
            Some(&seller.token),
        )
        .await;
    assert!(r.status().is_success(), "sold: {}", r.status());
    wait_for(&app, &seller, "listing.sold", 1).await;
    let ask = wait_for(&app, &buyer, "review.request", 1).await;
    assert_eq!(ask[0]["link"], format!("/listings/{l}/review"));
}

#[actix_web::test]
async fn admins_hear_of_low_stock_and_everyone_of_a_broadcast() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let (a, b) = (app.user("bc-a").await, app.user("bc-b").await);
    let p = on_sale(&app, &admin, "Book Tote", "Dior", 3_000, &[("BT", 10)]).await;
    let o = option_id(&p, 0);
    let r = put(
        &app,
        &format!("/api/admin/options/{o}/stock"),
        &json!({"stock": 2, "reason": "실사"}),
        &admin.token,
    )
    .await;
    assert!(r.status().is_success());
    let low = wait_for(&app, &admin, "admin.stock_low", 1).await;
    assert!(low[0]["body"]
        .as_str()
        .is_some_and(|t| t.contains("Book Tote")));
    assert_eq!(
        inbox(&app, &a, "").await["items"],
        json!([]),
        "users are not told"
    );

    let mut wa = app.ws(&a.token).await;
    let body = json!({"title": "점검 안내", "body": "오늘 밤 2시부터 30분간 점검해요.", "link": "/notice/1"});
    assert_error(
        app.post_json("/api/admin/notifications/broadcast", &body, Some(&a.token))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(
        app.post_json(
            "/api/admin/notifications/broadcast",
            &json!({"title": "", "body": "x"}),
            Some(&admin.token),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let r = app
        .post_json(
            "/api/admin/notifications/broadcast",
            &body,
            Some(&admin.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    for u in [&a, &b, &admin] {
        let got = wait_for(&app, u, "broadcast", 1).await;
        assert_eq!(got[0]["title"], "점검 안내");
    }
    let f = wa.expect("notification").await;
    assert_eq!(f["notification"]["kind"], "broadcast");
}

/// A Server-Sent Events reader over a streaming response.
struct Sse {
    body:
        std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<actix_web::web::Bytes>>>>,
    buf: String,
}

impl Sse {
    async fn open(app: &TestApp, user: &User, last: Option<&str>) -> Sse {
        let mut req = app
            .client
            .get(app.url("/api/notifications/stream"))
            .bearer_auth(&user.token);
        if let Some(last) = last {
            req = req.header("Last-Event-ID", last);
        }
        let r = req.send().await.expect("stream");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream")));
        Sse {
            body: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next event (comments skipped): (id, event, data).
    async fn next(&mut self) -> (Option<i64>, String, Value) {
        use futures_util::StreamExt as _;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.parse().ok();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if event.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return (
                    id,
                    event,
                    serde_json::from_str(&data).expect("event data is JSON"),
                );
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE event within 10 s")
                .expect("the stream is open")
                .expect("a chunk");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[actix_web::test]
async fn the_sse_stream_delivers_live_and_resumes_from_last_event_id() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let user = app.user("sse-user").await;
    let mut sse = Sse::open(&app, &user, None).await;
    let (_, event, data) = sse.next().await;
    assert_eq!((event.as_str(), &data), ("badge", &json!({"unread": 0})));
    let say = |title: &str| {
        let (app, token, body) = (
            &app,
            admin.token.clone(),
            json!({"title": title, "body": "본문"}),
        );
        async move {
            let r = app
                .post_json("/api/admin/notifications/broadcast", &body, Some(&token))
                .await;
            assert_eq!(r.status(), StatusCode::ACCEPTED);
        }
    };
    say("첫 번째").await;
    let (id, event, data) = sse.next().await;
    assert_eq!(event, "notification");
    assert_eq!(data["title"], "첫 번째");
    let first = id.expect("an id");
    assert_eq!(Some(first), data["id"].as_i64());
    let (_, event, data) = sse.next().await;
    assert_eq!(
        (event.as_str(), data["unread"].as_i64()),
        ("badge", Some(1))
    );
    drop(sse);

    // Two more while disconnected; the resume replays them, in order. The
    // second is sent once the first exists: two nodes may take the requests,
    // and between nodes only events apart in time have an order.
    say("두 번째").await;
    wait_for(&app, &user, "broadcast", 2).await;
    say("세 번째").await;
    wait_for(&app, &user, "broadcast", 3).await;
    let mut sse = Sse::open(&app, &user, Some(&first.to_string())).await;
    let (_, _, a) = sse.next().await;
    let (_, _, b) = sse.next().await;
    let (_, event, badge) = sse.next().await;
    assert_eq!(
        (a["title"].as_str(), b["title"].as_str()),
        (Some("두 번째"), Some("세 번째"))
    );
    assert_eq!(
        (event.as_str(), badge["unread"].as_i64()),
        ("badge", Some(3))
    );

    // Refusals.
    assert_error(
        app.get("/api/notifications/stream", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
    let r = app
        .client
        .get(app.url("/api/notifications/stream"))
        .bearer_auth(&user.token)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .expect("stream");
    assert_error(r, StatusCode::BAD_REQUEST, "invalid_parameter").await;
}

#[actix_web::test]
async fn an_event_written_with_its_change_waits_for_a_node_to_publish_it() {
    // These nodes work every outbox kind but publishing events: the
    // payment commits with its event job, and nobody publishes it yet
    // (as if the node had died right after the commit).
    let app = spawn_app_with(&[(
        "outbox_kinds",
        "order_expire,stock_restore,listing_release,payment_cancel,payment_refund,payment_reconcile,email_send",
    )])
    .await;
    let admin = app.admin().await;
    let buyer = app.user("ob-buyer").await;
    let p = on_sale(
        &app,
        &admin,
        "Lady Dior",
        "Dior",
        7_000,
        &[("LA", 5), ("LB", 5)],
    )
    .await;
    paid_order(&app, &buyer, &p, 1, 1, "pk-outbox").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        inbox(&app, &buyer, "").await["items"],
        json!([]),
        "not published yet"
    );
    // Nodes that publish: the event goes out, once.
    let app = app.restart_with(&[]).await;
    let got = wait_for(&app, &buyer, "payment.approved", 1).await;
    assert!(
        got[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("14,000원")),
        "{}",
        got[0]
    );
}

#[actix_web::test]
async fn keyword_alerts_and_price_drops_reach_the_people_who_asked() {
    let app = spawn_app().await;
    let (seller, watcher, fan, other) = (
        app.user("kw-seller").await,
        app.user("kw-watcher").await,
        app.user("kw-fan").await,
        app.user("kw-other").await,
    );
    // Keywords: saved lower-cased, listed, refused when too short or too many.
    let add = |user: &User, k: &str| {
        let (app, token, body) = (&app, user.token.clone(), json!({"keyword": k}));
        async move { app.post_json("/api/me/keywords", &body, Some(&token)).await }
    };
    assert_eq!(add(&watcher, "아이폰").await.status(), StatusCode::CREATED);
    assert_eq!(
        add(&watcher, " iPhone ").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        add(&watcher, "아이폰").await.status(),
        StatusCode::OK,
        "already there"
    );
    assert_error(
        add(&watcher, "폰").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(add(&seller, "아이폰").await.status(), StatusCode::CREATED);
    let mine = json_of(app.get("/api/me/keywords", Some(&watcher.token)).await).await;
    let words: Vec<&str> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|k| k["keyword"].as_str())
        .collect();
    assert_eq!(words, vec!["아이폰", "iphone"]);

    // A matching listing: the watcher hears of it once (two keywords
    // match), the seller (also watching) does not, nor does anybody else.
    let l = listing(&app, &seller, "아이폰 15 Pro (iPhone) 팝니다", 900_000).await;
    let got = wait_for(&app, &watcher, "keyword.match", 1).await;
    assert!(
        got[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("900,000원")),
        "{}",
        got[0]
    );
    assert_eq!(got[0]["link"], format!("/listings/{l}"));
    listing(&app, &seller, "캠핑 의자", 10_000).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(inbox(&app, &seller, "").await["items"], json!([]));
    assert_eq!(inbox(&app, &other, "").await["items"], json!([]));
    let r = app
        .delete(
            "/api/me/keywords/%EC%95%84%EC%9D%B4%ED%8F%B0",
            Some(&watcher.token),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .delete(
            "/api/me/keywords/%EC%95%84%EC%9D%B4%ED%8F%B0",
            Some(&watcher.token),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "not_found").await;

    // A price drop tells who favourited the listing; a rise tells nobody.
    let r = app
        .put(&format!("/api/listings/{l}/favourite"), Some(&fan.token))
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let price = |p: i64| {
        let (app, token) = (&app, seller.token.clone());
        async move {
            let r = app
                .patch_json(
                    &format!("/api/listings/{l}"),
                    &json!({"price": p}),
                    Some(&token),
                )
                .await;
            assert!(r.status().is_success(), "price: {}", r.status());
        }
    };
    price(950_000).await;
    price(850_000).await;
    let drop = wait_for(&app, &fan, "price.drop", 1).await;
    assert!(
        drop[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("950,000원 → 850,000원")),
        "{}",
        drop[0]
    );
    assert!(inbox(&app, &seller, "").await["items"]
        .as_array()
        .expect("items")
        .is_empty());
}

#[actix_web::test]
async fn offline_members_hear_of_new_messages_once_per_window_unless_online_or_muted() {
    let app = spawn_app_with(&[("notify_chat_debounce_secs", "1")]).await;
    let (kim, lee) = (app.user("chat-kim").await, app.user("chat-lee").await);
    let room = app.direct_room(&kim, &lee).await;
    let mut wk = app.ws(&kim.token).await;
    // Three messages at once while Lee is offline: one notification, with
    // the count and the latest message.
    for (cid, body) in [
        ("m1", "안녕하세요"),
        ("m2", "아직 판매 중인가요?"),
        ("m3", "내일 가능할까요?"),
    ] {
        wk.send(json!({"type": "send", "room": room, "client_msg_id": cid, "body": body}))
            .await;
        wk.expect_where(|f| f["type"] == "ack" && f["client_msg_id"] == cid)
            .await;
    }
    let got = wait_for(&app, &lee, "chat.message", 1).await;
    assert_eq!(got[0]["title"], "chat-kim");
    assert_eq!(got[0]["body"], "chat-kim: 내일 가능할까요? (새 메시지 3개)");
    assert_eq!(got[0]["link"], format!("/chats/{room}"));
    assert_eq!(
        inbox(&app, &kim, "").await["items"],
        json!([]),
        "not the sender"
    );

    // Lee online: nothing more in the inbox.
    let mut wl = app.ws(&lee.token).await;
    wk.send(json!({"type": "send", "room": room, "client_msg_id": "m4", "body": "여보세요"}))
        .await;
    wl.expect_where(|f| f["type"] == "message" && f["seq"] == 4)
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        inbox(&app, &lee, "").await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Offline again but the room muted: still nothing. Muting is for members.
    drop(wl);
    let r = put(
        &app,
        &format!("/api/rooms/{room}/mute"),
        &json!({"muted": true}),
        &lee.token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let stranger = app.user("chat-stranger").await;
    let r = put(
        &app,
        &format!("/api/rooms/{room}/mute"),
        &json!({"muted": true}),
        &stranger.token,
    )
    .await;
    assert_error(r, StatusCode::FORBIDDEN, "not_member").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wk.send(json!({"type": "send", "room": room, "client_msg_id": "m5", "body": "답장 주세요"}))
        .await;
    wk.expect_where(|f| f["type"] == "ack" && f["client_msg_id"] == "m5")
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        inbox(&app, &lee, "").await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Unmuted: the next window tells Lee again (a new notification).
    let r = put(
        &app,
        &format!("/api/rooms/{room}/mute"),
        &json!({"muted": false}),
        &lee.token,
    )
    .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wk.send(
        json!({"type": "send", "room": room, "client_msg_id": "m6", "body": "연락 기다릴게요"}),
    )
    .await;
    let got = wait_for(&app, &lee, "chat.message", 2).await;
    assert!(
        got[0]["body"]
            .as_str()
            .is_some_and(|b| b.contains("연락 기다릴게요")),
        "{}",
        got[0]
    );
}

#[actix_web::test]
async fn buyers_are_asked_for_product_reviews_later_unless_they_cancelled() {
    let app = spawn_app_with(&[("review_request_delay_secs", "1")]).await;
    let admin = app.admin().await;
    let buyer = app.user("rr-buyer").await;
    let p = on_sale(
        &app,
        &admin,
        "Book Tote Mini",
        "Dior",
        9_000,
        &[("MA", 5), ("MB", 5)],
    )
    .await;
    let kept = paid_order(&app, &buyer, &p, 1, 1, "pk-rr-kept").await;
    let gone = paid_order(&app, &buyer, &p, 1, 1, "pk-rr-gone").await;
    let n = gone["order_number"].as_str().expect("n");
    assert_eq!(cancel(&app, &buyer, n, None).await.status(), StatusCode::OK);
    let asks = wait_for(&app, &buyer, "review.product_request", 1).await;
    assert_eq!(
        asks[0]["link"],
        format!("/orders/{}", kept["order_number"].as_str().expect("n"))
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let v = inbox(&app, &buyer, "?limit=100").await;
    let count = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["kind"] == "review.product_request")
        .count();
    assert_eq!(count, 1, "none for the cancelled order");
}

#[actix_web::test]
async fn notification_routes_refuse_strangers_and_bad_bodies() {
    use reqwest::Method;
    let app = spawn_app().await;
    let user = app.user("nr-user").await;
    let t = Some(user.token.as_str());
    let unauth = StatusCode::UNAUTHORIZED;
    app.assert_refusals(vec![
        (
            "inbox",
            Method::GET,
            "/api/me/notifications".into(),
            None,
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "count",
            Method::GET,
            "/api/me/notifications/unread_count".into(),
            None,
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "read",
            Method::POST,
            "/api/me/notifications/1/read".into(),
            Some(json!({})),
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "read all",
            Method::POST,
            "/api/me/notifications/read_all".into(),
            Some(json!({})),
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "delete",
            Method::DELETE,
            "/api/me/notifications/1".into(),
            None,
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "settings",
            Method::GET,
            "/api/me/notification_settings".into(),
            None,
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "set settings",
            Method::PUT,
            "/api/me/notification_settings".into(),
            Some(json!({"items": []})),
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "keywords",
            Method::GET,
            "/api/me/keywords".into(),
            None,
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "add keyword",
            Method::POST,
            "/api/me/keywords".into(),
            Some(json!({"keyword": "캠핑"})),
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "remove keyword",
            Method::DELETE,
            "/api/me/keywords/abc".into(),
            None,
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "mute",
            Method::PUT,
            "/api/rooms/1/mute".into(),
            Some(json!({"muted": true})),
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "broadcast",
            Method::POST,
            "/api/admin/notifications/broadcast".into(),
            Some(json!({"title": "t", "body": "b"})),
            None,
            unauth,
            "unauthenticated",
        ),
        (
            "no settings",
            Method::PUT,
            "/api/me/notification_settings".into(),
            Some(json!({"items": []})),
            t,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            "mistyped setting",
            Method::PUT,
            "/api/me/notification_settings".into(),
            Some(json!({"items": [{"kind": "broadcast", "email": "yes"}]})),
            t,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "unknown field",
            Method::POST,
            "/api/me/keywords".into(),
            Some(json!({"keyword": "캠핑", "x": 1})),
            t,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "mute of a made-up room",
            Method::PUT,
            "/api/rooms/999999/mute".into(),
            Some(json!({"muted": true})),
            t,
            StatusCode::FORBIDDEN,
            "not_member",
        ),
        (
            "mistyped mute",
            Method::PUT,
            "/api/rooms/1/mute".into(),
            Some(json!({"muted": "yes"})),
            t,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "broadcast by a user",
            Method::POST,
            "/api/admin/notifications/broadcast".into(),
            Some(json!({"title": "t", "body": "b"})),
            t,
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
    ])
    .await;
    // Nothing of that wrote anything.
    let v = json_of(app.get("/api/me/keywords", t).await).await;
    assert_eq!(v["items"], json!([]));
    let v = json_of(app.get("/api/me/notifications", t).await).await;
    assert_eq!(v["items"], json!([]));
}
