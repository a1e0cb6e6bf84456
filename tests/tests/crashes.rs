//! Process death between IAM and the ledger, with the real binaries: a proxy in front of
//! moto kills the function right after IAM has answered the call that changes access, so
//! the change is made in IAM and nothing after it runs. The delivery (or the request, or
//! the next scheduled run) comes again to a fresh process, which finds the write-ahead
//! intent, completes it from the record, and the ledger and IAM agree; a restore then
//! gives back exactly what was taken.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use seatcap::App;
use seatcap::audit::AuditEvent;
use seatcap::intent::{Intent, PlannedStep, Taken};
use seatcap::ledger::{Commit, EventKind};
use seatcap::principal::PrincipalArn;
use seatcap::state::{PrincipalState, Status};
use seatcap_tests::{
    Account, Function, KillingProxy, SlackReceiver, binary, budget_alert, sns_event,
    todays_budget_alert,
};
use serde_json::{Value, json};

/// The killed invocation's Lambda timeout: its intent is held until then (and a margin),
/// so the redelivery waits that long before completing it.
const KILLED_TIMEOUT: Duration = Duration::from_secs(3);

fn app_at(account: &Account, now: DateTime<Utc>) -> App {
    account.app(&[], Arc::new(move || now))
}

fn now_app(account: &Account) -> App {
    account.app(&[], seatcap::app::system_clock())
}

fn env_with(account: &Account, extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut env = account.env();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    env
}

/// Runs `binary` on `payload` with its AWS calls through a proxy that kills it right after
/// the first call whose body contains `needle` has been answered.
async fn killed_after(
    account: &Account,
    binary_name: &str,
    env: &HashMap<String, String>,
    needle: &str,
    payload: &Value,
) {
    let victim = Arc::new(Mutex::new(None));
    let upstream = account.endpoint.trim_start_matches("http://").to_owned();
    let proxy = KillingProxy::start(upstream, needle.to_owned(), victim.clone()).await;
    let mut env = env.clone();
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    let mut function = Function::start(binary(binary_name), &env).await;
    *victim.lock().unwrap() = function.pid();
    let answer = function.invoke_or_die(payload, KILLED_TIMEOUT).await;
    assert!(
        answer.is_none() && proxy.fired(),
        "{binary_name} was to be killed after {needle}; it answered {answer:?}"
    );
}

async fn state(account: &Account, principal: &PrincipalArn) -> PrincipalState {
    account.ledger().load(principal).await.unwrap().unwrap()
}

/// The principal's state once every change has settled: `status`, nothing under way.
async fn settled(account: &Account, principal: &PrincipalArn, status: Status) -> PrincipalState {
    let state = state(account, principal).await;
    assert_eq!(
        (state.status, state.pending.is_none()),
        (status, true),
        "{state:?}"
    );
    state
}

