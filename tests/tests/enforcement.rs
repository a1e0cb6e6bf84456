//! The alert flow in-process against moto through the real SDK: enforcement, idempotency,
//! overrides, protection, dry-run, notification failures and races.

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::alert_delivery::AlertReport;
use seatcap::ledger::{Commit, EventKind};
use seatcap::principal::PrincipalArn;
use seatcap::state::{Override, Status};
use seatcap_tests::{Account, SlackReceiver, budget_alert};
use serde_json::json;

fn clock() -> seatcap::app::Clock {
    Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap())
}

async fn app_with_slack(account: &Account, extra: &[(&str, &str)]) -> (App, SlackReceiver) {
    let slack = SlackReceiver::start().await;
    let mut env = vec![("SEATCAP_SLACK_WEBHOOK_URL", slack.url.as_str())];
    env.extend_from_slice(extra);
    (account.app(&env, clock()), slack)
}

async fn set_cap(app: &App, principal: &PrincipalArn, budget: &str, cap: &str) {
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": principal.as_str(), "budget": budget,
            "cap_usd": cap, "actor": "finance@example.com", "reason": "test"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
}

fn at_cap(budget: &str) -> String {
    budget_alert(budget, "ACTUAL", "200.00", "200.00", "212.00")
}

async fn status(app: &App, principal: &PrincipalArn) -> serde_json::Value {
    app.handle_admin(json!({"action": "status", "principal": principal.as_str()}))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_roles_and_groups_lose_only_managed_policies_and_get_exactly_those_back() {
    let account = Account::new().await;
    let (app, _slack) = app_with_slack(&account, &[]).await;
    for kind in ["user", "role", "group"] {
        let name = format!("dev-{kind}");
        let principal = account
            .create_principal(
                kind,
                &name,
                &[&account.bedrock_policy_arn, &account.other_policy_arn],
            )
            .await;
        let budget = format!("seatcap-{name}");
        set_cap(&app, &principal, &budget, "200.00").await;

        let report = app
            .handle_delivery(&format!("m-{kind}"), &at_cap(&budget))
            .await
            .unwrap();
        assert!(
            matches!(report, AlertReport::Handled { ref policies, .. } if *policies == [account.bedrock_policy_arn.clone()]),
            "{report:?}"
        );
        assert_eq!(
            account.attached(&principal).await,
            vec![account.other_policy_arn.clone()],
            "{kind}"
        );

        let restored = app
            .handle_admin(json!({"action": "restore", "principal": principal.as_str(), "actor": "f", "reason": "r"}))
            .await
            .unwrap();
        assert_eq!(
            restored["reattached_policy_arns"],
            json!([account.bedrock_policy_arn]),
            "{restored}"
        );
        let mut both = vec![
            account.bedrock_policy_arn.clone(),
            account.other_policy_arn.clone(),
        ];
        both.sort();
        assert_eq!(account.attached(&principal).await, both, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_without_the_managed_policy_is_blocked_but_gets_nothing_it_never_had() {
    let account = Account::new().await;
    let (app, _slack) = app_with_slack(&account, &[]).await;
    let bob = account
        .create_principal("user", "bob", &[&account.other_policy_arn])
        .await;
    set_cap(&app, &bob, "seatcap-bob", "200.00").await;
    app.handle_delivery("m-1", &at_cap("seatcap-bob"))
        .await
        .unwrap();
    assert_eq!(status(&app, &bob).await["detached_policy_arns"], json!([]));
    app.handle_admin(
        json!({"action": "restore", "principal": bob.as_str(), "actor": "f", "reason": "r"}),
    )
    .await
    .unwrap();
    assert_eq!(
        account.attached(&bob).await,
        vec![account.other_policy_arn.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_enforce_once_and_notify_once() {
    let account = Account::new().await;
    let (app, slack) = app_with_slack(&account, &[]).await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&app, &alice, "seatcap-alice", "200.00").await;

    let alert = at_cap("seatcap-alice");
    // The same MessageId three times (SNS at-least-once), then a second MessageId for the same
    // budget, period, type and threshold (Budgets re-sending).
    let reports = [
        app.handle_delivery("m-1", &alert).await.unwrap(),
        app.handle_delivery("m-1", &alert).await.unwrap(),
        app.handle_delivery("m-1", &alert).await.unwrap(),
        app.handle_delivery("m-2", &alert).await.unwrap(),
    ];
    assert!(
        matches!(reports[0], AlertReport::Handled { .. }),
        "{reports:?}"
    );
    for duplicate in &reports[1..] {
        assert!(
            matches!(duplicate, AlertReport::Duplicate { .. }),
            "{reports:?}"
        );
    }
    assert_eq!(slack.received().len(), 1);
    let emails = account.sent_notifications().await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    let (subject, body, attributes) = &emails[0];
    assert!(
        subject.contains("cut off") && subject.contains("alice"),
        "{subject}"
    );
    assert!(body.contains("$212.00 of $200.00 (106%)"), "{body}");
    assert_eq!(attributes["principal"], alice.as_str());
    assert_eq!(attributes["kind"], "cut_off");
    assert_eq!(attributes["severity"], "critical");
    let history = account.history(&alice).await;
    assert_eq!(
        history
            .iter()
            .filter(|e| e.kind == EventKind::Enforced)
            .count(),
        1
    );
    assert_eq!(
        status(&app, &alice).await["version"],
        2,
        "one change for one alert: its write-ahead intent, then its confirmation"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_alert_enforce_once() {
    let account = Account::new().await;
    let (app, slack) = app_with_slack(&account, &[]).await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&app, &alice, "seatcap-alice", "200.00").await;
    let alert = at_cap("seatcap-alice");
    let deliveries = (0..4).map(|i| {
        let (app, alert) = (app.clone(), alert.clone());
        tokio::spawn(async move {
            app.handle_delivery(&format!("m-{}", i % 2), &alert)
                .await
                .unwrap()
        })
    });
    let reports = futures_join(deliveries).await;
    assert_eq!(
        reports
            .iter()
            .filter(|r| matches!(r, AlertReport::Handled { .. }))
            .count(),
        1,
        "{reports:?}"
    );
    assert_eq!(slack.received().len(), 1);
    let state = status(&app, &alice).await;
    assert_eq!(state["status"], "blocked");
    assert_eq!(
        state["detached_policy_arns"],
        json!([account.bedrock_policy_arn])
    );
    assert!(account.attached(&alice).await.is_empty());
}

async fn futures_join<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_override_prevents_enforcement_under_the_effective_cap() {
    let account = Account::new().await;
    let (app, slack) = app_with_slack(&account, &[]).await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&app, &alice, "seatcap-alice", "200.00").await;

    // Grant +$50 until the end of the month, written as the ledger holds it.
    let ledger = account.ledger();
    let state = ledger.load(&alice).await.unwrap().unwrap();
    let now = clock()();
    let next = state.next(now, |s| {
        s.overrides.push(Override {
            id: "launch".into(),
            extra_usd: Some(seatcap::money::Usd::from_cents(50_00)),
            exempt: false,
            expires_at: Utc.with_ymd_and_hms(2026, 11, 30, 23, 59, 59).unwrap(),
            granted_by: "finance@example.com".into(),
            reason: "launch week".into(),
            approved_by: None,
        })
    });
    ledger
        .commit(
            Commit {
                state: Some((next, Some(state.version))),
                ..Commit::default()
            },
            now,
        )
        .await
        .unwrap();

    let report = app
        .handle_delivery(
            "m-1",
            &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "240.00"),
        )
        .await
        .unwrap();
    assert!(
        matches!(report, AlertReport::Handled { ref decision, .. } if decision.outcome != seatcap::decide::Outcome::Enforce),
        "{report:?}"
    );
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert_eq!(status(&app, &alice).await["effective_cap_usd"], "250.00");
    assert!(
        slack.received()[0]["text"]
            .as_str()
            .unwrap()
            .contains("100%")
    );

    // Past the effective cap, the override no longer helps.
    let report = app
        .handle_delivery(
            "m-2",
            &budget_alert("seatcap-alice", "FORECASTED", "200.00", "200.00", "400.00"),
        )
        .await
        .unwrap();
    assert!(matches!(report, AlertReport::Handled { .. }));
    assert_eq!(
        account.attached(&alice).await.len(),
        1,
        "a forecast never enforces"
    );
    app.handle_delivery(
        "m-3",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "160.00", "251.00"),
    )
    .await
    .unwrap();
    assert!(account.attached(&alice).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_principals_are_never_enforced() {
    let account = Account::new().await;
    let break_glass = account.principal("role", "break-glass");
    let (app, slack) = app_with_slack(
        &account,
        &[("SEATCAP_PROTECTED_PRINCIPALS", break_glass.as_str())],
    )
    .await;
    account
        .create_principal("role", "break-glass", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&app, &break_glass, "seatcap-break-glass", "200.00").await;

    let report = app
        .handle_delivery("m-1", &at_cap("seatcap-break-glass"))
        .await
        .unwrap();
    assert!(
        matches!(report, AlertReport::Handled { ref decision, .. } if decision.outcome == seatcap::decide::Outcome::ProtectedOverCap),
        "{report:?}"
    );
    assert_eq!(
        account.attached(&break_glass).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert_eq!(status(&app, &break_glass).await["status"], "active");
    assert!(
        slack.received()[0]["text"]
            .as_str()
            .unwrap()
            .contains("protected")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_no_iam_and_says_what_it_would_do() {
    let account = Account::new().await;
    let (app, slack) = app_with_slack(&account, &[("SEATCAP_MODE", "dry-run")]).await;
    let alice = account
        .create_principal(
            "user",
            "alice",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    set_cap(&app, &alice, "seatcap-alice", "200.00").await;

    let report = app
        .handle_delivery("m-1", &at_cap("seatcap-alice"))
        .await
        .unwrap();
    match report {
        AlertReport::Handled {
            dry_run, policies, ..
        } => {
            assert!(dry_run);
            assert_eq!(
                policies,
                std::slice::from_ref(&account.bedrock_policy_arn),
                "what it would detach"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(account.attached(&alice).await.len(), 2);
    assert_eq!(status(&app, &alice).await["status"], "active");
    assert!(
        slack.received()[0]["text"]
            .as_str()
            .unwrap()
            .contains("Dry run")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slack_outage_does_not_stop_enforcement_and_is_audited() {
    let account = Account::new().await;
    let (app, slack) = app_with_slack(&account, &[]).await;
    slack.answer_with(500, "rollup_error");
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&app, &alice, "seatcap-alice", "200.00").await;

    let report = app
        .handle_delivery("m-1", &at_cap("seatcap-alice"))
        .await
        .unwrap();
    assert!(
        matches!(
            report,
            AlertReport::Handled {
                notification_failures: 1,
                ..
            }
        ),
        "{report:?}"
    );
    assert!(
        account.attached(&alice).await.is_empty(),
        "enforced despite Slack"
    );
    let history = account.history(&alice).await;
    let failure = history
        .iter()
        .find(|e| e.kind == EventKind::NotificationFailed)
        .expect("audited");
    assert_eq!(failure.detail["channel"], "slack");
    assert!(failure.detail["error"].as_str().unwrap().contains("500"));
    assert!(
        !failure.detail.to_string().contains("SECRET"),
        "the webhook URL never reaches the audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_cap_above_spend_restores_at_once() {
    let account = Account::new().await;
    let (app, _slack) = app_with_slack(&account, &[]).await;
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    set_cap(&app, &alice, "seatcap-alice", "200.00").await;
    app.handle_delivery("m-1", &at_cap("seatcap-alice"))
        .await
        .unwrap();
    assert!(account.attached(&alice).await.is_empty());

    // $212 spent: a $210 cap still blocks, $300 restores.
    set_cap(&app, &alice, "seatcap-alice", "210.00").await;
    assert_eq!(status(&app, &alice).await["status"], "blocked");
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "300", "actor": "finance@example.com", "reason": "more work"}),
        )
        .await
        .unwrap();
    assert_eq!(
        (answer["restored"].clone(), answer["status"].clone()),
        (json!(true), json!("active")),
        "{answer}"
    );
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_belongs_to_one_principal() {
    let account = Account::new().await;
    let (app, _slack) = app_with_slack(&account, &[]).await;
    let alice = account.principal("user", "alice");
    let bob = account.principal("user", "bob");
    set_cap(&app, &alice, "shared-budget", "100").await;
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": bob.as_str(), "budget": "shared-budget",
            "cap_usd": "100", "actor": "f", "reason": "r"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["error"]["code"], "budget_taken", "{answer}");
    assert_eq!(status(&app, &bob).await["error"]["code"], "not_found");

    // Moving alice to another budget frees the first one.
    set_cap(&app, &alice, "seatcap-alice", "100").await;
    set_cap(&app, &bob, "shared-budget", "100").await;
    assert_eq!(
        account.ledger().owner_of("shared-budget").await.unwrap(),
        Some(bob)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_raise_racing_the_cut_off_always_ends_consistent() {
    let account = Account::new().await;
    let (app, _slack) = app_with_slack(&account, &[]).await;
    for round in 0..12 {
        let name = format!("racer-{round}");
        let principal = account
            .create_principal("user", &name, &[&account.bedrock_policy_arn])
            .await;
        let budget = format!("seatcap-{name}");
        set_cap(&app, &principal, &budget, "200.00").await;
        let alert = app.clone();
        let admin = app.clone();
        let (alert_budget, admin_principal, admin_budget) =
            (budget.clone(), principal.clone(), budget.clone());
        let cut = tokio::spawn(async move {
            alert
                .handle_delivery("m-race", &at_cap(&alert_budget))
                .await
                .unwrap()
        });
        let raise = tokio::spawn(async move {
            set_cap(&admin, &admin_principal, &admin_budget, "500.00").await
        });
        cut.await.unwrap();
        raise.await.unwrap();

        // Whichever won, the ledger and IAM agree: $212 is under the new $500 cap, so the
        // principal ends active with its policy, or the raise restored it.
        let state = account.ledger().load(&principal).await.unwrap().unwrap();
        let attached = account.attached(&principal).await;
        assert_eq!(state.status, Status::Active, "round {round}: {state:?}");
        assert_eq!(
            attached,
            vec![account.bedrock_policy_arn.clone()],
            "round {round}"
        );
        assert!(state.detached_policy_arns.is_empty());
    }
}
