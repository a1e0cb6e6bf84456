//! The local demo: the real budget-alert and admin binaries against the moto emulator.
//! An alert comes in, access is cut, Slack shows it, finance restores it.
//!
//! Run it with `./scripts/demo` (which installs the emulator and builds the binaries first).

use std::collections::HashMap;
use std::sync::Arc;

use seatcap_tests::{
    Account, Function, SlackReceiver, binary, moto, serve_function_url, serve_invoke_api,
    sns_event, todays_budget_alert,
};
use serde_json::Value;

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
    // The admin as the template deploys it: finance only, through its Function URL.
    let mut admin_env = env.clone();
    admin_env.insert(
        "SEATCAP_FINANCE_PRINCIPALS".into(),
        format!("arn:aws:sts::{}:assumed-role/Finance/*", account.id),
    );
    admin_env.insert("SEATCAP_DIRECT_INVOKE".into(), "off".into());
    let admin = Arc::new(Function::start(binary("admin"), &admin_env).await);
    println!(
        "  functions running: budget-alert, admin (built binaries under a Lambda Runtime API)"
    );
    let finance_signer = account.signer("Finance", "finance@example.com").await;
    let admin_url = serve_function_url(admin.clone(), std::slice::from_ref(&finance_signer)).await;
    let invoke_url = serve_invoke_api(
        HashMap::from([("seatcap-admin".to_owned(), admin)]),
        HashMap::from([("seatcap-admin".to_owned(), admin_url.clone())]),
    )
    .await;
    let mut finance = account.env();
    finance.extend(finance_signer.env().map(|(k, v)| (k.to_owned(), v)));
    finance.insert("AWS_ENDPOINT_URL_LAMBDA".into(), invoke_url.clone());
    println!(
        "  finance's `seatcap` CLI signs its requests (SigV4) to the admin's Function URL at \
         {admin_url},\n  which checks the signature as Lambda does: the audit names {}",
        finance_signer.arn
    );

    step("Finance sets Alice's cap", "");
    seatcap(
        &finance,
        &["set-cap", "alice", "200", "--reason", "Q4 Claude Code seat"],
    )
    .await;

    for (message_id, threshold, amount, label) in [
        ("demo-50", "100.00", "104.10", "50 %"),
        ("demo-80", "160.00", "163.75", "80 %"),
        ("demo-100", "200.00", "201.20", "100 %"),
    ] {
        step(
            &format!("AWS Budgets alert: {label}"),
            &format!("SNS → budget-alert (ACTUAL ${amount} of $200.00)"),
        );
        let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", threshold, amount);
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
    let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "201.20");
    let again = alerts
        .invoke(&sns_event("demo-100", &alert))
        .await
        .expect_response();
    println!(
        "  result: {} · Slack messages so far: {}",
        again["reports"][0]["result"],
        slack.received().len()
    );

    step("Where Alice stands", "");
    seatcap(&finance, &["list", "--blocked"]).await;
    print_policies(&account, &alice).await;

    step("Finance restores Alice", "");
    seatcap(
        &finance,
        &["restore", "alice", "--reason", "approved: release week"],
    )
    .await;
    if let Some(message) = slack.received().last() {
        print_slack(message);
    }
    print_policies(&account, &alice).await;

    step("Audit trail", "");
    seatcap(&finance, &["history", "alice"]).await;
    println!("\nDone. Everything above ran against the local emulator; nothing reached AWS.");
}

fn step(title: &str, detail: &str) {
    println!("\n▶ {title}");
    if !detail.is_empty() {
        println!("  {detail}");
    }
}

/// Runs the real `seatcap` CLI as finance would, and shows its output.
async fn seatcap(env: &HashMap<String, String>, args: &[&str]) {
    println!(
        "  $ seatcap {}",
        args.iter()
            .map(|a| if a.contains(' ') {
                format!("\"{a}\"")
            } else {
                a.to_string()
            })
            .collect::<Vec<_>>()
            .join(" ")
    );
    let output = tokio::process::Command::new(binary("seatcap"))
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .await
        .expect("run the seatcap CLI");
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&output.stderr).lines())
    {
        println!("    {line}");
    }
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
            for line in text.lines() {
                println!("  │ {line}");
            }
        }
    }
    let context = message["blocks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["type"] == "context")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join(" ");
    println!("  └ {context}");
}
