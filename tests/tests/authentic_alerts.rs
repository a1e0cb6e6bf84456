//! Only SNS's own deliveries from the alert topic are alerts. An in-account invoker who sends
//! budget-alert a forged message (`seatcap-alice`, threshold `> $200.00`, amount `$1.00`)
//! must not claim that alert's natural key and so suppress the real 100 % alert. The
//! built binary, pinned to the tests' own signing certificate (`SEATCAP_SNS_CERT_PEM`).

use std::collections::HashMap;

use seatcap::ledger::{EventKind, Subject};
use seatcap_tests::{
    ALERT_TOPIC, Account, Function, binary, sign_sns_record, sns_event, todays_budget_alert,
    unsigned_sns_event,
};
use serde_json::{Value, json};

struct Deployed {
    account: Account,
    alerts: Function,
}

async fn deploy(extra: &[(&str, &str)]) -> Deployed {
    let account = Account::new().await;
    let mut env: HashMap<String, String> = account.env();
    env.insert("SEATCAP_ALERT_TOPIC_ARN".into(), ALERT_TOPIC.into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let admin = Function::start(binary("admin"), &env).await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let answer = admin
        .invoke(&json!({"action": "set_cap", "principal": alice.as_str(),
            "budget": "seatcap-alice", "cap_usd": "200", "actor": "finance", "reason": "seat"}))
        .await
        .expect_response();
    assert_eq!(answer["ok"], true, "{answer}");
    let alerts = Function::start(binary("budget-alert"), &env).await;
    Deployed { account, alerts }
}

fn forged_text() -> String {
    todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "1.00")
}

fn real_text() -> String {
    todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "212.00")
}

impl Deployed {
    async fn deliver(&self, event: &Value) -> Value {
        self.alerts.invoke(event).await.expect_response()["reports"][0].clone()
    }

    async fn cut(&self) -> bool {
        let alice = self.account.principal("user", "alice");
        self.account.attached(&alice).await.is_empty()
    }

    /// The rejections audited under the unowned-alerts subject, with their reasons.
    async fn rejections(&self) -> Vec<String> {
        self.account
            .ledger()
            .history(&Subject::UnownedAlerts, 50)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == EventKind::AlertRejected)
            .map(|e| e.detail["error"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Unsigned, wrongly signed (the message changed after signing) and from another topic:
/// each is refused with its reason and claims nothing; the real alert afterwards cuts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_deliveries_change_nothing_and_the_real_alert_still_cuts() {
    let deployed = deploy(&[]).await;

    let unsigned = unsigned_sns_event("m-forged-1", &forged_text());
    let mut tampered = sns_event("m-forged-2", &real_text());
    tampered["Records"][0]["Sns"]["Message"] = forged_text().into();
    let mut elsewhere = unsigned_sns_event("m-forged-3", &forged_text());
    let other_topic = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic";
    elsewhere["Records"][0]["Sns"]["TopicArn"] = other_topic.into();
    sign_sns_record(&mut elsewhere["Records"][0]["Sns"], "1");
    let mut foreign_certificate = unsigned_sns_event("m-forged-4", &forged_text());
    foreign_certificate["Records"][0]["Sns"]["SigningCertUrl"] =
        "https://attacker.example.com/cert.pem".into();

    for (event, reason) in [
        (&unsigned, "`Signature` field is missing"),
        (&tampered, "does not verify"),
        (&elsewhere, "someone-elses-topic"),
    ] {
        let report = deployed.deliver(event).await;
        assert_eq!(report["result"], "rejected", "{report}");
        assert!(
            report["error"].as_str().unwrap().contains(reason),
            "{report}"
        );
        assert!(!deployed.cut().await);
    }
    // A pinned certificate (tests, air-gapped accounts) does not excuse a delivery naming a
    // certificate that is not SNS's own.
    let report = deployed.deliver(&foreign_certificate).await;
    assert_eq!(report["result"], "rejected", "{report}");
    assert_eq!(deployed.rejections().await.len(), 4);

    // Under the first forgery's MessageId even: no claim of it was written.
    let real = deployed
        .deliver(&sns_event("m-forged-1", &real_text()))
        .await;
    assert_eq!(real["outcome"], "enforce", "{real}");
    assert!(deployed.cut().await);
}

/// SignatureVersion 2 (SHA256withRSA), which a topic may be set to, is accepted too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signature_version_2_is_verified_too() {
    let deployed = deploy(&[]).await;
    let mut event = unsigned_sns_event("m-v2", &real_text());
    sign_sns_record(&mut event["Records"][0]["Sns"], "2");
    let report = deployed.deliver(&event).await;
    assert_eq!(report["outcome"], "enforce", "{report}");
    assert!(deployed.cut().await);
}

/// Without a pinned certificate, the one the message names is fetched only from SNS's own
/// host: a forger's URL is refused before anything is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_anywhere_but_sns_is_refused() {
    let deployed = deploy(&[("SEATCAP_SNS_CERT_PEM", "")]).await;
    let mut event = unsigned_sns_event("m-cert", &forged_text());
    event["Records"][0]["Sns"]["SigningCertUrl"] = "https://attacker.example.com/sns.pem".into();
    sign_sns_record(&mut event["Records"][0]["Sns"], "1");
    let report = deployed.deliver(&event).await;
    assert_eq!(report["result"], "rejected", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("attacker.example.com"),
        "{report}"
    );
    assert!(!deployed.cut().await);
}

