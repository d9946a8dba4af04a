//! The `notify` scenario: keyword alerts under load (Jangteo only).
//!
//! S subscribers save one keyword (`POST /api/me/keywords`) and each hold a
//! chat WebSocket; a few sellers post listings whose title contains it
//! (`POST /api/listings`) at stepped open-loop rates. Every listing is a
//! `listing.created` event that the notification pipeline must turn into
//! exactly one `keyword.match` notification per subscriber, pushed live as a
//! `notification` frame linking to `/listings/{id}`.
//!
//! Frames may arrive before the POST's answer, so each subscriber only
//! records (listing id, arrival) and the matching happens at the end:
//! every frame is paired with its listing's *intended* post time (no
//! coordinated omission). Per step: listings offered and created per
//! second, frames delivered per second, expected frames (created x S),
//! lost (not arrived within `--grace` after the step ended; `late` says how
//! many of those came afterwards), duplicated (a subscriber heard one
//! listing twice) and the delay at p50/p99. At the end every subscriber's
//! `GET /api/me/notifications/unread_count` must equal the listings
//! created (exactly once in the inbox, live frame or not).
//!
//! The run fails on any duplicate, on a lost frame in a step where the
//! server kept up (see `NotifyStep::saturated`), on a subscriber whose
//! inbox is off, and on a subscriber that could not connect. Start the
//! server with the sign-up limit lifted (`JANGTEO_SIGNUP_MAX_PER_ADDRESS`,
//! see `loadtests/notify.sh`); listings have no rate limit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::proto::{decode, Event, Target};
use crate::seed::{account_at, get_json, open_ready, post_json, run_id, WsSink, WsStream};
use crate::{histogram, loopback_only, parse_rates, progress, Clock, NotifyArgs};

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
pub struct NotifyStep {
    /// Offered listings (events) per second.
    pub rate: f64,
    pub offered: u64,
    /// Listings created (201).
    pub created: u64,
    pub failed: u64,
    /// Created listings per second, until the step's last answer.
    pub created_per_sec: f64,
    /// created x connected subscribers.
    pub expected: u64,
    /// Distinct (subscriber, listing) frames, whenever they came.
    pub delivered: u64,
    /// Frames per second, until the step's last frame.
    pub delivered_per_sec: f64,
    /// Expected frames not arrived within the grace after the step ended.
    pub lost: u64,
    /// Of `lost`, those that did arrive later (the rest never came).
    pub late: u64,
    /// Frames beyond the first for one (subscriber, listing).
    pub duplicated: u64,
    /// Delay from the listing's intended post to the frame.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// From the intended post to the POST's answer.
    pub post_p50_ms: f64,
    pub post_p99_ms: f64,
    /// The server did not keep up: a post failed, fewer than 90 % of the
    /// offered listings/s were created, or the delay's p99 exceeded
    /// `--saturation-p99` (1 s) or the grace. Lost frames are only fatal in
    /// steps that are not saturated.
    pub saturated: bool,
}

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct NotifyReport {
    pub target: String,
    pub scenario: String,
    pub nodes: usize,
    pub subscribers: usize,
    /// Subscribers whose WebSocket stayed open for the whole run.
    pub connected: usize,
    pub sellers: usize,
    pub keyword: String,
    pub step_secs: f64,
    pub grace_secs: f64,
    pub steps: Vec<NotifyStep>,
    /// Failed posts by reason, e.g. `503 unavailable`.
    pub post_failures: BTreeMap<String, u64>,
    /// Notification frames that name no listing of this run.
    pub unmatched: u64,
    /// Why subscriber sockets ended early, and error frames they got.
    pub socket_trouble: BTreeMap<String, u64>,
    /// Every subscriber's unread count should be this (listings created).
    pub inbox_expected: u64,
    /// Subscribers whose unread count was exactly that.
    pub inbox_exact: usize,
    /// The unread counts that were off: (subscriber, count).
    pub inbox_off: Vec<(usize, i64)>,
    pub ok: bool,
}

/// What one subscriber's socket heard.
#[derive(Default)]
struct Heard {
    /// (listing id, arrival in us on the run's clock).
    frames: Vec<(i64, u64)>,
    /// Notification frames linking elsewhere.
    other: u64,
    trouble: BTreeMap<String, u64>,
    ended_early: bool,
}

