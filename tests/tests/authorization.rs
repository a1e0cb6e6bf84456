//! End to end through IAM's own evaluation, as far as moto's can show it: a developer's real
//! `bedrock-runtime` InvokeModel call, signed with their access key, works before the cap,
//! is denied after seatcap cuts them off (detach mode and deny mode), and works again after
//! finance restores them. Runs on a moto server of its own, with authorization switched on
//! (`/moto-api/reset-auth`), so other tests' servers are unaffected.
//!
//! What moto cannot show: the per-person deny on a shared role. Its evaluation supplies no
//! `aws:userid` to conditions, so a condition on it never matches there; that mode is tested
//! on what it writes to IAM (tests/tests/enforcement_modes.rs).

use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::principal::PrincipalArn;
use seatcap_tests::moto::MotoServer;
use seatcap_tests::{Account, budget_alert};
use serde_json::json;

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

struct Developer {
    principal: PrincipalArn,
    access_key_id: String,
    secret_access_key: String,
}

/// An IAM user with the Bedrock policy and an access key of their own.
async fn developer(account: &Account, name: &str) -> Developer {
    let principal = account
        .create_principal("user", name, &[&account.bedrock_policy_arn])
        .await;
    let key = account
        .iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .unwrap()
        .access_key
        .unwrap();
    Developer {
        principal,
        access_key_id: key.access_key_id,
        secret_access_key: key.secret_access_key,
    }
}

/// The developer calls InvokeModel; returns the HTTP status moto answers.
async fn invoke_model(endpoint: &str, developer: &Developer) -> u16 {
    let host = "bedrock-runtime.us-east-1.amazonaws.com";
    let path = format!("/model/{}/invoke", MODEL.replace(':', "%3A"));
    let body =
        json!({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 10}).to_string();
    let identity = Credentials::new(
        &developer.access_key_id,
        &developer.secret_access_key,
        None,
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("bedrock")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let headers = [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("host", host),
    ];
    let signable = SignableRequest::new(
        "POST",
        format!("https://{host}{path}"),
        headers.into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = reqwest::Client::new()
        .post(format!("{endpoint}{path}"))
        .body(body);
    for (name, value) in headers.into_iter().chain(instructions.headers()) {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status >= 500 {
        panic!("moto failed: {}", response.text().await.unwrap_or_default());
    }
    status
}

fn app(account: &Account, extra: &[(&str, &str)]) -> App {
    account.app(
        extra,
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_off_developers_own_calls_are_denied_until_finance_restores_them() {
    let server = MotoServer::start().unwrap();
    let account = Account::on(&server).await;
    let detached = developer(&account, "alice").await;
    let denied = developer(&account, "bob").await;
    let colleague = developer(&account, "carol").await;
    let no_bedrock = {
        let d = developer(&account, "dave").await;
        account
            .iam
            .detach_user_policy()
            .user_name("dave")
            .policy_arn(&account.bedrock_policy_arn)
            .send()
            .await
            .unwrap();
        d
    };
    account.authorization_on().await;

    let endpoint = &account.endpoint;
    assert_eq!(
        invoke_model(endpoint, &detached).await,
        200,
        "allowed before the cap"
    );
    assert_ne!(
        invoke_model(endpoint, &no_bedrock).await,
        200,
        "moto does evaluate IAM here: without the policy the call is refused"
    );

    let detach_app = app(&account, &[]);
    let deny_app = app(&account, &[("SEATCAP_ENFORCEMENT", "deny")]);
    for (app, dev, budget) in [
        (&detach_app, &detached, "seatcap-alice"),
        (&deny_app, &denied, "seatcap-bob"),
        (&detach_app, &colleague, "seatcap-carol"),
    ] {
        let answer = app
            .handle_admin(
                json!({"action": "set_cap", "principal": dev.principal.as_str(),
                "budget": budget, "cap_usd": "200", "actor": "finance", "reason": "seat"}),
            )
            .await
            .unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
    }
    for (app, budget) in [(&detach_app, "seatcap-alice"), (&deny_app, "seatcap-bob")] {
        let alert = budget_alert(budget, "ACTUAL", "200.00", "200.00", "230.00");
        app.handle_delivery(&format!("m-{budget}"), &alert)
            .await
            .unwrap();
    }

    assert_eq!(
        invoke_model(endpoint, &detached).await,
        403,
        "detached: no allow left"
    );
    assert_eq!(
        invoke_model(endpoint, &denied).await,
        403,
        "denied: explicit deny wins"
    );
    assert_eq!(
        invoke_model(endpoint, &colleague).await,
        200,
        "a colleague is untouched"
    );

    for (app, dev) in [(&detach_app, &detached), (&deny_app, &denied)] {
        let answer = app
            .handle_admin(
                json!({"action": "restore", "principal": dev.principal.as_str(),
                "actor": "finance", "reason": "approved"}),
            )
            .await
            .unwrap();
        assert_eq!(answer["restored"], true, "{answer}");
        assert_eq!(invoke_model(endpoint, dev).await, 200, "{}", dev.principal);
    }
}
