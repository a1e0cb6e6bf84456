//! Metering prices every call by what Bedrock bills it by (issue 24): a call named by an
//! application inference profile as the model the profile routes to (moto has no
//! `GetInferenceProfile`, so Bedrock's answers come from `aws-smithy-mocks`, shaped as the
//! SDK's own types; the ledger is moto's), and calls billed per image, per second of video
//! or per embedded token by their own unit, through the built metering binary.

use std::sync::Arc;

use aws_sdk_bedrock::operation::get_inference_profile::{
    GetInferenceProfileError, GetInferenceProfileOutput,
};
use aws_sdk_bedrock::types::error::{ResourceNotFoundException, ThrottlingException};
use aws_sdk_bedrock::types::{InferenceProfileModel, InferenceProfileStatus, InferenceProfileType};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use chrono::Utc;
use seatcap::App;
use seatcap::inference_profiles::InferenceProfiles;
use seatcap::ledger::{EventKind, Subject};
use seatcap::metering::MeteringMemory;
use seatcap::principal::PrincipalArn;
use seatcap_tests::{Account, Function, binary, invocation_record, logs_batch};
use serde_json::{Value, json};

const PROFILE: &str =
    "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6";
const SONNET: &str = "anthropic.claude-sonnet-4-5-20250929-v1:0";

/// What Bedrock answers for a profile copied from the `us.` Sonnet 4.5 profile: one
/// foundation model per region it routes to (the shape of the API reference's
/// `GetInferenceProfile` response).
fn routes_to_sonnet() -> Rule {
    mock!(aws_sdk_bedrock::Client::get_inference_profile)
        .match_requests(|r| r.inference_profile_identifier() == Some(PROFILE))
        .then_output(|| {
            let model = |region: &str| {
                InferenceProfileModel::builder()
                    .model_arn(format!(
                        "arn:aws:bedrock:{region}::foundation-model/{SONNET}"
                    ))
                    .build()
            };
            GetInferenceProfileOutput::builder()
                .inference_profile_name("claude-code-team-a")
                .inference_profile_arn(PROFILE)
                .inference_profile_id("a1b2c3d4e5f6")
                .models(model("us-east-1"))
                .models(model("us-west-2"))
                .status(InferenceProfileStatus::Active)
                .r#type(InferenceProfileType::Application)
                .build()
                .unwrap()
        })
}

fn app_with(account: &Account, rules: &[&Rule]) -> App {
    let mut app = account.app(&[], Arc::new(Utc::now));
    let client = mock_client!(aws_sdk_bedrock, RuleMode::MatchAny, rules);
    app.metering = Arc::new(MeteringMemory::with_profiles(InferenceProfiles::new(
        client,
    )));
    app
}

async fn person(account: &Account, app: &App, name: &str) -> PrincipalArn {
    let user = account.create_principal("user", name, &[]).await;
    let answer = app
        .handle_admin(json!({"action": "set_cap", "principal": user.as_str(),
            "budget": format!("seatcap-{name}"), "cap_usd": "500", "actor": "finance",
            "reason": "seat"}))
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    user
}

/// 1,000 input and 10,000 output tokens: Sonnet 4.5 in-region ($3.30 / $16.50) is
/// $0.0033 + $0.165 = $0.1683.
fn call(identity: &PrincipalArn, request: &str, model: &str) -> Value {
    let mut record = invocation_record(identity.as_str(), request, model, 10_000);
    record["input"]["inputTokenCount"] = json!(1_000);
    record
}

/// What seatcap's own audit says it priced fail closed, newest first.
async fn fail_closed_reports(account: &Account) -> Vec<Value> {
    account
        .ledger()
        .history(&Subject::System, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::UnknownModelPriced)
        .map(|e| e.detail)
        .collect()
}

