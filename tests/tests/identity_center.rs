//! People on roles IAM Identity Center made (`AWSReservedSSO_<set>_<id>`), against moto with
//! IAM's refusals in front of it ([`seatcap_tests::ProtectedRoles`]): IAM answers every
//! write to such a role `UnmodifiableEntity`, as AWS does. The tests play Identity Center:
//! a permission set that references seatcap's shards has them attached to its role (written
//! past the refusals, as Identity Center itself may). seatcap's cuts and restores rewrite
//! only the shards' documents; a permission set that does not reference them makes the cut
//! `not_enforceable`, told and shown, until reconcile finds the references.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::deny::{self, MANAGED_POLICY_MAX_CHARS, document_chars};
use seatcap::handover::Pace;
use seatcap::identity_center::{self as sso, shard_policy_arn};
use seatcap::ledger::EventKind;
use seatcap::principal::PrincipalArn;
use seatcap::reconcile::ReconcileEvent;
use seatcap::state::Status;
use seatcap_tests::{Account, budget_alert};
use serde_json::{Value, json};

const EVERY_SHARD: [usize; 5] = [0, 1, 2, 3, 4];

fn app(account: &Account, extra: &[(&str, &str)]) -> App {
    account.app(
        extra,
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    )
}

async fn admin(app: &App, request: Value) -> Value {
    app.handle_admin(request).await.unwrap()
}

async fn enrol(app: &App, principal: &PrincipalArn, budget: &str) {
    let answer = admin(
        app,
        json!({"action": "set_cap", "principal": principal.as_str(), "budget": budget,
            "cap_usd": "200", "actor": "finance", "reason": "seat"}),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
}

fn request(action: &str, principal: &PrincipalArn) -> Value {
    json!({"action": action, "principal": principal.as_str(), "actor": "finance", "reason": "test"})
}

/// What the role carries, sorted.
async fn on_role(account: &Account, role: &str) -> Vec<String> {
    let mut arns = seatcap::iam::Iam::new(account.iam.clone())
        .role_attachments(role)
        .await
        .unwrap();
    arns.sort();
    arns
}

async fn notice_kinds(account: &Account) -> Vec<String> {
    account
        .sent_notifications()
        .await
        .into_iter()
        .map(|(_, _, attributes)| attributes["kind"].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_writes_to_identity_center_roles_as_iam_does() {
    let account = Account::new().await;
    let role = account.identity_center_role("ClaudeDev", &[]).await;
    let through_seatcaps_endpoint = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&account.sdk)
            .endpoint_url(&account.endpoint)
            .build(),
    );
    let refused = through_seatcaps_endpoint
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(&account.bedrock_policy_arn)
        .send()
        .await
        .unwrap_err();
    let refused = refused.into_service_error();
    assert_eq!(
        aws_sdk_iam::error::ProvideErrorMetadata::code(&refused),
        Some("UnmodifiableEntity")
    );
    assert!(
        refused.to_string().contains(&format!(
            "Cannot perform the operation on the protected role '{role}' - this role is only modifiable by AWS"
        )),
        "{refused}"
    );
    // Reads pass, and a plain role is written as before.
    assert!(on_role(&account, &role).await.is_empty());
    account.create_principal("role", "PlainRole", &[]).await;
    through_seatcaps_endpoint
        .attach_role_policy()
        .role_name("PlainRole")
        .policy_arn(&account.bedrock_policy_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(account.protected_roles.refused(&role), 1);

    // seatcap reads IAM's answer as what it is: a protected entity, never retried.
    let app = app(&account, &[]);
    let whole_role: PrincipalArn = format!("arn:aws:iam::{}:role/{role}", account.id)
        .parse()
        .unwrap();
    let iam = seatcap::iam::Iam::new(through_seatcaps_endpoint);
    let error: seatcap::enforce::EnforceError = iam
        .attach(&whole_role, &account.bedrock_policy_arn)
        .await
        .unwrap_err()
        .into();
    assert!(
        matches!(error, seatcap::enforce::EnforceError::Protected { .. }),
        "{error}"
    );
    drop(app);
}

/// A budget alert at the cap for alice, on an Identity Center role whose permission set
/// references the shards: the shard lists exactly her, nothing is written to the role,
/// bob beside her keeps access; a raise gives back exactly her; many cuts and restores keep
/// every shard at one version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_center_person_is_cut_through_the_shard_and_the_role_is_never_written() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let role = account
        .identity_center_role("ClaudeDev", &EVERY_SHARD)
        .await;
    // The permission set's own Bedrock policy, attached by Identity Center too.
    account
        .iam
        .attach_role_policy()
        .role_name(&role)
        .policy_arn(&account.bedrock_policy_arn)
        .send()
        .await
        .unwrap();
    let carried = on_role(&account, &role).await;
    let alice = account.sso_person(&role, "alice@example.com");
    let bob = account.sso_person(&role, "bob@example.com");
    enrol(&app, &alice, "seatcap-alice").await;
    enrol(&app, &bob, "seatcap-bob").await;
    let id = account.role_id(&role).await;

    let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    let report = serde_json::to_value(app.handle_delivery("m-1", &alert).await.unwrap()).unwrap();
    let first = shard_policy_arn("aws", &account.id, 0);
    assert_eq!(report["deny_policy_arn"], first.as_str(), "{report}");
    assert_eq!(
        account.sso_denied().await,
        BTreeSet::from([format!("{id}:alice@example.com")])
    );
    assert_eq!(
        on_role(&account, &role).await,
        carried,
        "the role is as it was"
    );
    assert_eq!(
        account.protected_roles.refused(&role),
        0,
        "nothing was refused"
    );
    let status = admin(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    assert_eq!(status["status"], "blocked", "{status}");
    assert!(status.get("not_enforceable").is_none(), "{status}");
    assert_eq!(
        admin(&app, json!({"action": "status", "principal": bob.as_str()})).await["status"],
        "active"
    );
    assert!(notice_kinds(&account).await.contains(&"cut_off".to_owned()));

    // The cap raised: exactly alice is given back.
    let raised = admin(
        &app,
        json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
            "cap_usd": "300", "actor": "finance", "reason": "more"}),
    )
    .await;
    assert_eq!(raised["restored"], true, "{raised}");
    assert!(account.sso_denied().await.is_empty());

    // Cut and given back again and again: each write replaces the version before.
    for _ in 0..4 {
        assert_eq!(admin(&app, request("block", &bob)).await["ok"], true);
        assert_eq!(
            admin(&app, request("restore", &bob)).await["restored"],
            true
        );
    }
    for n in EVERY_SHARD {
        let (_, versions) = account
            .policy_document(&shard_policy_arn("aws", &account.id, n))
            .await;
        assert!(versions <= 2, "shard {n}: {versions} versions");
    }
    assert_eq!(on_role(&account, &role).await, carried);
    assert_eq!(account.protected_roles.refused(&role), 0);
}

