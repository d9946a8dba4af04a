//! `jangteo-load report`: turn result JSON lines into the tables of
//! docs/BENCHMARKS.md, with ratios against each peer from the same run.

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::Value;

#[derive(clap::Args, Clone)]
pub struct ReportArgs {
    /// Files with one JSON result per line (as printed by `--json`).
    files: Vec<PathBuf>,
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(0.0)
}

pub fn run(a: ReportArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut rooms = Vec::new();
    let mut connects = Vec::new();
    let mut feeds = Vec::new();
    let mut notifies = Vec::new();
    let mut storms = Vec::new();
    for path in &a.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let v: Value = serde_json::from_str(line)
                .with_context(|| format!("bad JSON in {}", path.display()))?;
            match v["scenario"].as_str() {
                Some("connect") => connects.push(v),
                Some("feed") => feeds.push(v),
                Some("notify") => notifies.push(v),
                Some("storm") => storms.push(v),
                _ => rooms.push(v),
            }
        }
    }
    if rooms.iter().any(|r| r["scenario"] != "open-rooms") {
        side_by_side(&rooms);
    }
    if !rooms.is_empty() {
        rooms_tables(&rooms);
    }
    if !connects.is_empty() {
        println!("\n### Idle connections: server memory\n");
        println!("| server | connections held | errors | RSS before KiB | RSS after KiB | KiB per connection | connect p99 ms |");
        println!("|---|---|---|---|---|---|---|");
        for c in &connects {
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.1} |",
                c["target"].as_str().unwrap_or("?"),
                c["established"],
                c["errors"],
                c["rss_before_kib"],
                c["rss_after_kib"],
                c["rss_per_connection_kib"]
                    .as_f64()
                    .map_or("?".into(), |v| format!("{v:.1}")),
                f(c, "connect_p99_ms"),
            );
        }
    }
    if !feeds.is_empty() {
        println!("\n### Feed (REST paging)\n");
        println!("| target rate/s | achieved/s | requests | errors | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|---|");
        for r in &feeds {
            println!(
                "| {} | {:.0} | {} | {} | {:.2} | {:.2} | {:.2} |",
                r["rate"],
                f(r, "requests_per_sec"),
                r["requests"],
                r["errors"],
                f(r, "p50_ms"),
                f(r, "p99_ms"),
                f(r, "max_ms")
            );
        }
    }
    if !notifies.is_empty() {
        notify_tables(&notifies);
    }
    if !storms.is_empty() {
        println!("\n### Reconnect storm: the server restarts under traffic\n");
        println!("| server | connections | dropped | back | back p50 ms | back p99 ms | back max ms | first drop to last back s | restart command s | sent | acked | delivered | lost | dup | errors |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &storms {
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} |",
                r["target"].as_str().unwrap_or("?"),
                r["connections"],
                r["dropped"],
                r["back"],
                f(r, "back_p50_ms"),
                f(r, "back_p99_ms"),
                f(r, "back_max_ms"),
                f(r, "storm_secs"),
                f(r, "restart_command_secs"),
                r["sent"],
                r["acked"],
                r["delivered"],
                r["lost"],
                r["duplicated"],
                r["errors"],
            );
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn rooms_tables(rooms: &[Value]) {
    let jangteo_best = rooms
        .iter()
        .filter(|r| r["target"] == "jangteo" && r["scenario"] == "open-rooms")
        .map(|r| f(r, "best_delivered_per_sec_p99_50ms"))
        .fold(0.0, f64::max);
    println!("### Open rooms: delivered messages/s at p99 <= 50 ms\n");
    println!("| server | persisted | best delivered/s (p99 <= 50 ms) | Jangteo / server | last step: delivered/s | p50 ms | p99 ms | p99.9 ms | ack p99 ms | lost | dup | out of order | errors |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rooms.iter().filter(|r| r["scenario"] == "open-rooms") {
        let best = f(r, "best_delivered_per_sec_p99_50ms");
        let ratio = if best > 0.0 {
            format!("{:.2}", jangteo_best / best)
        } else {
            "n/a".into()
        };
        let last = r["steps"]
            .as_array()
            .and_then(|s| s.last())
            .cloned()
            .unwrap_or(Value::Null);
        println!(
            "| {} | {} | {:.0} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |",
            r["target"].as_str().unwrap_or("?"),
            if r["persisted"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            best,
            ratio,
            f(&last, "delivered_per_sec"),
            f(&last, "p50_ms"),
            f(&last, "p99_ms"),
            f(&last, "p999_ms"),
            f(&last, "ack_p99_ms"),
            r["lost"],
            r["duplicated"],
            r["out_of_order"],
            r["errors"],
        );
    }
    println!("\n### Open rooms: every step\n");
    println!("| server | rate/s | delivered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | ack p50 ms | ack p99 ms | CPU µs/delivery | generator busy |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rooms {
        for s in r["steps"].as_array().into_iter().flatten() {
            println!(
                "| {} {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
                r["target"].as_str().unwrap_or("?"),
                r["scenario"].as_str().unwrap_or("?"),
                f(s, "rate"),
                f(s, "delivered_per_sec"),
                f(s, "p50_ms"),
                f(s, "p90_ms"),
                f(s, "p99_ms"),
                f(s, "p999_ms"),
                f(s, "max_ms"),
                f(s, "ack_p50_ms"),
                f(s, "ack_p99_ms"),
                cpu_cell(s),
                busy_cell(s),
            );
        }
    }
}

/// One row per scenario and rate, one column group per server: latency,
/// ack latency, CPU per delivery, and Jangteo's ratios to Bun's (the
/// fastest peer) in the same run.
fn side_by_side(rooms: &[Value]) {
    let mut targets: Vec<&str> = Vec::new();
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    for r in rooms.iter().filter(|r| r["scenario"] != "open-rooms") {
        let t = r["target"].as_str().unwrap_or("?");
        if !targets.contains(&t) {
            targets.push(t);
        }
        let scenario = r["scenario"].as_str().unwrap_or("?").to_string();
        let members = f(r, "members");
        for s in r["steps"].as_array().into_iter().flatten() {
            let key = (scenario.clone(), f(s, "rate"), f(s, "rate") * members);
            if !rows.iter().any(|k| k.0 == key.0 && k.1 == key.1) {
                rows.push(key);
            }
        }
    }
    let step = |target: &str, scenario: &str, rate: f64| -> Option<Value> {
        rooms
            .iter()
            .filter(|r| r["target"] == target && r["scenario"] == scenario)
            .flat_map(|r| r["steps"].as_array().cloned().unwrap_or_default())
            .find(|s| f(s, "rate") == rate)
    };
    println!("### Side by side: latency p50 / p99 ms, ack p99 ms, CPU µs per delivery\n");
    let mut head = String::from("| scenario | sends/s | deliveries/s offered |");
    let mut rule = String::from("|---|---|---|");
    for t in &targets {
        head.push_str(&format!(" {t} p50 / p99 | {t} ack p99 | {t} CPU µs/d |"));
        rule.push_str("---|---|---|");
    }
    head.push_str(" Jangteo / Bun: p50, p99, CPU |");
    rule.push_str("---|");
    println!("{head}\n{rule}");
    for (scenario, rate, offered) in &rows {
        let mut line = format!("| {scenario} | {rate:.0} | {offered:.0} |");
        for t in &targets {
            match step(t, scenario, *rate) {
                Some(s) => line.push_str(&format!(
                    " {:.1} / {:.1} | {:.1} | {} |",
                    f(&s, "p50_ms"),
                    f(&s, "p99_ms"),
                    f(&s, "ack_p99_ms"),
                    cpu_cell(&s)
                )),
                None => line.push_str(" - | - | - |"),
            }
        }
        let ratio = |k: &str| -> String {
            match (
                step("jangteo", scenario, *rate),
                step("bun", scenario, *rate),
            ) {
                (Some(j), Some(b)) if f(&b, k) > 0.0 && f(&j, k) > 0.0 => {
                    format!("{:.2}x", f(&j, k) / f(&b, k))
                }
                _ => "-".into(),
            }
        };
        line.push_str(&format!(
            " {}, {}, {} |",
            ratio("p50_ms"),
            ratio("p99_ms"),
            ratio("cpu_us_per_delivery")
        ));
        println!("{line}");
    }
    println!();
    for r in rooms.iter().filter(|r| r["scenario"] != "open-rooms") {
        let (lost, dup, ooo, errors) = (
            &r["lost"],
            &r["duplicated"],
            &r["out_of_order"],
            &r["errors"],
        );
        let unacked: f64 = r["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| f(s, "sent") - f(s, "acked"))
            .sum();
        println!(
            "- {} {}: lost {lost}, duplicated {dup}, out of order {ooo}, errors {errors}, unacked {unacked:.0}",
            r["target"].as_str().unwrap_or("?"),
            r["scenario"].as_str().unwrap_or("?"),
        );
    }
    println!();
}

/// CPU per delivery of a step, or a dash when it was not measured.
fn cpu_cell(step: &Value) -> String {
    let us = f(step, "cpu_us_per_delivery");
    if us > 0.0 {
        format!("{us:.1}")
    } else {
        "-".into()
    }
}

/// The generator's CPU over the step as a share of its core ("-" in runs
/// before the field existed).
fn busy_cell(step: &Value) -> String {
    let busy = f(step, "generator_busy");
    if busy > 0.0 {
        format!("{:.0}%", busy * 100.0)
    } else {
        "-".into()
    }
}

/// Keyword alerts (`notify`): one row per run and step, then per run the
/// inbox check and anything that went wrong.
pub fn notify_tables(runs: &[Value]) {
    println!("\n### Notifications: keyword alerts, listing posted -> live frame\n");
    println!("| engine | nodes | subscribers | offered listings/s | events created/s | notifications delivered/s | expected | delivered | lost (late) | dup | p50 ms | p99 ms | max ms | POST p99 ms | saturated |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        for s in r["steps"].as_array().into_iter().flatten() {
            println!(
                "| {} | {} | {} | {:.0} | {:.1} | {:.0} | {} | {} | {} ({}) | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
                r["target"].as_str().unwrap_or("?"),
                r["nodes"],
                r["subscribers"],
                f(s, "rate"),
                f(s, "created_per_sec"),
                f(s, "delivered_per_sec"),
                s["expected"],
                s["delivered"],
                s["lost"],
                s["late"],
                s["duplicated"],
                f(s, "p50_ms"),
                f(s, "p99_ms"),
                f(s, "max_ms"),
                f(s, "post_p99_ms"),
                if s["saturated"].as_bool() == Some(true) {
                    "yes"
                } else {
                    "no"
                },
            );
        }
    }
    println!();
    for r in runs {
        let mut notes = Vec::new();
        if r["connected"] != r["subscribers"] {
            notes.push(format!(
                "{} of {} sockets stayed open",
                r["connected"], r["subscribers"]
            ));
        }
        for (key, what) in [
            ("post_failures", "failed posts"),
            ("socket_trouble", "socket trouble"),
        ] {
            if let Some(m) = r[key].as_object().filter(|m| !m.is_empty()) {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                notes.push(format!("{what} {}", items.join(", ")));
            }
        }
        if f(r, "unmatched") > 0.0 {
            notes.push(format!("{} frames for unknown listings", r["unmatched"]));
        }
        println!(
            "- {}: inbox `unread_count` = {} (listings created) for {} of {} subscribers{}{}; {}",
            r["target"].as_str().unwrap_or("?"),
            r["inbox_expected"],
            r["inbox_exact"],
            r["subscribers"],
            if r["inbox_off"].as_array().is_some_and(|o| !o.is_empty()) {
                format!(", off: {}", r["inbox_off"])
            } else {
                String::new()
            },
            if notes.is_empty() {
                String::new()
            } else {
                format!("; {}", notes.join("; "))
            },
            if r["ok"].as_bool() == Some(true) {
                "ok"
            } else {
                "**FAILED**"
            },
        );
    }
}
