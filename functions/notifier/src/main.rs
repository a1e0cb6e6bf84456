//! notifier: on a schedule (every 5 minutes), retries the notifications waiting in the
//! ledger's outbox. All logic lives in the `seatcap` crate.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| async move {
        let report = app.flush_notifications(seatcap::outbox::Flush::Due).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
