//! Notifications that could not go out at once: the outbox in the ledger, retried by
//! `flush_notifications` / the notifier function, with Slack's 429 `Retry-After`, 5xx, and
//! permanent refusals, never posted twice. Time is an injected clock.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use seatcap::App;
use seatcap::ledger::EventKind;
use seatcap::outbox::{Flush, FlushReport};
use seatcap::principal::PrincipalArn;
use seatcap_tests::{Account, Function, SlackReceiver, binary, budget_alert};
use serde_json::json;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn app_at(account: &Account, slack: &SlackReceiver, now: DateTime<Utc>) -> App {
    account.app(
        &[("SEATCAP_SLACK_WEBHOOK_URL", &slack.url)],
        Arc::new(move || now),
    )
}

/// alice, capped at $200 and cut off by an alert at `start()`.
async fn cut_off_alice(account: &Account, app: &App) -> PrincipalArn {
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let answer = app
        .handle_admin(json!({"action": "set_cap", "principal": alice.as_str(),
            "budget": "seatcap-alice", "cap_usd": "200", "actor": "finance", "reason": "seat"}))
        .await
        .unwrap();
    assert_eq!(answer["ok"], true);
    app.handle_delivery(
        "m-100",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00"),
    )
    .await
    .unwrap();
    assert!(
        account.attached(&alice).await.is_empty(),
        "enforced, Slack or not"
    );
    alice
}

/// The notifier's scheduled drain at `at`: (delivered, pending, failed).
async fn flush_at(
    account: &Account,
    slack: &SlackReceiver,
    at: DateTime<Utc>,
) -> (usize, usize, usize) {
    let FlushReport {
        delivered,
        pending,
        failed,
        ..
    } = app_at(account, slack, at)
        .flush_notifications(Flush::Due)
        .await
        .unwrap();
    (delivered, pending, failed)
}

fn report(delivered: usize, pending: usize, failed: usize) -> (usize, usize, usize) {
    (delivered, pending, failed)
}

