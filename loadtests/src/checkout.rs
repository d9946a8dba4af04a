//! The `checkout` scenario: many buyers race for a few units of one shop
//! option (Jangteo only). It measures orders/s under contention and checks
//! the invariant the shop is built on: exactly `units` orders succeed,
//! every other buyer gets `out_of_stock`, and the stock ends at zero, never
//! below. Any other outcome fails the run.
//!
//! It needs an administrator to create the product: make one with
//! `jangteo create-admin --email E --nickname N --password P` against the
//! server's database and pass `--admin-email E --admin-password P`
//! (`loadtests/checkout.sh` does). Buyers are spread over `--url` and every
//! `--also` node in turn.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context as _};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::seed::{account_at, post_json};
use crate::{histogram, loopback_only, CheckoutArgs};

#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub struct CheckoutReport {
    pub target: String,
    pub scenario: String,
    pub nodes: usize,
    pub buyers: usize,
    pub units: i64,
    /// Orders placed (201).
    pub placed: u64,
    /// Refused with 409 `out_of_stock`.
    pub out_of_stock: u64,
    /// Anything else (transport errors, 5xx, other codes).
    pub errors: u64,
    /// Stock after the race, as an admin reads it.
    pub stock_after: i64,
    /// Stock once every placed order expired unpaid (`--expiry-wait`), if
    /// waited for: must be `units` again.
    pub stock_after_expiry: Option<i64>,
    /// Attempts (placed + refused) per second over the race.
    pub attempts_per_sec: f64,
    pub placed_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub seconds: f64,
}

pub async fn run(a: CheckoutArgs) -> anyhow::Result<std::process::ExitCode> {
    let c = &a.common;
    let mut nodes = vec![c.url.clone()];
    nodes.extend(a.also.iter().cloned());
    for n in &nodes {
        loopback_only(n)?;
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(2048)
        .build()?;
    let login = post_json(
        &client,
        &format!("{}/api/auth/login", c.url),
        None,
        &json!({"email": a.admin_email, "password": a.admin_password}),
    )
    .await
    .context("admin login (create the admin first: see this module's doc)")?;
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
    let product = post_json(
        &client,
        &format!("{}/api/admin/products", c.url),
        Some(&admin),
        &json!({"name": format!("Race {tag}"), "brand": "Load", "category": "other",
                "base_price": 10_000, "status": "on_sale",
                "options": [{"label": "one", "sku": format!("RACE-{tag}"), "stock": a.units}]}),
    )
    .await?;
    let product_id = product["id"].as_i64().context("product id")?;
    let option = product["options"][0]["id"].as_i64().context("option id")?;

    // Buyers, signed up on their node, in parallel.
    let gate = Arc::new(Semaphore::new(c.seed_concurrency.max(1)));
    let mut seeding = Vec::with_capacity(a.buyers);
    for i in 0..a.buyers {
        let node = nodes[i % nodes.len()].clone();
        let (client, gate, password) = (client.clone(), gate.clone(), c.password.clone());
        let name = format!("b{tag}-{i}");
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

    // The race: every buyer at once.
    let start = Instant::now();
    let mut racing = Vec::with_capacity(buyers.len());
    for (node, token) in buyers {
        let client = client.clone();
        racing.push(tokio::spawn(async move {
            let sent = Instant::now();
            let r = client
                .post(format!("{node}/api/orders"))
                .bearer_auth(token)
                .json(&json!({"from": "buy_now", "option_id": option, "quantity": 1}))
                .send()
                .await;
            let outcome = match r {
                Ok(resp) if resp.status().as_u16() == 201 => 0,
                Ok(resp) if resp.status().as_u16() == 409 => {
                    let v: Value = resp.json().await.unwrap_or(Value::Null);
                    if v["code"] == "out_of_stock" {
                        1
                    } else {
                        2
                    }
                }
                _ => 2,
            };
            (outcome, sent.elapsed())
        }));
    }
    let mut hist = histogram();
    let (mut placed, mut refused, mut errors) = (0u64, 0u64, 0u64);
    for r in racing {
        let (outcome, took) = r.await.context("race task")?;
        let _ = hist.record(took.as_micros().max(1) as u64);
        match outcome {
            0 => placed += 1,
            1 => refused += 1,
            _ => errors += 1,
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let page: Value = client
        .get(format!("{}/api/products/{product_id}", c.url))
        .bearer_auth(&admin)
        .send()
        .await?
        .json()
        .await?;
    let stock_after = page["options"][0]["stock"]
        .as_i64()
        .context("stock in the product page")?;
    // Optionally let the placed orders expire and watch every unit come back.
    let mut stock_after_expiry = None;
    if let Some(wait) = a.expiry_wait {
        let until = Instant::now() + wait;
        loop {
            let page: Value = client
                .get(format!("{}/api/products/{product_id}", c.url))
                .bearer_auth(&admin)
                .send()
                .await?
                .json()
                .await?;
            let stock = page["options"][0]["stock"].as_i64().unwrap_or(-1);
            stock_after_expiry = Some(stock);
            if stock == a.units || Instant::now() >= until {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }
    let report = CheckoutReport {
        target: "jangteo".into(),
        scenario: "checkout".into(),
        nodes: nodes.len(),
        buyers: a.buyers,
        units: a.units,
        placed,
        out_of_stock: refused,
        errors,
        stock_after,
        stock_after_expiry,
        attempts_per_sec: (placed + refused) as f64 / seconds,
        placed_per_sec: placed as f64 / seconds,
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1000.0,
        max_ms: hist.max() as f64 / 1000.0,
        seconds,
    };
    if c.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "checkout: {} buyers on {} node(s) for {} units: {} placed, {} out_of_stock, {} errors, stock after {}; \
             {:.0} attempts/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            report.buyers, report.nodes, report.units, report.placed, report.out_of_stock, report.errors,
            report.stock_after, report.attempts_per_sec, report.p50_ms, report.p99_ms, report.max_ms
        );
    }
    let expected = u64::try_from(a.units.min(a.buyers as i64)).unwrap_or(0);
    if stock_after_expiry.is_some_and(|s| s != a.units) {
        bail!(
            "after expiry the stock is {stock_after_expiry:?}, not {}",
            a.units
        );
    }
    if placed != expected || stock_after != a.units - expected as i64 || errors != 0 {
        bail!(
            "invariant broken: {placed} placed (want {expected}), stock after {stock_after}, {errors} errors"
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}
