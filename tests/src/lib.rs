//! Test harness for seatcap: real parts only. A moto server for AWS (one per test process,
//! one account per test), the real function binaries under a Lambda Runtime API, and a local
//! Slack receiver. Used by the tests in `tests/tests/` and by the demo.

pub mod function_url;
pub mod moto;
pub mod proxy;
pub mod runtime;
pub mod slack;
pub mod template;

pub use function_url::{Signer, serve_function_url};
pub use moto::{Account, moto};
pub use proxy::{HoldingProxy, KillingProxy, ProtectedRoles};
pub use runtime::{Function, Invocation, binary, binary_in, serve_invoke_api};
pub use slack::SlackReceiver;

/// An SNS → Lambda event carrying `message` under `message_id`, as Lambda delivers it.
/// The alert topic the tests' SNS deliveries come from (and `SEATCAP_ALERT_TOPIC_ARN`, where
/// a test sets it).
pub const ALERT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:seatcap-budget-alerts";

/// The certificate the functions are pinned to in tests (`SEATCAP_SNS_CERT_PEM`): a
/// self-signed one the project made for its tests; its key signs [`sns_event`]'s deliveries.
pub const SNS_TEST_CERT_PEM: &str = include_str!("../fixtures/sns-test-signer.cert.pem");
const SNS_TEST_KEY_PEM: &str = include_str!("../fixtures/sns-test-signer.key.pem");

/// An SNS delivery of `message` as Lambda receives it, signed (SignatureVersion 1) by the
/// tests' signer, from [`ALERT_TOPIC`].
pub fn sns_event(message_id: &str, message: &str) -> serde_json::Value {
    let mut event = unsigned_sns_event(message_id, message);
    sign_sns_record(&mut event["Records"][0]["Sns"], "1");
    event
}

/// The same delivery with no signature at all.
pub fn unsigned_sns_event(message_id: &str, message: &str) -> serde_json::Value {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/sns-monthly-actual.json"))
            .expect("the sample event is JSON");
    let sns = &mut event["Records"][0]["Sns"];
    sns["MessageId"] = message_id.into();
    sns["Message"] = message.into();
    sns["TopicArn"] = ALERT_TOPIC.into();
    sns["Timestamp"] = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
        .into();
    sns["Signature"] = serde_json::Value::Null;
    event
}

/// Signs one record's `Sns` object as SNS does: the fields it signs, each name and value on
/// a line of its own (AWS's documented order), SHA1withRSA (`"1"`) or SHA256withRSA (`"2"`).
/// Written out here rather than taken from seatcap, so the test checks seatcap's reading.
pub fn sign_sns_record(sns: &mut serde_json::Value, version: &str) {
    use base64::Engine;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    let field = |name: &str| sns[name].as_str().map(str::to_owned);
    let mut text = String::new();
    for name in [
        "Message",
        "MessageId",
        "Subject",
        "Timestamp",
        "TopicArn",
        "Type",
    ] {
        if let Some(value) = field(name) {
            text.push_str(&format!("{name}\n{value}\n"));
        }
    }
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(SNS_TEST_KEY_PEM).expect("the test key");
    let signature = match version {
        "1" => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key)
            .sign(text.as_bytes())
            .to_vec(),
        _ => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key)
            .sign(text.as_bytes())
            .to_vec(),
    };
    sns["SignatureVersion"] = version.into();
    sns["Signature"] = base64::engine::general_purpose::STANDARD
        .encode(signature)
        .into();
}

/// A Budgets alert in Budgets' own words, for `budget` at `threshold` of `budgeted`, dated
/// November 21, 2026: the day the tests' injected clocks stand on.
pub fn budget_alert(
    budget: &str,
    alert_type: &str,
    budgeted: &str,
    threshold: &str,
    amount: &str,
) -> String {
    let november = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("a date");
    budget_alert_on(november, budget, alert_type, budgeted, threshold, amount)
}

/// The same alert dated today, for functions that run on the wall clock (the binaries):
/// an alert about an ended month would be late, and only recorded.
pub fn todays_budget_alert(
    budget: &str,
    alert_type: &str,
    budgeted: &str,
    threshold: &str,
    amount: &str,
) -> String {
    let today = chrono::Utc::now().date_naive();
    budget_alert_on(today, budget, alert_type, budgeted, threshold, amount)
}