/// `SEATCAP_SNS_SIGNATURE=off` (local runs only) takes an unsigned delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_check_off_an_unsigned_delivery_is_taken() {
    let deployed = deploy(&[("SEATCAP_SNS_SIGNATURE", "off")]).await;
    let report = deployed
        .deliver(&unsigned_sns_event("m-off", &real_text()))
        .await;
    assert_eq!(report["outcome"], "enforce", "{report}");
}

/// What anyone with `sns:Publish` on the alert topic could send, signed by SNS itself: an
/// ACTUAL "$1.00 > $200.00". Budgets never sends an amount at or under its threshold, so it
/// is refused before any claim, and the real alert after it still cuts. So is a delivery
/// naming another region's certificate than the topic's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_budgets_could_not_have_sent_claims_nothing() {
    let deployed = deploy(&[]).await;
    let report = deployed
        .deliver(&sns_event("m-published", &forged_text()))
        .await;
    assert_eq!(report["result"], "rejected", "{report}");
    assert!(
        report["error"]
            .as_str()
            .unwrap()
            .contains("not above its threshold"),
        "{report}"
    );
    let mut other_region = unsigned_sns_event("m-region", &real_text());
    other_region["Records"][0]["Sns"]["SigningCertUrl"] =
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-0000.pem".into();
    sign_sns_record(&mut other_region["Records"][0]["Sns"], "1");
    let report = deployed.deliver(&other_region).await;
    assert_eq!(report["result"], "rejected", "{report}");
    assert!(
        report["error"].as_str().unwrap().contains("eu-west-1"),
        "{report}"
    );
    assert!(!deployed.cut().await);

    let real = deployed.deliver(&sns_event("m-real", &real_text())).await;
    assert_eq!(real["outcome"], "enforce", "{real}");
    assert!(deployed.cut().await);
}

/// The alert topic's policy lets Budgets publish and denies everyone else (cfn-lint and
/// checkov check the template's syntax in CI; this checks what it says).
#[test]
fn the_alert_topic_denies_publishing_to_all_but_budgets() {
    let path = seatcap_tests::moto::workspace_root().join("template.yaml");
    let template: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let statements =
        template["Resources"]["AlertTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
            .as_sequence()
            .unwrap()
            .clone();
    let deny = statements
        .iter()
        .find(|s| s["Effect"].as_str() == Some("Deny"))
        .expect("a Deny statement");
    assert_eq!(deny["Principal"].as_str(), Some("*"));
    assert_eq!(deny["Action"].as_str(), Some("sns:Publish"));
    assert_eq!(
        deny["Condition"]["StringNotEquals"]["aws:PrincipalServiceName"].as_str(),
        Some("budgets.amazonaws.com")
    );
}
