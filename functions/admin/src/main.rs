//! admin: finance's commands (caps, budgets, overrides, blocks, restores, status, list,
//! history): one JSON request per direct invoke, or per request to its Function URL.
//! All logic lives in the `seatcap` crate; this only wires it up.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let app = &seatcap::App::start().await?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(
            app.for_invocation(&event.context)
                .handle_admin_event(event.payload)
                .await?,
        )
    }))
    .await
}
