//! `jangteo-load`: load generator for Jangteo and peer servers.
//!
//! Scenarios: `open-rooms` (N rooms x M members, P publishers per room,
//! stepped open-loop rate), `direct` (K buyer/seller pairs), `connect` (C idle
//! connections, server RSS per connection), `feed` (REST feed paging),
//! `checkout` and `pay` (shop orders), `notify` (keyword alerts: events
//! turned into live notification frames), and `report` (render
//! docs/BENCHMARKS.md tables from JSON results).
//!
//! Latency is measured from the *intended* send time of an open-loop
//! schedule, so a slow server cannot hide its queueing (no coordinated
//! omission). Correctness is checked per receiver: every acknowledged
//! message must arrive exactly once, each publisher's messages in order,
//! and (Jangteo) room seqs strictly increasing. Any violation makes the run
//! fail with exit code 1.

mod checkout;
mod notify;
mod pay;
mod proto;
mod report;
mod seed;
mod storm;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use futures_util::{SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use proto::{decode, Event, Target};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
#[command(
    name = "jangteo-load",
    version,
    about = "Load generator for Jangteo and peer servers (loopback only)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// N open rooms x M members, P publishers per room.
    OpenRooms(RoomsArgs),
    /// K buyer/seller pairs chatting in direct rooms (both publish).
    Direct(DirectArgs),
    /// Hold C idle connections; report server RSS per connection.
    Connect(ConnectArgs),
    /// REST feed paging at a target rate (Jangteo only).
    Feed(FeedArgs),
    /// Buyers racing for a few units of one shop option (Jangteo only):
    /// orders/s under contention; fails on any oversell.
    Checkout(CheckoutArgs),
    /// Whole checkouts (order + sandbox payment) at stepped rates (Jangteo
    /// only): checkouts/s at p99; fails on any failed checkout.
    Pay(PayArgs),
    /// Keyword alerts at stepped rates (Jangteo only): sellers post
    /// listings whose title holds a keyword S subscribers saved; measures
    /// events/s turned into live `notification` frames and the delay from
    /// each listing's intended post to its frame; fails on a lost
    /// (unsaturated step) or duplicated notification.
    Notify(NotifyArgs),
    /// The reconnect storm: all members of many rooms connected, traffic
    /// flowing, the server restarted by a command; every connection comes
    /// back (Jangteo: resumes) and is checked gap- and duplicate-free.
    Storm(storm::StormArgs),
    /// Render Markdown tables from result JSON files.
    Report(report::ReportArgs),
}

#[derive(Args, Clone)]
struct Common {
    /// Server base URL (loopback only).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long, value_enum, default_value = "jangteo")]
    target: Target,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Parallel HTTP requests while seeding users and rooms.
    #[arg(long, default_value_t = 32)]
    seed_concurrency: usize,
    /// Password used for generated accounts.
    #[arg(long, default_value = "load-test-password")]
    password: String,
    /// Processes whose CPU time (utime + stime from /proc/PID/stat) is
    /// counted per step: the server, and for the distributed engine its
    /// services too (repeat the flag). Gives CPU per delivery.
    #[arg(long = "cpu-pid")]
    cpu_pids: Vec<u32>,
}

/// The sending schedule, shared by the room scenarios.
#[derive(Args, Clone)]
struct Schedule {
    /// Total send rate in messages/s; a comma list steps through rates.
    #[arg(long, default_value = "200")]
    rate: String,
    /// Duration of each rate step (e.g. 10s, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Keep reading after the last step until the sockets are quiet this long.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    drain: Duration,
    /// Send at the first rate this long before measuring (not recorded;
    /// still checked for correctness).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Spread the publishers evenly over one send interval (a steady
    /// stream). Without it every publisher starts at the same instant with
    /// the same interval, so all of them send together once per interval:
    /// a burst of one message per publisher (the default, kept so that
    /// runs stay comparable with earlier ones).
    #[arg(long)]
    spread: bool,
}

#[derive(Args, Clone)]
struct RoomsArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    schedule: Schedule,
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    #[arg(long, default_value_t = 10)]
    members: usize,
    /// Publishing members per room.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// More nodes of the same cluster. Each room's members are spread over
    /// all nodes (member m of room r on node (r + m) mod n), so most
    /// deliveries cross from the publisher's node to another.
    #[arg(long)]
    also: Vec<String>,
}

#[derive(Args, Clone)]
struct DirectArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    schedule: Schedule,
    #[arg(long, default_value_t = 50)]
    pairs: usize,
}

#[derive(Args, Clone)]
struct ConnectArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Distinct users the connections belong to (devices per user = C / users).
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// PID of the server, to read its RSS from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// How long to hold the connections.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    hold: Duration,
    /// Connections opened concurrently.
    #[arg(long, default_value_t = 256)]
    parallel: usize,
}

#[derive(Args, Clone)]
struct FeedArgs {
    #[command(flatten)]
    common: Common,
    /// Requests per second.
    #[arg(long, default_value_t = 200)]
    rate: u64,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Listings to create first.
    #[arg(long, default_value_t = 200)]
    listings: usize,
    #[arg(long, default_value_t = 20)]
    page: usize,
}