async fn failures(account: &Account, principal: &PrincipalArn) -> Vec<serde_json::Value> {
    account
        .history(principal)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::NotificationFailed)
        .map(|e| e.detail)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_outage_is_retried_with_backoff_and_posted_once() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.answer_with(500, "internal_error");
    let alice = cut_off_alice(&account, &app_at(&account, &slack, start())).await;
    assert_eq!(slack.received().len(), 1, "the first attempt");
    assert_eq!(account.ledger().outbox(10).await.unwrap().len(), 1);
    assert_eq!(failures(&account, &alice).await[0]["outcome"], "queued");

    slack.answer_with(200, "ok");
    // Not due yet: the first retry waits a minute.
    assert_eq!(flush_at(&account, &slack, start()).await, report(0, 1, 0));
    assert_eq!(slack.received().len(), 1);
    let later = start() + Duration::minutes(2);
    assert_eq!(flush_at(&account, &slack, later).await, report(1, 0, 0));
    assert_eq!(slack.received().len(), 2);
    // Delivered means gone: a second drain posts nothing.
    assert_eq!(flush_at(&account, &slack, later).await, report(0, 0, 0));
    assert_eq!(slack.received().len(), 2);
    assert_eq!(slack.received()[1]["blocks"], slack.received()[0]["blocks"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slacks_retry_after_is_honoured() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.rate_limit(300);
    cut_off_alice(&account, &app_at(&account, &slack, start())).await;
    slack.answer_with(200, "ok");

    let at = |minutes| start() + Duration::minutes(minutes);
    assert_eq!(
        flush_at(&account, &slack, at(2)).await,
        report(0, 1, 0),
        "not before 5 min"
    );
    assert_eq!(flush_at(&account, &slack, at(6)).await, report(1, 0, 0));
    assert_eq!(slack.received().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_reported_once_and_never_retried() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.answer_with(400, "invalid_payload");
    let alice = cut_off_alice(&account, &app_at(&account, &slack, start())).await;

    assert!(account.ledger().outbox(10).await.unwrap().is_empty());
    let failed = failures(&account, &alice).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["outcome"], "not_retried");
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap()
            .contains("invalid_payload")
    );
    assert_eq!(
        flush_at(&account, &slack, start() + Duration::hours(1)).await,
        report(0, 0, 0)
    );
    assert_eq!(slack.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_that_never_gets_through_is_given_up_and_reported_once() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.answer_with(503, "unavailable");
    let alice = cut_off_alice(&account, &app_at(&account, &slack, start())).await;

    let mut totals = report(0, 0, 0);
    for hour in 1..=12 {
        let run = flush_at(&account, &slack, start() + Duration::hours(hour)).await;
        totals.0 += run.0;
        totals.2 += run.2;
    }
    assert_eq!((totals.0, totals.2), (0, 1));
    assert_eq!(slack.received().len(), 10, "ten attempts in all");
    let given_up: Vec<_> = failures(&account, &alice)
        .await
        .into_iter()
        .filter(|d| d["outcome"] == "given_up")
        .collect();
    assert_eq!(given_up.len(), 1);
    assert!(account.ledger().outbox(10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_drains_post_a_notice_once() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.answer_with(500, "internal_error");
    cut_off_alice(&account, &app_at(&account, &slack, start())).await;
    slack.answer_with(200, "ok");

    let later = start() + Duration::minutes(2);
    let (a, b, c) = tokio::join!(
        flush_at(&account, &slack, later),
        flush_at(&account, &slack, later),
        flush_at(&account, &slack, later),
    );
    assert_eq!(a.0 + b.0 + c.0, 1);
    assert_eq!(slack.received().len(), 2, "one failed attempt, one post");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finance_and_the_schedule_drain_the_outbox() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.answer_with(500, "internal_error");
    cut_off_alice(&account, &app_at(&account, &slack, start())).await;
    slack.answer_with(200, "ok");

    let admin = app_at(&account, &slack, start() + Duration::minutes(2));
    let answer = admin
        .handle_admin(json!({"action": "flush_notifications"}))
        .await
        .unwrap();
    assert_eq!(
        answer,
        json!({"ok": true, "delivered": 1, "pending": 0, "failed": 0, "errors": []})
    );
    let refused = admin
        .handle_admin(json!({"action": "flush_notifications", "force": true}))
        .await
        .unwrap();
    assert_eq!(refused["error"]["code"], "invalid_request", "{refused}");

    // The notifier binary on its schedule: a fresh failure is queued a minute ahead (real
    // clock here), so the drain reports it pending and posts nothing.
    slack.answer_with(500, "internal_error");
    let mut env = account.env();
    env.insert("SEATCAP_SLACK_WEBHOOK_URL".into(), slack.url.clone());
    let now_app = account.app(
        &[("SEATCAP_SLACK_WEBHOOK_URL", &slack.url)],
        seatcap::app::system_clock(),
    );
    now_app
        .handle_admin(
            json!({"action": "restore", "principal": account.principal("user", "alice").as_str(),
            "actor": "finance", "reason": "paid"}),
        )
        .await
        .unwrap();
    let notifier = Function::start(binary("notifier"), &env).await;
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/scheduled-event.json")).unwrap();
    let report = notifier.invoke(&event).await.expect_response();
    assert_eq!(
        report,
        json!({"delivered": 0, "pending": 1, "failed": 0, "errors": []})
    );
}

/// A message held back after a Slack 429 stays due later for the notifier, but finance's
/// `flush_notifications` sends it now, exactly once, and says so; one still failing is
/// named with its error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_notifications_sends_every_pending_message_now_and_once() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    slack.rate_limit(3600);
    let app = app_at(&account, &slack, start());
    cut_off_alice(&account, &app).await;
    assert_eq!(account.ledger().outbox(10).await.unwrap().len(), 1);

    // Slack still refuses: the flush tries at once, and names the failure.
    let refused = app
        .handle_admin(serde_json::json!({"action": "flush_notifications"}))
        .await
        .unwrap();
    assert_eq!(
        (refused["delivered"].clone(), refused["pending"].clone()),
        (serde_json::json!(0), serde_json::json!(1)),
        "{refused}"
    );
    assert!(
        refused["errors"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("429"),
        "{refused}"
    );
    assert_eq!(slack.received().len(), 2, "the first post and the flush's");

    slack.answer_with(200, "ok");
    let sent = app
        .handle_admin(serde_json::json!({"action": "flush_notifications"}))
        .await
        .unwrap();
    assert_eq!(sent["delivered"], 1, "{sent}");
    assert_eq!(sent["errors"], serde_json::json!([]), "{sent}");
    assert_eq!(slack.received().len(), 3);
    let again = app
        .handle_admin(serde_json::json!({"action": "flush_notifications"}))
        .await
        .unwrap();
    assert_eq!(again["delivered"], 0, "{again}");
    assert_eq!(slack.received().len(), 3, "exactly once");
}
