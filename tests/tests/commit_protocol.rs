//! The commit protocol under concurrency, against moto: two writers at once on one
//! principal, in each enforcement mode, and the ledger and IAM still agree afterwards; a
//! later restore gives back exactly what was taken. Also the fenced shared-role lease and
//! DynamoDB's cancellation reasons.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::deny;
use seatcap::principal::PrincipalArn;
use seatcap::state::{PrincipalState, Status};
use seatcap_tests::{Account, HoldingProxy, budget_alert};
use serde_json::{Value, json};

/// A plain shared role (one of the account's own), and a role IAM Identity Center made,
/// which IAM refuses to change (the account's refusals are in front of moto).
const ROLE: &str = "ClaudeCodeBedrockUsers";
const SSO_ROLE: &str = "AWSReservedSSO_ClaudeDev_0123456789abcdef";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Detach,
    Deny,
    SharedRole,
    IdentityCenter,
}

const MODES: [Mode; 4] = [
    Mode::Detach,
    Mode::Deny,
    Mode::SharedRole,
    Mode::IdentityCenter,
];

fn app_in(account: &Account, mode: Mode) -> App {
    let extra: &[(&str, &str)] = match mode {
        Mode::Deny => &[("SEATCAP_ENFORCEMENT", "deny")],
        _ => &[],
    };
    account.app(
        extra,
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    )
}

async fn admin(app: &App, request: Value) -> Value {
    app.handle_admin(request).await.unwrap()
}