#[derive(Args, Clone)]
struct CheckoutArgs {
    #[command(flatten)]
    common: Common,
    /// Buyers, all ordering one unit at the same moment.
    #[arg(long, default_value_t = 1000)]
    buyers: usize,
    /// Units in stock.
    #[arg(long, default_value_t = 100)]
    units: i64,
    /// An administrator (made with `jangteo create-admin`) creates the product.
    #[arg(long)]
    admin_email: String,
    #[arg(long)]
    admin_password: String,
    /// More nodes of the same cluster; buyers are spread over all of them.
    #[arg(long)]
    also: Vec<String>,
    /// After the race, wait up to this long for the placed orders to expire
    /// (start the server with a short `order_payment_window_secs`) and check
    /// that every unit came back.
    #[arg(long, value_parser = parse_duration)]
    expiry_wait: Option<Duration>,
}

#[derive(Args, Clone)]
struct PayArgs {
    #[command(flatten)]
    common: Common,
    /// Buyers taking turns (each checkout is one buyer's order + confirm).
    #[arg(long, default_value_t = 200)]
    buyers: usize,
    /// Offered checkouts/s, one step each (comma list).
    #[arg(long, default_value = "25,50,100,200")]
    rates: String,
    /// Length of each step.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    step: Duration,
    /// At the end, wait up to this long for unpaid orders to expire (start
    /// the server with a short `order_payment_window_secs`) before checking
    /// that the stock went down by exactly the paid checkouts.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    expiry_wait: Duration,
    #[arg(long)]
    admin_email: String,
    #[arg(long)]
    admin_password: String,
    /// More nodes of the same cluster; buyers are spread over all of them.
    #[arg(long)]
    also: Vec<String>,
}

#[derive(Args, Clone)]
struct NotifyArgs {
    #[command(flatten)]
    common: Common,
    /// Users who save the keyword and each hold one chat WebSocket.
    #[arg(long, default_value_t = 20)]
    subscribers: usize,
    /// Users who post the listings, in turn.
    #[arg(long, default_value_t = 4)]
    sellers: usize,
    /// The saved keyword; every listing's title contains it (2..=20 characters).
    #[arg(long, default_value = "캠핑")]
    keyword: String,
    /// Offered listings/s, one step each (comma list).
    #[arg(long, default_value = "10,20,40,80")]
    rates: String,
    /// Length of each step.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    step: Duration,
    /// A frame that has not arrived this long after its step ended counts
    /// as lost (reported as late if it comes afterwards).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    grace: Duration,
    /// A step whose delay p99 exceeds this (or the grace) counts as
    /// saturated: the pipeline fell behind the offered rate.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    saturation_p99: Duration,
    /// More nodes of the same cluster; subscribers and sellers are spread
    /// over all of them.
    #[arg(long)]
    also: Vec<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn parse_rates(s: &str) -> anyhow::Result<Vec<f64>> {
    let rates: Vec<f64> = s
        .split(',')
        .map(|r| r.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .context("--rate is a number or a comma list of numbers")?;
    if rates.is_empty() || rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--rate values must be positive");
    }
    Ok(rates)
}

fn loopback_only(url: &str) -> anyhow::Result<()> {
    let host = url
        .trim_start_matches("http://")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        bail!("refusing to load {host:?}: load tests target loopback addresses only");
    }
    Ok(())
}

// ------------------------------------------------------------ measurements

#[expect(
    clippy::expect_used,
    reason = "constant, valid bounds: a failure is a bug in this line"
)]
fn histogram() -> Histogram<u64> {
    // 1 us .. 60 s at 3 significant digits; values above are clamped.
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .map(|mut h| {
            h.auto(true);
            h
        })
        .expect("1 us .. 60 s at 3 significant digits is a valid histogram")
}

#[derive(Default)]
struct StepStats {
    sent: u64,
    acked: u64,
    delivered: u64,
    latency: Option<Histogram<u64>>,
    ack_latency: Option<Histogram<u64>>,
    /// A member's own samples (µs), kept raw and put into the histograms
    /// when the members' results are merged. A histogram per member and
    /// step (1 µs .. 60 s at 3 digits is ~140 KiB) meant hundreds of MiB
    /// touched for the first time inside the receive path at every step
    /// change, and a cache miss per recorded delivery.
    lat_us: Vec<u32>,
    ack_us: Vec<u32>,
}

impl StepStats {
    fn lat(&mut self) -> &mut Histogram<u64> {
        self.latency.get_or_insert_with(histogram)
    }
    fn ack(&mut self) -> &mut Histogram<u64> {
        self.ack_latency.get_or_insert_with(histogram)
    }
    fn record_lat(&mut self, us: u64) {
        self.lat_us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }
    fn record_ack(&mut self, us: u64) {
        self.ack_us.push(u32::try_from(us).unwrap_or(u32::MAX));
    }
    fn merge(&mut self, other: StepStats) {
        self.sent += other.sent;
        self.acked += other.acked;
        self.delivered += other.delivered;
        for us in other.lat_us {
            let _ = self.lat().record(u64::from(us.max(1)));
        }
        for us in other.ack_us {
            let _ = self.ack().record(u64::from(us.max(1)));
        }
        if let Some(h) = other.latency {
            let _ = self.lat().add(h);
        }
        if let Some(h) = other.ack_latency {
            let _ = self.ack().add(h);
        }
    }
}