/// Read one subscriber's socket until `stop`, keeping it alive with an
/// application ping every 10 s (the server closes idle connections).
async fn listen(
    mut sink: WsSink,
    mut stream: WsStream,
    clock: Arc<Clock>,
    mut stop: watch::Receiver<bool>,
    frames_seen: Arc<AtomicU64>,
) -> Heard {
    let mut heard = Heard::default();
    let mut keepalive = tokio::time::interval(Duration::from_secs(10));
    keepalive.tick().await;
    fn end(heard: &mut Heard, why: String) {
        heard.ended_early = true;
        *heard.trouble.entry(why).or_default() += 1;
    }
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = keepalive.tick() => {
                if sink.send(Message::Text(r#"{"type":"ping"}"#.into())).await.is_err() {
                    end(&mut heard, "send failed".into());
                    break;
                }
            }
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(0, |f| u16::from(f.code));
                        end(&mut heard, format!("closed by the server ({code})"));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        end(&mut heard, format!("socket error: {e}"));
                        break;
                    }
                    None => {
                        end(&mut heard, "socket ended".into());
                        break;
                    }
                };
                match decode(Target::Jangteo, &text) {
                    Event::Notification { link } => {
                        match link.strip_prefix("/listings/").and_then(|id| id.parse().ok()) {
                            Some(id) => {
                                heard.frames.push((id, clock.now_us()));
                                frames_seen.fetch_add(1, Ordering::Relaxed);
                            }
                            None => heard.other += 1,
                        }
                    }
                    Event::Error(code) => *heard.trouble.entry(format!("error frame {code}")).or_default() += 1,
                    _ => {}
                }
            }
        }
    }
    let _ = sink.close().await;
    heard
}

/// One listing post: its step, intended time, answer time and outcome.
struct Posted {
    step: usize,
    intended_us: u64,
    answered_us: u64,
    outcome: Result<i64, String>,
}

async fn post_listing(
    client: &reqwest::Client,
    node: &str,
    token: &str,
    title: String,
    price: i64,
) -> Result<i64, String> {
    let resp = client
        .post(format!("{node}/api/listings"))
        .bearer_auth(token)
        .json(&json!({"title": title, "price": price, "category": "sports"}))
        .send()
        .await
        .map_err(|e| format!("transport: {}", e.without_url()))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    match body["id"].as_i64() {
        Some(id) if status == 201 => Ok(id),
        _ => Err(format!("{status} {}", body["code"].as_str().unwrap_or(""))),
    }
}

/// A subscriber ready for the run: its node, token and open socket.
struct Subscriber {
    node: String,
    token: String,
    socket: (WsSink, WsStream),
}