/// A fresh principal of `mode`'s kind, with its Bedrock access, enrolled at $200.
async fn enrolled(account: &Account, app: &App, mode: Mode, name: &str) -> PrincipalArn {
    let principal = match mode {
        Mode::SharedRole => format!("arn:aws:sts::{}:assumed-role/{ROLE}/{name}", account.id)
            .parse()
            .unwrap(),
        Mode::IdentityCenter => account.sso_person(SSO_ROLE, name),
        _ => {
            account
                .create_principal(
                    "user",
                    name,
                    &[&account.bedrock_policy_arn, &account.other_policy_arn],
                )
                .await
        }
    };
    let answer = admin(
        app,
        json!({"action": "set_cap", "principal": principal.as_str(), "budget": format!("seatcap-{name}"),
            "cap_usd": "200", "actor": "finance", "reason": "seat"}),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    principal
}

async fn state(account: &Account, principal: &PrincipalArn) -> PrincipalState {
    account.ledger().load(principal).await.unwrap().unwrap()
}

/// Everyone the shared role's seatcap shards deny (`<role id>:<session>`), by shard ARN.
async fn denied_on_role(account: &Account) -> Vec<(String, BTreeSet<String>)> {
    let iam = seatcap::iam::Iam::new(account.iam.clone());
    let mut found = Vec::new();
    for arn in account.attached(&account.principal("role", ROLE)).await {
        if !arn.contains(":policy/seatcap/") {
            continue;
        }
        let (_, document) = iam.own_policy_document(&arn).await.unwrap().unwrap();
        found.push((arn, deny::denied_user_ids(&document).into_iter().collect()));
    }
    found
}

async fn role_id(account: &Account) -> String {
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
}

/// The ledger says blocked, nothing is pending, and IAM shows exactly what the ledger says
/// was taken as taken.
async fn cut_and_agreed(account: &Account, mode: Mode, principal: &PrincipalArn, context: &str) {
    let state = state(account, principal).await;
    assert_eq!(state.status, Status::Blocked, "{context}: {state:?}");
    assert!(state.pending.is_none(), "{context}: {state:?}");
    match mode {
        Mode::Detach => {
            assert_eq!(
                state.detached_policy_arns,
                vec![account.bedrock_policy_arn.clone()],
                "{context}"
            );
            assert_eq!(state.deny_policy_arn, None, "{context}");
            assert_eq!(
                account.attached(principal).await,
                vec![account.other_policy_arn.clone()],
                "{context}: only the Bedrock policy is gone"
            );
        }
        Mode::Deny => {
            let deny = format!(
                "arn:aws:iam::{}:policy/seatcap/seatcap-deny-bedrock",
                account.id
            );
            assert_eq!(
                state.deny_policy_arn.as_deref(),
                Some(deny.as_str()),
                "{context}"
            );
            assert!(state.detached_policy_arns.is_empty(), "{context}");
            let mut expected = vec![
                account.bedrock_policy_arn.clone(),
                account.other_policy_arn.clone(),
                deny,
            ];
            expected.sort();
            assert_eq!(account.attached(principal).await, expected, "{context}");
        }
        Mode::SharedRole => {
            let me = format!("{}:{}", role_id(account).await, principal.name());
            let shards = denied_on_role(account).await;
            let mine: Vec<&String> = shards
                .iter()
                .filter(|(_, ids)| ids.contains(&me))
                .map(|(arn, _)| arn)
                .collect();
            assert_eq!(
                mine.len(),
                1,
                "{context}: denied in exactly one shard: {shards:?}"
            );
            assert_eq!(state.deny_policy_arn.as_ref(), Some(mine[0]), "{context}");
        }
        Mode::IdentityCenter => {
            let me = format!("{}:{}", account.role_id(SSO_ROLE).await, principal.name());
            assert!(account.sso_denied().await.contains(&me), "{context}");
            let shard = state.deny_policy_arn.as_deref().unwrap_or_default();
            let (document, versions) = account.policy_document(shard).await;
            assert!(
                deny::denied_user_ids(&document).contains(&me),
                "{context}: the recorded shard lists them"
            );
            assert!(versions <= 5, "{context}: {versions} versions");
            assert_eq!(state.not_enforceable, None, "{context}");
            assert_eq!(
                account.protected_roles.refused(SSO_ROLE),
                0,
                "{context}: nothing was written to the protected role"
            );
        }
    }
}

/// After a restore: active, nothing recorded as taken, and IAM as before the cut.
async fn restored_exactly(account: &Account, mode: Mode, principal: &PrincipalArn, context: &str) {
    let state = state(account, principal).await;
    assert_eq!(state.status, Status::Active, "{context}: {state:?}");
    assert!(state.detached_policy_arns.is_empty() && state.deny_policy_arn.is_none());
    match mode {
        Mode::Detach | Mode::Deny => {
            let mut expected = vec![
                account.bedrock_policy_arn.clone(),
                account.other_policy_arn.clone(),
            ];
            expected.sort();
            assert_eq!(account.attached(principal).await, expected, "{context}");
        }
        Mode::SharedRole => {
            let me = format!("{}:{}", role_id(account).await, principal.name());
            let shards = denied_on_role(account).await;
            assert!(
                shards.iter().all(|(_, ids)| !ids.contains(&me)),
                "{context}: still denied: {shards:?}"
            );
        }
        Mode::IdentityCenter => {
            let me = format!("{}:{}", account.role_id(SSO_ROLE).await, principal.name());
            assert!(!account.sso_denied().await.contains(&me), "{context}");
            assert_eq!(account.protected_roles.refused(SSO_ROLE), 0, "{context}");
        }
    }
}

async fn restore(app: &App, principal: &PrincipalArn) {
    let answer = admin(
        app,
        json!({"action": "restore", "principal": principal.as_str(), "actor": "finance", "reason": "test"}),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
}

async fn shared_role(account: &Account) {
    account
        .create_principal("role", ROLE, &[&account.bedrock_policy_arn])
        .await;
    account
        .identity_center_role_named(SSO_ROLE, &[0, 1, 2, 3, 4])
        .await;
}

/// Budgets sends the 80 % and the 100 % alert together after a jump: both over the cap,
/// both decide to cut, at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_80_and_100_percent_alerts_at_once_cut_once_and_restore_gives_back_exactly_that() {
    let account = Account::new().await;
    shared_role(&account).await;
    for mode in MODES {
        let app = app_in(&account, mode);
        for round in 0..4 {
            let name = format!("{mode:?}-{round}").to_lowercase();
            let principal = enrolled(&account, &app, mode, &name).await;
            let budget = format!("seatcap-{name}");
            let at_80 = budget_alert(&budget, "ACTUAL", "200.00", "160.00", "212.00");
            let at_100 = budget_alert(&budget, "ACTUAL", "200.00", "200.00", "212.00");
            let (a, b) = (format!("{name}-80"), format!("{name}-100"));
            let (first, second) = if round % 2 == 0 {
                tokio::join!(
                    app.handle_delivery(&a, &at_80),
                    app.handle_delivery(&b, &at_100)
                )
            } else {
                let (second, first) = tokio::join!(
                    app.handle_delivery(&b, &at_100),
                    app.handle_delivery(&a, &at_80)
                );
                (first, second)
            };
            let context = format!("{mode:?} round {round}");
            first.unwrap_or_else(|e| panic!("{context}: {e}"));
            second.unwrap_or_else(|e| panic!("{context}: {e}"));
            cut_and_agreed(&account, mode, &principal, &context).await;
            restore(&app, &principal).await;
            restored_exactly(&account, mode, &principal, &context).await;
        }
    }
}

/// Finance blocks someone at the moment their 100 % alert arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_block_racing_the_cut_off_alert_leaves_ledger_and_iam_agreeing() {
    let account = Account::new().await;
    shared_role(&account).await;
    for mode in MODES {
        let app = app_in(&account, mode);
        for round in 0..3 {
            let name = format!("{mode:?}-block-{round}").to_lowercase();
            let principal = enrolled(&account, &app, mode, &name).await;
            let alert = budget_alert(
                &format!("seatcap-{name}"),
                "ACTUAL",
                "200.00",
                "200.00",
                "230.00",
            );
            let block = json!({"action": "block", "principal": principal.as_str(),
                "actor": "finance", "reason": "security review"});
            let message_id = format!("{name}-100");
            let (answer, report) = tokio::join!(
                app.handle_admin(block),
                app.handle_delivery(&message_id, &alert)
            );
            let context = format!("{mode:?} round {round}");
            let answer = answer.unwrap_or_else(|e| panic!("{context}: {e}"));
            assert_eq!(answer["ok"], true, "{context}: {answer}");
            report.unwrap_or_else(|e| panic!("{context}: {e}"));
            cut_and_agreed(&account, mode, &principal, &context).await;
            assert_eq!(
                state(&account, &principal).await.block_cause,
                Some(seatcap::state::BlockCause::Manual),
                "{context}: finance's block stands whichever came first"
            );
            restore(&app, &principal).await;
            restored_exactly(&account, mode, &principal, &context).await;
        }
    }
}

