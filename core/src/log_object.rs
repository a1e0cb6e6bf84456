//! Bedrock's invocation logs delivered to S3: which objects an event names, and which of
//! those are invocation logs. Accounts that log to S3 get
//! `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/<name>.json.gz`,
//! each a gzipped NDJSON file of the records CloudWatch Logs delivery would carry.
//!
//! Two shapes announce a new object: an S3 event notification (`Records[].s3`, the key
//! URL-encoded with `+` for a space) and an EventBridge "Object Created" event (`detail`,
//! the key as it is). The platform team wires whichever its bucket allows.

use serde_json::Value;

/// One object an event says was created.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogObject {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for LogObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// Why an S3 event's objects could not be read from it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ObjectEventError {
    #[error("S3 event record {0} has no bucket name or object key")]
    Incomplete(usize),
    #[error("S3 object key {0:?} is not valid URL encoding of UTF-8")]
    BadKey(String),
}

/// The objects an event names as created, or `None` when the event is not an S3 event
/// (neither shape). Records of other kinds (a deletion) are left out.
pub fn created_objects(event: &Value) -> Option<Result<Vec<LogObject>, ObjectEventError>> {
    if event.get("detail-type").and_then(Value::as_str) == Some("Object Created")
        && event.get("source").and_then(Value::as_str) == Some("aws.s3")
    {
        let detail = &event["detail"];
        let object = match (
            detail["bucket"]["name"].as_str(),
            detail["object"]["key"].as_str(),
        ) {
            (Some(bucket), Some(key)) => Ok(vec![LogObject {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            }]),
            _ => Err(ObjectEventError::Incomplete(0)),
        };
        return Some(object);
    }
    let records = event.get("Records")?.as_array()?;
    if !records
        .iter()
        .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:s3"))
    {
        return None;
    }
    let objects = records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r["eventSource"] == "aws:s3"
                && r["eventName"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("ObjectCreated:"))
        })
        .map(|(i, r)| {
            let (Some(bucket), Some(key)) = (
                r["s3"]["bucket"]["name"].as_str(),
                r["s3"]["object"]["key"].as_str(),
            ) else {
                return Err(ObjectEventError::Incomplete(i));
            };
            Ok(LogObject {
                bucket: bucket.to_owned(),
                key: url_decoded(key)?,
            })
        })
        .collect();
    Some(objects)
}

/// An S3 notification's key: `+` is a space, `%XX` a byte.
fn url_decoded(key: &str) -> Result<String, ObjectEventError> {
    let bad = || ObjectEventError::BadKey(key.to_owned());
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = key.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Whether `key` is one of Bedrock's invocation log files, not another object in the bucket
/// (the permission check Bedrock writes when logging is set up, offloaded large bodies,
/// anything else). Only these are read: seatcap reads nothing else of the bucket.
pub fn is_invocation_log(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    matches!(
        parts.as_slice(),
        [.., "AWSLogs", account, "BedrockModelInvocationLogs", region, year, month, day, hour, file]
            if digits(account, 12)
                && !region.is_empty()
                && digits(year, 4)
                && digits(month, 2)
                && digits(day, 2)
                && digits(hour, 2)
                && file.ends_with(".json.gz")
                && file.len() > ".json.gz".len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/01/10/20261201T1021Z_ab12.json.gz";

    #[test]
    fn an_s3_notification_names_its_created_objects_with_keys_decoded() {
        let event = json!({"Records": [
            {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
             "s3": {"bucket": {"name": "logs"}, "object": {"key": "a+b%2Bc.json.gz"}}},
            {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
             "s3": {"bucket": {"name": "logs"}, "object": {"key": "gone"}}}
        ]});
        assert_eq!(
            created_objects(&event),
            Some(Ok(vec![LogObject {
                bucket: "logs".into(),
                key: "a b+c.json.gz".into()
            }]))
        );
    }

    #[test]
    fn an_eventbridge_object_created_event_names_its_object_as_it_is() {
        let event = json!({"source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "logs"}, "object": {"key": "a+b.json.gz"}}});
        assert_eq!(
            created_objects(&event),
            Some(Ok(vec![LogObject {
                bucket: "logs".into(),
                key: "a+b.json.gz".into()
            }]))
        );
    }

    #[test]
    fn other_events_are_not_s3_events_and_broken_ones_are_typed_errors() {
        assert_eq!(created_objects(&json!({"awslogs": {"data": ""}})), None);
        assert_eq!(
            created_objects(&json!({"Records": [{"EventSource": "aws:sns"}]})),
            None
        );
        assert_eq!(
            created_objects(&json!({"Records": [{"eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put", "s3": {}}]})),
            Some(Err(ObjectEventError::Incomplete(0)))
        );
        for key in ["%", "%4", "%zz", "%ff%fe"] {
            let event = json!({"Records": [{"eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": key}}}]});
            assert_eq!(
                created_objects(&event),
                Some(Err(ObjectEventError::BadKey(key.into()))),
                "{key}"
            );
        }
    }

    #[test]
    fn only_bedrock_invocation_log_files_are_read() {
        assert!(is_invocation_log(KEY));
        assert!(is_invocation_log(&format!("my/prefix/{KEY}")));
        for other in [
            "AWSLogs/123456789012/BedrockModelInvocationLogs/amazon-bedrock-logs-permission-check",
            "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/01/10/data/body.json.gz",
            "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/01/10/x.json",
            "AWSLogs/12345/BedrockModelInvocationLogs/us-east-1/2026/12/01/10/x.json.gz",
            "AWSLogs/123456789012/CloudTrail/us-east-1/2026/12/01/10/x.json.gz",
            "AWSLogs/123456789012/BedrockModelInvocationLogs/us-east-1/2026/12/01/10/.json.gz",
        ] {
            assert!(!is_invocation_log(other), "{other}");
        }
    }

    proptest::proptest! {
        #[test]
        fn no_key_panics_the_decoder(key in "\\PC*") {
            let _ = url_decoded(&key);
            let _ = is_invocation_log(&key);
        }
    }
}