async fn metered(account: &Account, who: &PrincipalArn) -> i64 {
    account
        .ledger()
        .metered(who, &seatcap::period::month_key(Utc::now()))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_call_through_an_application_profile_costs_what_its_model_costs_and_bedrock_is_asked_once()
 {
    let account = Account::new().await;
    let resolve = routes_to_sonnet();
    let app = app_with(&account, &[&resolve]);
    let (ann, ben) = (
        person(&account, &app, "ann").await,
        person(&account, &app, "ben").await,
    );
    let batch = logs_batch(&[
        call(&ann, "r-ann-1", SONNET),
        call(&ben, "r-ben-1", PROFILE),
    ]);
    let report = app.handle_metering(batch).await.unwrap();
    assert_eq!(report.counted, 2, "{report:?}");
    assert!(report.unknown_models.is_empty(), "{report:?}");
    assert_eq!(metered(&account, &ann).await, 168_300, "in micro-dollars");
    assert_eq!(metered(&account, &ben).await, metered(&account, &ann).await);

    // The next batches of this process know the profile already.
    for i in 2..4 {
        let batch = logs_batch(&[call(&ben, &format!("r-ben-{i}"), PROFILE)]);
        app.handle_metering(batch).await.unwrap();
    }
    assert_eq!(metered(&account, &ben).await, 3 * 168_300);
    assert_eq!(
        resolve.num_calls(),
        1,
        "one GetInferenceProfile per profile and process"
    );
}

#[tokio::test]
async fn a_profile_bedrock_will_not_resolve_is_priced_fail_closed_and_reported_once() {
    let account = Account::new().await;
    let gone = mock!(aws_sdk_bedrock::Client::get_inference_profile).then_error(|| {
        GetInferenceProfileError::ResourceNotFoundException(
            ResourceNotFoundException::builder()
                .message("The specified inference profile was not found")
                .build(),
        )
    });
    let app = app_with(&account, &[&gone]);
    let cid = person(&account, &app, "cid").await;
    for i in 0..2 {
        let batch = logs_batch(&[call(&cid, &format!("r-cid-{i}"), PROFILE)]);
        let report = app.handle_metering(batch).await.unwrap();
        assert!(report.unknown_models.contains(PROFILE), "{report:?}");
    }
    // The table's highest rates, in-region ($15 / $75 × 1.1 is the most any row costs):
    // $0.0165 + $0.825 per call, never nothing.
    assert_eq!(metered(&account, &cid).await, 2 * 841_500);
    let reports = fail_closed_reports(&account).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0]["model"], PROFILE);
    assert!(
        reports[0]["profile_not_resolved"]
            .as_str()
            .is_some_and(|why| why.contains("not found")),
        "{reports:?}"
    );
    assert_eq!(gone.num_calls(), 1, "asked again only after an hour");
}

#[tokio::test]
async fn a_throttled_lookup_counts_nothing_and_the_redelivery_counts_once_at_the_right_price() {
    let account = Account::new().await;
    let throttled = mock!(aws_sdk_bedrock::Client::get_inference_profile)
        .sequence()
        .error(|| {
            GetInferenceProfileError::ThrottlingException(
                ThrottlingException::builder()
                    .message("Rate exceeded")
                    .build(),
            )
        })
        .build();
    let resolve = routes_to_sonnet();
    let app = app_with(&account, &[&throttled, &resolve]);
    let dee = person(&account, &app, "dee").await;
    let batch = logs_batch(&[call(&dee, "r-dee-1", PROFILE)]);
    let failed = app.handle_metering(batch.clone()).await;
    assert!(
        matches!(failed, Err(seatcap::metering::MeteringError::Profile(_))),
        "{failed:?}"
    );
    assert_eq!(metered(&account, &dee).await, 0, "nothing counted");
    let retried = app.handle_metering(batch).await.unwrap();
    assert_eq!(retried.counted, 1, "{retried:?}");
    assert_eq!(metered(&account, &dee).await, 168_300);
}

