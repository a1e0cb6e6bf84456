//! The Slack webhook from AWS Secrets Manager or SSM Parameter Store (moto's), read once per
//! cold start, and never written to a log, an audit event or an error message.

use std::collections::HashMap;

use seatcap::ledger::EventKind;
use seatcap_tests::{Account, Function, SlackReceiver, binary, sns_event, todays_budget_alert};
use serde_json::json;

/// The part of the receiver's webhook URL that makes a Slack webhook URL a credential.
const SECRET_PATH: &str = "/services/T000/B000/SECRET";

async fn alice_capped(account: &Account, admin: &Function) -> seatcap::principal::PrincipalArn {
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let answer = admin
        .invoke(&json!({"action": "set_cap", "principal": alice.as_str(),
            "budget": "seatcap-alice", "cap_usd": "200", "actor": "finance", "reason": "seat"}))
        .await
        .expect_response();
    assert_eq!(answer["ok"], true, "{answer}");
    alice
}

fn env_with(account: &Account, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = account.env();
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    env
}

fn alert(id: &str, threshold: &str, amount: &str) -> serde_json::Value {
    sns_event(
        id,
        &todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", threshold, amount),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_is_read_from_secrets_manager_once_per_cold_start() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&account.sdk);
    // The JSON key/value shape the console suggests; a plain string works as well.
    let arn = secrets
        .create_secret()
        .name("seatcap/slack-webhook")
        .secret_string(json!({"url": slack.url.clone()}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let env = env_with(&account, &[("SEATCAP_SLACK_WEBHOOK_SECRET", &arn)]);
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    let alice = alice_capped(&account, &admin).await;

    alerts
        .invoke(&alert("m-80", "160.00", "161.00"))
        .await
        .expect_response();
    assert_eq!(slack.received().len(), 1, "posted with the secret's URL");

    // Deleted after the first read: this cold start keeps what it read.
    secrets
        .delete_secret()
        .secret_id(&arn)
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    alerts
        .invoke(&alert("m-100", "200.00", "201.00"))
        .await
        .expect_response();
    assert_eq!(slack.received().len(), 2);
    assert!(account.attached(&alice).await.is_empty());

    for line in alerts.logs().iter().chain(admin.logs().iter()) {
        assert!(
            !line.contains(SECRET_PATH),
            "the webhook URL was logged: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_can_be_an_ssm_secure_string() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    let ssm = aws_sdk_ssm::Client::new(&account.sdk);
    ssm.put_parameter()
        .name("/seatcap/slack-webhook")
        .value(slack.url.clone())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let arn = format!(
        "arn:aws:ssm:us-east-1:{}:parameter/seatcap/slack-webhook",
        account.id
    );
    let env = env_with(&account, &[("SEATCAP_SLACK_WEBHOOK_SECRET", &arn)]);
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    alice_capped(&account, &admin).await;

    alerts
        .invoke(&alert("m-80", "160.00", "161.00"))
        .await
        .expect_response();
    let received = slack.received();
    assert_eq!(received.len(), 1);
    assert!(
        received[0]["blocks"].is_array(),
        "Block Kit: {}",
        received[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_that_holds_no_url_is_a_delivery_failure_that_never_shows_its_value() {
    let account = Account::new().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&account.sdk);
    let arn = secrets
        .create_secret()
        .name("seatcap/slack-webhook")
        .secret_string("xoxb-not-a-url-SECRETVALUE")
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let env = env_with(&account, &[("SEATCAP_SLACK_WEBHOOK_SECRET", &arn)]);
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    let alice = alice_capped(&account, &admin).await;

    alerts
        .invoke(&alert("m-100", "200.00", "230.00"))
        .await
        .expect_response();
    assert!(
        account.attached(&alice).await.is_empty(),
        "enforced all the same"
    );
    let history = account.history(&alice).await;
    let failure = history
        .iter()
        .find(|e| e.kind == EventKind::NotificationFailed)
        .expect("the failed delivery is audited");
    let detail = failure.detail.to_string();
    assert!(detail.contains("not an http(s) URL"), "{detail}");
    assert!(!detail.contains("SECRETVALUE"), "{detail}");
    for line in alerts.logs() {
        assert!(
            !line.contains("SECRETVALUE"),
            "the secret was logged: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_webhook_url_never_reaches_the_logs_even_when_slack_fails() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.answer_with(500, "internal_error");
    let url = slack.url.clone();
    let env = env_with(
        &account,
        &[("SEATCAP_SLACK_WEBHOOK_URL", &url), ("RUST_LOG", "debug")],
    );
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    alice_capped(&account, &admin).await;

    alerts
        .invoke(&alert("m-100", "200.00", "230.00"))
        .await
        .expect_response();
    let logs = alerts.logs();
    assert!(
        logs.iter().any(|l| l.contains("500")),
        "the failure is logged"
    );
    for line in logs.iter().chain(admin.logs().iter()) {
        assert!(
            !line.contains(SECRET_PATH),
            "the webhook URL was logged: {line}"
        );
    }
}
