//! Property test: random send / read / join / leave sequences, checking
//! every member's unread count against a model of the rule in
//! `domain::chat` (unread = last_seq - last_read_seq; writing marks read).

use std::collections::HashMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{spawn_app_with, TestApp, User, Ws};

#[derive(Debug, Clone)]
enum Op {
    Send(usize),
    Read(usize, i64),
    Join(usize),
    Leave(usize),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec((0u8..4, 1usize..4, 0i64..40), 8..28).prop_map(|raw| {
        raw.into_iter()
            .map(|(kind, user, n)| match kind {
                0 => Op::Send(user),
                1 => Op::Read(user, n),
                2 => Op::Join(user),
                _ => Op::Leave(user),
            })
            .collect()
    })
}

#[derive(Default)]
struct Model {
    last_seq: i64,
    /// member -> last read seq
    members: HashMap<usize, i64>,
}

struct Case<'a> {
    app: &'a TestApp,
    users: &'a [User],
    sockets: Vec<Ws>,
    room: i64,
    model: Model,
    barrier: u64,
}

impl Case<'_> {
    /// Every earlier write is committed once a later message is acked
    /// (the committer is FIFO): the owner's barrier message makes the store
    /// consistent before we look at it.
    async fn barrier(&mut self) {
        self.barrier += 1;
        let cid = format!("barrier-{}", self.barrier);
        self.sockets[0].say(self.room, &cid, "barrier").await;
        self.model.last_seq += 1;
        self.model.members.insert(0, self.model.last_seq);
        self.sockets[0].backlog.clear();
    }

    async fn apply(&mut self, op: &Op, step: usize) {
        let room = self.room;
        match *op {
            Op::Send(u) => {
                let cid = format!("s-{step}");
                self.sockets[u]
                    .send(json!({"type": "send", "room": room, "client_msg_id": cid, "body": "hi"}))
                    .await;
                let reply = self.sockets[u]
                    .expect_where(|v| {
                        (v["type"] == "ack" || v["type"] == "error")
                            && v["client_msg_id"] == cid.as_str()
                    })
                    .await;
                if self.model.members.contains_key(&u) {
                    assert_eq!(reply["type"], "ack", "{op:?}: {reply}");
                    self.model.last_seq += 1;
                    assert_eq!(reply["seq"], self.model.last_seq, "{op:?}");
                    self.model.members.insert(u, self.model.last_seq);
                } else {
                    assert_eq!(reply["code"], "not_member", "{op:?}: {reply}");
                }
            }
            Op::Read(u, seq) => {
                let r = self
                    .app
                    .client
                    .put(self.app.url(&format!("/api/rooms/{room}/read")))
                    .bearer_auth(&self.users[u].token)
                    .json(&json!({"seq": seq}))
                    .send()
                    .await
                    .expect("read");
                let last_seq = self.model.last_seq;
                match self.model.members.get_mut(&u) {
                    Some(read) => {
                        assert_eq!(r.status(), StatusCode::OK, "{op:?}");
                        *read = (*read).max(seq.min(last_seq));
                        let unread =
                            r.json::<serde_json::Value>().await.expect("json")["unread"].as_i64();
                        assert_eq!(unread, Some(last_seq - *read), "{op:?}");
                    }
                    None => assert_eq!(r.status(), StatusCode::FORBIDDEN, "{op:?}"),
                }
            }
            Op::Join(u) => {
                let r = self
                    .app
                    .post_json(
                        &format!("/api/rooms/{room}/join"),
                        &json!({}),
                        Some(&self.users[u].token),
                    )
                    .await;
                assert_eq!(r.status(), StatusCode::OK, "{op:?}");
                if let std::collections::hash_map::Entry::Vacant(e) = self.model.members.entry(u) {
                    self.model.last_seq += 1; // the join notice, written by the joiner
                    e.insert(self.model.last_seq);
                }
            }
            Op::Leave(u) => {
                let r = self
                    .app
                    .post_json(
                        &format!("/api/rooms/{room}/leave"),
                        &json!({}),
                        Some(&self.users[u].token),
                    )
                    .await;
                if self.model.members.remove(&u).is_some() {
                    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{op:?}");
                    self.model.last_seq += 1; // the leave notice
                } else {
                    assert_eq!(r.status(), StatusCode::FORBIDDEN, "{op:?}");
                }
            }
        }
    }

    async fn check(&mut self, after: &str) {
        self.barrier().await;
        for (u, user) in self.users.iter().enumerate() {
            let rooms = self.app.my_rooms(user).await;
            let listed = rooms["items"]
                .as_array()
                .expect("items")
                .iter()
                .find(|r| r["id"] == self.room)
                .cloned();
            match self.model.members.get(&u) {
                Some(read) => {
                    let listed = listed
                        .unwrap_or_else(|| panic!("user {u} should list the room after {after}"));
                    assert_eq!(listed["last_seq"], self.model.last_seq, "after {after}");
                    assert_eq!(
                        listed["unread"],
                        self.model.last_seq - read,
                        "user {u} after {after}"
                    );
                }
                None => assert!(listed.is_none(), "user {u} is not a member after {after}"),
            }
        }
    }
}

#[actix_web::test]
async fn unread_counts_match_the_model() {
    let app = spawn_app_with(&[("chat_send_rate", "1000"), ("chat_send_burst", "1000")]).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(app.user(&format!("model{i}")).await);
    }
    let mut runner = TestRunner::deterministic();
    let strategy = ops();
    for case in 0..10 {
        let ops = strategy
            .new_tree(&mut runner)
            .expect("value tree")
            .current();
        let room = app
            .open_room(&users[0], &format!("model room {case}"))
            .await;
        let mut sockets = Vec::new();
        for u in &users {
            sockets.push(app.ws(&u.token).await);
        }
        let mut c = Case {
            app: &app,
            users: &users,
            sockets,
            room,
            model: Model::default(),
            barrier: 0,
        };
        c.model.members.insert(0, 0);
        for (step, op) in ops.iter().enumerate() {
            c.apply(op, step).await;
            c.check(&format!("case {case} step {step} {op:?} in {ops:?}"))
                .await;
        }
    }
}
