//! A local Lambda Function URL with `AuthType: AWS_IAM`, in front of a real function binary.
//! Like Lambda's, it checks each request's SigV4 signature (service `lambda`) against the
//! secret of the access key that signed it, refuses anything unsigned, wrongly signed or
//! more than five minutes old with 403, and invokes the function with the payload-2.0 event
//! Lambda builds, naming the signer in `requestContext.authorizer.iam`. The secrets it
//! checks against are those of credentials the test got from moto's STS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::runtime::{Function, Invocation};

/// Credentials that may sign requests to the URL, and whose ARN AWS would name.
#[derive(Clone, Debug)]
pub struct Signer {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>` or `arn:aws:iam::...:user/...`.
    pub arn: String,
}

impl Signer {
    /// The environment that makes an AWS SDK (the `seatcap` CLI) sign as this signer.
    pub fn env(&self) -> [(&'static str, String); 3] {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            (
                "AWS_SESSION_TOKEN",
                self.session_token.clone().unwrap_or_default(),
            ),
        ]
    }
}

struct Url {
    function: Arc<Function>,
    signers: HashMap<String, Signer>,
}

/// Serves `function` at a Function URL on a loopback port for `signers`; returns the URL.
pub async fn serve_function_url(function: Arc<Function>, signers: &[Signer]) -> String {
    let url = Arc::new(Url {
        function,
        signers: signers
            .iter()
            .map(|s| (s.access_key_id.clone(), s.clone()))
            .collect(),
    });
    let app = Router::new().fallback(request).with_state(url);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the function URL");
    let address = format!("http://{}/", listener.local_addr().expect("local addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn request(
    State(url): State<Arc<Url>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let signer = match verify(&url.signers, &method, &uri, &headers, &body) {
        Ok(signer) => signer,
        Err(why) => {
            return (
                StatusCode::FORBIDDEN,
                json!({"Message": "Forbidden", "seatcap_test_reason": why}).to_string(),
            )
                .into_response();
        }
    };
    let event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": uri.path(),
        "rawQueryString": uri.query().unwrap_or(""),
        "headers": headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), Value::from(v.to_str().unwrap_or(""))))
            .collect::<serde_json::Map<_, _>>(),
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "authorizer": {"iam": {
                "accessKey": signer.access_key_id,
                "accountId": signer.arn.split(':').nth(4).unwrap_or(""),
                "userArn": signer.arn,
                "callerId": "local",
                "userId": "local",
            }},
            "domainName": headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or(""),
            "http": {"method": method.as_str(), "path": uri.path(), "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": headers.get("user-agent")
                    .and_then(|h| h.to_str().ok()).unwrap_or("")},
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": "$default",
            "stage": "$default",
        },
        "body": String::from_utf8_lossy(&body),
        "isBase64Encoded": false,
    });
    match url.function.invoke(&event).await {
        Invocation::Response(answer) => {
            let status = answer["statusCode"].as_u64().unwrap_or(200) as u16;
            let body = answer["body"].as_str().unwrap_or("").to_owned();
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
        // What Lambda answers when the function fails.
        Invocation::Error(_) => (
            StatusCode::BAD_GATEWAY,
            json!({"Message": "Internal Server Error"}).to_string(),
        )
            .into_response(),
    }
}

/// Checks the request's SigV4 signature as Lambda does; the signer, or why not.
fn verify(
    signers: &HashMap<String, Signer>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Signer, String> {
    let header = |name: &str| headers.get(name).and_then(|h| h.to_str().ok());
    let authorization = header("authorization").ok_or("unsigned")?;
    let fields = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not SigV4")?;
    let field = |name: &str| {
        fields
            .split(", ")
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .ok_or(format!("no {name}"))
    };
    let credential = field("Credential")?;
    let signed_headers = field("SignedHeaders")?;
    let signature = field("Signature")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, _date, region, "lambda", "aws4_request"] = scope[..] else {
        return Err(format!("not a lambda credential scope: {credential}"));
    };
    let signer = signers.get(access_key_id).ok_or("unknown access key")?;
    let amz_date = header("x-amz-date").ok_or("no x-amz-date")?;
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|e| format!("x-amz-date: {e}"))?
        .and_utc();
    let time = SystemTime::from(time);
    let skew = SystemTime::now()
        .duration_since(time)
        .unwrap_or_else(|e| e.duration());
    if skew > Duration::from_secs(300) {
        return Err("signature expired".into());
    }
    if signer.session_token.as_deref() != header("x-amz-security-token") {
        return Err("wrong session token".into());
    }
    // Sign the same request again with the signer's secret: the signer adds x-amz-date and
    // the token itself, so only the other signed headers are handed to it.
    let signed: Vec<(&str, &str)> = signed_headers
        .split(';')
        .filter(|name| !matches!(*name, "x-amz-date" | "x-amz-security-token"))
        .map(|name| Ok((name, header(name).ok_or(format!("no {name}"))?)))
        .collect::<Result<_, String>>()?;
    let host = header("host").ok_or("no host")?;
    let identity = Credentials::new(
        &signer.access_key_id,
        &signer.secret_access_key,
        signer.session_token.clone(),
        None,
        "function-url",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("lambda")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let url = format!("http://{host}{uri}");
    let signable = SignableRequest::new(
        method.as_str(),
        url.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (_, expected) = sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    if expected != signature {
        return Err("signature does not match".into());
    }
    Ok(signer.clone())
}
