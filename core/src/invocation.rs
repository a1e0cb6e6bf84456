//! Bedrock model invocation log records (`schemaType: ModelInvocationLog`), as CloudWatch Logs
//! or S3 deliver them: who called which model, and how many tokens of each kind. Pure: the
//! records arrive already decompressed.
//!
//! The token counts come from the record's envelope (`input.inputTokenCount`,
//! `input.cacheReadInputTokenCount`, `input.cacheWriteInputTokenCount`,
//! `output.outputTokenCount`), which survives the offload of bodies over 100 KB to S3. The
//! body is read only for what the envelope lacks: how the cache write splits between the
//! 5-minute and the 1-hour rate.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// One priced call's tokens, by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Input tokens, excluding the cache's.
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    /// Cache writes at the 5-minute rate (all of them when the body does not say).
    pub cache_write_5m: u64,
    pub cache_write_1h: u64,
}

/// One invocation, as metering counts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Bedrock's request id: the key that makes counting exact.
    pub request_id: String,
    /// Who called: `arn:aws:iam::<account>:user/<name>` or
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub identity_arn: String,
    pub model_id: String,
    pub at: DateTime<Utc>,
    pub tokens: Tokens,
    /// A batch inference job's record (priced at half).
    pub batch: bool,
    /// Whether the record carried token counts. A call that did not is billed by another
    /// unit (an image, a second of video), or failed without saying so.
    pub tokens_counted: bool,
    /// What a call billed by another unit made, as far as the record says.
    pub units: Units,
}

/// What an image or video call made, read from the record's bodies when they are logged
/// (image and video data delivery may be off: then nothing is known).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Units {
    pub images: Option<u64>,
    pub video_seconds: Option<u64>,
}

/// Why a record could not be read (counted and reported; the rest of the batch goes on).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a model invocation log record (schemaType {0:?})")]
    NotAnInvocation(Option<String>),
    #[error("missing or malformed `{0}`")]
    Field(&'static str),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    schema_type: Option<String>,
    timestamp: Option<String>,
    identity: Option<Identity>,
    request_id: Option<String>,
    model_id: Option<String>,
    operation: Option<String>,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    output: Value,
    /// Set on a call that failed (`ResourceNotFoundException`, ...): it costs nothing.
    error_code: Option<String>,
}

#[derive(Deserialize)]
struct Identity {
    arn: Option<String>,
}

/// Reads one record. `Ok(None)`: a call that failed (it says `errorCode`), which costs
/// nothing. A record with no token counts and no error is returned with
/// `tokens_counted: false`: the price table tells an image call from a text call that
/// failed without saying so.
pub fn parse_record(text: &str) -> Result<Option<Invocation>, RecordError> {
    let record: Record =
        serde_json::from_str(text).map_err(|e| RecordError::NotJson(e.to_string()))?;
    if record.schema_type.as_deref() != Some("ModelInvocationLog") {
        return Err(RecordError::NotAnInvocation(record.schema_type));
    }
    let count = |value: &Value, field: &str| value.get(field).and_then(Value::as_u64);
    let input = count(&record.input, "inputTokenCount");
    let output = count(&record.output, "outputTokenCount");
    // A call that failed after it was billed (a stream cut short) still carries its counts.
    if record.error_code.as_deref().is_some_and(|e| !e.is_empty())
        && input.is_none()
        && output.is_none()
    {
        return Ok(None);
    }
    let request_id = record
        .request_id
        .filter(|id| !id.is_empty() && id.len() <= 256)
        .ok_or(RecordError::Field("requestId"))?;
    let identity_arn = record
        .identity
        .and_then(|i| i.arn)
        .filter(|arn| arn.starts_with("arn:"))
        .ok_or(RecordError::Field("identity.arn"))?;
    let model_id = record
        .model_id
        .filter(|m| !m.is_empty())
        .ok_or(RecordError::Field("modelId"))?;
    let at = record
        .timestamp
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or(RecordError::Field("timestamp"))?;
    let cache_write = count(&record.input, "cacheWriteInputTokenCount").unwrap_or(0);
    let (cache_write_5m, cache_write_1h) = match cache_split(&record.output) {
        Some((five, hour)) if five.saturating_add(hour) == cache_write => (five, hour),
        _ => (cache_write, 0),
    };
    Ok(Some(Invocation {
        request_id,
        identity_arn,
        model_id,
        at,
        tokens: Tokens {
            input: input.unwrap_or(0),
            output: output.unwrap_or(0),
            cache_read: count(&record.input, "cacheReadInputTokenCount").unwrap_or(0),
            cache_write_5m,
            cache_write_1h,
        },
        batch: record
            .operation
            .as_deref()
            .is_some_and(|op| op.contains("Batch")),
        tokens_counted: input.is_some() || output.is_some(),
        units: units_of(&record.input, &record.output),
    }))
}

