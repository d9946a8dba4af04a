//! The reconnect storm: every member of many rooms is connected, traffic
//! flows, and the server restarts (a command given by the caller stops it
//! and starts it again). Each connection reconnects with jittered backoff,
//! Jangteo's with `resume` from the last seq it saw and its un-acked sends
//! again under their `client_msg_id`, while the publishers keep sending.
//!
//! Reported: the time from each connection's drop to its being served
//! again (Jangteo: `resumed`; the peers cannot resume: joined again), and
//! per Jangteo member whether it saw every seq of its room exactly once
//! (a duplicate or a skipped seq fails the run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::Args;
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::proto::{decode, Event, Target};
use crate::{histogram, loopback_only, parse_duration, seed, Common};

#[derive(Args, Clone)]
pub struct StormArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 200)]
    rooms: usize,
    #[arg(long, default_value_t = 50)]
    members: usize,
    /// Total sends/s over all rooms (one publisher per room).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// How long traffic flows, restart included.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// When (after traffic started) the restart command runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    restart_after: Duration,
    /// The command (run with `sh -c`) that restarts the server.
    #[arg(long)]
    restart: String,
    #[arg(long, default_value_t = 90)]
    size: usize,
}

#[derive(Debug, Serialize)]
pub struct StormReport {
    pub target: String,
    pub scenario: String,
    pub connections: usize,
    /// Connections that were dropped by the restart.
    pub dropped: u64,
    /// ... and served again before the end.
    pub back: u64,
    pub restart_command_secs: f64,
    /// From each drop to the connection being served again.
    pub back_p50_ms: f64,
    pub back_p99_ms: f64,
    pub back_max_ms: f64,
    /// From the first drop to the last connection served again.
    pub storm_secs: f64,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    /// Jangteo: seqs a member never saw (counted per member), and seqs it
    /// saw twice.
    pub lost: u64,
    pub duplicated: u64,
    pub errors: u64,
}

struct Shared {
    target: Target,
    url: String,
    size: usize,
    start: Instant,
    stop_at: Instant,
    stopped: AtomicBool,
    first_drop_us: AtomicU64,
    last_back_us: AtomicU64,
}

#[derive(Default)]
struct Outcome {
    dropped: u64,
    back: u64,
    back_us: Vec<u64>,
    sent: u64,
    acked: u64,
    delivered: u64,
    lost: u64,
    duplicated: u64,
    errors: u64,
    last_seq: i64,
    room: String,
}

pub async fn run(a: StormArgs) -> anyhow::Result<std::process::ExitCode> {
    loopback_only(&a.common.url)?;
    if a.rooms == 0 || a.members == 0 || a.rate <= 0.0 {
        bail!("need rooms, members and a rate");
    }
    let rooms = seed::rooms(&a.common, a.rooms, a.members, false).await?;
    let now = Instant::now();
    let shared = Arc::new(Shared {
        target: a.common.target,
        url: a.common.url.clone(),
        size: a.size,
        // Time for every member to connect before traffic starts.
        start: now + Duration::from_secs(10),
        stop_at: now + Duration::from_secs(10) + a.duration,
        stopped: AtomicBool::new(false),
        first_drop_us: AtomicU64::new(u64::MAX),
        last_back_us: AtomicU64::new(0),
    });
    let interval = Duration::from_secs_f64(a.rooms as f64 / a.rate);
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for (ri, room) in rooms.iter().enumerate() {
        for (mi, token) in room.tokens.iter().enumerate() {
            let (shared, gate) = (shared.clone(), gate.clone());
            let (room, token) = (room.key.clone(), token.clone());
            let publisher = (mi == 0).then(|| format!("s{ri}"));
            tasks.push(tokio::spawn(async move {
                member(shared, gate, room, token, publisher, interval).await
            }));
        }
    }
    // The restart, at its time.
    tokio::time::sleep_until((shared.start + a.restart_after).into()).await;
    let began = Instant::now();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&a.restart)
        .status()
        .await?;
    let restart_secs = began.elapsed().as_secs_f64();
    if !status.success() {
        bail!("the restart command failed: {status}");
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await?);
    }
    shared.stopped.store(true, Ordering::Relaxed);
    let mut back: Histogram<u64> = histogram();
    let mut total = Outcome::default();
    // A member's last seq must be its room's last (a message lost at the
    // very end is not a gap).
    let mut room_last: HashMap<String, i64> = HashMap::new();
    for o in &outcomes {
        let e = room_last.entry(o.room.clone()).or_default();
        *e = (*e).max(o.last_seq);
    }
    for o in outcomes {
        for us in &o.back_us {
            let _ = back.record((*us).max(1));
        }
        if a.common.target == Target::Jangteo {
            total.lost += (room_last.get(&o.room).copied().unwrap_or(0) - o.last_seq).max(0) as u64;
        }
        total.dropped += o.dropped;
        total.back += o.back;
        total.sent += o.sent;
        total.acked += o.acked;
        total.delivered += o.delivered;
        total.lost += o.lost;
        total.duplicated += o.duplicated;
        total.errors += o.errors;
    }
    let first = shared.first_drop_us.load(Ordering::Relaxed);
    let last = shared.last_back_us.load(Ordering::Relaxed);
    let report = StormReport {
        target: a.common.target.name().to_string(),
        scenario: "storm".into(),
        connections: a.rooms * a.members,
        dropped: total.dropped,
        back: total.back,
        restart_command_secs: restart_secs,
        back_p50_ms: back.value_at_quantile(0.5) as f64 / 1000.0,
        back_p99_ms: back.value_at_quantile(0.99) as f64 / 1000.0,
        back_max_ms: back.max() as f64 / 1000.0,
        storm_secs: if first == u64::MAX || last < first {
            0.0
        } else {
            (last - first) as f64 / 1e6
        },
        sent: total.sent,
        acked: total.acked,
        delivered: total.delivered,
        lost: total.lost,
        duplicated: total.duplicated,
        errors: total.errors,
    };
    if a.common.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{report:#?}");
    }
    let failed = report.duplicated > 0
        || (a.common.target == Target::Jangteo && (report.lost > 0 || report.acked < report.sent))
        || report.back < report.dropped;
    Ok(if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}