/// A record with no token counts, as an image or video model's is: `input` and `output`
/// are the envelope's fields (bodies included when the deployer logs them).
fn tokenless(
    identity: &PrincipalArn,
    request: &str,
    model: &str,
    input: Value,
    output: Value,
) -> Value {
    let mut record = invocation_record(identity.as_str(), request, model, 0);
    record["input"] = input;
    record["output"] = output;
    record
}

#[tokio::test]
async fn images_video_and_embeddings_are_priced_by_their_own_unit_never_as_nothing() {
    let account = Account::new().await;
    let app = account.app(&[], Arc::new(Utc::now));
    let eve = person(&account, &app, "eve").await;
    let metering = Function::start(binary("metering"), &account.env()).await;
    let json_type = json!({"inputContentType": "application/json"});
    let records = vec![
        // Nova Canvas, image data logged: the body's 2 images at $0.08.
        tokenless(
            &eve,
            "r-canvas",
            "amazon.nova-canvas-v1:0",
            json_type.clone(),
            json!({"outputContentType": "application/json",
                "outputBodyJson": {"images": ["<base64>", "<base64>"]}}),
        ),
        // Titan Image v2 with a prompt's token count and no body: one image at $0.012,
        // not the prompt's tokens.
        tokenless(
            &eve,
            "r-titan",
            "amazon.titan-image-generator-v2:0",
            json!({"inputContentType": "application/json", "inputTokenCount": 14}),
            json!({"outputContentType": "application/json"}),
        ),
        // Nova Reel asked for 12 seconds: $0.96.
        tokenless(
            &eve,
            "r-reel",
            "amazon.nova-reel-v1:1",
            json!({"inputBodyJson": {"videoGenerationConfig": {"durationSeconds": 12}}}),
            json!({}),
        ),
        // Titan Text Embeddings v2: 50,000 input tokens at $0.02 per million, $0.001.
        tokenless(
            &eve,
            "r-embed",
            "amazon.titan-embed-text-v2:0",
            json!({"inputContentType": "application/json", "inputTokenCount": 50_000}),
            json!({"outputContentType": "application/json"}),
        ),
        // A model neither table knows, no counts: the highest image rate, $0.14.
        tokenless(
            &eve,
            "r-paint",
            "acme.paint-9",
            json_type.clone(),
            json!({}),
        ),
        // A failed call says so: nothing.
        {
            let mut failed = tokenless(
                &eve,
                "r-failed",
                "amazon.nova-canvas-v1:0",
                json!({}),
                json!({}),
            );
            failed["errorCode"] = json!("ValidationException");
            failed
        },
    ];
    let report = metering
        .invoke(&logs_batch(&records))
        .await
        .expect_response();
    assert_eq!(report["counted"], 5, "{report}");
    assert_eq!(report["unit_priced_calls"], 4, "{report}");
    assert_eq!(report["without_tokens"], 1, "{report}");
    assert_eq!(
        report["units_assumed"],
        json!(["acme.paint-9", "amazon.titan-image-generator-v2:0"]),
        "{report}"
    );
    // $0.16 + $0.012 + $0.96 + $0.001 + $0.14.
    assert_eq!(metered(&account, &eve).await, 1_273_000, "in micro-dollars");

    // Each fail-closed model reported once this month, with what it was priced as; a
    // fresh process meeting them again reports nothing new.
    let again = Function::start(binary("metering"), &account.env()).await;
    let mut later = records[1].clone();
    later["requestId"] = json!("r-titan-2");
    again.invoke(&logs_batch(&[later])).await.expect_response();
    let reports = fail_closed_reports(&account).await;
    assert_eq!(reports.len(), 2, "{reports:?}");
    let titan = reports
        .iter()
        .find(|r| r["model"] == "amazon.titan-image-generator-v2:0")
        .unwrap();
    assert!(
        titan["priced_as"]
            .as_str()
            .unwrap()
            .contains("priced as one"),
        "{titan}"
    );
}