/// A permission set that does not reference the shards: the cut is written (the shard lists
/// the person) but not in force, so it is `not_enforceable`, told to security and finance
/// with the fix, shown by status, never reported cut off. Reconcile reports it without
/// telling again; once Identity Center attaches the shards, it completes the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_set_without_the_references_is_not_enforceable_until_they_exist() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let role = account.identity_center_role("ClaudeDev", &[1]).await;
    let alice = account.sso_person(&role, "alice@example.com");
    enrol(&app, &alice, "seatcap-alice").await;

    let blocked = admin(&app, request("block", &alice)).await;
    assert_eq!(blocked["ok"], true, "{blocked}");
    let not = &blocked["not_enforceable"];
    assert_eq!(not["permission_set"], "ClaudeDev", "{blocked}");
    assert_eq!(not["role"], role.as_str());
    assert_eq!(
        not["policy_arn"],
        shard_policy_arn("aws", &account.id, 0).as_str()
    );
    assert_eq!(
        not["missing"],
        json!([
            "seatcap-sso-deny-1",
            "seatcap-sso-deny-3",
            "seatcap-sso-deny-4",
            "seatcap-sso-deny-5"
        ])
    );
    // The deny is written, so it holds the moment the reference exists.
    let id = account.role_id(&role).await;
    assert_eq!(
        account.sso_denied().await,
        BTreeSet::from([format!("{id}:alice@example.com")])
    );
    assert_eq!(account.protected_roles.refused(&role), 0);
    let sent = account.sent_notifications().await;
    let (subject, message, attributes) = sent.last().unwrap();
    assert_eq!(attributes["kind"], "not_enforceable", "{subject}");
    assert_eq!(attributes["audience"], "security");
    assert!(
        message.contains("permission set ClaudeDev")
            && message.contains("seatcap-sso-deny-1, seatcap-sso-deny-3")
            && message.contains("seatcap doctor"),
        "{message}"
    );
    assert!(!notice_kinds(&account).await.contains(&"cut_off".to_owned()));
    let status = admin(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    assert_eq!(status["not_enforceable"]["permission_set"], "ClaudeDev");
    let listed = admin(&app, json!({"action": "list", "status": "blocked"})).await;
    assert_eq!(
        listed["principals"][0]["not_enforceable"]["role"],
        role.as_str(),
        "{listed}"
    );
    let history = account.history(&alice).await;
    assert!(history.iter().any(|e| e.kind == EventKind::NotEnforceable));

    // Reconcile: still not referenced, reported, nobody told twice.
    let told = account.sent_notifications().await.len();
    let report = app
        .reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(report.counts.get("not_enforceable"), Some(&1), "{report:?}");
    assert_eq!(account.sent_notifications().await.len(), told);

    // The deployer adds the references; Identity Center attaches the shards.
    account.reference_sso_shards(&role, &[0, 2, 3, 4]).await;
    let report = app
        .reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(report.counts.get("in_force_now"), Some(&1), "{report:?}");
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(
        (state.status, state.not_enforceable),
        (Status::Blocked, None)
    );
    assert_eq!(notice_kinds(&account).await.last().unwrap(), "cut_off");
    assert!(
        account
            .history(&alice)
            .await
            .iter()
            .any(|e| e.kind == EventKind::EnforcementCompleted)
    );
    let again = app
        .reconcile(ReconcileEvent::default(), Pace::unlimited())
        .await
        .unwrap();
    assert_eq!(again.counts.get("in_force_now"), None, "once: {again:?}");
    assert_eq!(account.protected_roles.refused(&role), 0);

    // Restored: taken off the shard, nothing left unenforced.
    let restored = admin(&app, request("restore", &alice)).await;
    assert_eq!(restored["restored"], true, "{restored}");
    assert!(account.sso_denied().await.is_empty());
    assert!(restored.get("not_enforceable").is_none(), "{restored}");
}