/// A monthly Budgets alert dated `date`.
pub fn budget_alert_on(
    date: chrono::NaiveDate,
    budget: &str,
    alert_type: &str,
    budgeted: &str,
    threshold: &str,
    amount: &str,
) -> String {
    let date = date.format("%B %d, %Y");
    format!(
        "AWS Budget Notification {date}\nAWS Account 123456789012\n\nDear AWS Customer,\n\n\
         You requested that we alert you when the {alert_type} Cost associated with your {budget} budget is greater \
         than ${threshold} for the current month. The {alert_type} Cost associated with this budget is ${amount}. \
         You can find additional details below and by accessing the AWS Budgets dashboard [1].\n\n\
         Budget Name: {budget}\nBudget Type: Cost\nBudgeted Amount: ${budgeted}\nAlert Type: {alert_type}\n\
         Alert Threshold: > ${threshold}\n{alert_type} Amount: ${amount}\n\n\
         [1] https://console.aws.amazon.com/costmanagement/home#/budgets\n"
    )
}

/// An aws-smithy-mocks rule for IAM clients standing in for the real one: every user has
/// `policies` attached (what seatcap reads before it plans a cut).
pub fn attached_user_policies(policies: &[&str]) -> aws_smithy_mocks::Rule {
    let policies: Vec<String> = policies.iter().map(|p| (*p).to_owned()).collect();
    aws_smithy_mocks::mock!(aws_sdk_iam::Client::list_attached_user_policies).then_output(
        move || {
            aws_sdk_iam::operation::list_attached_user_policies::ListAttachedUserPoliciesOutput::builder()
                .set_attached_policies(Some(
                    policies
                        .iter()
                        .map(|p| {
                            aws_sdk_iam::types::AttachedPolicy::builder()
                                .policy_arn(p)
                                .policy_name(p.rsplit('/').next().unwrap_or(p))
                                .build()
                        })
                        .collect(),
                ))
                .is_truncated(false)
                .build()
        },
    )
}

/// One invocation log record: `output_tokens` of `model` by `identity`, now.
pub fn invocation_record(
    identity: &str,
    request_id: &str,
    model: &str,
    output_tokens: u64,
) -> serde_json::Value {
    serde_json::json!({"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
        "timestamp": chrono::Utc::now().to_rfc3339(), "accountId": "123456789012",
        "identity": {"arn": identity}, "region": "us-east-1", "requestId": request_id,
        "operation": "InvokeModel", "modelId": model,
        "input": {"inputContentType": "application/json", "inputTokenCount": 0},
        "output": {"outputContentType": "application/json", "outputTokenCount": output_tokens}})
}

/// A CloudWatch Logs subscription event carrying `records`.
pub fn logs_batch(records: &[serde_json::Value]) -> serde_json::Value {
    let log_events: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| serde_json::json!({"id": i.to_string(), "timestamp": 0, "message": r.to_string()}))
        .collect();
    let data = serde_json::json!({"messageType": "DATA_MESSAGE", "owner": "123456789012",
        "logGroup": "bedrock-invocations", "logStream": "aws/bedrock/modelinvocations",
        "subscriptionFilters": ["seatcap-metering"], "logEvents": log_events});
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, data.to_string().as_bytes()).unwrap();
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gzip.finish().unwrap(),
    );
    serde_json::json!({"awslogs": {"data": encoded}})
}

/// The records as Bedrock's S3 delivery writes them: one gzipped NDJSON log file.
pub fn log_file(records: &[serde_json::Value]) -> Vec<u8> {
    let lines: String = records.iter().map(|r| format!("{r}\n")).collect();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gzip, lines.as_bytes()).unwrap();
    gzip.finish().unwrap()
}

/// Where Bedrock's S3 delivery puts a log file of `account` written at hour 10 of a day.
pub fn log_file_key(account: &str, name: &str) -> String {
    format!("AWSLogs/{account}/BedrockModelInvocationLogs/us-east-1/2026/12/01/10/{name}.json.gz")
}

/// The S3 event notification for created objects of `bucket` (keys URL-encoded, as S3 does).
pub fn s3_objects_created(bucket: &str, keys: &[&str]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| {
            let encoded = key
                .replace('%', "%25")
                .replace('+', "%2B")
                .replace(' ', "+");
            serde_json::json!({"eventVersion": "2.1", "eventSource": "aws:s3",
                "awsRegion": "us-east-1", "eventTime": chrono::Utc::now().to_rfc3339(),
                "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket,
                    "arn": format!("arn:aws:s3:::{bucket}")},
                    "object": {"key": encoded, "size": 1}}})
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// EventBridge's "Object Created" event for one object of `bucket` (the key as it is).
pub fn eventbridge_object_created(bucket: &str, key: &str) -> serde_json::Value {
    serde_json::json!({"version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
        "time": chrono::Utc::now().to_rfc3339(), "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket},
            "object": {"key": key, "size": 1}, "reason": "PutObject"}})
}
