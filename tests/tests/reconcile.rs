//! reconcile against moto: each finding (lost alert, missed rollover, drift, missing policy,
//! budget gone, unowned budget), dry-run changing nothing, a run cut short and continued,
//! a throttled IAM, and the built binary. Budgets' spend is set through moto's
//! `CalculatedSpend`; time is an injected clock.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use seatcap::App;
use seatcap::handover::Pace;
use seatcap::ledger::{AuditEvent, EventKind};
use seatcap::principal::PrincipalArn;
use seatcap::reconcile::{ReconcileEvent, ReconcileReport};
use seatcap::state::Status;
use seatcap_tests::proxy::ThrottlingProxy;
use seatcap_tests::{Account, Function, binary, budget_alert, moto};
use serde_json::json;

fn november() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()
}

fn app_at(account: &Account, now: DateTime<Utc>, overrides: &[(&str, &str)]) -> App {
    account.app(overrides, Arc::new(move || now))
}

/// A principal with the managed policy, capped at `cap` in the ledger, whose budget reports
/// `spend` so far.
async fn managed(account: &Account, app: &App, name: &str, cap: &str, spend: &str) -> PrincipalArn {
    let principal = account
        .create_principal("user", name, &[&account.bedrock_policy_arn])
        .await;
    let budget = format!("seatcap-{name}");
    account.put_budget(&budget, cap, spend, Some(name)).await;
    let answer = app
        .handle_admin(json!({"action": "set_cap", "principal": principal.as_str(),
            "budget": budget, "cap_usd": cap, "actor": "finance", "reason": "seat"}))
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    principal
}

async fn reconcile(app: &App) -> ReconcileReport {
    app.reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .expect("reconcile runs")
}

/// The one audit event of `kind` in the principal's history (the clock is fixed, so events
/// of one test share their time and their order within it is not theirs to keep).
async fn audited(account: &Account, principal: &PrincipalArn, kind: EventKind) -> AuditEvent {
    let history = account.history(principal).await;
    let mut of_kind = history.into_iter().filter(|e| e.kind == kind);
    let event = of_kind
        .next()
        .unwrap_or_else(|| panic!("no {kind:?} audited"));
    assert!(of_kind.next().is_none(), "{kind:?} audited twice");
    event
}

