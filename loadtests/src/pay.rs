//! The `pay` scenario: whole checkouts (place a "buy now" order, then
//! confirm its payment with the sandbox provider) at stepped open-loop
//! rates (Jangteo only). Latency runs from each checkout's intended start
//! to its confirm answer, so a server that falls behind shows it. Every
//! checkout must end paid: any other answer is a failure, and at the end
//! the option's stock must have gone down by exactly the paid checkouts
//! (no unit lost or sold twice). Any failure fails the run.
//!
//! Needs an administrator (see `checkout`'s doc) and a server with the
//! sandbox provider (any `env` but production).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::seed::{account_at, post_json};
use crate::{histogram, loopback_only, PayArgs};

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct PayStep {
    pub target: String,
    pub scenario: String,
    pub nodes: usize,
    /// Offered checkouts/s.
    pub rate: u64,
    pub offered: u64,
    pub paid: u64,
    pub failed: u64,
    /// Paid checkouts per second of the step (until the last answer).
    pub paid_per_sec: f64,
    /// Why checkouts failed, e.g. `confirm 503 busy`: count.
    pub failures: std::collections::BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

async fn checkout(
    client: &reqwest::Client,
    node: &str,
    token: &str,
    option: i64,
    n: u64,
) -> Result<(), String> {
    async fn why(step: &str, r: reqwest::Response) -> String {
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        format!("{step} {status} {}", v["code"].as_str().unwrap_or(""))
    }
    let placed = client
        .post(format!("{node}/api/orders"))
        .bearer_auth(token)
        .json(&json!({"from": "buy_now", "option_id": option, "quantity": 1}))
        .send()
        .await
        .map_err(|e| format!("order transport: {}", e.without_url()))?;
    if placed.status().as_u16() != 201 {
        return Err(why("order", placed).await);
    }
    let order: Value = placed.json().await.unwrap_or(Value::Null);
    let confirmed = client
        .post(format!("{node}/api/payments/confirm"))
        .bearer_auth(token)
        .json(&json!({"order_number": order["order_number"], "amount": order["total"],
                      "payment_key": format!("load-{n}-{}", order["order_number"].as_str().unwrap_or("")),
                      "provider": "sandbox"}))
        .send()
        .await
        .map_err(|e| format!("confirm transport: {}", e.without_url()))?;
    if confirmed.status().as_u16() != 200 {
        return Err(why("confirm", confirmed).await);
    }
    Ok(())
}

async fn stock(
    client: &reqwest::Client,
    url: &str,
    admin: &str,
    product: i64,
) -> anyhow::Result<i64> {
    let page: Value = client
        .get(format!("{url}/api/products/{product}"))
        .bearer_auth(admin)
        .send()
        .await?
        .json()
        .await?;
    page["options"][0]["stock"]
        .as_i64()
        .context("stock in the product page")
}

pub async fn run(a: PayArgs) -> anyhow::Result<std::process::ExitCode> {
    let c = &a.common;
    let mut nodes = vec![c.url.clone()];
    nodes.extend(a.also.iter().cloned());
    for n in &nodes {
        loopback_only(n)?;
    }
    let rates: Vec<u64> = a
        .rates
        .split(',')
        .map(|r| r.trim().parse::<u64>())
        .collect::<Result<_, _>>()
        .context("--rates: a comma list of checkouts/s")?;
    if rates.is_empty() || rates.contains(&0) {
        bail!("--rates: positive numbers");
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()?;
    let login = post_json(
        &client,
        &format!("{}/api/auth/login", c.url),
        None,
        &json!({"email": a.admin_email, "password": a.admin_password}),
    )
    .await
    .context("admin login (create the admin first)")?;
    let admin = login["token"]
        .as_str()
        .context("login without token")?
        .to_string();
    let tag = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0)
    );
    let units: i64 = 1_000_000;
    let product = post_json(
        &client,
        &format!("{}/api/admin/products", c.url),
        Some(&admin),
        &json!({"name": format!("Pay {tag}"), "brand": "Load", "category": "other",
                "base_price": 12_300, "status": "on_sale",
                "options": [{"label": "one", "sku": format!("PAY-{tag}"), "stock": units}]}),
    )
    .await?;
    let product_id = product["id"].as_i64().context("product id")?;
    let option = product["options"][0]["id"].as_i64().context("option id")?;

    let gate = Arc::new(Semaphore::new(c.seed_concurrency.max(1)));
    let mut seeding = Vec::with_capacity(a.buyers);
    for i in 0..a.buyers {
        let node = nodes[i % nodes.len()].clone();
        let (client, gate, password) = (client.clone(), gate.clone(), c.password.clone());
        let name = format!("p{tag}-{i}");
        seeding.push(tokio::spawn(async move {
            let _p = gate.acquire().await;
            account_at(&client, &node, &password, &name)
                .await
                .map(|(_, token)| (node, token))
        }));
    }
    let mut buyers = Vec::with_capacity(a.buyers);
    for s in seeding {
        buyers.push(s.await.context("seed task")??);
    }
    let buyers = Arc::new(buyers);

    let mut steps = Vec::new();
    let mut n: u64 = 0;
    let (mut total_paid, mut total_failed, mut held) = (0u64, 0u64, 0u64);
    for &rate in &rates {
        let count = (rate as f64 * a.step.as_secs_f64()).round().max(1.0) as u64;
        let every = Duration::from_secs_f64(1.0 / rate as f64);
        let start = Instant::now();
        let mut running = Vec::with_capacity(count as usize);
        for i in 0..count {
            let due = start + every.mul_f64(i as f64);
            tokio::time::sleep_until(due.into()).await;
            n += 1;
            let (client, buyers) = (client.clone(), buyers.clone());
            let id = n;
            running.push(tokio::spawn(async move {
                let (node, token) = &buyers[(id as usize) % buyers.len()];
                let ok = checkout(&client, node, token, option, id).await;
                (ok, due.elapsed())
            }));
        }
        let mut hist = histogram();
        let (mut paid, mut failed) = (0u64, 0u64);
        let mut failures = std::collections::BTreeMap::new();
        for r in running {
            let (ok, took) = r.await.context("checkout task")?;
            let _ = hist.record(took.as_micros().max(1) as u64);
            match ok {
                Ok(()) => paid += 1,
                Err(why) => {
                    failed += 1;
                    // Placed but not paid: its unit is held until it expires.
                    if why.starts_with("confirm") {
                        held += 1;
                    }
                    *failures.entry(why).or_insert(0) += 1;
                }
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        total_paid += paid;
        total_failed += failed;
        let step = PayStep {
            target: "jangteo".into(),
            scenario: "pay".into(),
            nodes: nodes.len(),
            rate,
            offered: count,
            paid,
            failed,
            paid_per_sec: paid as f64 / seconds,
            failures,
            p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
            max_ms: hist.max() as f64 / 1000.0,
        };
        if c.json {
            println!("{}", serde_json::to_string(&step)?);
        } else {
            println!(
                "pay: {} checkouts/s offered on {} node(s): {} paid, {} failed {:?}; {:.1} paid/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                step.rate, step.nodes, step.paid, step.failed, step.failures, step.paid_per_sec, step.p50_ms, step.p99_ms, step.max_ms
            );
        }
        steps.push(step);
    }
    // Correctness: every paid checkout took exactly one unit for good;
    // units held by orders placed but not paid (a failed confirm, or an
    // answer lost to a transport error) come back when they expire. Wait
    // for that, then the stock must be exactly `units - paid`.
    let want = units - total_paid as i64;
    let until = Instant::now() + a.expiry_wait;
    let mut left = stock(&client, &c.url, &admin, product_id).await?;
    while left != want && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = stock(&client, &c.url, &admin, product_id).await?;
    }
    if left != want {
        bail!(
            "invariant broken: {total_paid} paid ({held} more placed unpaid), stock {left}, want {want} once unpaid orders expired"
        );
    }
    if total_failed != 0 {
        bail!("{total_failed} checkouts failed (see the steps' failures)");
    }
    Ok(std::process::ExitCode::SUCCESS)
}
