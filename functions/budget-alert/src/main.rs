//! budget-alert: AWS Budgets → SNS → this function. Parses the alert, decides, enforces,
//! records, notifies. All logic lives in the `seatcap` crate; this only wires it up.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use seatcap::alert_delivery::SnsEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SnsEvent>| async move {
        let reports = app
            .for_invocation(&event.context)
            .handle_sns_event(event.payload)
            .await?;
        Ok::<_, Error>(serde_json::json!({ "reports": reports }))
    }))
    .await
}