/// A cap on an Identity Center role as a whole (its role ARN, path and all), in detach mode
/// and in deny mode: IAM refuses both the detach and the attach of a deny to such a role,
/// so seatcap denies every session of the role through the shards instead, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_identity_center_role_is_denied_through_the_shards_in_detach_and_deny_mode() {
    for mode in ["detach", "deny"] {
        let account = Account::new().await;
        let app = app(&account, &[("SEATCAP_ENFORCEMENT", mode)]);
        let role = account
            .identity_center_role("ClaudeDev", &EVERY_SHARD)
            .await;
        account
            .iam
            .attach_role_policy()
            .role_name(&role)
            .policy_arn(&account.bedrock_policy_arn)
            .send()
            .await
            .unwrap();
        let carried = on_role(&account, &role).await;
        let whole: PrincipalArn = format!(
            "arn:aws:iam::{}:role/aws-reserved/sso.amazonaws.com/us-east-1/{role}",
            account.id
        )
        .parse()
        .unwrap();
        enrol(&app, &whole, "seatcap-claude-dev").await;
        let blocked = admin(&app, request("block", &whole)).await;
        assert_eq!(blocked["ok"], true, "{mode}: {blocked}");
        assert_eq!(blocked["detached_policy_arns"], json!([]), "{mode}");
        assert!(
            blocked["warnings"][0]
                .as_str()
                .unwrap()
                .contains("IAM Identity Center role"),
            "{mode}: {blocked}"
        );
        let id = account.role_id(&role).await;
        assert_eq!(
            account.sso_denied().await,
            BTreeSet::from([format!("{id}:{}", sso::WHOLE_ROLE)]),
            "{mode}"
        );
        assert_eq!(on_role(&account, &role).await, carried, "{mode}");
        let restored = admin(&app, request("restore", &whole)).await;
        assert_eq!(restored["restored"], true, "{mode}: {restored}");
        assert!(account.sso_denied().await.is_empty(), "{mode}");
        assert_eq!(account.protected_roles.refused(&role), 0, "{mode}");
    }
}

