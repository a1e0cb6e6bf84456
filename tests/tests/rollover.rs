//! period-rollover against moto: the cap's blocks end with their period; manual blocks stay;
//! reruns change nothing. Time comes from the event (and an injected clock), never a sleep.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use seatcap::App;
use seatcap::handover::Pace;
use seatcap::ledger::Commit;
use seatcap::principal::PrincipalArn;
use seatcap::rollover::RolloverEvent;
use seatcap_tests::proxy::ThrottlingProxy;
use seatcap_tests::{Account, Function, binary, budget_alert, moto};
use serde_json::json;

fn app_at(account: &Account, now: DateTime<Utc>) -> App {
    account.app(&[], Arc::new(move || now))
}

/// The scheduled event of a run at `time`.
fn event_at(time: DateTime<Utc>) -> RolloverEvent {
    RolloverEvent {
        time,
        resume_after: None,
    }
}

fn november() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn december_rollover() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap()
}

/// A principal with the managed policy, capped at $200 and cut off by a November alert.
async fn capped(account: &Account, app: &App, name: &str) -> PrincipalArn {
    let principal = account
        .create_principal("user", name, &[&account.bedrock_policy_arn])
        .await;
    let budget = format!("seatcap-{name}");
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": principal.as_str(), "budget": budget,
            "cap_usd": "200", "actor": "finance", "reason": "seat"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true);
    app.handle_delivery(
        &format!("m-{name}"),
        &budget_alert(&budget, "ACTUAL", "200.00", "200.00", "230.00"),
    )
    .await
    .unwrap();
    assert!(account.attached(&principal).await.is_empty());
    principal
}

