//! The real Lambda binaries, end to end, against moto: what a deployment does.

use std::collections::HashMap;

use seatcap_tests::{
    Account, Function, Invocation, SlackReceiver, binary, sns_event, todays_budget_alert,
};
use serde_json::{Value, json};

struct Deployment {
    account: Account,
    slack: SlackReceiver,
    alerts: Function,
    admin: Function,
}

async fn deploy(extra_env: &[(&str, &str)]) -> Deployment {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    let mut env: HashMap<String, String> = account.env();
    env.insert("SEATCAP_SLACK_WEBHOOK_URL".into(), slack.url.clone());
    for (k, v) in extra_env {
        env.insert((*k).into(), (*v).into());
    }
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    Deployment {
        account,
        slack,
        alerts,
        admin,
    }
}

fn set_cap(principal: &str, budget: &str, cap: &str) -> Value {
    json!({"action": "set_cap", "principal": principal, "budget": budget, "cap_usd": cap,
           "actor": "finance@example.com", "reason": "Q4 project"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_at_the_cap_cuts_access_and_finance_restores_it() {
    let d = deploy(&[]).await;
    let a = &d.account;
    let alice = a
        .create_principal(
            "user",
            "alice",
            &[&a.bedrock_policy_arn, &a.other_policy_arn],
        )
        .await;

    let answer = d
        .admin
        .invoke(&set_cap(alice.as_str(), "seatcap-alice", "200.00"))
        .await
        .expect_response();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["status"], "active");
    assert_eq!(answer["cap_usd"], "200.00");

    for (id, threshold, amount) in [
        ("m-50", "100.00", "104.10"),
        ("m-80", "160.00", "161.00"),
        ("m-100", "200.00", "201.50"),
    ] {
        let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", threshold, amount);
        let result = d
            .alerts
            .invoke(&sns_event(id, &alert))
            .await
            .expect_response();
        assert_eq!(result["reports"][0]["result"], "handled", "{result}");
    }

    // Only the managed Bedrock policy is gone; the other one was never seatcap's to touch.
    assert_eq!(a.attached(&alice).await, vec![a.other_policy_arn.clone()]);
    let status = d
        .admin
        .invoke(&json!({"action": "status", "principal": alice.as_str()}))
        .await
        .expect_response();
    assert_eq!(status["status"], "blocked", "{status}");
    assert_eq!(
        status["detached_policy_arns"],
        json!([a.bedrock_policy_arn])
    );

    let messages = d.slack.received();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(
        messages[0]["text"].as_str().unwrap().contains("50%"),
        "{}",
        messages[0]
    );
    assert!(
        messages[1]["text"].as_str().unwrap().contains("80%"),
        "{}",
        messages[1]
    );
    assert!(
        messages[2]["text"].as_str().unwrap().contains("cut off"),
        "{}",
        messages[2]
    );

    let restore = json!({"action": "restore", "principal": alice.as_str(), "actor": "finance@example.com", "reason": "approved"});
    let restored = d.admin.invoke(&restore).await.expect_response();
    assert_eq!(
        (restored["ok"].clone(), restored["status"].clone()),
        (json!(true), json!("active")),
        "{restored}"
    );
    let mut expected = vec![a.bedrock_policy_arn.clone(), a.other_policy_arn.clone()];
    expected.sort();
    assert_eq!(a.attached(&alice).await, expected);
    assert!(
        d.slack.received().last().unwrap()["text"]
            .as_str()
            .unwrap()
            .contains("restored")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_admin_requests_are_refused_and_change_nothing() {
    let d = deploy(&[]).await;
    let a = &d.account;
    let alice = a
        .create_principal("user", "alice", &[&a.bedrock_policy_arn])
        .await;
    d.admin
        .invoke(&set_cap(alice.as_str(), "seatcap-alice", "200.00"))
        .await
        .expect_response();
    let before = d
        .admin
        .invoke(&json!({"action": "status", "principal": alice.as_str()}))
        .await
        .expect_response();

    let bad = [
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": "-5", "actor": "f", "reason": "r"}),
            "invalid_amount",
        ),
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": "12.345", "actor": "f", "reason": "r"}),
            "invalid_amount",
        ),
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": "0", "actor": "f", "reason": "r"}),
            "invalid_amount",
        ),
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": "9999999", "actor": "f", "reason": "r"}),
            "invalid_amount",
        ),
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": 300, "actor": "f", "reason": "r"}),
            "invalid_request",
        ),
        (
            json!({"action": "set_cap", "principal": "alice", "budget": "seatcap-alice", "cap_usd": "300", "actor": "f", "reason": "r"}),
            "invalid_principal",
        ),
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": "300", "actor": "f", "reason": " "}),
            "invalid_request",
        ),
        (
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice", "cap_usd": "300", "actor": "f", "reason": "r", "force": true}),
            "invalid_request",
        ),
        (json!({"action": "drop_table"}), "unknown_action"),
        (
            json!({"action": "restore", "principal": alice.as_str()}),
            "invalid_request",
        ),
        (json!("set_cap"), "invalid_request"),
    ];
    for (request, code) in bad {
        let answer = d.admin.invoke(&request).await.expect_response();
        assert_eq!(answer["ok"], false, "{request} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{request} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let after = d
        .admin
        .invoke(&json!({"action": "status", "principal": alice.as_str()}))
        .await
        .expect_response();
    assert_eq!(before, after, "a refused request changed the ledger");
    assert_eq!(a.attached(&alice).await, vec![a.bedrock_policy_arn.clone()]);

    let unknown = d
        .admin
        .invoke(&json!({"action": "status", "principal": a.principal("user", "nobody").as_str()}))
        .await;
    assert_eq!(unknown.expect_response()["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_and_unmanaged_alerts_are_recorded_and_not_retried() {
    let d = deploy(&[]).await;
    let garbage = d
        .alerts
        .invoke(&sns_event("m-garbage", "hello, not a budget"))
        .await
        .expect_response();
    assert_eq!(garbage["reports"][0]["result"], "rejected", "{garbage}");
    assert!(
        garbage["reports"][0]["error"]
            .as_str()
            .unwrap()
            .contains("AWS Budget Notification")
    );

    let stranger = todays_budget_alert("someone-elses-budget", "ACTUAL", "50.00", "50.00", "75.00");
    let unmanaged = d
        .alerts
        .invoke(&sns_event("m-stranger", &stranger))
        .await
        .expect_response();
    assert_eq!(
        unmanaged["reports"][0]["result"], "unmanaged",
        "{unmanaged}"
    );

    let audit = d
        .account
        .ledger()
        .history(&seatcap::ledger::Subject::UnownedAlerts, 10)
        .await
        .unwrap();
    let kinds: Vec<_> = audit.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            seatcap::ledger::EventKind::AlertUnmanaged,
            seatcap::ledger::EventKind::AlertRejected
        ]
    );

    let again = d
        .alerts
        .invoke(&sns_event("m-garbage", "hello, not a budget"))
        .await
        .expect_response();
    assert_eq!(again["reports"][0]["result"], "duplicate");
    assert!(d.slack.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infrastructure_failure_is_a_function_error_so_sns_retries() {
    // The table does not exist in this account: every ledger call fails.
    let d = deploy(&[("SEATCAP_TABLE", "no-such-table")]).await;
    let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "250.00");
    match d.alerts.invoke(&sns_event("m-1", &alert)).await {
        Invocation::Error(error) => assert!(error.to_string().contains("DynamoDB"), "{error}"),
        Invocation::Response(r) => panic!("expected a function error, got {r}"),
    }
    match d
        .admin
        .invoke(
            &json!({"action": "status", "principal": d.account.principal("user", "a").as_str()}),
        )
        .await
    {
        Invocation::Error(error) => assert!(error.to_string().contains("DynamoDB"), "{error}"),
        Invocation::Response(r) => panic!("expected a function error, got {r}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_stops_the_cold_start_with_a_clear_message() {
    let account = Account::new().await;
    let mut env = account.env();
    env.insert("SEATCAP_MODE".into(), "yolo".into());
    let function = Function::start(binary("budget-alert"), &env).await;
    let (code, logs, _) = function.wait_for_exit().await;
    assert_ne!(code, Some(0));
    let log = logs.join("\n");
    assert!(
        log.contains("SEATCAP_MODE=`yolo`: expected `enforce` or `dry-run`"),
        "{log}"
    );
}
