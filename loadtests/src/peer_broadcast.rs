//! `peer-broadcast`: the smallest server that does what the load test
//! needs (join rooms, publish to a room, ack the sender) on tokio and
//! tungstenite, with no persistence, no auth, no receipts. It is the floor
//! of our own stack: the gap between it and Jangteo is what actors,
//! persistence and receipts cost.
//!
//! Protocol (JSON text frames), shared with the Bun peer:
//! `{"type":"join","rooms":[..]}` -> `{"type":"joined"}`;
//! `{"type":"send","room","cid","body"}` -> `{"type":"ack","cid"}` to the
//! sender and `{"type":"message","room","cid","body"}` to every member.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

type Tx = mpsc::UnboundedSender<Message>;
type Rooms = Arc<Mutex<HashMap<String, Vec<(u64, Tx)>>>>;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9003".into());
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("peer-broadcast: cannot bind {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!("peer-broadcast listening on {addr}");
    let rooms: Rooms = Arc::default();
    let mut next_id = 0u64;
    while let Ok((tcp, _)) = listener.accept().await {
        next_id += 1;
        tokio::spawn(serve(tcp, next_id, rooms.clone()));
    }
    std::process::ExitCode::SUCCESS
}

async fn serve(tcp: tokio::net::TcpStream, id: u64, rooms: Rooms) {
    let _ = tcp.set_nodelay(true);
    let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
    });
    let mut joined: Vec<String> = Vec::new();
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match v["type"].as_str() {
            Some("join") => {
                let mut map = rooms.lock().unwrap_or_else(|p| p.into_inner());
                for r in v["rooms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    map.entry(r.to_string()).or_default().push((id, tx.clone()));
                    joined.push(r.to_string());
                }
                let _ = tx.send(Message::Text(json!({"type": "joined"}).to_string()));
            }
            Some("send") => {
                let room = v["room"].as_str().unwrap_or("").to_string();
                let _ = tx.send(Message::Text(
                    json!({"type": "ack", "cid": v["cid"]}).to_string(),
                ));
                // Serialise once, clone per member.
                let frame = Message::Text(
                    json!({"type": "message", "room": room, "cid": v["cid"], "body": v["body"]})
                        .to_string(),
                );
                let map = rooms.lock().unwrap_or_else(|p| p.into_inner());
                for (_, member) in map.get(&room).into_iter().flatten() {
                    let _ = member.send(frame.clone());
                }
            }
            _ => {}
        }
    }
    let mut map = rooms.lock().unwrap_or_else(|p| p.into_inner());
    for r in joined {
        if let Some(members) = map.get_mut(&r) {
            members.retain(|(m, _)| *m != id);
        }
    }
    drop(map);
    writer.abort();
}