async fn set_blocked_period(account: &Account, principal: &PrincipalArn, period: &str) {
    let ledger = account.ledger();
    let state = ledger.load(principal).await.unwrap().unwrap();
    let next = state.next(november(), |s| s.blocked_period = Some(period.to_owned()));
    ledger
        .commit(
            Commit {
                state: Some((next, Some(state.version))),
                ..Commit::default()
            },
            november(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn month_end_restores_the_capped_and_keeps_manual_blocks() {
    let account = Account::new().await;
    let app = app_at(&account, november());
    let alice = capped(&account, &app, "alice").await;
    let bob = account
        .create_principal("user", "bob", &[&account.bedrock_policy_arn])
        .await;
    app.handle_admin(
        json!({"action": "set_cap", "principal": bob.as_str(), "budget": "seatcap-bob",
        "cap_usd": "200", "actor": "finance", "reason": "seat"}),
    )
    .await
    .unwrap();
    app.handle_admin(json!({"action": "block", "principal": bob.as_str(), "actor": "security", "reason": "offboarding"}))
        .await
        .unwrap();

    // Too early: still November.
    let early = app_at(
        &account,
        Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 0).unwrap(),
    )
    .roll_over(
        event_at(Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 0).unwrap()),
        Pace::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(
        (
            early.restored.len(),
            early.kept_current_period,
            early.kept_manual
        ),
        (0, 1, 1)
    );

    let rollover = app_at(&account, december_rollover());
    let report = rollover
        .roll_over(event_at(december_rollover()), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(report.restored, [alice.to_string()]);
    assert_eq!(report.kept_manual, 1);
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert!(
        account.attached(&bob).await.is_empty(),
        "a manual block survives rollover"
    );

    let history = account
        .ledger()
        .history(&seatcap::ledger::Subject::Principal(alice.clone()), 1)
        .await
        .unwrap();
    assert_eq!(history[0].actor, "seatcap:period-rollover");
    assert_eq!(
        history[0].reason.as_deref(),
        Some("budget period 2026-11 ended")
    );
    // The restore is emailed (the rollover publishes its page's notices in batches), with
    // the attributes subscriptions filter on.
    let emails = account.sent_notifications().await;
    let restored: Vec<_> = emails
        .iter()
        .filter(|(_, _, a)| a["kind"] == "restored")
        .collect();
    assert_eq!(restored.len(), 1, "{emails:?}");
    assert_eq!(restored[0].2["principal"], alice.as_str());
    assert_eq!(restored[0].2["audience"], "person_and_finance");
    assert!(
        restored[0].1.contains("a new budget period started"),
        "{}",
        restored[0].1
    );

    // A second run (a retry, a replayed event) finds nothing to do.
    let again = rollover
        .roll_over(event_at(december_rollover()), Pace::unlimited())
        .await
        .unwrap();
    assert!(again.restored.is_empty());
    assert_eq!(again.blocked, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_and_quarterly_blocks_end_with_their_own_periods() {
    let account = Account::new().await;
    let app = app_at(&account, november());
    let daily_done = capped(&account, &app, "daily-done").await;
    let daily_today = capped(&account, &app, "daily-today").await;
    let quarterly = capped(&account, &app, "quarterly").await;
    set_blocked_period(&account, &daily_done, "2026-11-30").await;
    set_blocked_period(&account, &daily_today, "2026-12-01").await;
    set_blocked_period(&account, &quarterly, "2026-Q4").await;

    let report = app_at(&account, december_rollover())
        .roll_over(event_at(december_rollover()), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(report.restored, [daily_done.to_string()]);
    assert_eq!(report.kept_current_period, 2);

    let new_year = Utc.with_ymd_and_hms(2027, 1, 1, 0, 5, 0).unwrap();
    let report = app_at(&account, new_year)
        .roll_over(event_at(new_year), Pace::unlimited())
        .await
        .unwrap();
    let mut expected = vec![daily_today.to_string(), quarterly.to_string()];
    expected.sort();
    assert_eq!(report.restored, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_the_boundary_from_the_scheduled_event() {
    let account = Account::new().await;
    let app = app_at(&account, november());
    let alice = capped(&account, &app, "alice").await;

    let function = Function::start(binary("period-rollover"), &account.env()).await;
    // The sample EventBridge event fires at 2026-12-01T00:05:00Z, whatever today is.
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/scheduled-event.json")).unwrap();
    let report = function.invoke(&event).await.expect_response();
    assert_eq!(report["restored"], json!([alice.to_string()]), "{report}");
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );

    let bad = function
        .invoke(&json!({"detail-type": "Scheduled Event"}))
        .await;
    assert!(
        matches!(bad, seatcap_tests::Invocation::Error(_)),
        "an event without a time is refused, not guessed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_continues_where_it_stopped_and_acts_once() {
    let account = Account::new().await;
    let app = app_at(&account, november());
    let mut blocked = Vec::new();
    for name in ["ann", "ben", "cat", "dan", "eve"] {
        blocked.push(capped(&account, &app, name).await);
    }
    let rollover = app_at(&account, december_rollover());

    let mut event = Some(event_at(december_rollover()));
    let mut runs = 0;
    let mut restored = Vec::new();
    while let Some(next) = event {
        let report = rollover
            .roll_over(next, Pace::one_page_of(2))
            .await
            .unwrap();
        assert!(report.blocked <= 2, "one page per run");
        if let Some(next) = &report.handed_over {
            // One Query reads every blocked state; the run stops after its page and
            // hands over from the last principal it did, not from the end of the read.
            assert_eq!(
                next.resume_after.as_ref().map(ToString::to_string),
                report.restored.last().cloned()
            );
        }
        restored.extend(report.restored);
        event = report.handed_over;
        runs += 1;
    }
    assert_eq!(runs, 3, "pages of 2, 2 and 1");
    let mut expected: Vec<String> = blocked.iter().map(ToString::to_string).collect();
    expected.sort();
    restored.sort();
    assert_eq!(restored, expected, "each restored exactly once");
    for principal in &blocked {
        assert_eq!(
            account.attached(principal).await,
            vec![account.bedrock_policy_arn.clone()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_iam_slows_the_rollover_down_but_it_completes() {
    let account = Account::new().await;
    let app = app_at(&account, november());
    let mut blocked = Vec::new();
    for name in ["ann", "ben", "cat", "dan"] {
        blocked.push(capped(&account, &app, name).await);
    }
    let upstream = moto().endpoint.trim_start_matches("http://").to_owned();
    // Each AttachUserPolicy is refused twice with IAM's `Throttling` before it passes.
    let proxy = ThrottlingProxy::start(upstream, "Action=AttachUserPolicy", 2).await;
    let rollover = account.app_through(&proxy.url, &[], Arc::new(december_rollover));
    let report = rollover
        .roll_over(event_at(december_rollover()), Pace::unlimited())
        .await
        .expect("throttling is retried, not fatal");
    assert_eq!(report.restored.len(), 4, "{report:?}");
    assert_eq!(proxy.throttled(), 2 * 4);
    for principal in &blocked {
        assert_eq!(
            account.attached(principal).await,
            vec![account.bedrock_policy_arn.clone()]
        );
    }
}

/// Anyone who may invoke the function could send `{"time": "2099-01-01T00:00:00Z"}` to end
/// every cap block of the current period today: an event ahead of the clock is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_from_the_future_restores_nothing() {
    let account = Account::new().await;
    let app = app_at(&account, november());
    let alice = capped(&account, &app, "alice").await;
    let far = Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap();
    let error = app
        .roll_over(event_at(far), Pace::unlimited())
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("ahead of the clock"), "{error}");
    // Minutes of clock drift are not refused; a day is.
    let soon = november() + chrono::Duration::minutes(4);
    app.roll_over(event_at(soon), Pace::unlimited())
        .await
        .unwrap();
    let tomorrow = november() + chrono::Duration::days(1);
    assert!(
        app.roll_over(event_at(tomorrow), Pace::unlimited())
            .await
            .is_err()
    );
    assert!(account.attached(&alice).await.is_empty(), "still cut off");
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, seatcap::state::Status::Blocked);
}