/// The limit, computed: the default 5 shards of 67 people with the longest session names
/// IAM allows, for the account's Identity Center roles together. Blocked 8 at a time, so
/// the lease serialises real contention; one more is refused with a typed answer, nobody
/// is lost, and nothing is written to the roles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_and_thirty_five_identity_center_people_fit_and_concurrent_blocks_lose_nobody()
 {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let role = account
        .identity_center_role("ClaudeDev", &EVERY_SHARD)
        .await;
    let capacity = deny::worst_case_per_shard() * deny::DEFAULT_SHARDS_PER_ROLE;
    assert_eq!(capacity, 335);
    let people: Vec<PrincipalArn> = (0..=capacity)
        .map(|n| {
            let session = format!("{n:04}@{}", "x".repeat(deny::SESSION_NAME_MAX_CHARS - 5));
            account.sso_person(&role, &session)
        })
        .collect();
    for (n, p) in people.iter().enumerate() {
        enrol(&app, p, &format!("seatcap-{n}")).await;
    }

    let answers: Vec<Value> =
        futures::future::join_all(people.chunks(people.len() / 8 + 1).map(|chunk| {
            let app = app.clone();
            let chunk = chunk.to_vec();
            async move {
                let mut answers = Vec::new();
                for p in chunk {
                    answers.push(admin(&app, request("block", &p)).await);
                }
                answers
            }
        }))
        .await
        .into_iter()
        .flatten()
        .collect();

    let refused: Vec<&Value> = answers.iter().filter(|a| a["ok"] != true).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["error"]["code"], "deny_list_full");
    for n in EVERY_SHARD {
        let arn = shard_policy_arn("aws", &account.id, n);
        let (document, versions) = account.policy_document(&arn).await;
        let chars = document_chars(&document);
        assert!(
            chars <= MANAGED_POLICY_MAX_CHARS,
            "{arn}: {chars} characters"
        );
        assert!(versions <= 5, "{arn}: {versions} versions");
    }
    let id = account.role_id(&role).await;
    let blocked: BTreeSet<String> = answers
        .iter()
        .filter(|a| a["ok"] == true)
        .map(|a| {
            assert!(a.get("not_enforceable").is_none(), "{a}");
            format!(
                "{id}:{}",
                a["principal"].as_str().unwrap().rsplit('/').next().unwrap()
            )
        })
        .collect();
    assert_eq!(blocked.len(), capacity);
    assert_eq!(
        account.sso_denied().await,
        blocked,
        "IAM denies exactly who the ledger says"
    );

    // Restoring half of them concurrently frees their places; the rest stay denied.
    let (leaving, staying): (Vec<_>, Vec<_>) =
        blocked.iter().enumerate().partition(|(n, _)| n % 2 == 0);
    futures::future::join_all(leaving.chunks(leaving.len() / 4 + 1).map(|chunk| {
        let app = app.clone();
        let chunk: Vec<PrincipalArn> = chunk
            .iter()
            .map(|(_, u)| account.sso_person(&role, u.split_once(':').unwrap().1))
            .collect();
        async move {
            for p in chunk {
                let answer = admin(&app, request("restore", &p)).await;
                assert_eq!(answer["restored"], true, "{answer}");
            }
        }
    }))
    .await;
    let staying: BTreeSet<String> = staying.into_iter().map(|(_, u)| u.clone()).collect();
    assert_eq!(account.sso_denied().await, staying);
    assert_eq!(account.protected_roles.refused(&role), 0);
}

