//! The metering benchmark (README, "Performance"): prints figures, judges nothing.
//!
//! (Parse-and-price throughput in-process is `core/benches/parse_and_price.rs`.)
//! 2. The release `metering` binary against the emulator, through a counting proxy: AWS
//!    calls for one batch of 100 records from 10 principals.
//! 3. Time from the invocation that carries the crossing record to its answer, the detach
//!    done: median and max over rounds, each a fresh principal.
//! 4. A simulated load: `developers` people each making one call every 5 s for `minutes`,
//!    delivered as CloudWatch Logs would batch them (one batch per 5 s): every record counted
//!    once (the counters' sum against the priced total), CPU per 1,000 records, peak RSS.
//!
//! Usage: seatcap-metering-bench [developers, default 100] [minutes, default 10]

use std::time::{Duration, Instant};

use seatcap::invocation::parse_record;
use seatcap::price::PriceTable;
use seatcap_tests::proxy::CountingProxy;
use seatcap_tests::{Account, Function, binary_in, invocation_record, logs_batch, moto};
use serde_json::{Value, json};

const SONNET: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const OPUS: &str = "global.anthropic.claude-opus-4-5-20251101-v1:0";

/// A Claude Code call as the logs show one: a few fresh input tokens, a large cache read,
/// some cache writes, a few hundred output tokens, a streamed body with the cache split.
fn typical(identity: &str, request_id: &str) -> Value {
    let mut record = invocation_record(identity, request_id, SONNET, 412);
    record["input"] = json!({"inputContentType": "application/json", "inputTokenCount": 3,
        "cacheReadInputTokenCount": 95500, "cacheWriteInputTokenCount": 1210});
    record["output"]["outputBodyJson"] = json!([
        {"type": "message_start", "message": {"usage": {"cache_creation":
            {"ephemeral_5m_input_tokens": 1210, "ephemeral_1h_input_tokens": 0}}}},
        {"type": "message_delta"}, {"type": "message_stop"}]);
    record
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let developers: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(100);
    let minutes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);

    let prices = PriceTable::shipped();

    // 2 to 4 against the emulator.
    let account = Account::new().await;
    let proxy =
        CountingProxy::start(moto().endpoint.trim_start_matches("http://").to_owned()).await;
    let mut env = account.env();
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    env.insert("RUST_LOG".into(), "error".into());
    let app = account.app(&[], seatcap::app::system_clock());
    let enrol = |name: String| {
        let (account, app) = (&account, &app);
        async move {
            let principal = account
                .create_principal("user", &name, &[&account.bedrock_policy_arn])
                .await;
            let answer = app
                .handle_admin(json!({"action": "set_cap", "principal": principal.as_str(),
                    "budget": format!("b-{name}"), "cap_usd": "200", "actor": "bench", "reason": "bench"}))
                .await
                .expect("set_cap");
            assert_eq!(answer["ok"], true, "{answer}");
            principal
        }
    };

    eprintln!("calls per batch ...");
    let mut ten = Vec::new();
    for i in 0..10 {
        ten.push(enrol(format!("batch-{i}")).await);
    }
    let metering = Function::start(binary_in("release", "metering"), &env).await;
    let records: Vec<Value> = (0..100)
        .map(|i| typical(ten[i % 10].as_str(), &format!("calls-{i}")))
        .collect();
    let before = proxy.requests();
    metering
        .invoke(&logs_batch(&records))
        .await
        .expect_response();
    let calls_per_batch = proxy.requests() - before;

    eprintln!("crossing → cut, 20 rounds ...");
    let mut to_cut = Vec::new();
    let mut cut_calls = 0;
    for round in 0..20 {
        let principal = enrol(format!("cut-{round}")).await;
        let crossing: Vec<Value> = (0..9)
            .map(|i| {
                invocation_record(
                    principal.as_str(),
                    &format!("cut-{round}-{i}"),
                    OPUS,
                    1_000_000,
                )
            })
            .collect();
        let batch = logs_batch(&crossing);
        let before = proxy.requests();
        let started = Instant::now();
        let report = metering.invoke(&batch).await.expect_response();
        to_cut.push(started.elapsed());
        cut_calls = proxy.requests() - before;
        assert_eq!(report["alerts"][0]["outcome"], "enforce", "{report}");
        assert!(account.attached(&principal).await.is_empty());
    }
    let cut_max = to_cut.iter().max().copied().unwrap_or_default();
    let cut_median = median(&mut to_cut);

    eprintln!("two batches crossing together, 10 rounds ...");
    let second = Function::start(binary_in("release", "metering"), &env).await;
    let (mut together, mut cut_once) = (Vec::new(), true);
    for round in 0..10 {
        let principal = enrol(format!("together-{round}")).await;
        // $175 of a $200 cap, then two $25 batches at once: $225, cut exactly once.
        let spent: Vec<Value> = (0..7)
            .map(|i| {
                invocation_record(
                    principal.as_str(),
                    &format!("t-{round}-{i}"),
                    OPUS,
                    1_000_000,
                )
            })
            .collect();
        metering.invoke(&logs_batch(&spent)).await.expect_response();
        let one = |tag: &str| {
            logs_batch(&[invocation_record(
                principal.as_str(),
                &format!("t-{round}-{tag}"),
                OPUS,
                1_000_000,
            )])
        };
        let (a, b) = (one("a"), one("b"));
        let started = Instant::now();
        let (ra, rb) = tokio::join!(metering.invoke(&a), second.invoke(&b));
        together.push(started.elapsed());
        let (ra, rb) = (ra.expect_response(), rb.expect_response());
        let enforced = account
            .history(&principal)
            .await
            .iter()
            .filter(|e| e.kind == seatcap::ledger::EventKind::Enforced)
            .count();
        let counted = ra["counted"].as_u64().unwrap_or(0) + rb["counted"].as_u64().unwrap_or(0);
        cut_once &= enforced == 1 && counted == 2 && account.attached(&principal).await.is_empty();
    }
    let together_max = together.iter().max().copied().unwrap_or_default();
    let together_median = median(&mut together);

    eprintln!("load: {developers} developers, one call each every 5 s, {minutes} min ...");
    let mut people = Vec::new();
    for i in 0..developers {
        people.push(enrol(format!("load-{i:05}")).await);
    }
    let load = Function::start(binary_in("release", "metering"), &env).await;
    let batches = minutes * 12;
    let mut expected_micros = 0i64;
    let mut records_sent = 0usize;
    let cpu_before = load.cpu_time();
    let units_before = proxy.write_units();
    let started = Instant::now();
    for tick in 0..batches {
        let records: Vec<Value> = people
            .iter()
            .enumerate()
            .map(|(i, p)| typical(p.as_str(), &format!("load-{tick}-{i}")))
            .collect();
        for record in &records {
            let call = parse_record(&record.to_string()).unwrap().unwrap();
            expected_micros += seatcap::meter::micros_of(prices.cost(&call).usd);
        }
        records_sent += records.len();
        // A thousand people's batch is a thousand transactions on an emulator that serves
        // one request at a time: give it longer than the deployed 30 s.
        let report = load
            .invoke_within(&logs_batch(&records), Duration::from_secs(600))
            .await
            .expect_response();
        assert_eq!(report["counted"], records.len(), "{report}");
    }
    let load_wall = started.elapsed();
    let cpu = load.cpu_time() - cpu_before;
    let write_units = proxy.write_units() - units_before;
    let per_million = |figure: f64| figure * 1_000_000.0 / records_sent.max(1) as f64;
    let period = seatcap::period::month_key(chrono::Utc::now());
    let mut counted_micros = 0i64;
    for person in &people {
        counted_micros += account.ledger().metered(person, &period).await.unwrap();
    }
    let rss = load.peak_rss_kib();

    let figures = json!({
        "date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
        "aws_calls_one_batch_100_records_10_principals": calls_per_batch,
        "aws_calls_crossing_batch_with_cut": cut_calls,
        "crossing_to_cut_median_ms": cut_median.as_millis(),
        "crossing_to_cut_max_ms": cut_max.as_millis(),
        "load_developers": developers,
        "load_minutes": minutes,
        "load_records": records_sent,
        "load_every_record_counted_once": counted_micros == expected_micros,
        "load_counted_usd": seatcap::meter::usd_of_micros(counted_micros).to_plain_string(),
        "load_wall_seconds": load_wall.as_secs_f64(),
        "load_cpu_ms_per_1000_records": cpu.as_secs_f64() * 1000.0 * 1000.0 / records_sent.max(1) as f64,
        "load_peak_rss_mib": rss as f64 / 1024.0,
        "concurrent_crossings_cut_once_counted_once": cut_once,
        "concurrent_crossings_median_ms": together_median.as_millis(),
        "concurrent_crossings_max_ms": together_max.as_millis(),
        "write_units_per_million_calls": per_million(write_units as f64),
        "cpu_ms_per_million_calls": per_million(cpu.as_secs_f64() * 1000.0),
        "emulator_wall_ms_per_million_calls": per_million(load_wall.as_secs_f64() * 1000.0),
    });
    println!("metering benchmark");
    println!("  AWS calls, 100 records / 10 people   {calls_per_batch:>12}   (target ≤ 11)");
    println!("  AWS calls, the crossing batch + cut  {cut_calls:>12}");
    println!(
        "  crossing batch → cut, median / max   {:>7} ms / {} ms",
        cut_median.as_millis(),
        cut_max.as_millis()
    );
    println!(
        "  load: {records_sent} records of {developers} developers over {minutes} min: counted once each: {}",
        counted_micros == expected_micros
    );
    println!(
        "  load: CPU {:.1} ms per 1,000 records, peak RSS {:.1} MiB, wall {:.1} s on the emulator",
        cpu.as_secs_f64() * 1_000_000.0 / records_sent.max(1) as f64,
        rss as f64 / 1024.0,
        load_wall.as_secs_f64()
    );
    println!(
        "  two batches crossing together (10 rounds): cut once, counted once: {cut_once}; median / max {} ms / {} ms",
        together_median.as_millis(),
        together_max.as_millis()
    );
    println!(
        "  per million Bedrock calls: {:.0} DynamoDB write units, {:.0} ms of metering CPU ({:.0} ms wall on the emulator)",
        per_million(write_units as f64),
        per_million(cpu.as_secs_f64() * 1000.0),
        per_million(load_wall.as_secs_f64() * 1000.0)
    );
    println!("{figures}");
}