/// What one connection saw.
#[derive(Default)]
struct ConnResult {
    steps: Vec<StepStats>,
    /// publisher id -> acked count (for publishers on this connection).
    acked_by_publisher: HashMap<String, u64>,
    /// (room, publisher) -> received counters (for loss and duplicates).
    received: ReceivedMap,
    duplicated: u64,
    out_of_order: u64,
    seq_regressions: u64,
    errors: u64,
    error_kinds: HashMap<String, u64>,
    connect_us: u64,
}

/// (room, publisher) -> what one receiver got of it.
type ReceivedMap = HashMap<(String, String), Received>;

#[derive(Default)]
struct Received {
    count: u64,
    last: Option<u64>,
    /// Messages skipped inside the stream (a later one came first and the
    /// skipped one never did), as against missing at its end.
    skipped: u64,
    /// The first skip: (last received, next received).
    first_skip: Option<(Option<u64>, u64)>,
}

/// The shared clock: all timestamps are microseconds since the run started.
struct Clock {
    start: Instant,
}

impl Clock {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

/// One member connection's plan.
#[derive(Clone)]
struct ConnPlan {
    token: Option<String>,
    room: String,
    /// The node this member connects to (`None`: the run's URL).
    node: Option<String>,
    /// Publisher id if this member publishes, with its send interval.
    publisher: Option<(String, Vec<Duration>)>,
    /// When in its interval this publisher sends, as a fraction of the
    /// interval (0: all publishers at the same instant; see `--spread`).
    phase: f64,
}

struct Run {
    target: Target,
    url: String,
    size: usize,
    step_len: Duration,
    steps: usize,
    drain: Duration,
    warmup: Duration,
}

impl Run {
    /// The measured step an instant of the schedule belongs to (`None`
    /// during warm-up).
    fn step_of(&self, at_us: u128) -> Option<usize> {
        let warm = self.warmup.as_micros();
        if at_us < warm {
            return None;
        }
        Some((((at_us - warm) / self.step_len.as_micros().max(1)) as usize).min(self.steps - 1))
    }

