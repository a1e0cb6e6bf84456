//! The local demo: the real budget-alert and admin binaries against the moto emulator.
//! An alert comes in, access is cut, Slack shows it, finance restores it; then a runaway
//! loop is cut by metering before any Budgets alert.
//!
//! Run it with `./scripts/demo` (which installs the emulator and builds the binaries first).

use std::collections::HashMap;
use std::sync::Arc;

use seatcap_tests::{
    Account, Function, SlackReceiver, binary, invocation_record, logs_batch, moto,
    serve_function_url, serve_invoke_api, sns_event, todays_budget_alert,
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

    identity_center(&account, &alerts, &finance, &slack).await;

    runaway_loop(&account, &env, &finance, &slack).await;

    step("This month's metered spend, as finance sees it", "");
    seatcap(&finance, &["usage", "--by", "model"]).await;

    step("Audit trail", "");
    seatcap(&finance, &["history", "alice"]).await;
    println!("\nDone. Everything above ran against the local emulator; nothing reached AWS.");
}

/// Bob's script calls Claude Opus in a loop on a Friday evening. Budgets would see it
/// tomorrow; metering reads Bedrock's invocation logs as they are written and cuts him at
/// the cap, within the batch that carries the crossing call.
async fn runaway_loop(
    account: &Account,
    env: &HashMap<String, String>,
    finance: &HashMap<String, String>,
    slack: &SlackReceiver,
) {
    step(
        "A runaway loop: Bob's script calls Claude Opus 4.5 over and over",
        "Bedrock invocation logs → CloudWatch Logs subscription → metering (no Budgets alert yet)",
    );
    let bob = account
        .create_principal("user", "bob", &[&account.bedrock_policy_arn])
        .await;
    seatcap(
        finance,
        &["set-cap", "bob", "200", "--reason", "automation seat"],
    )
    .await;
    let metering = Function::start(binary("metering"), env).await;
    let opus = "global.anthropic.claude-opus-4-5-20251101-v1:0";
    let mut call = 0;
    for _ in 0..12 {
        // A batch of three calls of 1M output tokens: $75 of Opus 4.5.
        let records: Vec<Value> = (0..3)
            .map(|_| {
                call += 1;
                invocation_record(bob.as_str(), &format!("demo-bob-{call}"), opus, 1_000_000)
            })
            .collect();
        let started = std::time::Instant::now();
        let report = metering
            .invoke(&logs_batch(&records))
            .await
            .expect_response();
        let took = started.elapsed();
        let outcomes: Vec<&str> = report["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["outcome"].as_str())
            .collect();
        println!(
            "  batch of {} calls: Bob's metered spend ${} {}",
            records.len(),
            report["spend"][0]["metered_usd"].as_str().unwrap_or("?"),
            if outcomes.is_empty() {
                String::new()
            } else {
                format!("→ {}", outcomes.join(", "))
            }
        );
        if !outcomes.is_empty()
            && let Some(message) = slack.received().last()
        {
            print_slack(message);
        }
        if outcomes.contains(&"enforce") {
            println!(
                "  cut off at ${} metered, {} ms after the batch with the crossing call reached metering",
                report["spend"][0]["metered_usd"].as_str().unwrap_or("?"),
                took.as_millis()
            );
            break;
        }
    }
    print_policies(account, &bob).await;
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

/// Ivan signs in through IAM Identity Center: his role is one IAM refuses to change (the
/// emulator sits behind that refusal here, as everywhere in the tests). His cut goes into
/// the shard his permission set references; nothing is written to the role.
async fn identity_center(
    account: &Account,
    alerts: &Function,
    finance: &HashMap<String, String>,
    slack: &SlackReceiver,
) {
    step(
        "Ivan, on an IAM Identity Center permission set",
        "IAM refuses every write to its role",
    );
    let role = "AWSReservedSSO_ClaudeDev_0123456789abcdef";
    account
        .identity_center_role_named(role, &[0, 1, 2, 3, 4])
        .await;
    let ivan = account.sso_person(role, "ivan@example.com");
    println!(
        "  the permission set references seatcap-sso-deny-1 ... -5; Identity Center attached them to {role}"
    );
    seatcap(
        finance,
        &[
            "set-cap",
            ivan.as_str(),
            "200",
            "--budget",
            "seatcap-ivan",
            "--reason",
            "seat",
        ],
    )
    .await;
    let alert = todays_budget_alert("seatcap-ivan", "ACTUAL", "200.00", "200.00", "214.00");
    let result = alerts
        .invoke(&sns_event("demo-ivan-100", &alert))
        .await
        .expect_response();
    let report = &result["reports"][0];
    println!(
        "  outcome: {} through {}",
        report["outcome"].as_str().unwrap_or("?"),
        report["deny_policy_arn"].as_str().unwrap_or("?")
    );
    if let Some(message) = slack.received().last() {
        print_slack(message);
    }
    println!(
        "  the shards deny: {:?}\n  writes to {role} IAM refused: {}",
        account.sso_denied().await,
        account.protected_roles.refused(role)
    );
    // Bedrock logging to the group metering subscribes to, as the README's Deploy sets it.
    let sdk = account.app(&[], seatcap::app::system_clock()).sdk;
    let cloud_watch = aws_sdk_bedrock::types::CloudWatchConfig::builder()
        .log_group_name("bedrock-invocations")
        .role_arn(format!("arn:aws:iam::{}:role/bedrock-logging", account.id))
        .build()
        .expect("a log group and a role");
    aws_sdk_bedrock::Client::new(&sdk)
        .put_model_invocation_logging_configuration()
        .logging_config(
            aws_sdk_bedrock::types::LoggingConfig::builder()
                .cloud_watch_config(cloud_watch)
                .build(),
        )
        .send()
        .await
        .expect("moto keeps the logging settings");
    seatcap(finance, &["doctor"]).await;
}