async fn subscriber(
    client: reqwest::Client,
    node: String,
    password: String,
    name: String,
    keyword: String,
) -> anyhow::Result<Subscriber> {
    let (_, token) = account_at(&client, &node, &password, &name).await?;
    post_json(
        &client,
        &format!("{node}/api/me/keywords"),
        Some(&token),
        &json!({"keyword": keyword}),
    )
    .await?;
    let socket = open_ready(Target::Jangteo, &node, Some(&token), "")
        .await
        .with_context(|| format!("{name}: the WebSocket on {node} did not become ready"))?;
    Ok(Subscriber {
        node,
        token,
        socket,
    })
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

pub async fn run(a: NotifyArgs) -> anyhow::Result<std::process::ExitCode> {
    let c = &a.common;
    let mut nodes = vec![c.url.clone()];
    nodes.extend(a.also.iter().cloned());
    for n in &nodes {
        loopback_only(n)?;
    }
    if c.target != Target::Jangteo {
        bail!("the notify scenario is Jangteo only");
    }
    if a.subscribers == 0 || a.sellers == 0 {
        bail!("need at least one subscriber and one seller");
    }
    let rates = parse_rates(&a.rates)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()?;
    let tag = run_id();
    let clock = Arc::new(Clock {
        start: Instant::now(),
    });

    // Subscribers (keyword + socket) and sellers, spread over the nodes.
    let gate = Arc::new(Semaphore::new(c.seed_concurrency.max(1)));
    let bar = progress((a.subscribers + a.sellers) as u64, "seeding", c.json);
    let mut seeding = Vec::with_capacity(a.subscribers);
    for i in 0..a.subscribers {
        let (client, gate, bar) = (client.clone(), gate.clone(), bar.clone());
        let args = (
            nodes[i % nodes.len()].clone(),
            c.password.clone(),
            format!("n{tag}s{i}"),
            a.keyword.clone(),
        );
        seeding.push(tokio::spawn(async move {
            let _p = gate.acquire().await;
            let s = subscriber(client, args.0, args.1, args.2, args.3).await;
            bar.inc(1);
            s
        }));
    }
    let mut sellers = Vec::with_capacity(a.sellers);
    for j in 0..a.sellers {
        let node = nodes[j % nodes.len()].clone();
        let (_, token) = account_at(&client, &node, &c.password, &format!("n{tag}p{j}")).await?;
        sellers.push((node, token));
        bar.inc(1);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let frames_seen = Arc::new(AtomicU64::new(0));
    let mut inboxes = Vec::with_capacity(a.subscribers);
    let mut listeners = Vec::with_capacity(a.subscribers);
    for s in seeding {
        let Subscriber {
            node,
            token,
            socket: (sink, stream),
        } = s.await.context("seed task")??;
        inboxes.push((node, token));
        listeners.push(tokio::spawn(listen(
            sink,
            stream,
            clock.clone(),
            stop_rx.clone(),
            frames_seen.clone(),
        )));
    }
    bar.finish_and_clear();

    // The schedule: every listing's step and offset from the go.
    let step_us = a.step.as_micros() as u64;
    let grace_us = a.grace.as_micros() as u64;
    let mut plan = Vec::new();
    for (i, &rate) in rates.iter().enumerate() {
        let n = (rate * a.step.as_secs_f64()).round().max(1.0) as u64;
        for k in 0..n {
            plan.push((i, step_us * i as u64 + (k as f64 * 1e6 / rate) as u64));
        }
    }
    let run_us = step_us * rates.len() as u64;
    let bar = progress(plan.len() as u64, "listings", c.json);
    let go_us = clock.now_us();
    let sellers = Arc::new(sellers);
    let mut posting = Vec::with_capacity(plan.len());
    for (j, &(step, offset)) in plan.iter().enumerate() {
        let intended_us = go_us + offset;
        tokio::time::sleep_until((clock.start + Duration::from_micros(intended_us)).into()).await;
        bar.inc(1);
        let (client, sellers, clock) = (client.clone(), sellers.clone(), clock.clone());
        let title = format!("{} 텐트 {tag}-{j}", a.keyword);
        posting.push(tokio::spawn(async move {
            let (node, token) = &sellers[j % sellers.len()];
            let outcome = post_listing(&client, node, token, title, 10_000 + j as i64).await;
            Posted {
                step,
                intended_us,
                answered_us: clock.now_us(),
                outcome,
            }
        }));
    }
    bar.finish_and_clear();
    let mut posts = Vec::with_capacity(posting.len());
    for p in posting {
        posts.push(p.await.context("post task")?);
    }
    let created_total = posts.iter().filter(|p| p.outcome.is_ok()).count() as u64;
    let connected_now = listeners.iter().filter(|l| !l.is_finished()).count() as u64;

    // Keep listening until the grace after the last step is over and every
    // expected frame is in, or nothing came for a grace (at most 60 s).
    let expected_total = created_total * connected_now;
    let end_us = go_us + run_us;
    let (mut last_count, mut last_change_us) =
        (frames_seen.load(Ordering::Relaxed), clock.now_us());
    loop {
        let now = clock.now_us();
        let count = frames_seen.load(Ordering::Relaxed);
        if count != last_count {
            (last_count, last_change_us) = (count, now);
        }
        let after_grace = now >= end_us + grace_us;
        if (after_grace && (count >= expected_total || now >= last_change_us + grace_us))
            || now >= end_us + 60_000_000
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    let mut heard = Vec::with_capacity(listeners.len());
    for l in listeners {
        heard.push(l.await.context("listener task")?);
    }

    // Match frames to listings.
    let steps_n = rates.len();
    let mut listing_of: HashMap<i64, (usize, u64)> = HashMap::new();
    let mut created = vec![0u64; steps_n];
    let mut failed = vec![0u64; steps_n];
    let mut last_answer = vec![0u64; steps_n];
    let mut post_lat: Vec<_> = (0..steps_n).map(|_| histogram()).collect();
    let mut post_failures = BTreeMap::new();
    for p in &posts {
        let _ = post_lat[p.step].record(p.answered_us.saturating_sub(p.intended_us).max(1));
        last_answer[p.step] = last_answer[p.step].max(p.answered_us);
        match &p.outcome {
            Ok(id) => {
                created[p.step] += 1;
                listing_of.insert(*id, (p.step, p.intended_us));
            }
            Err(why) => {
                failed[p.step] += 1;
                *post_failures.entry(why.clone()).or_insert(0) += 1;
            }
        }
    }
    let step_start = |i: usize| go_us + step_us * i as u64;
    let connected = heard.iter().filter(|h| !h.ended_early).count();
    let mut delivered = vec![0u64; steps_n];
    let mut in_time = vec![0u64; steps_n];
    let mut duplicated = vec![0u64; steps_n];
    let mut last_frame = vec![0u64; steps_n];
    let mut delay: Vec<_> = (0..steps_n).map(|_| histogram()).collect();
    let (mut unmatched, mut socket_trouble) = (0u64, BTreeMap::new());
    for h in &heard {
        unmatched += h.other;
        for (k, v) in &h.trouble {
            *socket_trouble.entry(k.clone()).or_insert(0) += v;
        }
        let mut seen = HashSet::new();
        for &(id, at) in &h.frames {
            let Some(&(step, intended)) = listing_of.get(&id) else {
                unmatched += 1;
                continue;
            };
            if !seen.insert(id) {
                duplicated[step] += 1;
                continue;
            }
            delivered[step] += 1;
            if at <= step_start(step) + step_us + grace_us {
                in_time[step] += 1;
            }
            last_frame[step] = last_frame[step].max(at);
            let _ = delay[step].record(at.saturating_sub(intended).max(1));
        }
    }
    let subs = a.subscribers as u64;
    let step_secs = a.step.as_secs_f64();
    let per_sec = |n: u64, i: usize, last: u64| {
        n as f64 / step_secs.max(last.saturating_sub(step_start(i)) as f64 / 1e6)
    };
    let steps: Vec<NotifyStep> = (0..steps_n)
        .map(|i| {
            let offered = plan.iter().filter(|p| p.0 == i).count() as u64;
            let expected = created[i] * subs;
            let created_per_sec = per_sec(created[i], i, last_answer[i]);
            let p99_ms = ms(&delay[i], 0.99);
            NotifyStep {
                rate: rates[i],
                offered,
                created: created[i],
                failed: failed[i],
                created_per_sec,
                expected,
                delivered: delivered[i],
                delivered_per_sec: per_sec(delivered[i], i, last_frame[i]),
                lost: expected.saturating_sub(in_time[i]),
                late: delivered[i].saturating_sub(in_time[i]),
                duplicated: duplicated[i],
                p50_ms: ms(&delay[i], 0.5),
                p99_ms,
                max_ms: delay[i].max() as f64 / 1000.0,
                post_p50_ms: ms(&post_lat[i], 0.5),
                post_p99_ms: ms(&post_lat[i], 0.99),
                saturated: failed[i] > 0
                    || created_per_sec < 0.9 * rates[i]
                    || p99_ms > a.grace.min(a.saturation_p99).as_secs_f64() * 1000.0,
            }
        })
        .collect();

    // Exactly once in the inbox: every subscriber (connected or not) has
    // one unread notification per created listing. Rows are written before
    // frames go out, but allow a few seconds for a lagging consumer.
    let until = Instant::now() + Duration::from_secs(10);
    let mut inbox_off;
    loop {
        inbox_off = Vec::new();
        for (i, (node, token)) in inboxes.iter().enumerate() {
            let v = get_json(
                &client,
                &format!("{node}/api/me/notifications/unread_count"),
                Some(token),
            )
            .await?;
            let unread = v["unread"]
                .as_i64()
                .context("unread_count without unread")?;
            if unread != created_total as i64 {
                inbox_off.push((i, unread));
            }
        }
        if inbox_off.is_empty() || Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let broken_step = steps
        .iter()
        .any(|s| s.duplicated > 0 || (s.lost > 0 && !s.saturated));
    let ok = !broken_step && inbox_off.is_empty() && connected == a.subscribers;
    let report = NotifyReport {
        target: "jangteo".into(),
        scenario: "notify".into(),
        nodes: nodes.len(),
        subscribers: a.subscribers,
        connected,
        sellers: a.sellers,
        keyword: a.keyword.clone(),
        step_secs,
        grace_secs: a.grace.as_secs_f64(),
        steps,
        post_failures,
        unmatched,
        socket_trouble,
        inbox_expected: created_total,
        inbox_exact: a.subscribers - inbox_off.len(),
        inbox_off,
        ok,
    };
    if c.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        crate::report::notify_tables(&[serde_json::to_value(&report)?]);
    }
    if !ok {
        eprintln!(
            "!!! NOTIFICATION FAILURE: duplicates, lost frames in a step the server kept up with, \
             a wrong inbox count or a dropped socket (see above) !!!"
        );
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
