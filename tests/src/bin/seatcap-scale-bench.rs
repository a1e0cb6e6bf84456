//! The scale benchmark: provisions N principals (default 10,000) on moto, all blocked by
//! their cap in November, then runs the release period-rollover binary (December's event)
//! and the release reconcile binary under the Lambda Runtime API harness, each as one
//! invocation with the template's 900 s timeout. Prints wall time, AWS calls (counted by a
//! proxy in front of moto), CPU and peak RSS of each function, as a table and as JSON.
//!
//! Run it with `./scripts/bench-scale [N]`. moto serves one request at a time and is most of
//! the wall time; the AWS-call counts and the functions' CPU and memory are seatcap's own.

use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use seatcap::ledger::Commit;
use seatcap::money::Usd;
use seatcap::state::{BlockCause, PrincipalState, Status};
use seatcap_tests::proxy::CountingProxy;
use seatcap_tests::{Account, Function, binary_in, moto};
use serde_json::{Value, json};

/// One principal in this many spends over the cap in the new period: reconcile's work.
const OVER_CAP_EVERY: usize = 100;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let account = Account::new().await;
    let proxy =
        CountingProxy::start(moto().endpoint.trim_start_matches("http://").to_owned()).await;
    let mut env = account.env();
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    env.insert("RUST_LOG".into(), "warn".into());

    eprintln!("provisioning {n} principals blocked by their cap ...");
    let started = Instant::now();
    let november = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
    let ledger = account.ledger();
    futures::stream::iter(0..n)
        .map(|i| {
            let (account, ledger) = (&account, &ledger);
            async move {
                let name = format!("dev-{i:05}");
                let budget = format!("seatcap-{name}");
                // Blocked: the managed policy is already detached.
                let principal = account.create_principal("user", &name, &[]).await;
                let spend = if i % OVER_CAP_EVERY == 0 { "150" } else { "5" };
                account.put_budget(&budget, "100", spend, Some(&name)).await;
                let mut state = PrincipalState::new(
                    principal.clone(),
                    budget.clone(),
                    Usd::from_cents(100_00),
                    november,
                );
                state.status = Status::Blocked;
                state.block_cause = Some(BlockCause::Cap);
                state.blocked_period = Some("2026-11".into());
                state.detached_policy_arns = vec![account.bedrock_policy_arn.clone()];
                state.last_actual_usd = Some(Usd::from_cents(104_00));
                ledger
                    .commit(
                        Commit {
                            state: Some((state, None)),
                            owner: Some((budget, principal)),
                            ..Commit::default()
                        },
                        november,
                    )
                    .await
                    .expect("provision the ledger");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    let provisioning = started.elapsed();

    eprintln!("period-rollover ...");
    let rollover = run(
        &proxy,
        &env,
        "period-rollover",
        &json!({"detail-type": "Scheduled Event", "source": "aws.events",
                "time": "2026-12-01T00:05:00Z"}),
    )
    .await;
    assert_eq!(
        rollover.answer["restored"].as_array().map(Vec::len),
        Some(n),
        "every principal restored in one invocation"
    );

    eprintln!("reconcile ...");
    let reconcile = run(
        &proxy,
        &env,
        "reconcile",
        &json!({"detail-type": "Scheduled Event", "source": "aws.events"}),
    )
    .await;
    assert_eq!(reconcile.answer["checked"], n, "{}", reconcile.answer);

    println!(
        "seatcap scale bench · {} · {n} principals",
        Utc::now().format("%Y-%m-%d")
    );
    println!("{:<46} {:>12}", "figure", "value");
    println!(
        "{:<46} {:>10.1} s",
        "provisioning (test setup, not seatcap)",
        provisioning.as_secs_f64()
    );
    for run in [&rollover, &reconcile] {
        let f = run.function;
        println!(
            "{:<46} {:>10.1} s",
            format!("{f}: wall time"),
            run.wall.as_secs_f64()
        );
        println!("{:<46} {:>12}", format!("{f}: AWS calls"), run.aws_calls);
        println!(
            "{:<46} {:>12.2}",
            format!("{f}: AWS calls per principal"),
            run.aws_calls as f64 / n as f64
        );
        println!(
            "{:<46} {:>10.2} s",
            format!("{f}: CPU"),
            run.cpu.as_secs_f64()
        );
        println!(
            "{:<46} {:>8.2} MiB",
            format!("{f}: peak RSS"),
            run.peak_rss_kib as f64 / 1024.0
        );
    }
    println!(
        "{:<46} {:>12}",
        "reconcile: findings",
        reconcile.answer["counts"].to_string()
    );
    let figures = json!({
        "principals": n,
        "provisioning_s": provisioning.as_secs_f64(),
        "period-rollover": rollover.figures(),
        "reconcile": reconcile.figures(),
        "reconcile_counts": reconcile.answer["counts"],
    });
    println!("{figures}");
}

struct Run {
    function: &'static str,
    wall: Duration,
    aws_calls: usize,
    cpu: Duration,
    peak_rss_kib: u64,
    answer: Value,
}

impl Run {
    fn figures(&self) -> Value {
        json!({"wall_s": self.wall.as_secs_f64(), "aws_calls": self.aws_calls,
               "cpu_s": self.cpu.as_secs_f64(), "peak_rss_kib": self.peak_rss_kib})
    }
}

/// One invocation of the release `function` with the template's 900 s timeout.
async fn run(
    proxy: &CountingProxy,
    env: &std::collections::HashMap<String, String>,
    function: &'static str,
    event: &Value,
) -> Run {
    let process = Function::start(binary_in("release", function), env).await;
    let calls_before = proxy.requests();
    let started = Instant::now();
    let answer = process
        .invoke_within(event, Duration::from_secs(900))
        .await
        .expect_response();
    let wall = started.elapsed();
    Run {
        function,
        wall,
        aws_calls: proxy.requests() - calls_before,
        cpu: process.cpu_time(),
        peak_rss_kib: process.peak_rss_kib(),
        answer,
    }
}