/// What the report says about `principal`, as the function's answer shows it.
fn finding_of(report: &ReconcileReport, principal: &PrincipalArn) -> serde_json::Value {
    let found = report
        .principals
        .iter()
        .find(|p| &p.principal == principal)
        .unwrap_or_else(|| panic!("no finding for {principal} in {report:?}"));
    serde_json::to_value(found).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_alert_is_caught_and_enforced() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let alice = managed(&account, &app, "alice", "200", "20").await;
    let bob = managed(&account, &app, "bob", "200", "50").await;
    // The 100 % alert never came: Budgets already shows alice over her cap.
    account
        .put_budget("seatcap-alice", "200", "231.40", Some("alice"))
        .await;

    let report = reconcile(&app).await;
    assert_eq!(report.checked, 2);
    assert_eq!(
        report.counts.get("over_cap_while_active"),
        Some(&1),
        "{report:?}"
    );
    let found = finding_of(&report, &alice);
    assert_eq!(found["action"], "enforce");
    assert_eq!(found["outcome"], "done");
    assert!(account.attached(&alice).await.is_empty());
    assert_eq!(
        account.attached(&bob).await,
        vec![account.bedrock_policy_arn.clone()]
    );

    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Blocked);
    assert_eq!(state.blocked_period.as_deref(), Some("2026-11"));
    assert_eq!(
        state.detached_policy_arns,
        vec![account.bedrock_policy_arn.clone()]
    );
    let enforced = audited(&account, &alice, EventKind::Enforced).await;
    assert_eq!(enforced.actor, "seatcap:reconcile");
    let reason = enforced.reason.unwrap_or_default();
    assert!(reason.starts_with("caught by reconcile"), "{reason}");
    let sent = account.sent_notifications().await;
    assert!(
        sent.iter().any(|(_, _, attrs)| attrs["kind"] == "cut_off"
            && attrs["principal"] == alice.as_str()),
        "{sent:?}"
    );

    // A second run finds everything in order.
    let again = reconcile(&app).await;
    assert!(again.counts.is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_the_rollover_missed_is_restored_and_manual_blocks_stay() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let alice = managed(&account, &app, "alice", "200", "150").await;
    app.handle_delivery(
        "m-alice",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00"),
    )
    .await
    .unwrap();
    let carol = managed(&account, &app, "carol", "200", "10").await;
    app.handle_admin(json!({"action": "block", "principal": carol.as_str(),
        "actor": "security", "reason": "offboarding"}))
        .await
        .unwrap();

    // Still November, Budgets lagging behind the alert: alice stays blocked.
    let report = reconcile(&app).await;
    assert!(report.counts.is_empty(), "{report:?}");
    assert!(account.attached(&alice).await.is_empty());

    // December: the rollover never ran, Budgets' new period shows $3.
    account
        .put_budget("seatcap-alice", "200", "3", Some("alice"))
        .await;
    account
        .put_budget("seatcap-carol", "200", "0", Some("carol"))
        .await;
    let december = app_at(
        &account,
        Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap(),
        &[],
    );
    let report = reconcile(&december).await;
    assert_eq!(
        report.counts.get("under_cap_while_blocked"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(finding_of(&report, &alice)["outcome"], "done");
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert!(
        account.attached(&carol).await.is_empty(),
        "a manual block stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_attached_again_during_a_block_is_detached_and_security_told() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let alice = managed(&account, &app, "alice", "200", "230").await;
    app.handle_delivery(
        "m-alice",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00"),
    )
    .await
    .unwrap();
    // Someone with IAM rights gives the access back by hand.
    account
        .iam
        .attach_user_policy()
        .user_name("alice")
        .policy_arn(&account.bedrock_policy_arn)
        .send()
        .await
        .unwrap();

    let report = reconcile(&app).await;
    assert_eq!(
        report.counts.get("reattached_while_blocked"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(finding_of(&report, &alice)["action"], "detach_again");
    assert!(account.attached(&alice).await.is_empty());
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Blocked);
    assert_eq!(
        state.detached_policy_arns,
        vec![account.bedrock_policy_arn.clone()],
        "what to give back at restore is unchanged"
    );
    let repaired = audited(&account, &alice, EventKind::DriftRepaired).await;
    assert_eq!(repaired.actor, "seatcap:reconcile");
    let sent = account.sent_notifications().await;
    assert!(
        sent.iter().any(|(_, _, attrs)| attrs["kind"] == "drift"
            && attrs["audience"] == "security"
            && attrs["severity"] == "critical"),
        "{sent:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_be_known_is_reported_and_nothing_is_guessed() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    // dave's managed policy went missing while active.
    let dave = managed(&account, &app, "dave", "200", "10").await;
    account
        .iam
        .detach_user_policy()
        .user_name("dave")
        .policy_arn(&account.bedrock_policy_arn)
        .send()
        .await
        .unwrap();
    // erin's budget was deleted.
    let erin = managed(&account, &app, "erin", "200", "10").await;
    aws_sdk_budgets::Client::new(&account.sdk)
        .delete_budget()
        .account_id(&account.id)
        .budget_name("seatcap-erin")
        .send()
        .await
        .unwrap();
    // A per-person budget on seatcap's tag that nobody set a cap for.
    account
        .put_budget("seatcap-frank", "100", "90", Some("frank"))
        .await;
    // And one that is not seatcap's business at all.
    account
        .put_budget("team-platform", "5000", "90", None)
        .await;

    let report = reconcile(&app).await;
    assert_eq!(
        report.counts.get("no_managed_policy_while_active"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(report.counts.get("budget_gone"), Some(&1));
    assert_eq!(report.unowned_budgets, ["seatcap-frank"]);
    assert_eq!(finding_of(&report, &dave)["outcome"], "reported");
    assert_eq!(finding_of(&report, &erin)["outcome"], "reported");
    assert!(
        account.attached(&dave).await.is_empty(),
        "nothing attached by guess"
    );
    assert_eq!(
        account.attached(&erin).await,
        vec![account.bedrock_policy_arn.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reports_the_plan_and_changes_nothing() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let alice = managed(&account, &app, "alice", "200", "300").await;
    let before = account.ledger().load(&alice).await.unwrap().unwrap();

    for (app, event) in [
        (
            app_at(&account, november(), &[("SEATCAP_MODE", "dry-run")]),
            ReconcileEvent::default(),
        ),
        (
            app_at(&account, november(), &[]),
            ReconcileEvent {
                dry_run: true,
                resume: None,
            },
        ),
    ] {
        let report = app.reconcile(event, Pace::unlimited()).await.unwrap();
        assert!(report.dry_run);
        assert_eq!(finding_of(&report, &alice)["action"], "enforce");
        assert_eq!(finding_of(&report, &alice)["outcome"], "planned");
    }
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert_eq!(
        account.ledger().load(&alice).await.unwrap().unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_short_hands_over_and_the_next_continues_without_acting_twice() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let mut over = Vec::new();
    for name in ["ann", "ben", "cat"] {
        over.push(managed(&account, &app, name, "100", "120").await);
    }

    let first = app
        .reconcile(ReconcileEvent::default(), Pace::one_page_of(2))
        .await
        .unwrap();
    assert_eq!(first.checked, 2);
    let next = first
        .handed_over
        .clone()
        .expect("two of three done: hand over");
    assert_eq!(next.resume.as_ref().unwrap().after.as_ref(), Some(&over[1]));

    let second = app.reconcile(next, Pace::one_page_of(2)).await.unwrap();
    assert_eq!(
        second
            .principals
            .iter()
            .filter(|p| p.outcome == "done")
            .count(),
        1
    );
    // The rest (the blocked ones) in further runs; none acts again.
    let mut event = second.handed_over.clone();
    while let Some(next) = event {
        let run = app.reconcile(next, Pace::one_page_of(2)).await.unwrap();
        assert!(
            run.principals.iter().all(|p| p.outcome != "done"),
            "{run:?}"
        );
        event = run.handed_over;
    }
    for principal in &over {
        assert!(account.attached(principal).await.is_empty());
        let history = account.history(principal).await;
        let enforced = history
            .iter()
            .filter(|e| e.kind == EventKind::Enforced)
            .count();
        assert_eq!(enforced, 1, "{principal}");
    }
}

/// Two reconciles at once (the schedule's and an operator's) over people whose 100 % alert
/// was lost: they race at each person's intent, so each is cut once, the ledger records
/// exactly what IAM lacks, and a restore gives back exactly that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconciles_at_once_cut_each_lost_alert_once() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let mut over = Vec::new();
    for name in ["ann", "ben", "cat"] {
        over.push(managed(&account, &app, name, "200", "20").await);
        let budget = format!("seatcap-{name}");
        account
            .put_budget(&budget, "200", "231.40", Some(name))
            .await;
    }

    let (one, two) = (
        app_at(&account, november(), &[]),
        app_at(&account, november(), &[]),
    );
    let (first, second) = tokio::join!(reconcile(&one), reconcile(&two));
    assert!(
        first.failed.is_empty() && second.failed.is_empty(),
        "{first:?} {second:?}"
    );
    for principal in &over {
        assert!(account.attached(principal).await.is_empty());
        account.assert_cut(principal).await;
        audited(&account, principal, EventKind::Enforced).await;
        let answer = app
            .handle_admin(json!({"action": "restore", "principal": principal.as_str(),
                "actor": "finance", "reason": "approved"}))
            .await
            .unwrap();
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(
            account.attached(principal).await,
            vec![account.bedrock_policy_arn.clone()]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_iam_slows_reconcile_down_but_it_completes() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let mut over = Vec::new();
    for name in ["ann", "ben", "cat", "dan"] {
        over.push(managed(&account, &app, name, "100", "120").await);
    }
    let upstream = moto().endpoint.trim_start_matches("http://").to_owned();
    // Every IAM call reconcile makes is refused twice with `Throttling` before it passes.
    let proxy = ThrottlingProxy::start(upstream, "Version=2010-05-08", 2).await;
    let throttled_app = account.app_through(&proxy.url, &[], Arc::new(november));
    let report = reconcile(&throttled_app).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.counts.get("over_cap_while_active"), Some(&4));
    for principal in &over {
        assert!(account.attached(principal).await.is_empty());
    }
    // One sweep, and for each of the four a detach and the check of what remains (its
    // groups, its managed and its inline policies), each call refused twice.
    assert_eq!(proxy.throttled(), 2 * (1 + 4 * (1 + 3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_reconciles_on_its_schedule() {
    let account = Account::new().await;
    let app = app_at(&account, Utc::now(), &[]);
    let alice = managed(&account, &app, "alice", "200", "250").await;

    let function = Function::start(binary("reconcile"), &account.env()).await;
    let event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/scheduled-event.json")).unwrap();
    let report = function.invoke(&event).await.expect_response();
    assert_eq!(report["counts"]["over_cap_while_active"], 1, "{report}");
    assert!(account.attached(&alice).await.is_empty());
    assert!(
        function
            .logs()
            .iter()
            .any(|line| line.contains("reconcile summary")),
        "the summary is logged"
    );
    assert!(
        function
            .logs()
            .iter()
            .any(|line| line.contains("\"Reconcile.over_cap_while_active\":1")),
        "and emitted as a metric"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_overrides_end() {
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    let alice = managed(&account, &app, "alice", "200", "150").await;
    let answer = app
        .handle_admin(
            json!({"action": "grant_override", "principal": alice.as_str(),
            "extra_usd": "100", "expires_at": "2026-11-22T00:00:00Z",
            "actor": "finance", "reason": "launch week"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");

    let later = app_at(
        &account,
        Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap(),
        &[],
    );
    let report = reconcile(&later).await;
    assert_eq!(
        report.counts.get("overrides_expired"),
        Some(&1),
        "{report:?}"
    );
    assert_eq!(finding_of(&report, &alice)["action"], "end_overrides");
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert!(state.overrides.is_empty());
    assert_eq!(state.status, Status::Active);
    audited(&account, &alice, EventKind::OverrideExpired).await;
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert!(reconcile(&later).await.counts.is_empty(), "once");
}

/// A person blocked on a shared role stays denied only while the shard's document names
/// them under the role's current unique id. Reconcile reads the documents and the role ids
/// in its one sweep and writes the list again when IAM no longer says what the ledger says:
/// after a document rewritten behind seatcap's back, and after the role was recreated (a
/// re-provisioned permission set gets a new unique id, and the old deny denies nobody).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_role_deny_that_no_longer_names_the_person_is_written_again() {
    const ROLE: &str = "ClaudeCodeBedrockUsers";
    let account = Account::new().await;
    let app = app_at(&account, november(), &[]);
    account
        .create_principal("role", ROLE, &[&account.bedrock_policy_arn])
        .await;
    let alice: PrincipalArn = format!("arn:aws:sts::{}:assumed-role/{ROLE}/alice", account.id)
        .parse()
        .unwrap();
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "200", "actor": "finance", "reason": "seat"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true);
    app.handle_delivery(
        "m-alice",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00"),
    )
    .await
    .unwrap();
    let shard = seatcap::deny::shard_policy_arn("aws", &account.id, ROLE, 0);
    let iam = seatcap::iam::Iam::new(account.iam.clone());
    let role_id = || async {
        account
            .iam
            .get_role()
            .role_name(ROLE)
            .send()
            .await
            .unwrap()
            .role
            .unwrap()
            .role_id
    };
    let denies_alice = || async {
        let me = format!("{}:alice", role_id().await);
        let (_, document) = iam.own_policy_document(&shard).await.unwrap().unwrap();
        seatcap::deny::denied_user_ids(&document).contains(&me)
    };
    assert!(denies_alice().await);
    let findings = |report: &ReconcileReport| -> Vec<String> {
        report
            .principals
            .iter()
            .filter(|p| p.principal == alice)
            .flat_map(|p| p.findings.iter().map(|f| f.name().to_owned()))
            // No AWS Budget was made for her in this test.
            .filter(|name| name != "budget_gone")
            .collect()
    };

    // Someone makes the shard deny somebody else.
    let stranger = seatcap::deny::document(&role_id().await, &["mallory".into()], 1);
    account
        .iam
        .create_policy_version()
        .policy_arn(&shard)
        .policy_document(stranger.to_string())
        .set_as_default(true)
        .send()
        .await
        .unwrap();
    assert!(!denies_alice().await);
    let report = app
        .reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(
        findings(&report),
        ["deny_misses_person_while_blocked"],
        "{report:?}"
    );
    assert!(denies_alice().await, "written again from the ledger's list");

    // The permission set is re-provisioned: the role is deleted and made again, new id.
    let role = account.principal("role", ROLE);
    for policy in account.attached(&role).await {
        account
            .iam
            .detach_role_policy()
            .role_name(ROLE)
            .policy_arn(policy)
            .send()
            .await
            .unwrap();
    }
    account
        .iam
        .delete_role()
        .role_name(ROLE)
        .send()
        .await
        .unwrap();
    account
        .create_principal("role", ROLE, &[&account.bedrock_policy_arn])
        .await;
    assert!(!denies_alice().await, "the old deny names the old role id");
    let report = app
        .reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(
        findings(&report),
        ["deny_removed_while_blocked"],
        "{report:?}"
    );
    assert!(denies_alice().await, "written again under the new role id");
    assert!(account.attached(&role).await.contains(&shard));
    let again = app
        .reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .unwrap();
    assert!(findings(&again).is_empty(), "{again:?}");
}

/// An ended month's metered figure against Budgets' (DescribeBudgetPerformanceHistory:
/// moto has none, so Budgets is mocked here; the ledger and IAM are moto's): from the third
/// day of the next month, the first reconcile reports each principal more than 10 % apart,
/// once, and later runs neither report it again nor ask Budgets again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_months_metered_and_billed_figures_more_than_ten_percent_apart_are_reported_once()
{
    use aws_sdk_budgets::operation::describe_budget_performance_history::DescribeBudgetPerformanceHistoryOutput;
    use aws_sdk_budgets::operation::describe_budgets::DescribeBudgetsOutput;
    use aws_sdk_budgets::types::{BudgetPerformanceHistory, BudgetedAndActualAmounts, Spend};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    let account = Account::new().await;
    let mid_november = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
    let app = app_at(&account, mid_november, &[]);
    let alice = managed(&account, &app, "alice", "500.00", "0.00").await;
    let bob = managed(&account, &app, "bob", "500.00", "0.00").await;
    // November, metered: Alice $100 (4 Opus calls), Bob $50.
    let opus = "global.anthropic.claude-opus-4-5-20251101-v1:0";
    let records: Vec<String> = [(&alice, 4), (&bob, 2)]
        .iter()
        .flat_map(|(who, n)| {
            (0..*n).map(move |i| {
                let mut r = seatcap_tests::invocation_record(
                    who.as_str(),
                    &format!("{who}-{i}"),
                    opus,
                    1_000_000,
                );
                r["timestamp"] = json!("2026-11-20T10:00:00Z");
                r.to_string()
            })
        })
        .collect();
    app.meter_records(&records).await.unwrap();

    // Budgets' bill for November: Alice $104 (4 % apart: fine), Bob $80 (37.5 %: drift).
    let billed = |name: &'static str, amount: &'static str| {
        mock!(aws_sdk_budgets::Client::describe_budget_performance_history)
            .match_requests(move |r| r.budget_name() == Some(name))
            .then_output(move || {
                let spend = Spend::builder().amount(amount).unit("USD").build().unwrap();
                DescribeBudgetPerformanceHistoryOutput::builder()
                    .budget_performance_history(
                        BudgetPerformanceHistory::builder()
                            .budgeted_and_actual_amounts_list(
                                BudgetedAndActualAmounts::builder()
                                    .actual_amount(spend)
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            })
    };
    let (alices, bobs) = (
        billed("seatcap-alice", "104.0"),
        billed("seatcap-bob", "80.0"),
    );
    let none = mock!(aws_sdk_budgets::Client::describe_budgets)
        .then_output(|| DescribeBudgetsOutput::builder().build());
    let at = |now: DateTime<Utc>| {
        let mut app = app_at(&account, now, &[]);
        app.budgets = seatcap::budgets::Budgets::new(mock_client!(
            aws_sdk_budgets,
            RuleMode::MatchAny,
            [&alices, &bobs, &none]
        ));
        app
    };

    // The 2nd of December: too early (Budgets' figure is still settling).
    let early = reconcile(&at(Utc.with_ymd_and_hms(2026, 12, 2, 9, 0, 0).unwrap())).await;
    assert!(early.metered_budget_drift.is_empty());
    assert_eq!(alices.num_calls() + bobs.num_calls(), 0);

    // Two runs at once (a scheduled one and an operator's): the drift is reported once.
    let third = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
    let (one, two) = (at(third), at(third));
    let (one, two) = tokio::join!(reconcile(&one), reconcile(&two));
    let due = if one.metered_budget_drift.is_empty() {
        two
    } else {
        one
    };
    assert_eq!(due.metered_budget_drift.len(), 1, "{due:?}");
    let drift = &due.metered_budget_drift[0];
    assert_eq!(
        (
            drift.principal.clone(),
            drift.period.as_str(),
            drift.metered_usd.as_str(),
            drift.budgets_usd.as_str(),
            drift.difference_percent.as_str()
        ),
        (bob.clone(), "2026-11", "50.00", "80.00", "37.50")
    );
    assert_eq!(due.counts.get("metered_budget_drift"), Some(&1));
    let event = audited(&account, &bob, EventKind::MeteredBudgetDrift).await;
    assert_eq!(event.detail["budgets_usd"], "80.00");

    // Later runs: checked already; Budgets is not asked again.
    let asked = (alices.num_calls(), bobs.num_calls());
    let later = reconcile(&at(Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap())).await;
    assert!(later.metered_budget_drift.is_empty());
    assert_eq!((alices.num_calls(), bobs.num_calls()), asked);
}