/// `doctor` names each Identity Center role seatcap has people on whose permission set does
/// not reference every shard, with the commands that fix it; green once they do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_the_permission_sets_that_lack_the_references_and_the_fix() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let referenced = account
        .identity_center_role("ClaudeDev", &EVERY_SHARD)
        .await;
    let lacking = account.identity_center_role("DataScience", &[0]).await;
    let plain = account
        .create_principal("user", "carol", &[&account.bedrock_policy_arn])
        .await;
    enrol(
        &app,
        &account.sso_person(&referenced, "alice"),
        "seatcap-alice",
    )
    .await;
    enrol(&app, &account.sso_person(&lacking, "bob"), "seatcap-bob").await;
    enrol(&app, &account.sso_person(&lacking, "dan"), "seatcap-dan").await;
    enrol(&app, &plain, "seatcap-carol").await;

    let answer = admin(&app, json!({"action": "doctor"})).await;
    assert_eq!(
        (answer["ok"].clone(), answer["healthy"].clone()),
        (json!(true), json!(false)),
        "{answer}"
    );
    let checks = answer["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3, "{answer}");
    let of = |role: &str| checks.iter().find(|c| c["role"] == role).unwrap().clone();
    // Bedrock logs nothing yet: the check fails with the command that turns logging on.
    let logging = checks
        .iter()
        .find(|c| c["check"] == "invocation_logging")
        .unwrap();
    assert_eq!(logging["ok"], false, "{logging}");
    assert!(
        logging["fix"][0]
            .as_str()
            .unwrap()
            .contains("\"logGroupName\": \"bedrock-invocations\""),
        "{logging}"
    );
    assert_eq!(of(&referenced)["ok"], true);
    let failing = of(&lacking);
    assert_eq!(
        (failing["permission_set"].clone(), failing["people"].clone()),
        (json!("DataScience"), json!(2))
    );
    assert_eq!(
        failing["missing"],
        json!([
            "seatcap-sso-deny-2",
            "seatcap-sso-deny-3",
            "seatcap-sso-deny-4",
            "seatcap-sso-deny-5"
        ])
    );
    let fix = failing["fix"].to_string();
    assert!(
        fix.contains("Name=seatcap-sso-deny-5,Path=/seatcap/"),
        "{fix}"
    );
    assert!(fix.contains("provision-permission-set"), "{fix}");

    account.reference_sso_shards(&lacking, &[1, 2, 3, 4]).await;
    // Logging to another group is not metering's.
    let bedrock = aws_sdk_bedrock::Client::new(&app.sdk);
    let log_to = |group: &str| {
        aws_sdk_bedrock::types::LoggingConfig::builder()
            .cloud_watch_config(
                aws_sdk_bedrock::types::CloudWatchConfig::builder()
                    .log_group_name(group)
                    .role_arn(format!("arn:aws:iam::{}:role/bedrock-logging", account.id))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    for (group, healthy) in [("elsewhere", false), ("bedrock-invocations", true)] {
        bedrock
            .put_model_invocation_logging_configuration()
            .logging_config(log_to(group))
            .send()
            .await
            .unwrap();
        let answer = admin(&app, json!({"action": "doctor"})).await;
        assert_eq!(answer["healthy"], healthy, "{group}: {answer}");
    }
}

/// Two reconciles at once find the same not-enforceable cut in force: it is completed once
/// (one `enforcement_completed`, one cut-off message), and nothing is written to the role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_reconciles_at_once_complete_an_identity_center_cut_once() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let role = account.identity_center_role("ClaudeDev", &[]).await;
    let people: Vec<PrincipalArn> = (0..3)
        .map(|n| account.sso_person(&role, &format!("dev{n}@example.com")))
        .collect();
    for (n, p) in people.iter().enumerate() {
        enrol(&app, p, &format!("seatcap-dev{n}")).await;
        let blocked = admin(&app, request("block", p)).await;
        assert!(blocked["not_enforceable"].is_object(), "{blocked}");
    }
    account.reference_sso_shards(&role, &EVERY_SHARD).await;
    let told = notice_kinds(&account).await.len();

    let (first, second) = tokio::join!(
        app.reconcile(ReconcileEvent::default(), Pace::unlimited()),
        app.reconcile(ReconcileEvent::default(), Pace::unlimited())
    );
    first.unwrap();
    second.unwrap();
    for p in &people {
        let state = account.ledger().load(p).await.unwrap().unwrap();
        assert_eq!(
            (
                state.status,
                state.not_enforceable.is_none(),
                state.pending.is_none()
            ),
            (Status::Blocked, true, true),
            "{state:?}"
        );
        let completed = account
            .history(p)
            .await
            .iter()
            .filter(|e| e.kind == EventKind::EnforcementCompleted)
            .count();
        assert_eq!(completed, 1, "{p}");
    }
    let kinds = notice_kinds(&account).await;
    assert_eq!(
        kinds[told..].iter().filter(|k| *k == "cut_off").count(),
        people.len(),
        "{kinds:?}"
    );
    assert_eq!(account.protected_roles.refused(&role), 0);
}