    fn interval_at(&self, intervals: &[Duration], at: Duration) -> Duration {
        intervals[self.step_of(at.as_micros()).unwrap_or(0)]
    }
}

fn body(ts_us: u64, size: usize) -> String {
    let mut s = format!("{ts_us:016}|");
    while s.len() < size.max(17) {
        s.push('x');
    }
    s
}

fn parse_ts(body: &str) -> Option<u64> {
    body.get(..16)?.parse().ok()
}

/// Drive one member connection for the whole run. `go` carries the shared
/// start instant once every connection is ready.
async fn member(
    plan: ConnPlan,
    run: Arc<Run>,
    started: Arc<AtomicU64>,
    mut go: tokio::sync::watch::Receiver<Option<Instant>>,
    stop: Arc<AtomicBool>,
) -> ConnResult {
    let mut res = ConnResult {
        steps: (0..run.steps).map(|_| StepStats::default()).collect(),
        ..ConnResult::default()
    };
    let t0 = Instant::now();
    let url = run.target.ws_url(
        plan.node.as_deref().unwrap_or(&run.url),
        plan.token.as_deref(),
    );
    let (ws, _) = match tokio_tungstenite::connect_async_with_config(&url, None, true).await {
        Ok(ok) => ok,
        Err(e) => {
            res.errors += 1;
            *res.error_kinds.entry(format!("connect: {e}")).or_default() += 1;
            started.fetch_add(1, Ordering::SeqCst);
            return res;
        }
    };
    // One socket, not split: a split stream takes a lock (tokio-tungstenite's
    // BiLock) on every read and write, and most members never write.
    let mut ws = ws;
    if run.target.waits_for_open() && !proto::handshake_ws(&mut ws).await {
        res.errors += 1;
        *res.error_kinds.entry("no open packet".into()).or_default() += 1;
        started.fetch_add(1, Ordering::SeqCst);
        return res;
    }
    for m in run.target.hello(std::slice::from_ref(&plan.room)) {
        if ws.send(m).await.is_err() {
            res.errors += 1;
        }
    }
    // Wait until joined / synchronised.
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = &msg {
                let reply = match decode(run.target, t) {
                    Event::Ready => return true,
                    Event::Reply(r) => r,
                    _ => continue,
                };
                let _ = ws.send(reply).await;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    res.connect_us = t0.elapsed().as_micros() as u64;
    started.fetch_add(1, Ordering::SeqCst);
    if !ready {
        res.errors += 1;
        *res.error_kinds.entry("not ready".into()).or_default() += 1;
        return res;
    }
    // Keep reading while the other connections are set up and the server
    // settles: a socket nobody reads answers no pings, and the server
    // closes it as dead after its heartbeat timeout. A frame read here
    // once the run has begun (a publisher saw `go` before this task did)
    // belongs to the run: it is kept for the loop below.
    let mut early: Option<Message> = None;
    let start = loop {
        let at: Option<Instant> = *go.borrow_and_update();
        if let Some(at) = at {
            break at;
        }
        tokio::select! {
            changed = go.changed() => if changed.is_err() {
                return res;
            },
            msg = ws.next() => {
                let Some(Ok(msg)) = msg else {
                    res.errors += 1;
                    *res.error_kinds.entry("closed before the run".into()).or_default() += 1;
                    return res;
                };
                let begun: Option<Instant> = *go.borrow();
                if let Some(at) = begun {
                    early = Some(msg);
                    break at;
                }
                if let Message::Text(t) = &msg {
                    if let Event::Reply(r) = decode(run.target, t) {
                        let _ = ws.send(r).await;
                    }
                }
            }
        }
    };
    let clock = Clock { start };

    let mut pending: HashMap<String, (u64, Option<usize>)> = HashMap::new();
    let mut counter: u64 = 0;
    let mut next_send: Option<Duration> = plan
        .publisher
        .as_ref()
        .map(|(_, intervals)| intervals[0].mul_f64(plan.phase));
    let run_len = run.warmup + run.step_len * run.steps as u32;
    let base = clock.start;
    let mut acked: u64 = 0;
    // room -> last seq, and (room, publisher) -> counters: a member sees
    // one room and a few publishers, so a short list scanned by the
    // frame's borrowed strings is cheaper per frame than hashing them
    // (the generator's own CPU is what limits the highest steps), and only
    // an entry seen for the first time allocates.
    let mut last_seq: Vec<(String, i64)> = Vec::new();
    let mut received: Vec<(String, String, Received)> = Vec::new();
    // After the last step, keep reading until the socket has been quiet
    // for `drain` (an overloaded server may still be delivering), at most
    // a minute.
    let hard_stop = base + run_len + Duration::from_secs(60);
    let mut last_frame = Instant::now();
    let deadline = |last_frame: Instant| {
        (base + run_len + run.drain)
            .max(last_frame + run.drain)
            .min(hard_stop)
    };
    // The next thing to do on time: a send, or (no sends left) the end. One
    // timer, moved when it fires, not re-armed for every frame received
    // (the end moves with each frame; it is checked when the timer fires).
    let wake_at = |next_send: Option<Duration>, last_frame: Instant| match next_send {
        Some(at) if at < run_len && !stop.load(Ordering::Relaxed) => {
            tokio::time::Instant::from_std(base + at)
        }
        _ => tokio::time::Instant::from_std(deadline(last_frame)),
    };
    let timer = tokio::time::sleep_until(wake_at(next_send, last_frame));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            () = &mut timer => {
                let sending = matches!(next_send, Some(at) if at < run_len && !stop.load(Ordering::Relaxed));
                if !sending {
                    if Instant::now() >= deadline(last_frame) {
                        break;
                    }
                    timer.as_mut().reset(wake_at(None, last_frame));
                    continue;
                }
                let (Some(at), Some((pid, intervals))) = (next_send, plan.publisher.as_ref()) else {
                    continue;
                };
                let step = run.step_of(at.as_micros());
                let intended = at.as_micros() as u64;
                let cid = format!("{pid}-{counter}");
                let frame = run.target.send(&plan.room, &cid, &body(intended, run.size), counter + 1);
                counter += 1;
                pending.insert(cid, (intended, step));
                if let Some(step) = step {
                    res.steps[step].sent += 1;
                }
                if ws.send(frame).await.is_err() {
                    res.errors += 1;
                    break;
                }
                next_send = Some(at + run.interval_at(intervals, at));
                timer.as_mut().reset(wake_at(next_send, last_frame));
            }
            msg = async {
                match early.take() {
                    Some(m) => Some(Ok(m)),
                    None => ws.next().await,
                }
            } => {
                let msg = match msg {
                    Some(Ok(Message::Close(frame))) => {
                        // The server ended it (4008: too slow a reader):
                        // what this member misses counts as lost, so say why.
                        let code = frame.map_or(0, |f| u16::from(f.code));
                        res.errors += 1;
                        *res.error_kinds.entry(format!("closed by server: {code}")).or_default() += 1;
                        break;
                    }
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        res.errors += 1;
                        *res.error_kinds.entry(format!("read: {e}")).or_default() += 1;
                        break;
                    }
                    None => break,
                };
                last_frame = Instant::now();
                let Message::Text(text) = msg else { continue };
                let now_us = clock.now_us();
                let reply = match decode(run.target, &text) {
                    Event::Ack { cid } => {
                        if let Some((intended, step)) = pending.remove(cid.as_ref()) {
                            acked += 1;
                            if let Some(step) = step {
                                res.steps[step].acked += 1;
                                res.steps[step].record_ack(now_us.saturating_sub(intended));
                            }
                        }
                        continue;
                    }
                    Event::Message { room, cid, body, seq } => {
                        let Some(ts) = parse_ts(&body) else { continue };
                        if let Some(step) = run.step_of(ts as u128) {
                            res.steps[step].delivered += 1;
                            res.steps[step].record_lat(now_us.saturating_sub(ts));
                        }
                        if let Some(seq) = seq {
                            let at = match last_seq.iter().position(|(r, _)| r == room.as_ref()) {
                                Some(at) => at,
                                None => {
                                    last_seq.push((room.to_string(), seq - 1));
                                    last_seq.len() - 1
                                }
                            };
                            let last = &mut last_seq[at].1;
                            if seq <= *last {
                                res.seq_regressions += 1;
                            }
                            *last = (*last).max(seq);
                        }
                        let (publisher, n) = match cid.rsplit_once('-') {
                            Some((p, n)) => (p, n.parse::<u64>().unwrap_or(0)),
                            None => (cid.as_ref(), 0),
                        };
                        let at = match received
                            .iter()
                            .position(|(r, p, _)| p == publisher && r == room.as_ref())
                        {
                            Some(at) => at,
                            None => {
                                received.push((room.to_string(), publisher.to_string(), Received::default()));
                                received.len() - 1
                            }
                        };
                        let r = &mut received[at].2;
                        match r.last {
                            Some(last) if n == last => res.duplicated += 1,
                            Some(last) if n < last => res.out_of_order += 1,
                            last => {
                                // A publisher's counter starts at 0.
                                let next = last.map_or(0, |l| l + 1);
                                if n > next {
                                    r.skipped += n - next;
                                    r.first_skip.get_or_insert((last, n));
                                }
                                r.count += 1;
                                r.last = Some(n);
                            }
                        }
                        continue;
                    }
                    Event::Error(code) => {
                        res.errors += 1;
                        *res.error_kinds.entry(code).or_default() += 1;
                        continue;
                    }
                    Event::Reply(r) => r,
                    Event::Ready | Event::Other | Event::Notification { .. } => continue,
                };
                let _ = ws.send(reply).await;
            }
        }
    }
    for (room, publisher, r) in received {
        res.received.insert((room, publisher), r);
    }
    if let Some((pid, _)) = &plan.publisher {
        res.acked_by_publisher.insert(pid.clone(), acked);
    }
    let _ = ws.close(None).await;
    res
}

