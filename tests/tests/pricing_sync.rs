//! pricing-sync: the AWS Price List API (mocked with aws-smithy-mocks: moto has no Pricing
//! API) read into price rows in the ledger (moto), and the real metering binary pricing with
//! them over its shipped table.

use std::sync::Arc;

use aws_sdk_pricing::operation::get_products::GetProductsOutput;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{DateTime, TimeZone, Utc};
use seatcap::pricing_sync::PricingSyncError;
use seatcap_tests::{Account, Function, binary, invocation_record, logs_batch};
use serde_json::json;

fn product(servicename: &str, usagetype: &str, usd: &str) -> String {
    json!({"product": {"productFamily": "", "sku": "S", "attributes": {"servicename": servicename,
        "usagetype": usagetype, "regionCode": "us-east-1", "location": "US East (N. Virginia)"}},
        "serviceCode": "AmazonBedrockFoundationModels",
        "terms": {"OnDemand": {"S.T": {"priceDimensions": {"S.T.D": {"unit": "1M tokens",
            "pricePerUnit": {"USD": usd}, "description": "per million tokens"}},
            "sku": "S", "effectiveDate": "2026-12-01T00:00:00Z"}}},
        "version": "20261201", "publicationDate": "2026-12-01T00:00:00Z"})
    .to_string()
}

const SONNET: &str = "Claude Sonnet 4.5 (Amazon Bedrock Edition)";

/// Two pages of the Price List: Sonnet 4.5 at a new price ($4 / $20 global, 10 % more
/// regional), and products that are no on-demand token rate.
fn price_list() -> aws_sdk_pricing::Client {
    let first = mock!(aws_sdk_pricing::Client::get_products)
        .match_requests(|r| {
            r.next_token().is_none()
                && r.service_code() == Some("AmazonBedrockFoundationModels")
                && r.filters().iter().any(|f| f.field() == "regionCode")
        })
        .then_output(|| {
            GetProductsOutput::builder()
                .price_list(product(
                    SONNET,
                    "USE1-MP:USE1_InputTokenCount_Global-Units",
                    "4",
                ))
                .price_list(product(
                    SONNET,
                    "USE1-MP:USE1_OutputTokenCount_Global-Units",
                    "20",
                ))
                .price_list(product(
                    SONNET,
                    "USE1-MP:USE1_InputTokenCount_Batch-Units",
                    "2",
                ))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_pricing::Client::get_products)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            GetProductsOutput::builder()
                .price_list(product(SONNET, "USE1-MP:USE1_InputTokenCount-Units", "4.4"))
                .price_list(product(SONNET, "USE1-MP:USE1_OutputTokenCount-Units", "22"))
                .price_list(product(
                    SONNET,
                    "USE1-MP:USE1_CacheReadInputTokenCount-Units",
                    "0.44",
                ))
                .build()
        });
    mock_client!(aws_sdk_pricing, RuleMode::MatchAny, [&first, &second])
}

fn at(account: &Account, now: DateTime<Utc>) -> seatcap::App {
    account.app(&[], Arc::new(move || now))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synced_prices_replace_the_shipped_ones_for_metering() {
    let account = Account::new().await;
    let today = Utc::now();
    let report = at(&account, today)
        .sync_prices(&price_list())
        .await
        .unwrap();
    assert_eq!(
        report.families,
        vec!["claude-sonnet-4-5 $4/$20"],
        "{report:?}"
    );
    assert_eq!(
        (report.products, report.skipped, report.recorded),
        (6, 2, true)
    );

    // The real metering binary: Sonnet at the synced price, Opus at the shipped one.
    let who = format!("arn:aws:iam::{}:user/alice", account.id);
    let metering = Function::start(binary("metering"), &account.env()).await;
    let records = vec![
        invocation_record(
            &who,
            "s-global",
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            1_000_000,
        ),
        invocation_record(
            &who,
            "s-us",
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            1_000_000,
        ),
        invocation_record(
            &who,
            "o",
            "global.anthropic.claude-opus-4-5-20251101-v1:0",
            1_000_000,
        ),
    ];
    let metered = metering
        .invoke(&logs_batch(&records))
        .await
        .expect_response();
    // $20 + $22 (regional: 4.4 / 4 = 1.1 times) + $25.
    assert_eq!(metered["spend"][0]["added_usd"], "67.00", "{metered}");

    // An older sync (a delayed run) does not replace a newer one.
    let yesterday = at(&account, today - chrono::Duration::days(1));
    let late = yesterday.sync_prices(&price_list()).await.unwrap();
    assert!(!late.recorded, "{late:?}");
}

/// A Price List with nothing usable records nothing and fails (the alarm tells someone):
/// metering keeps pricing with what it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_price_list_with_nothing_usable_changes_nothing() {
    let account = Account::new().await;
    let now = Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap();
    at(&account, now).sync_prices(&price_list()).await.unwrap();
    let empty = mock!(aws_sdk_pricing::Client::get_products).then_output(|| {
        GetProductsOutput::builder()
            .price_list(product(
                SONNET,
                "USE1-MP:USE1_InputTokenCount_Batch-Units",
                "2",
            ))
            .build()
    });
    let failed = at(&account, now + chrono::Duration::days(1))
        .sync_prices(&mock_client!(aws_sdk_pricing, [&empty]))
        .await;
    assert!(
        matches!(
            failed,
            Err(PricingSyncError::NothingUsable { products: 1, .. })
        ),
        "{failed:?}"
    );
    let (rows, synced_at) = account.ledger().synced_prices().await.unwrap().unwrap();
    assert_eq!((rows.len(), synced_at), (1, now.to_rfc3339()));
}

/// Two syncs at once (a scheduled run and a retry): the later one's rows stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_syncs_leave_the_later_ones_prices() {
    let account = Account::new().await;
    let earlier = Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap();
    let later = earlier + chrono::Duration::minutes(5);
    let (a, b) = (at(&account, earlier), at(&account, later));
    let (pa, pb) = (price_list(), price_list());
    let (x, y) = tokio::join!(a.sync_prices(&pa), b.sync_prices(&pb));
    assert!(y.unwrap().recorded);
    let _ = x.unwrap();
    let (_, synced_at) = account.ledger().synced_prices().await.unwrap().unwrap();
    assert_eq!(synced_at, later.to_rfc3339());
}
