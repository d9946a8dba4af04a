//! Thin protocol adapters: how to join rooms, send, and read events on each
//! target. Jangteo speaks its protocol v1; the raw peers (Bun pub/sub and
//! the minimal Rust broadcast server) speak a tiny JSON protocol of the same
//! shape; socket.io speaks Engine.IO v4 framing over a plain WebSocket.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Jangteo: auth, rooms via REST, protocol v1, every message persisted.
    Jangteo,
    /// socket.io 4 on Node with rooms (loadtests/peers/socketio.js).
    Socketio,
    /// Bun's built-in WebSocket pub/sub (loadtests/peers/bun.ts).
    Bun,
    /// Minimal tokio + tungstenite broadcast server (`peer-broadcast`).
    Broadcast,
}

impl Target {
    pub fn persists(self) -> bool {
        self == Target::Jangteo
    }

    pub fn name(self) -> &'static str {
        match self {
            Target::Jangteo => "jangteo",
            Target::Socketio => "socket.io",
            Target::Bun => "bun",
            Target::Broadcast => "rust-broadcast",
        }
    }

    /// The WebSocket URL for a member (`token` only for Jangteo).
    pub fn ws_url(self, base: &str, token: Option<&str>) -> String {
        let ws = base.replacen("http://", "ws://", 1);
        match self {
            Target::Jangteo => format!("{ws}/ws?token={}", token.unwrap_or("")),
            Target::Socketio => format!("{ws}/socket.io/?EIO=4&transport=websocket"),
            Target::Bun | Target::Broadcast => format!("{ws}/ws"),
        }
    }

    /// Whether the server speaks first (Engine.IO's open packet `0{...}`)
    /// and the hello must wait for it.
    pub fn waits_for_open(self) -> bool {
        self == Target::Socketio
    }

    /// Frames to send right after connecting (join rooms, sync).
    pub fn hello(self, rooms: &[String]) -> Vec<Message> {
        match self {
            Target::Jangteo => vec![Message::Text(r#"{"type":"ping"}"#.into())],
            // The namespace connect (`40`) is part of `handshake`.
            Target::Socketio => vec![Message::Text(format!("42{}", json!(["join", rooms])))],
            Target::Bun | Target::Broadcast => vec![Message::Text(
                json!({"type": "join", "rooms": rooms}).to_string(),
            )],
        }
    }

    pub fn send(self, room: &str, cid: &str, body: &str, ack_id: u64) -> Message {
        match self {
            Target::Jangteo => Message::Text(
                json!({"type": "send", "room": room.parse::<i64>().unwrap_or(0), "client_msg_id": cid, "body": body}).to_string(),
            ),
            Target::Socketio => Message::Text(format!(
                "42{ack_id}{}",
                json!(["send", {"room": room, "cid": cid, "body": body}])
            )),
            Target::Bun | Target::Broadcast => {
                Message::Text(json!({"type": "send", "room": room, "cid": cid, "body": body}).to_string())
            }
        }
    }
}

/// Read until a text frame starting with `prefix`.
async fn await_prefix<S>(stream: &mut S, prefix: &str) -> bool
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::StreamExt as _;
    let wait = async {
        while let Some(Ok(msg)) = stream.next().await {
            if let Message::Text(t) = &msg {
                if t.starts_with(prefix) {
                    return true;
                }
            }
        }
        false
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), wait)
        .await
        .unwrap_or(false)
}

/// socket.io: wait for Engine.IO's open packet (`0{..}`), connect to the
/// default namespace (`40`) and wait for its confirmation; events sent
/// before that may be dropped by the server.
pub async fn handshake<K, S>(sink: &mut K, stream: &mut S) -> bool
where
    K: futures_util::Sink<Message> + Unpin,
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    use futures_util::SinkExt as _;
    await_prefix(stream, "0").await
        && sink.send(Message::Text("40".into())).await.is_ok()
        && await_prefix(stream, "40").await
}

/// [`handshake`] on an unsplit socket.
pub async fn handshake_ws<W>(ws: &mut W) -> bool
where
    W: futures_util::Sink<Message>
        + futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    use futures_util::SinkExt as _;
    await_prefix(ws, "0").await
        && ws.send(Message::Text("40".into())).await.is_ok()
        && await_prefix(ws, "40").await
}

/// What a frame from the server means to the generator. Borrowed from the
/// frame's text where it can be (no allocation per delivered message: the
/// generator decodes every frame of every member on one core).
#[derive(Debug, PartialEq)]
pub enum Event<'a> {
    /// The connection is ready (joined / synchronised).
    Ready,
    Ack {
        cid: Cow<'a, str>,
    },
    Message {
        /// As sent: a number for Jangteo, a string for the peers.
        room: Cow<'a, str>,
        cid: Cow<'a, str>,
        body: Cow<'a, str>,
        seq: Option<i64>,
    },
    Error(String),
    /// Jangteo: a new notification for the connection's user, with the
    /// path it links to (e.g. `/listings/42`).
    Notification {
        link: String,
    },
    /// A frame the generator must answer (socket.io ping).
    Reply(Message),
    Other,
}

