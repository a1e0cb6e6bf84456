//! Requests to the admin's Function URL (`AuthType: AWS_IAM`), signed with SigV4 as service
//! `lambda` with the caller's own AWS credentials: Lambda checks the signature and tells the
//! function who signed, so the audit names the caller AWS verified.

use std::time::SystemTime;

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use serde_json::Value;

use crate::Failure;

/// POSTs `payload` (one admin request) to `url`, signed; the admin's `{"ok": ...}` answer.
pub async fn post(
    sdk: &aws_config::SdkConfig,
    url: &str,
    payload: Vec<u8>,
) -> Result<Value, Failure> {
    let failed = |why: String| Failure::Error(format!("could not ask {url}: {why}"));
    let credentials = sdk
        .credentials_provider()
        .ok_or_else(|| failed("no AWS credentials configured".into()))?
        .provide_credentials()
        .await
        .map_err(|e| failed(format!("no AWS credentials: {e}")))?;
    let identity: Identity = credentials.into();
    let region = region_of(url)
        .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(e.to_string()))?
        .into();
    let headers = [("content-type", "application/json")];
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.into_iter(),
        SignableBody::Bytes(&payload),
    )
    .map_err(|e| failed(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(e.to_string()))?
        .into_parts();
    let mut request = reqwest::Client::new().post(url).body(payload);
    for (name, value) in headers.into_iter().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| failed(e.without_url().to_string()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    match serde_json::from_str::<Value>(&body) {
        // The admin's own answer, done or refused (refusals come back as 400 or 403).
        Ok(answer) if answer.get("ok").is_some() => Ok(answer),
        // Lambda's: the signature or the caller's permission (403), the function (5xx).
        _ => Err(failed(format!("HTTP {status}: {body}"))),
    }
}

/// `https://<id>.lambda-url.<region>.on.aws/` → `<region>`.
fn region_of(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let mut labels = host.split('.');
    labels.next()?;
    (labels.next()? == "lambda-url").then(|| labels.next().map(str::to_owned))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_region_is_read_from_a_function_url() {
        assert_eq!(
            super::region_of("https://abc123.lambda-url.eu-west-1.on.aws/").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(super::region_of("http://127.0.0.1:4567/"), None);
    }
}
