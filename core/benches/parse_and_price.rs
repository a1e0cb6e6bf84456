//! Parse and price typical Bedrock invocation log records on one core, in-process:
//! records per second (README, "Performance"; target ≥ 100,000). Prints a figure, judges
//! nothing. `cargo bench -p seatcap-core --bench parse_and_price`.

use std::time::Instant;

use seatcap_core::invocation::parse_record;
use seatcap_core::price::PriceTable;

/// A Claude Code call as the logs show one: a few fresh input tokens, a large cache read,
/// cache writes, a few hundred output tokens, a streamed body with the cache split.
fn typical(i: usize) -> String {
    format!(
        r#"{{"schemaType":"ModelInvocationLog","schemaVersion":"1.0","timestamp":"2026-12-01T10:21:07Z","accountId":"123456789012","identity":{{"arn":"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeDev_0123abcd/dev{}@example.com"}},"region":"us-east-1","inferenceRegion":"us-west-2","requestId":"0b6f3c1e-8a43-4a8e-9a52-{:012}","operation":"InvokeModelWithResponseStream","modelId":"us.anthropic.claude-sonnet-4-5-20250929-v1:0","input":{{"inputContentType":"application/json","inputTokenCount":3,"cacheReadInputTokenCount":95500,"cacheWriteInputTokenCount":1210}},"output":{{"outputContentType":"application/json","outputTokenCount":412,"outputBodyJson":[{{"type":"message_start","message":{{"usage":{{"cache_creation":{{"ephemeral_5m_input_tokens":1210,"ephemeral_1h_input_tokens":0}}}}}}}},{{"type":"message_delta"}},{{"type":"message_stop"}}]}}}}"#,
        i % 1000,
        i
    )
}

fn main() {
    let records: Vec<String> = (0..200_000).map(typical).collect();
    let prices = PriceTable::shipped();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut priced = 0usize;
        for text in &records {
            if let Ok(Some(call)) = parse_record(text) {
                std::hint::black_box(prices.cost(&call));
                priced += 1;
            }
        }
        assert_eq!(priced, records.len());
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "parse + price, in-process, one core: {:.0} records/s (best of 3 runs of {} records)",
        records.len() as f64 / best,
        records.len()
    );
}
