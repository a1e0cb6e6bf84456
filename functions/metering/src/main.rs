//! metering: Bedrock's model invocation logs → a CloudWatch Logs subscription → this
//! function. Prices each call, adds it to its principal's month exactly once, and acts on
//! the ladder within a minute. All logic lives in the `seatcap` crate; this only wires it up.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let report = app
            .for_invocation(&event.context)
            .handle_metering(event.payload)
            .await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