/// The fields of a JSON frame the generator reads, borrowed.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(default, borrow)]
    room: Option<&'a RawValue>,
    #[serde(default, borrow, alias = "cid")]
    client_msg_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    body: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<i64>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    notification: Option<&'a RawValue>,
}

/// A room id as it came: `7` or `"r1"` (a string with escapes is rare
/// enough to be decoded properly, allocating).
fn room_of(raw: Option<&RawValue>) -> Cow<'_, str> {
    let Some(raw) = raw else {
        return Cow::Borrowed("");
    };
    let text = raw.get();
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
        Some(_) => Cow::Owned(serde_json::from_str::<String>(text).unwrap_or_default()),
        None => Cow::Borrowed(text),
    }
}

fn str_field(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

pub fn decode(target: Target, text: &str) -> Event<'_> {
    match target {
        Target::Jangteo | Target::Bun | Target::Broadcast => {
            let Ok(w) = serde_json::from_str::<Wire<'_>>(text) else {
                return Event::Error(format!("unparsable frame: {text:.80}"));
            };
            let jangteo = target == Target::Jangteo;
            match w.ty.as_ref() {
                "pong" if jangteo => Event::Ready,
                "joined" if !jangteo => Event::Ready,
                "ack" => Event::Ack {
                    cid: w.client_msg_id.unwrap_or_default(),
                },
                "message" => Event::Message {
                    room: room_of(w.room),
                    cid: w.client_msg_id.unwrap_or_default(),
                    body: w.body.unwrap_or_default(),
                    seq: w.seq,
                },
                "error" => Event::Error(w.code.unwrap_or_default().into_owned()),
                "notification" if jangteo => Event::Notification {
                    link: w
                        .notification
                        .and_then(|n| serde_json::from_str::<Value>(n.get()).ok())
                        .map(|n| str_field(&n, "link"))
                        .unwrap_or_default(),
                },
                _ => Event::Other,
            }
        }
        Target::Socketio => decode_socketio(text),
    }
}

/// Engine.IO v4 / Socket.IO v5 framing: `0{..}` open, `2` ping (answer
/// `3`), `40` connected, `42[..]` event, `43<id>[..]` ack.
fn decode_socketio(text: &str) -> Event<'static> {
    if text == "2" {
        return Event::Reply(Message::Text("3".into()));
    }
    if let Some(rest) = text.strip_prefix("43") {
        let payload = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let cid = serde_json::from_str::<Value>(payload)
            .ok()
            .and_then(|v| v.get(0).map(|a| str_field(a, "cid")))
            .unwrap_or_default();
        return Event::Ack {
            cid: Cow::Owned(cid),
        };
    }
    if let Some(rest) = text.strip_prefix("42") {
        let Ok(v) = serde_json::from_str::<Value>(rest) else {
            return Event::Error(format!("unparsable event: {text:.80}"));
        };
        return match v[0].as_str() {
            Some("message") => Event::Message {
                room: Cow::Owned(str_field(&v[1], "room")),
                cid: Cow::Owned(str_field(&v[1], "cid")),
                body: Cow::Owned(str_field(&v[1], "body")),
                seq: None,
            },
            Some("joined") => Event::Ready,
            _ => Event::Other,
        };
    }
    Event::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socketio_frames() {
        assert_eq!(
            decode(Target::Socketio, "2"),
            Event::Reply(Message::Text("3".into()))
        );
        assert_eq!(
            decode(Target::Socketio, r#"4312[{"cid":"p1-3"}]"#),
            Event::Ack { cid: "p1-3".into() }
        );
        assert_eq!(
            decode(
                Target::Socketio,
                r#"42["message",{"room":"r1","cid":"p1-3","body":"x"}]"#
            ),
            Event::Message {
                room: "r1".into(),
                cid: "p1-3".into(),
                body: "x".into(),
                seq: None
            }
        );
    }

    #[test]
    fn jangteo_frames() {
        assert_eq!(decode(Target::Jangteo, r#"{"type":"pong"}"#), Event::Ready);
        assert_eq!(
            decode(
                Target::Jangteo,
                r#"{"type":"notification","notification":{"id":9,"kind":"keyword.match","link":"/listings/42","read":false}}"#
            ),
            Event::Notification {
                link: "/listings/42".into()
            }
        );
        assert_eq!(
            decode(
                Target::Jangteo,
                r#"{"type":"message","room":7,"seq":3,"client_msg_id":"p0-1","body":"b"}"#
            ),
            Event::Message {
                room: "7".into(),
                cid: "p0-1".into(),
                body: "b".into(),
                seq: Some(3)
            }
        );
    }
}