fn us_since(start: Instant) -> u64 {
    Instant::now().saturating_duration_since(start).as_micros() as u64
}

/// One member: connect, (re)join or resume, publish if it is the room's
/// publisher, and reconnect whenever the connection drops, until the end.
async fn member(
    shared: Arc<Shared>,
    gate: Arc<tokio::sync::Semaphore>,
    room: String,
    token: Option<String>,
    publisher: Option<String>,
    interval: Duration,
) -> Outcome {
    let mut o = Outcome {
        room: room.clone(),
        ..Outcome::default()
    };
    let target = shared.target;
    let url = target.ws_url(&shared.url, token.as_deref());
    // Un-acked sends, sent again (same id) after a reconnect.
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut counter = 0u64;
    let mut next_send = shared.start;
    let mut dropped_at: Option<Instant> = None;
    let mut attempt = 0u32;
    'connection: while Instant::now() < shared.stop_at + Duration::from_secs(30) {
        let ws = {
            let _permit = gate.acquire().await;
            tokio_tungstenite::connect_async_with_config(&url, None, true).await
        };
        let mut ws = match ws {
            Ok((ws, _)) => ws,
            Err(_) => {
                // Jittered backoff: 100 ms doubling, at most 2 s.
                let base = 100u64 << attempt.min(4);
                attempt += 1;
                let jitter =
                    (counter.wrapping_mul(7919) + u64::from(attempt) * 104_729) % base.max(1);
                tokio::time::sleep(Duration::from_millis(base / 2 + jitter / 2)).await;
                continue;
            }
        };
        attempt = 0;
        let hello = if target == Target::Jangteo && o.last_seq > 0 {
            vec![Message::Text(
                json!({"type": "resume", "rooms": {room.clone(): o.last_seq}}).to_string(),
            )]
        } else {
            target.hello(std::slice::from_ref(&room))
        };
        let resuming = target == Target::Jangteo && o.last_seq > 0;
        for m in hello {
            if ws.send(m).await.is_err() {
                continue 'connection;
            }
        }
        let mut ready = false;
        for (cid, body) in &pending {
            let _ = ws.send(target.send(&room, cid, body, 0)).await;
        }
        loop {
            let wake = if publisher.is_some() && next_send < shared.stop_at {
                next_send
            } else {
                shared.stop_at + Duration::from_secs(3)
            };
            tokio::select! {
                () = tokio::time::sleep_until(wake.into()) => {
                    if Instant::now() >= shared.stop_at + Duration::from_secs(3) {
                        return o;
                    }
                    if let Some(p) = &publisher {
                        let cid = format!("{p}-{counter}");
                        counter += 1;
                        let body = "x".repeat(shared.size);
                        if ws.send(target.send(&room, &cid, &body, counter)).await.is_err() {
                            pending.push((cid, body));
                            o.sent += 1;
                            next_send += interval;
                            dropped_at.get_or_insert_with(Instant::now);
                            continue 'connection;
                        }
                        pending.push((cid, body));
                        o.sent += 1;
                        next_send += interval;
                    }
                }
                msg = ws.next() => {
                    let text = match msg {
                        Some(Ok(Message::Text(t))) => t,
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            if dropped_at.is_none() {
                                let now = Instant::now();
                                dropped_at = Some(now);
                                o.dropped += 1;
                                shared.first_drop_us.fetch_min(us_since(shared.start), Ordering::Relaxed);
                            }
                            continue 'connection;
                        }
                        Some(Ok(_)) => continue,
                    };
                    let is_ready = match decode(target, &text) {
                        Event::Ready => !resuming,
                        Event::Ack { cid } => {
                            if let Some(i) = pending.iter().position(|(c, _)| *c == cid) {
                                pending.remove(i);
                                o.acked += 1;
                            }
                            false
                        }
                        Event::Message { seq, .. } => {
                            o.delivered += 1;
                            if let Some(seq) = seq {
                                if seq <= o.last_seq {
                                    o.duplicated += 1;
                                } else {
                                    if o.last_seq > 0 && seq > o.last_seq + 1 {
                                        o.lost += (seq - o.last_seq - 1) as u64;
                                    }
                                    o.last_seq = seq;
                                }
                            }
                            false
                        }
                        Event::Error(_) => {
                            o.errors += 1;
                            false
                        }
                        _ => text.contains(r#""type":"resumed""#),
                    };
                    if is_ready && !ready {
                        ready = true;
                        if let Some(at) = dropped_at.take() {
                            o.back += 1;
                            o.back_us.push(at.elapsed().as_micros() as u64);
                            shared.last_back_us.fetch_max(us_since(shared.start), Ordering::Relaxed);
                        }
                    }
                }
            }
        }
    }
    o
}
