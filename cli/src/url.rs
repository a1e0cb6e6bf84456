//! Requests to the admin's Function URL (`AuthType: AWS_IAM`), signed with SigV4 as service
//! `lambda` with the caller's own AWS credentials: Lambda checks the signature and tells the
//! function who signed, so the audit names the caller AWS verified.

use serde_json::Value;

use crate::Failure;

/// POSTs `payload` (one admin request) to `url`, signed; the admin's `{"ok": ...}` answer.
pub async fn post(
    sdk: &aws_config::SdkConfig,
    url: &str,
    payload: Vec<u8>,
) -> Result<Value, Failure> {
    let failed = |why: String| Failure::Error(format!("could not ask {url}: {why}"));
    let region = region_of(url)
        .or_else(|| sdk.region().map(|r| r.as_ref().to_owned()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    let (status, body) = seatcap::aws::signed::post(
        sdk,
        &reqwest::Client::new(),
        ("lambda", &region),
        url,
        &[("content-type", "application/json")],
        payload,
    )
    .await
    .map_err(failed)?;
    let body = String::from_utf8_lossy(&body);
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