/// A writer of a shared role's deny list is held up (a slow network, a paused process)
/// until its lease has run out; another writer takes the lease and writes. When the first
/// one wakes, it finds the newer list in IAM and does not write its older one over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_holder_delayed_past_its_lease_never_overwrites_a_newer_deny_list() {
    let account = Account::new().await;
    shared_role(&account).await;
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap();
    let app = app_in(&account, Mode::SharedRole);
    let carol = enrolled(&account, &app, Mode::SharedRole, "carol").await;
    let alice = enrolled(&account, &app, Mode::SharedRole, "alice").await;
    let bob = enrolled(&account, &app, Mode::SharedRole, "bob").await;
    let block = |p: &PrincipalArn| json!({"action": "block", "principal": p.as_str(), "actor": "finance", "reason": "test"});
    // Carol's block creates the role's first shard.
    assert_eq!(admin(&app, block(&carol)).await["ok"], true);

    // The slow writer (alice's block) is held at its read of the shard before writing.
    let shard = deny::shard_policy_arn("aws", &account.id, ROLE, 0);
    let proxy = HoldingProxy::start(
        account.endpoint.trim_start_matches("http://").to_owned(),
        // The slow writer's first call naming the shard is its read before writing (GetPolicy).
        format!("PolicyArn={}", urlencode(&shard)),
    )
    .await;
    let slow = account.app_through(&proxy.url, &[], Arc::new(move || now));
    let slow_block = tokio::spawn({
        let request = block(&alice);
        async move { slow.handle_admin(request).await }
    });
    proxy.holding().await;

    // Two minutes later by the other writer's clock, the slow one's lease has run out.
    let later = account.app(&[], Arc::new(move || now + chrono::Duration::minutes(2)));
    assert_eq!(admin(&later, block(&bob)).await["ok"], true);
    let id = role_id(&account).await;
    let after_bob: BTreeSet<String> = [format!("{id}:carol"), format!("{id}:bob")].into();
    assert_eq!(denied_on_role(&account).await[0].1, after_bob);

    proxy.release();
    let slow_answer = slow_block.await.unwrap();
    assert!(
        slow_answer.is_err(),
        "the fenced writer fails rather than write: {slow_answer:?}"
    );
    assert_eq!(
        denied_on_role(&account).await[0].1,
        after_bob,
        "bob's newer list is still what IAM has"
    );
    let ledger_list: seatcap::ledger::RoleDenials = account
        .ledger()
        .load_deny_list(&seatcap::ledger::role_pk(&account.id, ROLE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ledger_list.list.len(), 2, "{ledger_list:?}");
    let alice_state = state(&account, &alice).await;
    assert_eq!(alice_state.status, Status::Active, "{alice_state:?}");
    assert!(
        alice_state.pending.is_none(),
        "the failed change was reversed"
    );

    // Retried, alice's block goes through and everyone is denied.
    assert_eq!(admin(&later, block(&alice)).await["ok"], true);
    cut_and_agreed(&account, Mode::SharedRole, &alice, "retried").await;
    cut_and_agreed(&account, Mode::SharedRole, &bob, "bob").await;
    cut_and_agreed(&account, Mode::SharedRole, &carol, "carol").await;
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// EventBridge delivers the rollover twice at once (at-least-once), while finance blocks one
/// of the people it restores. Every principal is restored once, the block stands whichever
/// came first, and IAM agrees with the ledger for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_rollovers_and_a_block_at_once_leave_ledger_and_iam_agreeing() {
    use seatcap::handover::Pace;
    use seatcap::ledger::EventKind;
    use seatcap::rollover::RolloverEvent;

    let account = Account::new().await;
    let november = app_in(&account, Mode::Detach);
    let mut people = Vec::new();
    for i in 0..6 {
        let name = format!("dev-{i}");
        let principal = enrolled(&account, &november, Mode::Detach, &name).await;
        november
            .handle_delivery(
                &format!("m-{name}"),
                &budget_alert(
                    &format!("seatcap-{name}"),
                    "ACTUAL",
                    "200.00",
                    "200.00",
                    "230.00",
                ),
            )
            .await
            .unwrap();
        people.push(principal);
    }
    let december_at = Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap();
    let december = account.app(&[], Arc::new(move || december_at));
    let event = || RolloverEvent {
        time: december_at,
        resume_after: None,
    };
    let block = json!({"action": "block", "principal": people[0].as_str(), "actor": "finance", "reason": "review"});
    let (first, second, blocked) = tokio::join!(
        december.roll_over(event(), Pace::unlimited()),
        december.roll_over(event(), Pace::unlimited()),
        december.handle_admin(block)
    );
    first.unwrap();
    second.unwrap();
    assert_eq!(blocked.unwrap()["ok"], true);

    let mut both = vec![
        account.bedrock_policy_arn.clone(),
        account.other_policy_arn.clone(),
    ];
    both.sort();
    for (i, principal) in people.iter().enumerate() {
        let state = state(&account, principal).await;
        assert!(state.pending.is_none(), "{state:?}");
        let restores = account
            .history(principal)
            .await
            .into_iter()
            .filter(|e| e.kind == EventKind::Restored)
            .count();
        if i == 0 {
            cut_and_agreed(&account, Mode::Detach, principal, "blocked by finance").await;
            assert!(restores <= 1, "{restores}");
        } else {
            assert_eq!(state.status, Status::Active, "{state:?}");
            assert_eq!(account.attached(principal).await, both);
            assert_eq!(restores, 1, "restored once, not once per rollover");
        }
    }
}
