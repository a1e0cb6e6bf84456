//! Reads the Slack webhook URL from Secrets Manager (`GetSecretValue`) or SSM Parameter
//! Store (`GetParameter`, decrypted) with one SigV4-signed HTTPS call each, instead of
//! linking two whole SDK clients into every function for one call per cold start (they
//! cost about 1.1 MiB of each binary). Credentials, the signer and the endpoint override
//! (`AWS_ENDPOINT_URL`) are the SDK's own; the region is the ARN's.

use aws_config::SdkConfig;
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
    let headers = [
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", target),
    ];
    let url = format!("{endpoint}/");
    let (status, answer) = crate::aws::signed::post(
        sdk,
        http,
        (service, region),
        &url,
        &headers,
        body.to_string().into_bytes(),
    )
    .await
    .map_err(failed)?;
    let answer: Value = serde_json::from_slice(&answer)
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
