//! Reads the Slack webhook URL from Secrets Manager (`GetSecretValue`) or SSM Parameter
//! Store (`GetParameter`, decrypted) with one SigV4-signed HTTPS call each, instead of
//! linking two whole SDK clients into every function for one call per cold start (they
//! cost about 1.1 MiB of each binary). Credentials, the signer and the endpoint override
//! (`AWS_ENDPOINT_URL`) are the SDK's own; the region is the ARN's.

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::{Value, json};

use crate::config::SlackWebhook;

/// The secret's value (the webhook URL, possibly inside JSON). Errors name the secret and
/// what went wrong, never a value.
pub async fn read(
    sdk: &SdkConfig,
    http: &reqwest::Client,
    source: &SlackWebhook,
) -> Result<String, String> {
    let (service, target, arn, body) = match source {
        SlackWebhook::Url(url) => return Ok(url.clone()),
        SlackWebhook::SecretsManager(arn) => (
            "secretsmanager",
            "secretsmanager.GetSecretValue",
            arn,
            json!({"SecretId": arn}),
        ),
        SlackWebhook::SsmParameter(arn) => (
            "ssm",
            "AmazonSSM.GetParameter",
            arn,
            json!({"Name": arn, "WithDecryption": true}),
        ),
    };
    let failed = |why: String| format!("reading {arn}: {why}");
    // arn:<partition>:<service>:<region>:<account>:...
    let mut parts = arn.split(':');
    let partition = parts.nth(1).unwrap_or("aws");
    let region = parts.nth(1).unwrap_or_default();
    let endpoint = match sdk.endpoint_url() {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None if partition == "aws-cn" => format!("https://{service}.{region}.amazonaws.com.cn"),
        None => format!("https://{service}.{region}.amazonaws.com"),
    };
    let body = body.to_string();
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| failed("no AWS credentials configured".into()))?
        .provide_credentials()
        .await
        .map_err(|e| failed(format!("no AWS credentials: {e}")))?;
    let identity: Identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(e.to_string()))?
        .into();
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let url = format!("{endpoint}/");
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| failed(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(e.to_string()))?
        .into_parts();
    let mut request = http.post(&url).body(body.clone());
    for (name, value) in headers.into_iter().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| failed(e.without_url().to_string()))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| failed(format!("HTTP {status}: unreadable answer: {e}")))?;
    if !status.is_success() {
        // AWS JSON errors: {"__type": "...#ResourceNotFoundException", "message": "..."}.
        let kind = answer["__type"].as_str().unwrap_or("error");
        let message = answer["message"]
            .as_str()
            .or(answer["Message"].as_str())
            .unwrap_or("");
        return Err(failed(format!("HTTP {status}: {kind}: {message}")));
    }
    let value = match source {
        SlackWebhook::SsmParameter(_) => answer["Parameter"]["Value"].as_str(),
        _ => answer["SecretString"].as_str(),
    };
    value
        .map(str::to_owned)
        .ok_or_else(|| failed("it holds no string value".into()))
}