async fn events(account: &Account, principal: &PrincipalArn) -> Vec<EventKind> {
    account
        .history(principal)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// The newest event of `kind` filed under `principal`.
async fn last_event(account: &Account, principal: &PrincipalArn, kind: EventKind) -> AuditEvent {
    account
        .history(principal)
        .await
        .into_iter()
        .find(|e| e.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} event for {principal}"))
}

async fn enrol(app: &App, principal: &PrincipalArn, budget: &str) {
    let answer = app
        .handle_admin(
            json!({"action": "set_cap", "principal": principal.as_str(), "budget": budget,
            "cap_usd": "200", "actor": "finance", "reason": "seat"}),
        )
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
}

fn request(action: &str, principal: &PrincipalArn) -> Value {
    json!({"action": action, "principal": principal.as_str(), "actor": "finance", "reason": "test"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_killed_after_the_detach_is_completed_by_its_redelivery() {
    let account = Account::new().await;
    let slack = SlackReceiver::start().await;
    let env = env_with(&account, &[("SEATCAP_SLACK_WEBHOOK_URL", &slack.url)]);
    let alice = account
        .create_principal(
            "user",
            "alice",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    let app = now_app(&account);
    enrol(&app, &alice, "seatcap-alice").await;
    let event = sns_event(
        "m-100",
        &todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00"),
    );

    killed_after(
        &account,
        "budget-alert",
        &env,
        "Action=DetachUserPolicy",
        &event,
    )
    .await;
    // IAM changed, the process is gone: the ledger holds the intent that says so.
    assert_eq!(
        account.attached(&alice).await,
        vec![account.other_policy_arn.clone()]
    );
    let pending = state(&account, &alice).await;
    assert!(pending.pending.is_some(), "{pending:?}");
    assert!(
        slack.received().is_empty(),
        "the killed process told nobody"
    );

    // SNS delivers again, to a new process.
    let alerts = Function::start(binary("budget-alert"), &env).await;
    alerts.invoke(&event).await.expect_response();
    account.assert_cut(&alice).await;
    assert!(
        events(&account, &alice)
            .await
            .contains(&EventKind::IntentCompleted)
    );
    let posts = slack.received();
    assert_eq!(
        posts.len(),
        1,
        "the cut-off is told once, by the completing process: {posts:?}"
    );
    assert!(posts[0].to_string().contains("cut off"), "{}", posts[0]);

    // A third delivery is a duplicate: nothing more happens.
    let again = alerts.invoke(&event).await.expect_response();
    assert_eq!(again["reports"][0]["result"], "duplicate", "{again}");

    let admin = Function::start(binary("admin"), &env).await;
    let answer = admin
        .invoke(&request("restore", &alice))
        .await
        .expect_response();
    assert_eq!(
        answer["reattached_policy_arns"],
        json!([account.bedrock_policy_arn]),
        "{answer}"
    );
    let mut both = vec![
        account.bedrock_policy_arn.clone(),
        account.other_policy_arn.clone(),
    ];
    both.sort();
    assert_eq!(account.attached(&alice).await, both);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_block_or_restore_killed_after_iam_is_completed_by_the_next_request() {
    let account = Account::new().await;
    let env = account.env();
    let bob = account
        .create_principal(
            "user",
            "bob",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    enrol(&now_app(&account), &bob, "seatcap-bob").await;
    let mut both = vec![
        account.bedrock_policy_arn.clone(),
        account.other_policy_arn.clone(),
    ];
    both.sort();

    // A block dies after the detach; finance's next request (a restore) completes the
    // block from its record first, then gives back exactly what it took.
    killed_after(
        &account,
        "admin",
        &env,
        "Action=DetachUserPolicy",
        &request("block", &bob),
    )
    .await;
    assert_eq!(
        account.attached(&bob).await,
        vec![account.other_policy_arn.clone()]
    );
    let admin = Function::start(binary("admin"), &env).await;
    let answer = admin
        .invoke(&request("restore", &bob))
        .await
        .expect_response();
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(
        answer["reattached_policy_arns"],
        json!([account.bedrock_policy_arn]),
        "{answer}"
    );
    assert_eq!(account.attached(&bob).await, both);
    let kinds = events(&account, &bob).await;
    assert!(
        kinds.contains(&EventKind::IntentCompleted) && kinds.contains(&EventKind::Blocked),
        "{kinds:?}"
    );

    // A restore dies after the attach; the next restore completes it and has nothing left
    // to do.
    let answer = admin
        .invoke(&request("block", &bob))
        .await
        .expect_response();
    assert_eq!(answer["status"], "blocked", "{answer}");
    killed_after(
        &account,
        "admin",
        &env,
        "Action=AttachUserPolicy",
        &request("restore", &bob),
    )
    .await;
    assert_eq!(
        account.attached(&bob).await,
        both,
        "IAM gave it back before the death"
    );
    let holding = state(&account, &bob).await;
    assert_eq!(
        holding.status,
        Status::Blocked,
        "the ledger does not know yet"
    );
    let answer = admin
        .invoke(&request("restore", &bob))
        .await
        .expect_response();
    assert_eq!(answer["ok"], true, "{answer}");
    let after = settled(&account, &bob, Status::Active).await;
    assert!(after.detached_policy_arns.is_empty());
    assert_eq!(account.attached(&bob).await, both);
    // The intent carried no views of the state: the completing writer's audit shows the
    // state it replaced (the holding state without the intent) and the state it committed.
    let restored = last_event(&account, &bob, EventKind::Restored).await;
    let before = PrincipalState {
        pending: None,
        version: holding.version - 1,
        ..holding
    };
    assert_eq!(restored.detail["before"], before.view(restored.at));
    assert_eq!(restored.detail["after"], after.view(restored.at));
}

/// An intent written by the previous version carries its audit's views of the state, and
/// its holding state a later `updated_at` than the state it replaced. One left stranded
/// (its writer died) by an upgrade is completed with the views it carries, not ones
/// rebuilt from the holding state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_of_the_previous_version_is_completed_with_its_own_audit_views() {
    let account = Account::new().await;
    let app = now_app(&account);
    let bob = account
        .create_principal("user", "bob", &[&account.bedrock_policy_arn])
        .await;
    enrol(&app, &bob, "seatcap-bob").await;
    let answer = app.handle_admin(request("block", &bob)).await.unwrap();
    assert_eq!(answer["status"], "blocked", "{answer}");
    let blocked = state(&account, &bob).await;
    assert!(account.attached(&bob).await.is_empty());

    // The previous version's restore, as it wrote its intent before dying.
    let started = Utc::now() - chrono::Duration::minutes(20);
    let Ok(seatcap::change::Change::To { next, .. }) = seatcap::change::restore(&blocked, started)
    else {
        panic!("a blocked principal is restored");
    };
    let then = PrincipalState {
        version: blocked.version + 1,
        ..*next
    };
    let old_views = json!({
        "before": blocked.view(started),
        "after": then.view(started),
        "detached_policy_arns": [],
        "added_deny_policy_arn": null,
        "reattached_policy_arns": [account.bedrock_policy_arn],
        "removed_deny_policy_arn": null,
    });
    let intent = Intent {
        id: "previous-version".into(),
        by: "finance".into(),
        step: PlannedStep::GiveBack(Taken::of(&blocked)),
        started_at: started,
        held_until: started + chrono::Duration::minutes(1),
        then: Box::new(then),
        events: vec![AuditEvent::new(
            started,
            EventKind::Restored,
            "finance",
            old_views.clone(),
        )],
        claims: Vec::new(),
        notices: Vec::new(),
    };
    let holding = PrincipalState {
        pending: Some(Box::new(intent)),
        version: blocked.version + 1,
        updated_at: started,
        ..blocked.clone()
    };
    account
        .ledger()
        .commit(
            Commit {
                state: Some((holding, Some(blocked.version))),
                ..Commit::default()
            },
            started,
        )
        .await
        .unwrap();

    // This version's next request completes it first; the restore then has nothing to do.
    let answer = app.handle_admin(request("restore", &bob)).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    let after = settled(&account, &bob, Status::Active).await;
    assert_eq!(
        account.attached(&bob).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    let restored = last_event(&account, &bob, EventKind::Restored).await;
    assert_eq!(restored.detail["before"], old_views["before"]);
    assert_eq!(restored.detail["after"], after.view(started));
    assert!(
        events(&account, &bob)
            .await
            .contains(&EventKind::IntentCompleted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollover_killed_after_a_restore_is_completed_by_the_next_run() {
    let account = Account::new().await;
    let november = app_at(
        &account,
        Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap(),
    );
    let mut blocked = Vec::new();
    for name in ["ann", "ben"] {
        let principal = account
            .create_principal("user", name, &[&account.bedrock_policy_arn])
            .await;
        let budget = format!("seatcap-{name}");
        enrol(&november, &principal, &budget).await;
        november
            .handle_delivery(
                &format!("m-{name}"),
                &budget_alert(&budget, "ACTUAL", "200.00", "200.00", "230.00"),
            )
            .await
            .unwrap();
        assert!(account.attached(&principal).await.is_empty());
        blocked.push(principal);
    }
    let event = json!({"time": "2026-12-01T00:05:00Z"});
    killed_after(
        &account,
        "period-rollover",
        &account.env(),
        "Action=AttachUserPolicy",
        &event,
    )
    .await;

    let rollover = Function::start(binary("period-rollover"), &account.env()).await;
    rollover.invoke(&event).await.expect_response();
    for principal in &blocked {
        settled(&account, principal, Status::Active).await;
        assert_eq!(
            account.attached(principal).await,
            vec![account.bedrock_policy_arn.clone()]
        );
    }
    let completed = futures::future::join_all(blocked.iter().map(|p| events(&account, p))).await;
    // Restores run several at once: the death cuts short the one whose attach it followed,
    // and any other whose intent was written by then.
    assert!(
        completed
            .iter()
            .any(|k| k.contains(&EventKind::IntentCompleted)),
        "a restore cut short was completed: {completed:?}"
    );
}

/// reconcile catches a lost alert and dies right after IAM detached the policy; the next
/// scheduled run completes the cut from the intent, and a restore gives back exactly it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_killed_after_a_cut_is_completed_by_the_next_run() {
    let account = Account::new().await;
    let bob = account
        .create_principal(
            "user",
            "bob",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    account
        .put_budget("seatcap-bob", "200", "20", Some("bob"))
        .await;
    enrol(&now_app(&account), &bob, "seatcap-bob").await;
    // The 100 % alert never came: Budgets already shows bob over his cap.
    account
        .put_budget("seatcap-bob", "200", "230", Some("bob"))
        .await;

    let event = json!({});
    killed_after(
        &account,
        "reconcile",
        &account.env(),
        "Action=DetachUserPolicy",
        &event,
    )
    .await;
    assert_eq!(
        account.attached(&bob).await,
        vec![account.other_policy_arn.clone()]
    );
    assert!(state(&account, &bob).await.pending.is_some());

    let reconcile = Function::start(binary("reconcile"), &account.env()).await;
    reconcile.invoke(&event).await.expect_response();
    account.assert_cut(&bob).await;
    assert!(
        events(&account, &bob)
            .await
            .contains(&EventKind::IntentCompleted)
    );
    let answer = now_app(&account)
        .handle_admin(request("restore", &bob))
        .await
        .unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    let mut both = vec![
        account.bedrock_policy_arn.clone(),
        account.other_policy_arn.clone(),
    ];
    both.sort();
    assert_eq!(account.attached(&bob).await, both);
}

/// A person on a shared role: the admin dies right after IAM took the new shard document
/// that denies them, before the list or the person's state was written. The lease and the
/// intent are both held until the dead process's deadline; the next request waits that
/// out, completes the block from the intent (writing the list again, fenced by the newer
/// lease), then does what it was asked. On a plain shared role, and on a role IAM Identity
/// Center made (whose shards the permission set references: nothing is written to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_role_block_killed_after_the_shard_write_is_completed_by_the_next_request() {
    shard_write_killed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_center_block_killed_after_the_shard_write_is_completed_by_the_next_request() {
    shard_write_killed(true).await;
}

/// How many people the ledger's list for the role names, and whether its lease is free.
async fn ledger_list(account: &Account, role: &str, identity_center: bool) -> (usize, bool) {
    let ledger = account.ledger();
    if identity_center {
        let list: seatcap::ledger::SsoDenials = ledger
            .load_deny_list(&seatcap::ledger::sso_pk(&account.id))
            .await
            .unwrap()
            .unwrap();
        (list.list.len(), list.lease.held_by.is_none())
    } else {
        let list: seatcap::ledger::RoleDenials = ledger
            .load_deny_list(&seatcap::ledger::role_pk(&account.id, role))
            .await
            .unwrap()
            .unwrap();
        (list.list.len(), list.lease.held_by.is_none())
    }
}

async fn shard_write_killed(identity_center: bool) {
    let account = Account::new().await;
    let env = account.env();
    let (role, shard) = if identity_center {
        let role = account
            .identity_center_role("ClaudeDev", &[0, 1, 2, 3, 4])
            .await;
        (
            role,
            seatcap::identity_center::shard_policy_arn("aws", &account.id, 0),
        )
    } else {
        let role = "ClaudeCodeBedrockUsers".to_owned();
        account
            .create_principal("role", &role, &[&account.bedrock_policy_arn])
            .await;
        let shard = seatcap::deny::shard_policy_arn("aws", &account.id, &role, 0);
        (role, shard)
    };
    let person = |name: &str| -> PrincipalArn {
        format!("arn:aws:sts::{}:assumed-role/{role}/{name}", account.id)
            .parse()
            .unwrap()
    };
    let (carol, bob) = (person("carol"), person("bob"));
    let app = now_app(&account);
    enrol(&app, &carol, "seatcap-carol").await;
    enrol(&app, &bob, "seatcap-bob").await;
    // Carol's block writes the role's first shard.
    let answer = app.handle_admin(request("block", &carol)).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    let iam = seatcap::iam::Iam::new(account.iam.clone());
    let denied = || async {
        let (_, document) = iam.own_policy_document(&shard).await.unwrap().unwrap();
        let mut names: Vec<String> = seatcap::deny::denied_user_ids(&document)
            .into_iter()
            .map(|id| id.rsplit(':').next().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    };

    killed_after(
        &account,
        "admin",
        &env,
        "Action=CreatePolicyVersion",
        &request("block", &bob),
    )
    .await;
    assert_eq!(
        denied().await,
        ["bob", "carol"],
        "IAM took the new document"
    );
    assert_eq!(
        ledger_list(&account, &role, identity_center).await.0,
        1,
        "the ledger's list never heard of bob"
    );

    let admin = Function::start(binary("admin"), &env).await;
    let status = admin
        .invoke(&request("restore", &bob))
        .await
        .expect_response();
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(
        denied().await,
        ["carol"],
        "completed, then restored: {status}"
    );
    settled(&account, &bob, Status::Active).await;
    assert!(
        events(&account, &bob)
            .await
            .contains(&EventKind::IntentCompleted)
    );
    assert_eq!(
        ledger_list(&account, &role, identity_center).await,
        (1, true),
        "carol alone, and the lease was given back"
    );
    let carol_state = state(&account, &carol).await;
    assert_eq!(carol_state.status, Status::Blocked, "carol untouched");
    assert_eq!(account.protected_roles.refused(&role), 0);
}

/// Bob cut off at his $200 cap by a Budgets alert, with a $100 approval line: the admin
/// binary's environment and an in-process app of it.
async fn bob_cut_off_under_an_approval_line()
-> (Account, HashMap<String, String>, App, PrincipalArn) {
    let account = Account::new().await;
    let env = env_with(&account, &[("SEATCAP_APPROVAL_OVER_USD", "100")]);
    let app = account.app(
        &[("SEATCAP_APPROVAL_OVER_USD", "100")],
        seatcap::app::system_clock(),
    );
    let bob = account
        .create_principal("user", "bob", &[&account.bedrock_policy_arn])
        .await;
    enrol(&app, &bob, "seatcap-bob").await;
    let today = Utc::now().date_naive();
    app.handle_delivery(
        "m-bob",
        &seatcap_tests::budget_alert_on(
            today,
            "seatcap-bob",
            "ACTUAL",
            "200.00",
            "200.00",
            "230.00",
        ),
    )
    .await
    .unwrap();
    assert!(account.attached(&bob).await.is_empty());
    (account, env, app, bob)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_approval_killed_after_the_give_back_is_completed_by_the_next_request() {
    let (account, env, app, bob) = bob_cut_off_under_an_approval_line().await;
    let until = (Utc::now() + chrono::Duration::days(5)).to_rfc3339();
    let asked = app
        .handle_admin(
            json!({"action": "grant_override", "principal": bob.as_str(),
            "extra_usd": "500", "expires_at": until, "actor": "ann", "reason": "launch"}),
        )
        .await
        .unwrap();
    let id = asked["override_requests"][0]["grant"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a request waits: {asked}"))
        .to_owned();

    // Carl's approval dies right after IAM gave the policy back.
    let approve = json!({"action": "approve_override", "principal": bob.as_str(),
        "request_id": id, "actor": "carl", "reason": "ok"});
    killed_after(&account, "admin", &env, "Action=AttachUserPolicy", &approve).await;
    assert_eq!(
        account.attached(&bob).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert_eq!(state(&account, &bob).await.status, Status::Blocked);

    // Carl asks again: the approval is completed from its record, and then it is done.
    let admin = Function::start(binary("admin"), &env).await;
    let again = admin.invoke(&approve).await.expect_response();
    assert_eq!(
        again["error"]["code"], "not_found",
        "approved once: {again}"
    );
    let after = state(&account, &bob).await;
    assert_eq!(
        (
            after.status,
            after.pending.is_none(),
            after.override_requests.len()
        ),
        (Status::Active, true, 0),
        "{after:?}"
    );
    assert_eq!(after.overrides[0].approved_by.as_deref(), Some("carl"));
    assert_eq!(
        account.attached(&bob).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    let kinds = events(&account, &bob).await;
    assert!(
        kinds.contains(&EventKind::IntentCompleted) && kinds.contains(&EventKind::OverrideGranted),
        "{kinds:?}"
    );
}

/// Reconcile completing an Identity Center cut that was not in force (the permission set
/// now references the shard) dies right after reading the role's attachments, before its
/// confirmation: the next run completes the intent, and the cut is recorded in force once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconcile_killed_while_completing_an_identity_center_cut_is_completed_by_the_next_run() {
    let account = Account::new().await;
    let role = account
        .identity_center_role("ClaudeDev", &[1, 2, 3, 4])
        .await;
    let alice = account.sso_person(&role, "alice@example.com");
    let app = now_app(&account);
    enrol(&app, &alice, "seatcap-alice").await;
    let answer = app.handle_admin(request("block", &alice)).await.unwrap();
    assert!(answer["not_enforceable"].is_object(), "{answer}");
    account.reference_sso_shards(&role, &[0]).await;

    let event = json!({});
    killed_after(
        &account,
        "reconcile",
        &account.env(),
        "Action=ListAttachedRolePolicies",
        &event,
    )
    .await;
    let held = state(&account, &alice).await;
    assert!(held.pending.is_some(), "{held:?}");
    assert!(held.not_enforceable.is_some(), "not yet confirmed");

    let reconcile = Function::start(binary("reconcile"), &account.env()).await;
    reconcile.invoke(&event).await.expect_response();
    let done = settled(&account, &alice, Status::Blocked).await;
    assert_eq!(done.not_enforceable, None, "{done:?}");
    let kinds = events(&account, &alice).await;
    assert!(kinds.contains(&EventKind::IntentCompleted), "{kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::EnforcementCompleted)
            .count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(account.protected_roles.refused(&role), 0);
}

/// A held cap raise approved for a blocked person dies right after IAM gave the policy
/// back, before the ledger: the approver's next request completes the change from its
/// record, and the raise is applied once, the request consumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_raise_approval_killed_after_the_give_back_is_completed_by_the_next_request() {
    let (account, env, app, bob) = bob_cut_off_under_an_approval_line().await;
    let held = app
        .handle_admin(json!({"action": "set_cap", "principal": bob.as_str(),
            "budget": "seatcap-bob", "cap_usd": "700", "actor": "ann", "reason": "launch"}))
        .await
        .unwrap();
    assert_eq!(held["approval_needed"], true, "{held}");
    let id = held["request_id"].as_str().unwrap().to_owned();

    let approve = json!({"action": "approve_override", "principal": bob.as_str(),
        "request_id": id, "actor": "carl", "reason": "ok"});
    killed_after(&account, "admin", &env, "Action=AttachUserPolicy", &approve).await;
    assert_eq!(
        account.attached(&bob).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert_eq!(state(&account, &bob).await.status, Status::Blocked);

    let admin = Function::start(binary("admin"), &env).await;
    let again = admin.invoke(&approve).await.expect_response();
    assert_eq!(
        again["error"]["code"], "not_found",
        "approved once: {again}"
    );
    let after = settled(&account, &bob, Status::Active).await;
    assert_eq!(after.cap_usd.to_plain_string(), "700.00");
    assert!(after.cap_requests.is_empty(), "{after:?}");
    assert_eq!(after.cap_raises.len(), 1, "{after:?}");
    assert_eq!(after.cap_raises[0].approved_by.as_deref(), Some("carl"));
    assert_eq!(
        account.attached(&bob).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    let kinds = events(&account, &bob).await;
    assert!(kinds.contains(&EventKind::IntentCompleted), "{kinds:?}");
}
