//! The benchmark: release function binaries under a Lambda Runtime API against moto, with a
//! counting proxy in front of moto for AWS calls. Prints a table and a JSON line.
//!
//! Run it with `./scripts/bench` (builds the release binaries first). Figures are this
//! machine's; the emulator serves one request at a time, so latencies include moto's work.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use seatcap_tests::proxy::CountingProxy;
use seatcap_tests::{
    Account, Function, SlackReceiver, binary_in, moto, sns_event, todays_budget_alert,
};
use serde_json::json;

const FUNCTIONS: [&str; 5] = [
    "budget-alert",
    "admin",
    "period-rollover",
    "reconcile",
    "notifier",
];
const INIT_SAMPLES: usize = 20;
const RSS_ALERTS: usize = 50;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let burst: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let sizes: Vec<(&str, u64)> = FUNCTIONS
        .iter()
        .map(|f| {
            (
                *f,
                std::fs::metadata(binary_in("release", f))
                    .map(|m| m.len())
                    .unwrap_or(0),
            )
        })
        .collect();

    let account = Account::new().await;
    let proxy =
        CountingProxy::start(moto().endpoint.trim_start_matches("http://").to_owned()).await;
    let slack = SlackReceiver::start().await;
    let mut env = account.env();
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    env.insert("SEATCAP_SLACK_WEBHOOK_URL".into(), slack.url.clone());
    env.insert("RUST_LOG".into(), "error".into());

    eprintln!("cold starts: {INIT_SAMPLES} per function ...");
    let mut init = HashMap::new();
    for function in FUNCTIONS {
        let mut samples = Vec::new();
        for _ in 0..INIT_SAMPLES {
            let process = Function::start(binary_in("release", function), &env).await;
            samples.push(wait_for_init(&process).await);
        }
        samples.sort();
        init.insert(function, samples);
    }

    eprintln!("setting up {} principals ...", burst + 1);
    let app = account.app(&[], seatcap::app::system_clock());
    let principals: Vec<String> = (0..=burst).map(|i| format!("dev-{i:05}")).collect();
    futures::stream::iter(principals.iter().cloned())
        .map(|name| {
            let (account, app) = (&account, &app);
            async move {
                let principal = account.create_principal("user", &name, &[&account.bedrock_policy_arn]).await;
                let answer = app
                    .handle_admin(json!({"action": "set_cap", "principal": principal.as_str(),
                        "budget": format!("b-{name}"), "cap_usd": "100", "actor": "bench", "reason": "bench"}))
                    .await
                    .expect("set_cap");
                assert_eq!(answer["ok"], true);
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;

    eprintln!("peak RSS at {RSS_ALERTS} alerts ...");
    let rss_process = Function::start(binary_in("release", "budget-alert"), &env).await;
    for (i, name) in principals.iter().skip(1).take(RSS_ALERTS).enumerate() {
        let alert = todays_budget_alert(&format!("b-{name}"), "ACTUAL", "100.00", "50.00", "51.00");
        rss_process
            .invoke(&sns_event(&format!("rss-{i}"), &alert))
            .await
            .expect_response();
    }
    let rss_at_50 = rss_process.peak_rss_kib();
    drop(rss_process);

    let alerts = Function::start(binary_in("release", "budget-alert"), &env).await;
    let at_cap = |name: &str| {
        todays_budget_alert(&format!("b-{name}"), "ACTUAL", "100.00", "100.00", "104.00")
    };
    let before = proxy.requests();
    alerts
        .invoke(&sns_event("probe", &at_cap(&principals[0])))
        .await
        .expect_response();
    let enforce_calls = proxy.requests() - before;
    let before = proxy.requests();
    alerts
        .invoke(&sns_event("probe", &at_cap(&principals[0])))
        .await
        .expect_response();
    let duplicate_calls = proxy.requests() - before;

    eprintln!("burst of {burst} alerts at the cap ...");
    let cpu_before = alerts.cpu_time();
    let calls_before = proxy.requests();
    let slack_before = slack.received().len();
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(burst);
    for (i, name) in principals.iter().skip(1).enumerate() {
        let t = Instant::now();
        alerts
            .invoke(&sns_event(&format!("burst-{i}"), &at_cap(name)))
            .await
            .expect_response();
        latencies.push(t.elapsed());
    }
    let wall = started.elapsed();
    let cpu_ms = (alerts.cpu_time() - cpu_before).as_secs_f64() * 1000.0;
    let burst_calls = proxy.requests() - calls_before;
    let notified = slack.received().len() - slack_before;
    let rss_after_burst = alerts.peak_rss_kib();
    latencies.sort();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pct = |v: &[Duration], p: f64| v[((v.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "seatcap bench · {} · burst {burst}",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!("{:<44} {:>12}", "figure", "value");
    for function in FUNCTIONS {
        let samples = &init[function];
        println!(
            "{:<44} {:>9.2} ms",
            format!("cold init {function} (median of {INIT_SAMPLES})"),
            ms(pct(samples, 0.5))
        );
        println!(
            "{:<44} {:>9.2} ms",
            format!("cold init {function} (max)"),
            ms(*samples.last().unwrap())
        );
    }
    for (function, size) in &sizes {
        println!(
            "{:<44} {:>9.2} MiB",
            format!("binary {function} (release, stripped)"),
            *size as f64 / 1048576.0
        );
    }
    println!(
        "{:<44} {:>12}",
        "AWS calls: 100 % alert (4, verify, 1 SNS publish)", enforce_calls
    );
    println!(
        "{:<44} {:>12}",
        "AWS calls: duplicate delivery", duplicate_calls
    );
    println!(
        "{:<44} {:>12.2}",
        "AWS calls per alert in the burst (incl. SNS)",
        burst_calls as f64 / burst as f64
    );
    println!(
        "{:<44} {:>9.2} ms",
        "invoke latency median",
        ms(pct(&latencies, 0.5))
    );
    println!(
        "{:<44} {:>9.2} ms",
        "invoke latency p99",
        ms(pct(&latencies, 0.99))
    );
    println!(
        "{:<44} {:>9.1} /s",
        "burst throughput (one warm process)",
        burst as f64 / wall.as_secs_f64()
    );
    println!(
        "{:<44} {:>9.3} ms",
        "CPU per alert (function process)",
        cpu_ms / burst as f64
    );
    println!(
        "{:<44} {:>9.2} MiB",
        format!("peak RSS after {RSS_ALERTS} alerts"),
        rss_at_50 as f64 / 1024.0
    );
    println!(
        "{:<44} {:>9.2} MiB",
        format!("peak RSS after {burst} alerts"),
        rss_after_burst as f64 / 1024.0
    );
    println!("{:<44} {:>12}", "Slack messages in the burst", notified);
    let figures = json!({
        "init_ms": FUNCTIONS.iter().map(|f| (f.to_string(), json!({"median": ms(pct(&init[f], 0.5)), "max": ms(*init[f].last().unwrap())}))).collect::<serde_json::Map<_, _>>(),
        "binary_bytes": sizes.iter().map(|(f, s)| (f.to_string(), json!(s))).collect::<serde_json::Map<_, _>>(),
        "aws_calls": {"enforce": enforce_calls, "duplicate": duplicate_calls, "burst_per_alert": burst_calls as f64 / burst as f64},
        "latency_ms": {"median": ms(pct(&latencies, 0.5)), "p99": ms(pct(&latencies, 0.99))},
        "throughput_per_s": burst as f64 / wall.as_secs_f64(),
        "cpu_ms_per_alert": cpu_ms / burst as f64,
        "peak_rss_kib": {"after_50": rss_at_50, "after_burst": rss_after_burst},
        "burst": burst,
    });
    println!("{figures}");
}

async fn wait_for_init(process: &Function) -> Duration {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(init) = process.init_time() {
            return init;
        }
        assert!(
            Instant::now() < deadline,
            "the function never polled the Runtime API"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}