/// How many images or seconds of video a call made: the images the response body holds
/// (`images`, Nova Canvas, Titan and Stability alike), else the number the request asked
/// for (`imageGenerationConfig.numberOfImages`); the video's length from the envelope
/// (`outputVideoDurationSeconds`) or the request (`videoGenerationConfig.durationSeconds`).
fn units_of(input: &Value, output: &Value) -> Units {
    let images = output
        .pointer("/outputBodyJson/images")
        .and_then(Value::as_array)
        .map(|images| images.len() as u64)
        .filter(|n| *n > 0)
        .or_else(|| {
            input
                .pointer("/inputBodyJson/imageGenerationConfig/numberOfImages")
                .and_then(Value::as_u64)
        })
        // The caller writes the request: zero is not believed (then priced as one, reported).
        .filter(|n| *n > 0);
    let video_seconds = output
        .get("outputVideoDurationSeconds")
        .and_then(Value::as_u64)
        .or_else(|| {
            input
                .pointer("/inputBodyJson/videoGenerationConfig/durationSeconds")
                .and_then(Value::as_u64)
        })
        .filter(|n| *n > 0);
    Units {
        images,
        video_seconds,
    }
}

/// The cache write's split from the response body's `usage.cache_creation`: a non-streaming
/// body is one object with `usage`; a streaming one, a list of events whose `message_start`
/// carries `message.usage`.
fn cache_split(output: &Value) -> Option<(u64, u64)> {
    let body = output.get("outputBodyJson")?;
    let usage = match body {
        Value::Array(events) => events
            .iter()
            .find(|e| e.get("type").and_then(Value::as_str) == Some("message_start"))?
            .pointer("/message/usage")?,
        Value::Object(_) => body.get("usage")?,
        _ => return None,
    };
    let creation = usage.get("cache_creation")?;
    let tokens = |field: &str| creation.get(field).and_then(Value::as_u64).unwrap_or(0);
    Some((
        tokens("ephemeral_5m_input_tokens"),
        tokens("ephemeral_1h_input_tokens"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(output: Value) -> String {
        json!({"schemaType": "ModelInvocationLog", "schemaVersion": "1.0",
            "timestamp": "2026-12-01T10:21:07Z", "accountId": "123456789012",
            "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeDev_0123abcd/alice@example.com"},
            "region": "us-east-1", "requestId": "0b6f3c1e", "operation": "InvokeModelWithResponseStream",
            "modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "input": {"inputTokenCount": 3, "cacheReadInputTokenCount": 95500, "cacheWriteInputTokenCount": 1210},
            "output": output})
        .to_string()
    }

    #[test]
    fn the_envelope_gives_the_tokens_and_the_body_only_the_cache_split() {
        let plain = parse_record(&record(json!({"outputTokenCount": 412})))
            .unwrap()
            .unwrap();
        assert_eq!(
            plain.tokens,
            Tokens {
                input: 3,
                output: 412,
                cache_read: 95500,
                cache_write_5m: 1210,
                cache_write_1h: 0
            }
        );
        assert_eq!(plain.request_id, "0b6f3c1e");
        assert!(!plain.batch);
        let streamed = json!({"outputTokenCount": 412, "outputBodyJson": [
            {"type": "message_start", "message": {"usage": {"cache_creation":
                {"ephemeral_5m_input_tokens": 210, "ephemeral_1h_input_tokens": 1000}}}},
            {"type": "message_delta"}, {"type": "message_stop"}]});
        let split = parse_record(&record(streamed)).unwrap().unwrap();
        assert_eq!(
            (split.tokens.cache_write_5m, split.tokens.cache_write_1h),
            (210, 1000)
        );
        let object = json!({"outputTokenCount": 412, "outputBodyJson": {"usage": {"cache_creation":
            {"ephemeral_5m_input_tokens": 1210, "ephemeral_1h_input_tokens": 0}}}});
        assert_eq!(
            parse_record(&record(object))
                .unwrap()
                .unwrap()
                .tokens
                .cache_write_5m,
            1210
        );
        // A split that does not add up to the envelope's count is not believed.
        let wrong = json!({"outputTokenCount": 1, "outputBodyJson": {"usage": {"cache_creation":
            {"ephemeral_5m_input_tokens": 5, "ephemeral_1h_input_tokens": 5}}}});
        assert_eq!(
            parse_record(&record(wrong))
                .unwrap()
                .unwrap()
                .tokens
                .cache_write_5m,
            1210
        );
    }

    #[test]
    fn failed_calls_cost_nothing_and_malformed_records_say_why() {
        let failed = json!({"schemaType": "ModelInvocationLog", "requestId": "x",
            "identity": {"arn": "arn:aws:iam::1:user/a"}, "modelId": "m",
            "timestamp": "2026-12-01T10:21:07Z", "errorCode": "ThrottlingException"});
        assert_eq!(parse_record(&failed.to_string()), Ok(None));
        // Cut short after it was billed: its counts are metered.
        let mut cut_short = failed.clone();
        cut_short["output"] = json!({"outputTokenCount": 800});
        let cut_short = parse_record(&cut_short.to_string()).unwrap().unwrap();
        assert_eq!(cut_short.tokens.output, 800);
        assert!(matches!(
            parse_record("{not json"),
            Err(RecordError::NotJson(_))
        ));
        assert_eq!(
            parse_record(r#"{"schemaType": "Other"}"#),
            Err(RecordError::NotAnInvocation(Some("Other".into())))
        );
        let mut no_identity: Value =
            serde_json::from_str(&record(json!({"outputTokenCount": 1}))).unwrap();
        no_identity["identity"] = Value::Null;
        assert_eq!(
            parse_record(&no_identity.to_string()),
            Err(RecordError::Field("identity.arn"))
        );
    }

    proptest::proptest! {
        #[test]
        fn no_text_panics_the_parser(text in ".{0,400}") {
            let _ = parse_record(&text);
        }
    }
}
