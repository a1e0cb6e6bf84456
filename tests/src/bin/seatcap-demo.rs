//! The local demo: the real budget-alert and admin binaries against the moto emulator.
//! An alert comes in, access is cut, Slack shows it, finance restores it.
//!
//! Run it with `./scripts/demo` (which installs the emulator and builds the binaries first).

use seatcap::ledger::Subject;
use seatcap_tests::{Account, Function, SlackReceiver, binary, budget_alert, moto, sns_event};
use serde_json::{Value, json};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    step(
        "Local AWS",
        &format!("moto server (the AWS emulator) on {}", moto().endpoint),
    );
    let account = Account::new().await;
    println!(
        "  account {} · ledger table `{}` created from template.yaml",
        account.id, account.table
    );

    let alice = account
        .create_principal(
            "user",
            "alice",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    println!("  IAM user {alice}");
    print_policies(&account, &alice).await;

    let slack = SlackReceiver::start().await;
    let mut env = account.env();
    env.insert("SEATCAP_SLACK_WEBHOOK_URL".into(), slack.url.clone());
    env.insert(
        "SEATCAP_FINANCE_CONTACT".into(),
        "finance@example.com".into(),
    );
    env.insert("RUST_LOG".into(), "warn".into());
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    println!(
        "  functions running: budget-alert, admin (built binaries under a Lambda Runtime API)"
    );

    step("Finance sets Alice's cap", "admin ← set_cap $200.00");
    let answer = admin
        .invoke(
            &json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "200.00", "actor": "finance@example.com", "reason": "Q4 Claude Code seat"}),
        )
        .await
        .expect_response();
    println!(
        "  {}",
        compact(&answer, &["ok", "status", "cap_usd", "budget"])
    );

    for (message_id, threshold, amount, label) in [
        ("demo-50", "100.00", "104.10", "50 %"),
        ("demo-80", "160.00", "163.75", "80 %"),
        ("demo-100", "200.00", "201.20", "100 %"),
    ] {
        step(
            &format!("AWS Budgets alert: {label}"),
            &format!("SNS → budget-alert (ACTUAL ${amount} of $200.00)"),
        );
        let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", threshold, amount);
        let result = alerts
            .invoke(&sns_event(message_id, &alert))
            .await
            .expect_response();
        let report = &result["reports"][0];
        println!(
            "  outcome: {} {}",
            report["outcome"].as_str().unwrap_or("?"),
            report["policies"]
        );
        if let Some(message) = slack.received().last() {
            print_slack(message);
        }
    }

    step(
        "The same 100 % alert delivered again",
        "SNS at-least-once: a no-op",
    );
    let again = alerts
        .invoke(&sns_event(
            "demo-100",
            &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "201.20"),
        ))
        .await
        .expect_response();
    println!(
        "  result: {} · Slack messages so far: {}",
        again["reports"][0]["result"],
        slack.received().len()
    );

    step("Where Alice stands", "admin ← status, and IAM");
    let status = admin
        .invoke(&json!({"action": "status", "principal": alice.as_str()}))
        .await
        .expect_response();
    println!(
        "  {}",
        compact(
            &status,
            &[
                "status",
                "cap_usd",
                "last_actual_usd",
                "detached_policy_arns"
            ]
        )
    );
    print_policies(&account, &alice).await;

    step("Finance restores Alice", "admin ← restore");
    let restored = admin
        .invoke(&json!({"action": "restore", "principal": alice.as_str(), "actor": "finance@example.com",
            "reason": "approved: release week"}))
        .await
        .expect_response();
    println!(
        "  {}",
        compact(&restored, &["ok", "status", "reattached_policy_arns"])
    );
    if let Some(message) = slack.received().last() {
        print_slack(message);
    }
    print_policies(&account, &alice).await;

    step("Audit trail", "ledger, newest first");
    let history = account
        .ledger()
        .history(&Subject::Principal(alice.clone()), 20)
        .await
        .expect("history");
    for event in history {
        let outcome = event.detail["decision"]["outcome"].as_str().unwrap_or("");
        println!(
            "  {}  {:<20} {:<22} {}",
            event.at.format("%H:%M:%S%.3f"),
            format!("{:?}", event.kind),
            event.actor,
            if outcome.is_empty() {
                event.reason.unwrap_or_default()
            } else {
                outcome.to_owned()
            }
        );
    }
    println!("\nDone. Everything above ran against the local emulator; nothing reached AWS.");
}

fn step(title: &str, detail: &str) {
    println!("\n▶ {title}\n  {detail}");
}

async fn print_policies(account: &Account, principal: &seatcap::principal::PrincipalArn) {
    let names: Vec<String> = account
        .attached(principal)
        .await
        .iter()
        .map(|arn| arn.rsplit('/').next().unwrap_or(arn).to_owned())
        .collect();
    println!(
        "  IAM policies attached to {}: {}",
        principal.name(),
        if names.is_empty() {
            "(none)".into()
        } else {
            names.join(", ")
        }
    );
}

fn print_slack(message: &Value) {
    println!("  ┌ Slack: {}", message["text"].as_str().unwrap_or(""));
    for block in message["blocks"].as_array().into_iter().flatten() {
        for field in block["fields"].as_array().into_iter().flatten() {
            println!(
                "  │ {}",
                field["text"].as_str().unwrap_or("").replace('\n', ": ")
            );
        }
        if block["type"] == "section"
            && let Some(text) = block["text"]["text"].as_str()
        {
            println!("  │ {text}");
        }
    }
    println!("  └");
}

fn compact(value: &Value, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| format!("{k}={}", value[*k]))
        .collect::<Vec<_>>()
        .join(" ")
}
