//! period-rollover: on a schedule at the start of each budget period, restores everyone the
//! cap blocked in the period that ended. All logic lives in the `seatcap` crate.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use seatcap::rollover::RolloverEvent;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<RolloverEvent>| async move {
            let report = app
                .for_invocation(&event.context)
                .rollover_invocation(event.payload, &event.context)
                .await?;
            Ok::<_, Error>(serde_json::to_value(report)?)
        },
    ))
    .await
}
