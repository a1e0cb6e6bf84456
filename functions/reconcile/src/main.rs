//! reconcile: on a schedule (hourly), makes the ledger, IAM and AWS Budgets agree, and
//! reports what it found. All logic lives in the `seatcap` crate.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use seatcap::reconcile::ReconcileEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ReconcileEvent>| async move {
            let report = app
                .for_invocation(&event.context)
                .reconcile_invocation(event.payload, &event.context)
                .await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