#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct StepReport {
    pub rate: f64,
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    pub delivered_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    /// CPU seconds of the `--cpu-pid` processes over the step (0 without).
    #[serde(default)]
    pub cpu_secs: f64,
    /// `cpu_secs` per delivery of the step, in microseconds.
    #[serde(default)]
    pub cpu_us_per_delivery: f64,
    /// Of `cpu_us_per_delivery`, the part in user space (the rest is the
    /// kernel's: system calls, TCP, disk).
    #[serde(default)]
    pub cpu_user_us_per_delivery: f64,
    /// The generator's own CPU over the step, as a share of one core: near
    /// 1.0 the generator, not the server, sets the latencies (its sends go
    /// out late and its receipts are read late, for every server alike,
    /// but more so for a server whose frames cost it more to read).
    #[serde(default)]
    pub generator_busy: f64,
}

#[derive(Debug, Serialize, serde::Deserialize, Clone)]
pub struct RunReport {
    pub target: String,
    pub scenario: String,
    pub persisted: bool,
    pub rooms: usize,
    pub members: usize,
    pub publishers: usize,
    pub size: usize,
    pub step_secs: f64,
    pub steps: Vec<StepReport>,
    /// Of the last step.
    pub delivered_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The highest delivered rate among steps whose p99 stayed <= 50 ms.
    pub best_delivered_per_sec_p99_50ms: f64,
    pub connect_p50_ms: f64,
    pub connect_p99_ms: f64,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    pub errors: u64,
    pub error_kinds: HashMap<String, u64>,
}

fn ms(h: &Option<Histogram<u64>>, q: f64) -> f64 {
    h.as_ref()
        .map_or(0.0, |h| h.value_at_quantile(q) as f64 / 1000.0)
}

