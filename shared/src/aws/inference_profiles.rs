//! Bedrock's control plane, read only: which model an application inference profile routes
//! to, so a call that names `…:application-inference-profile/<id>` is priced as its model
//! (one `bedrock:GetInferenceProfile` per profile and process: a profile's model never
//! changes); and where Bedrock logs invocations, for `doctor`.

use aws_config::SdkConfig;
use aws_sdk_bedrock::error::DisplayErrorContext;
use aws_sdk_bedrock::operation::get_inference_profile::GetInferenceProfileError;

/// Why a profile's model is not known.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProfileError {
    /// Bedrock answered, and no retry will change it (the profile is gone, the function may
    /// not read it, it routes to no model): the calls are priced fail closed and reported.
    #[error("GetInferenceProfile {profile}: {why}")]
    Unresolvable { profile: String, why: String },
    /// Throttled, a 5xx or the network after the SDK's retries: the batch is delivered again.
    #[error("GetInferenceProfile {profile}: {why}")]
    Transient { profile: String, why: String },
}

#[derive(Clone)]
pub struct InferenceProfiles {
    client: aws_sdk_bedrock::Client,
}

impl InferenceProfiles {
    pub fn new(client: aws_sdk_bedrock::Client) -> InferenceProfiles {
        InferenceProfiles { client }
    }

    pub fn from_sdk(sdk: &SdkConfig) -> InferenceProfiles {
        InferenceProfiles::new(aws_sdk_bedrock::Client::new(sdk))
    }

    /// The model `profile` routes to, as Bedrock names it: a foundation model's ARN
    /// (`arn:aws:bedrock:<region>::foundation-model/<model id>`). A profile copied from a
    /// cross-region one lists the same model once per region; the first is taken.
    pub async fn model_of(&self, profile: &str) -> Result<String, ProfileError> {
        let answer = self
            .client
            .get_inference_profile()
            .inference_profile_identifier(profile)
            .send()
            .await
            .map_err(|e| {
                let why = DisplayErrorContext(&e).to_string();
                let profile = profile.to_owned();
                match e.as_service_error() {
                    Some(
                        GetInferenceProfileError::ResourceNotFoundException(_)
                        | GetInferenceProfileError::AccessDeniedException(_)
                        | GetInferenceProfileError::ValidationException(_),
                    ) => ProfileError::Unresolvable { profile, why },
                    _ => ProfileError::Transient { profile, why },
                }
            })?;
        answer
            .models()
            .iter()
            .find_map(|m| m.model_arn())
            .map(str::to_owned)
            .ok_or_else(|| ProfileError::Unresolvable {
                profile: profile.to_owned(),
                why: "the profile names no model".into(),
            })
    }

    /// Where Bedrock delivers invocation logs: the CloudWatch Logs group and the S3 bucket,
    /// each if set (`None` for both: logging is off). An error says why it could not be read.
    pub async fn logging_destinations(&self) -> Result<(Option<String>, Option<String>), String> {
        let answer = self
            .client
            .get_model_invocation_logging_configuration()
            .send()
            .await
            .map_err(|e| {
                format!(
                    "GetModelInvocationLoggingConfiguration: {}",
                    DisplayErrorContext(&e)
                )
            })?;
        let config = answer.logging_config();
        Ok((
            config
                .and_then(|c| c.cloud_watch_config())
                .map(|c| c.log_group_name().to_owned()),
            config
                .and_then(|c| c.s3_config())
                .map(|c| c.bucket_name().to_owned()),
        ))
    }
}
