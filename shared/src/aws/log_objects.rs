//! Bedrock invocation log files in S3: one object read whole, gunzipped, split into its
//! NDJSON records. seatcap only ever reads these objects (`s3:GetObject` on the log prefix).

use std::io::Read;

use aws_config::SdkConfig;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::operation::get_object::GetObjectError;

use crate::log_object::LogObject;

/// The largest log file read. Bedrock writes files of minutes of calls, far below this;
/// anything bigger is not one of them, and holding it would risk the function's memory.
const MAX_COMPRESSED: u64 = 64 << 20;
const MAX_DECOMPRESSED: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogObjectError {
    /// Deleted (or never there) by the time it was read: nothing to count, nothing to retry.
    #[error("{0} no longer exists")]
    Gone(LogObject),
    /// Not a log file seatcap can read: retrying cannot help.
    #[error("{object} is not a readable invocation log file: {why}")]
    Unreadable { object: LogObject, why: String },
    /// S3 refused or failed (access, throttling after retries): the delivery is retried.
    #[error("S3 GetObject {object}: {message}")]
    S3 { object: LogObject, message: String },
}

#[derive(Clone)]
pub struct LogObjects {
    client: aws_sdk_s3::Client,
}

impl LogObjects {
    /// An S3 client from the shared configuration. Against an endpoint override (the local
    /// emulator) objects are addressed by path: `bucket.127.0.0.1` resolves to nothing.
    pub fn new(sdk: &SdkConfig) -> LogObjects {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        LogObjects {
            client: aws_sdk_s3::Client::from_conf(config),
        }
    }

    /// The records of one gzipped NDJSON log file, blank lines left out.
    pub async fn records(&self, object: &LogObject) -> Result<Vec<String>, LogObjectError> {
        let unreadable = |why: String| LogObjectError::Unreadable {
            object: object.clone(),
            why,
        };
        let answer = self
            .client
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(GetObjectError::NoSuchKey(_)) => LogObjectError::Gone(object.clone()),
                _ => LogObjectError::S3 {
                    object: object.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                },
            })?;
        let size = answer
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .unwrap_or(0);
        if size > MAX_COMPRESSED {
            return Err(unreadable(format!(
                "{size} bytes, more than {MAX_COMPRESSED}"
            )));
        }
        let gzipped = answer
            .body
            .collect()
            .await
            .map_err(|e| LogObjectError::S3 {
                object: object.clone(),
                message: format!("reading the body: {e}"),
            })?
            .into_bytes();
        let mut text = String::new();
        let mut reader = flate2::read::MultiGzDecoder::new(gzipped.as_ref()).take(MAX_DECOMPRESSED);
        reader
            .read_to_string(&mut text)
            .map_err(|e| unreadable(format!("gzip of UTF-8 text: {e}")))?;
        if reader.limit() == 0 {
            return Err(unreadable(format!(
                "more than {MAX_DECOMPRESSED} bytes uncompressed"
            )));
        }
        Ok(text
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(str::to_owned)
            .collect())
    }
}