async fn run_rooms(
    common: &Common,
    plans: Vec<ConnPlan>,
    shape: (usize, usize, usize),
    rates: Vec<f64>,
    schedule: &Schedule,
    scenario: &str,
) -> anyhow::Result<RunReport> {
    let (step_len, size, drain, warmup) = (
        schedule.duration,
        schedule.size,
        schedule.drain,
        schedule.warmup,
    );
    let run = Arc::new(Run {
        target: common.target,
        url: common.url.clone(),
        size,
        step_len,
        steps: rates.len(),
        drain,
        warmup,
    });
    let mut plans = plans;
    if schedule.spread {
        let publishers = plans
            .iter()
            .filter(|p| p.publisher.is_some())
            .count()
            .max(1);
        for (k, plan) in plans
            .iter_mut()
            .filter(|p| p.publisher.is_some())
            .enumerate()
        {
            plan.phase = k as f64 / publishers as f64;
        }
    }
    let total = plans.len();
    let started = Arc::new(AtomicU64::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel(None);
    let stop = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::with_capacity(total);
    for plan in plans {
        let (run, started, go, stop, gate) = (
            run.clone(),
            started.clone(),
            go_rx.clone(),
            stop.clone(),
            gate.clone(),
        );
        let room = plan.room.clone();
        let publisher = plan.publisher.as_ref().map(|(p, _)| p.clone());
        tasks.push(tokio::spawn(async move {
            // Open at most 256 connections at a time (the handshake only).
            let permit = gate.acquire_owned().await;
            let fut = member(plan, run, started, go, stop);
            drop(permit);
            (fut.await, room, publisher)
        }));
    }
    let wait_start = Instant::now();
    let bar = progress(total as u64, "connecting", common.json);
    while (started.load(Ordering::SeqCst) as usize) < total {
        bar.set_position(started.load(Ordering::SeqCst));
        if wait_start.elapsed() > Duration::from_secs(300) {
            bail!("connections did not complete within 300 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bar.finish_and_clear();
    if common.target == Target::Jangteo {
        drain_outbox(&common.url).await;
    }
    settle(&common.cpu_pids).await;
    let go_at = Instant::now();
    let _ = go_tx.send(Some(go_at));
    let cpu = tokio::spawn(cpu_per_step(
        common.cpu_pids.clone(),
        go_at,
        warmup,
        step_len,
        rates.len(),
    ));
    let run_len = warmup + step_len * rates.len() as u32 + drain;
    let bar = progress(run_len.as_millis() as u64, scenario, common.json);
    let begin = Instant::now();
    while begin.elapsed() < run_len {
        bar.set_position(begin.elapsed().as_millis() as u64);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    bar.finish_and_clear();

    let mut merged: Vec<StepStats> = rates.iter().map(|_| StepStats::default()).collect();
    let mut acked_by_pub: HashMap<String, u64> = HashMap::new();
    let mut publishers_of_room: HashMap<String, Vec<String>> = HashMap::new();
    let mut receivers: Vec<(String, ReceivedMap)> = Vec::new();
    let (mut duplicated, mut out_of_order, mut errors) = (0, 0, 0);
    let mut error_kinds: HashMap<String, u64> = HashMap::new();
    let mut connect = histogram();
    for t in tasks {
        let (r, room, publisher) = t.await.context("connection task")?;
        for (i, s) in r.steps.into_iter().enumerate() {
            merged[i].merge(s);
        }
        if let Some(p) = publisher {
            publishers_of_room.entry(room.clone()).or_default().push(p);
        }
        acked_by_pub.extend(r.acked_by_publisher);
        receivers.push((room, r.received));
        duplicated += r.duplicated;
        out_of_order += r.out_of_order + r.seq_regressions;
        errors += r.errors;
        for (k, v) in r.error_kinds {
            *error_kinds.entry(k).or_default() += v;
        }
        let _ = connect.record(r.connect_us.max(1));
    }
    // Loss: every member of a room must have received every acknowledged
    // message of every publisher in that room.
    let mut lost = 0u64;
    for (room, received) in &receivers {
        for p in publishers_of_room.get(room).into_iter().flatten() {
            let expected = acked_by_pub.get(p).copied().unwrap_or(0);
            let r = received.get(&(room.clone(), p.clone()));
            let got = r.map_or(0, |r| r.count);
            if got < expected && lost < 1_000 {
                // Say where: skipped inside the stream (a delivery bug) or
                // missing at its end (still on the way when reading ended).
                eprintln!(
                    "lost: room {room}, publisher {p}: {got} of {expected} received, last {:?}, {} skipped inside, first skip {:?}",
                    r.and_then(|r| r.last),
                    r.map_or(0, |r| r.skipped),
                    r.and_then(|r| r.first_skip)
                );
            }
            lost += expected.saturating_sub(got);
        }
    }
    let (cpu, own) = cpu.await.unwrap_or_default();
    let steps: Vec<StepReport> = merged
        .iter()
        .zip(&rates)
        .enumerate()
        .map(|(i, (s, rate))| StepReport {
            rate: *rate,
            sent: s.sent,
            acked: s.acked,
            delivered: s.delivered,
            delivered_per_sec: s.delivered as f64 / step_len.as_secs_f64(),
            p50_ms: ms(&s.latency, 0.5),
            p90_ms: ms(&s.latency, 0.9),
            p99_ms: ms(&s.latency, 0.99),
            p999_ms: ms(&s.latency, 0.999),
            max_ms: s.latency.as_ref().map_or(0.0, |h| h.max() as f64 / 1000.0),
            ack_p50_ms: ms(&s.ack_latency, 0.5),
            ack_p99_ms: ms(&s.ack_latency, 0.99),
            cpu_secs: cpu.get(i).map_or(0.0, |c| c.0 + c.1),
            cpu_us_per_delivery: cpu
                .get(i)
                .filter(|_| s.delivered > 0)
                .map_or(0.0, |c| (c.0 + c.1) * 1e6 / s.delivered as f64),
            cpu_user_us_per_delivery: cpu
                .get(i)
                .filter(|_| s.delivered > 0)
                .map_or(0.0, |c| c.0 * 1e6 / s.delivered as f64),
            generator_busy: own.get(i).map_or(0.0, |c| c / step_len.as_secs_f64()),
        })
        .collect();
    let last = steps.last().cloned();
    let best = steps
        .iter()
        .filter(|s| s.p99_ms <= 50.0 && s.delivered > 0)
        .map(|s| s.delivered_per_sec)
        .fold(0.0, f64::max);
    Ok(RunReport {
        target: common.target.name().to_string(),
        scenario: scenario.to_string(),
        persisted: common.target.persists(),
        rooms: shape.0,
        members: shape.1,
        publishers: shape.2,
        size,
        step_secs: step_len.as_secs_f64(),
        delivered_per_sec: last.as_ref().map_or(0.0, |s| s.delivered_per_sec),
        p50_ms: last.as_ref().map_or(0.0, |s| s.p50_ms),
        p99_ms: last.as_ref().map_or(0.0, |s| s.p99_ms),
        best_delivered_per_sec_p99_50ms: best,
        connect_p50_ms: connect.value_at_quantile(0.5) as f64 / 1000.0,
        connect_p99_ms: connect.value_at_quantile(0.99) as f64 / 1000.0,
        steps,
        lost,
        duplicated,
        out_of_order,
        errors,
        error_kinds,
    })
}

/// CPU seconds (user, system) a process has used so far, from
/// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s).
fn cpu_secs(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from after it.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime / 100.0, stime / 100.0))
}

/// Jobs the server's outbox has finished (any kind, any outcome), from its
/// `/metrics`; `None` if they cannot be read.
async fn outbox_jobs_done(client: &reqwest::Client, url: &str) -> Option<f64> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    Some(
        text.lines()
            .filter(|l| l.starts_with("jangteo_outbox_jobs_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Wait (at most two minutes) until Jangteo's outbox has gone 1.5 s
/// without finishing a job. Seeding leaves work behind (every sign-up's
/// verification email: a quota row, a file and the job's own row, each
/// committed with an fsync). At ~140 jobs/s that drain took the first
/// 10 s of every run with 1,000 members, all of the measured window of
/// `split.sh`, and being mostly I/O waits it passed `settle`'s CPU test.
/// Its CPU, and the write lock it shares with the chat commits, counted
/// as fan-out cost until 2026-12-07 (docs/BENCHMARKS.md, "fourth stop").
async fn drain_outbox(url: &str) {
    let client = reqwest::Client::new();
    let began = Instant::now();
    let (mut last, mut since) = (None, Instant::now());
    while began.elapsed() < Duration::from_secs(120) {
        let done = outbox_jobs_done(&client, url).await;
        if done.is_none() {
            return;
        }
        if done != last {
            (last, since) = (done, Instant::now());
        } else if since.elapsed() >= Duration::from_millis(1500) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if began.elapsed() > Duration::from_secs(2) {
        eprintln!(
            "waited {:.1} s for the server's outbox to drain ({} jobs done)",
            began.elapsed().as_secs_f64(),
            last.unwrap_or(0.0)
        );
    }
}

/// How long `settle` waits at most. A broker's idle fetch polling (tansu
/// answers every fetch after its full wait, so two nodes keep it at ~20% of
/// a core with nothing to do) never gets under the 5% mark; the outbox,
/// which did, is waited for by `drain_outbox`.
const SETTLE_MAX: Duration = Duration::from_secs(10);

/// Wait (at most `SETTLE_MAX`) until the `--cpu-pid` processes are quiet: under
/// 5% of a core over 300 ms. Seeding leaves work behind in a server (the
/// sign-ups' verification emails go out through the outbox, a file each
/// without an SMTP server), which would otherwise run inside the first
/// measured steps and count as CPU per delivery there.
async fn settle(pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let began = Instant::now();
    let window = Duration::from_millis(300);
    loop {
        let before = cpu_total(pids);
        tokio::time::sleep(window).await;
        let busy = cpu_total(pids) - before;
        if busy < 0.05 * window.as_secs_f64() || began.elapsed() > SETTLE_MAX {
            break;
        }
    }
    if began.elapsed() > Duration::from_secs(1) {
        eprintln!(
            "waited {:.1} s for the server to go quiet before the first step",
            began.elapsed().as_secs_f64()
        );
    }
}

/// User and system CPU seconds of `pids` so far.
fn cpu_split(pids: &[u32]) -> (f64, f64) {
    pids.iter()
        .filter_map(|p| cpu_secs(*p))
        .fold((0.0, 0.0), |(u, s), (pu, ps)| (u + pu, s + ps))
}

fn cpu_total(pids: &[u32]) -> f64 {
    let (u, s) = cpu_split(pids);
    u + s
}

/// CPU seconds (user, system) of `pids` within each measured step
/// (sampled at the step boundaries of the schedule that started at `go`;
/// empty without pids), and the generator's own CPU seconds in each.
async fn cpu_per_step(
    pids: Vec<u32>,
    go: Instant,
    warmup: Duration,
    step: Duration,
    steps: usize,
) -> (Vec<(f64, f64)>, Vec<f64>) {
    let me = [std::process::id()];
    let mut out = Vec::with_capacity(steps);
    let mut own = Vec::with_capacity(steps);
    tokio::time::sleep_until((go + warmup).into()).await;
    let mut before = cpu_split(&pids);
    let mut own_before = cpu_total(&me);
    for i in 1..=steps {
        tokio::time::sleep_until((go + warmup + step * i as u32).into()).await;
        let now = cpu_split(&pids);
        let own_now = cpu_total(&me);
        if !pids.is_empty() {
            out.push((now.0 - before.0, now.1 - before.1));
        }
        own.push(own_now - own_before);
        before = now;
        own_before = own_now;
    }
    (out, own)
}

fn progress(len: u64, what: &str, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Per-publisher send intervals for each rate step.
fn intervals(rates: &[f64], publishers_total: usize) -> Vec<Duration> {
    rates
        .iter()
        .map(|r| Duration::from_secs_f64(publishers_total as f64 / r))
        .collect()
}

fn print_report(r: &RunReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!(
        "{} {} - {} rooms x {} members, {} publisher(s)/room, {} B messages{}",
        r.target,
        r.scenario,
        r.rooms,
        r.members,
        r.publishers,
        r.size,
        if r.persisted {
            ", persisted"
        } else {
            ", not persisted"
        }
    );
    println!(
        "{:>9} {:>9} {:>9} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "rate/s",
        "sent",
        "acked",
        "delivered",
        "deliv/s",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "ack p50",
        "ack p99",
        "cpu us/d"
    );
    for s in &r.steps {
        println!(
            "{:>9.0} {:>9} {:>9} {:>11} {:>11.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.rate, s.sent, s.acked, s.delivered, s.delivered_per_sec, s.p50_ms, s.p90_ms, s.p99_ms, s.p999_ms, s.max_ms, s.ack_p50_ms, s.ack_p99_ms, s.cpu_us_per_delivery
        );
    }
    println!(
        "connect p50 {:.1} ms, p99 {:.1} ms; best delivered/s with p99 <= 50 ms: {:.0}",
        r.connect_p50_ms, r.connect_p99_ms, r.best_delivered_per_sec_p99_50ms
    );
    println!(
        "correctness: lost {}, duplicated {}, out of order {}, errors {} {:?}",
        r.lost, r.duplicated, r.out_of_order, r.errors, r.error_kinds
    );
    Ok(())
}

fn verdict(r: &RunReport) -> std::process::ExitCode {
    if r.lost + r.duplicated + r.out_of_order > 0 {
        eprintln!(
            "!!! CORRECTNESS FAILURE: {} lost, {} duplicated, {} out of order !!!",
            r.lost, r.duplicated, r.out_of_order
        );
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

async fn open_rooms(a: RoomsArgs) -> anyhow::Result<RunReport> {
    loopback_only(&a.common.url)?;
    if a.publishers == 0 || a.publishers > a.members || a.members < 1 || a.rooms < 1 {
        bail!("need rooms >= 1, members >= 1 and 1 <= publishers <= members");
    }
    let rates = parse_rates(&a.schedule.rate)?;
    for node in &a.also {
        loopback_only(node)?;
    }
    let rooms = seed::rooms(&a.common, a.rooms, a.members, false).await?;
    let steps = intervals(&rates, a.rooms * a.publishers);
    let nodes = a.also.len() + 1;
    let mut plans = Vec::new();
    for (ri, room) in rooms.iter().enumerate() {
        for (mi, token) in room.tokens.iter().enumerate() {
            let at = (ri + mi) % nodes;
            plans.push(ConnPlan {
                token: token.clone(),
                room: room.key.clone(),
                node: (at > 0).then(|| a.also[at - 1].clone()),
                publisher: (mi < a.publishers).then(|| (format!("r{ri}m{mi}"), steps.clone())),
                phase: 0.0,
            });
        }
    }
    run_rooms(
        &a.common,
        plans,
        (a.rooms, a.members, a.publishers),
        rates,
        &a.schedule,
        "open-rooms",
    )
    .await
}

async fn direct(a: DirectArgs) -> anyhow::Result<RunReport> {
    loopback_only(&a.common.url)?;
    let rates = parse_rates(&a.schedule.rate)?;
    let rooms = seed::rooms(&a.common, a.pairs, 2, true).await?;
    let steps = intervals(&rates, a.pairs * 2);
    let mut plans = Vec::new();
    for (ri, room) in rooms.iter().enumerate() {
        for (mi, token) in room.tokens.iter().enumerate() {
            plans.push(ConnPlan {
                token: token.clone(),
                room: room.key.clone(),
                node: None,
                publisher: Some((format!("d{ri}m{mi}"), steps.clone())),
                phase: 0.0,
            });
        }
    }
    run_rooms(
        &a.common,
        plans,
        (a.pairs, 2, 2),
        rates,
        &a.schedule,
        "direct",
    )
    .await
}

/// One runtime thread per CPU this process may run on (`taskset` counts):
/// pinned to one CPU, a multi-threaded runtime's workers would take turns
/// on it and add their scheduling to every latency measured.
fn main() -> std::process::ExitCode {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = if cpus <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus)
            .enable_all()
            .build()
    };
    match runtime {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("error: no runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::OpenRooms(a) => {
            let json = a.common.json;
            open_rooms(a)
                .await
                .and_then(|r| print_report(&r, json).map(|_| verdict(&r)))
        }
        Command::Direct(a) => {
            let json = a.common.json;
            direct(a)
                .await
                .and_then(|r| print_report(&r, json).map(|_| verdict(&r)))
        }
        Command::Connect(a) => seed::connect(a).await,
        Command::Feed(a) => seed::feed(a).await,
        Command::Checkout(a) => checkout::run(a).await,
        Command::Pay(a) => pay::run(a).await,
        Command::Notify(a) => notify::run(a).await,
        Command::Storm(a) => storm::run(a).await,
        Command::Report(a) => report::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("jangteo-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
