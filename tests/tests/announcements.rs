//! What people hear besides the alert ladder: cap changes, overrides granted, revoked and
//! expired, the new period's restore; and where they hear it (team channels).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use seatcap::App;
use seatcap::principal::PrincipalArn;
use seatcap::rollover::RolloverEvent;
use seatcap_tests::{
    Account, Function, SlackReceiver, binary, budget_alert, sns_event, todays_budget_alert,
};
use serde_json::{Value, json};

fn november() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn app_at(account: &Account, slack: &SlackReceiver, now: DateTime<Utc>) -> App {
    account.app(
        &[("SEATCAP_SLACK_WEBHOOK_URL", &slack.url)],
        Arc::new(move || now),
    )
}

async fn admin(app: &App, request: Value) -> Value {
    let answer = app.handle_admin(request).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    answer
}

fn set_cap(principal: &PrincipalArn, cap: &str) -> Value {
    json!({"action": "set_cap", "principal": principal.as_str(), "budget": "seatcap-alice",
        "cap_usd": cap, "actor": "finance@example.com", "reason": "test"})
}

/// The kind each Slack message names in its context line (`seatcap · <kind> · ...`).
fn kinds(slack: &SlackReceiver) -> Vec<String> {
    slack
        .received()
        .iter()
        .map(|m| {
            let context = m["blocks"][3]["elements"][0]["text"].as_str().unwrap();
            context.split(" · ").nth(1).unwrap().to_owned()
        })
        .collect()
}

fn headlines(slack: &SlackReceiver) -> Vec<String> {
    slack
        .received()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cap_and_override_changes_are_announced_once_each() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    let app = app_at(&account, &slack, november());
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;

    admin(&app, set_cap(&alice, "200")).await;
    assert!(kinds(&slack).is_empty(), "enrolment is not announced");
    admin(&app, set_cap(&alice, "300")).await;
    admin(&app, set_cap(&alice, "300")).await; // the same cap again: nothing to tell
    admin(
        &app,
        json!({"action": "grant_override", "principal": alice.as_str(), "extra_usd": "50",
            "expires_at": "2026-11-30T23:59:59Z", "actor": "finance@example.com", "reason": "launch"}),
    )
    .await;
    admin(
        &app,
        json!({"action": "revoke_override", "principal": alice.as_str(),
            "actor": "finance@example.com", "reason": "launch is over"}),
    )
    .await;

    assert_eq!(
        kinds(&slack),
        ["cap_changed", "override_granted", "override_revoked"]
    );
    let headlines = headlines(&slack);
    assert_eq!(headlines[0], "Monthly cap changed from $200.00 to $300.00");
    assert_eq!(
        headlines[1],
        "Override granted: +$50.00 until 2026-11-30 23:59 UTC"
    );
    // Email subscribers filter on the same kinds.
    let emails = account.sent_notifications().await;
    let email_kinds: Vec<&str> = emails.iter().map(|(_, _, a)| a["kind"].as_str()).collect();
    assert_eq!(
        email_kinds,
        ["cap_changed", "override_granted", "override_revoked"]
    );
    assert!(emails.iter().all(|(_, _, a)| a["severity"] == "info"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_say_why_and_expired_overrides_are_announced() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    let app = app_at(&account, &slack, november());
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    admin(&app, set_cap(&alice, "200")).await;
    let at_cap = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    app.handle_delivery("m-1", &at_cap).await.unwrap();
    admin(
        &app,
        json!({"action": "grant_override", "principal": alice.as_str(), "extra_usd": "100",
            "expires_at": "2026-11-25T00:00:00Z", "actor": "finance@example.com", "reason": "demo day"}),
    )
    .await;
    assert_eq!(kinds(&slack), ["cut_off", "restored"]);
    assert_eq!(
        headlines(&slack)[1],
        "Bedrock access restored: override granted (+$100.00 until 2026-11-25 00:00 UTC)"
    );

    // A cap raised above the spend, then reconcile on the 26th ends the expired override
    // and says so.
    admin(&app, set_cap(&alice, "250")).await;
    let later = Utc.with_ymd_and_hms(2026, 11, 26, 9, 0, 0).unwrap();
    app_at(&account, &slack, later)
        .reconcile(
            serde_json::from_value(json!({})).unwrap(),
            seatcap::handover::Pace::unlimited(),
        )
        .await
        .unwrap();
    assert_eq!(
        kinds(&slack),
        ["cut_off", "restored", "cap_changed", "override_expired"]
    );

    // Cut off again in November; December's rollover restores and says why.
    let over_new_cap = budget_alert("seatcap-alice", "ACTUAL", "250.00", "250.00", "255.00");
    app_at(&account, &slack, later)
        .handle_delivery("m-2", &over_new_cap)
        .await
        .unwrap();
    let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap();
    app_at(&account, &slack, december + Duration::minutes(1))
        .roll_over(
            RolloverEvent {
                time: december,
                resume_after: None,
            },
            seatcap::handover::Pace::unlimited(),
        )
        .await
        .unwrap();
    let last = headlines(&slack).pop().unwrap();
    assert_eq!(
        last,
        "Bedrock access restored: a new budget period started",
        "{:?}",
        kinds(&slack)
    );
}

/// A team channel hears its members' own messages; the main (finance) channel hears what is
/// for finance. The routes come from the webhook secret, as in production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_channels_hear_their_members_and_finance_what_is_for_finance() {
    let account = Account::new().await;
    let finance = SlackReceiver::start().await;
    let atlas = SlackReceiver::start().await;
    let secrets = aws_sdk_secretsmanager::Client::new(&account.sdk);
    let arn = secrets
        .create_secret()
        .name("seatcap/slack-webhooks")
        .secret_string(json!({"url": finance.url, "teams": {"atlas": atlas.url}}).to_string())
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    let mut env: HashMap<String, String> = account.env();
    env.insert("SEATCAP_SLACK_WEBHOOK_SECRET".into(), arn);
    let alerts = Function::start(binary("budget-alert"), &env).await;
    let admin = Function::start(binary("admin"), &env).await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;

    let mut request = set_cap(&alice, "200");
    request["team"] = json!("Atlas Team");
    let refused = admin.invoke(&request).await.expect_response();
    assert_eq!(refused["error"]["code"], "invalid_team", "{refused}");
    let status = admin
        .invoke(&json!({"action": "status", "principal": alice.as_str()}))
        .await
        .expect_response();
    assert_eq!(status["error"]["code"], "not_found", "nothing was written");

    request["team"] = json!("atlas");
    let answer = admin.invoke(&request).await.expect_response();
    assert_eq!(
        (answer["ok"].clone(), answer["team"].clone()),
        (json!(true), json!("atlas"))
    );

    for (id, threshold, amount) in [
        ("m-50", "100.00", "104.00"),
        ("m-80", "160.00", "161.00"),
        ("m-100", "200.00", "201.00"),
    ] {
        let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", threshold, amount);
        alerts
            .invoke(&sns_event(id, &alert))
            .await
            .expect_response();
    }
    assert_eq!(
        kinds(&atlas),
        ["warning", "warning", "cut_off"],
        "the team hears every message of its member"
    );
    assert_eq!(
        kinds(&finance),
        ["warning", "cut_off"],
        "finance hears the 80 % warning and the cut-off, not the 50 % one"
    );
    // A cap set without `team` keeps the team.
    let kept = admin
        .invoke(&set_cap(&alice, "250"))
        .await
        .expect_response();
    assert_eq!(kept["team"], "atlas", "{kept}");
}
