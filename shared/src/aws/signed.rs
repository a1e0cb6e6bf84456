//! One SigV4-signed HTTP POST with the SDK's own credentials and signer, for the few calls
//! that do not earn a whole SDK client: the Slack secret's one read per cold start, and the
//! CLI's requests to the admin's Function URL.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// POSTs `body` to `url` with `headers`, signed for `service` in `region`: the answer's
/// HTTP status and body. An error says what failed (never a credential).
pub async fn post(
    sdk: &SdkConfig,
    http: &reqwest::Client,
    (service, region): (&str, &str),
    url: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(reqwest::StatusCode, Vec<u8>), String> {
    let credentials = sdk
        .credentials_provider()
        .ok_or("no AWS credentials configured")?
        .provide_credentials()
        .await
        .map_err(|e| format!("no AWS credentials: {e}"))?;
    let identity: Identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    let mut request = http.post(url).body(body);
    for (name, value) in headers.iter().copied().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("HTTP {status}: {}", e.without_url()))?;
    Ok((status, body.to_vec()))
}
