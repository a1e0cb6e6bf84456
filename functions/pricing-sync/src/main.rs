//! pricing-sync: once a day, refreshes metering's price rows from the AWS Price List API
//! (service code `AmazonBedrockFoundationModels`) into the ledger. All logic lives in the
//! `seatcap` crate; this only wires it up.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    let pricing = &seatcap::pricing_sync::price_list_client(&app.sdk);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let report = app.sync_prices(pricing).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
