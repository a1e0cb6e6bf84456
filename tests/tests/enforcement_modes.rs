//! The enforcement modes against moto's IAM. People on a plain shared role: each is denied
//! alone by seatcap's shard policies on the role, the role's own policies are never
//! touched. Deny mode. And the check after a cut that finds Bedrock access left elsewhere.
//! (People on IAM Identity Center roles: `identity_center.rs`.)

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::deny;
use seatcap::principal::PrincipalArn;
use seatcap_tests::{Account, budget_alert};
use serde_json::{Value, json};

/// A plain shared role: one of the account's own that many people assume (the federated
/// role of the Claude Code on Bedrock guidance, say). Identity Center's roles, which IAM
/// refuses to change, are `identity_center.rs`'s.
const ROLE: &str = "ClaudeCodeBedrockUsers";

fn app(account: &Account, extra: &[(&str, &str)]) -> App {
    account.app(
        extra,
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    )
}

fn person(account: &Account, session: &str) -> PrincipalArn {
    format!("arn:aws:sts::{}:assumed-role/{ROLE}/{session}", account.id)
        .parse()
        .unwrap()
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

/// The default version of every seatcap shard attached to the role: (ARN, document).
async fn shards(account: &Account) -> Vec<(String, Value)> {
    let role = account.principal("role", ROLE);
    let mut found = Vec::new();
    for arn in account.attached(&role).await {
        if !arn.contains(":policy/seatcap/") {
            continue;
        }
        let policy = account
            .iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .unwrap();
        let version = policy.policy.unwrap().default_version_id.unwrap();
        let document = account
            .iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .unwrap()
            .policy_version
            .unwrap()
            .document
            .unwrap();
        found.push((arn, seatcap::access::decode_document(&document).unwrap()));
    }
    found
}

/// Everyone the role's shards deny, as `aws:userid` values.
async fn denied(account: &Account) -> BTreeSet<String> {
    shards(account)
        .await
        .iter()
        .flat_map(|(_, doc)| {
            doc["Statement"][0]["Condition"]["StringEquals"]["aws:userid"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_on_a_shared_role_is_denied_alone_and_restored() {
    let account = Account::new().await;
    let app = app(&account, &[]);
    let role = account
        .create_principal("role", ROLE, &[&account.bedrock_policy_arn])
        .await;
    let alice = person(&account, "alice@example.com");
    let bob = person(&account, "bob@example.com");
    enrol(&app, &alice, "seatcap-alice").await;
    enrol(&app, &bob, "seatcap-bob").await;

    let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    let report = serde_json::to_value(app.handle_delivery("m-1", &alert).await.unwrap()).unwrap();
    let shard = deny::shard_policy_arn("aws", &account.id, ROLE, 0);
    assert_eq!(report["deny_policy_arn"], shard.as_str(), "{report}");
    assert_eq!(report["policies"], json!([]), "nothing detached: {report}");

    // The team keeps its policy; seatcap's shard is added beside it and names only alice.
    let mut expected = vec![account.bedrock_policy_arn.clone(), shard.clone()];
    expected.sort();
    assert_eq!(account.attached(&role).await, expected);
    let id = role_id(&account).await;
    assert_eq!(
        denied(&account).await,
        BTreeSet::from([format!("{id}:alice@example.com")])
    );
    let status = admin(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    assert_eq!(
        (status["status"].clone(), status["deny_policy_arn"].clone()),
        (json!("blocked"), json!(shard))
    );
    let bob_status = admin(&app, json!({"action": "status", "principal": bob.as_str()})).await;
    assert_eq!(bob_status["status"], "active");

    // The shard detached behind seatcap's back (a re-provisioned permission set, say):
    // reconcile attaches it again and says so.
    account
        .iam
        .detach_role_policy()
        .role_name(ROLE)
        .policy_arn(&shard)
        .send()
        .await
        .unwrap();
    let report = app
        .reconcile(
            serde_json::from_value(json!({})).unwrap(),
            seatcap::handover::Pace::unlimited(),
        )
        .await
        .unwrap();
    let found = serde_json::to_value(&report).unwrap();
    assert!(
        found.to_string().contains("deny_removed_while_blocked"),
        "{found}"
    );
    assert_eq!(account.attached(&role).await, expected, "attached again");
    assert_eq!(denied(&account).await.len(), 1);

    let restored = admin(
        &app,
        json!({"action": "restore", "principal": alice.as_str(), "actor": "finance", "reason": "ok"}),
    )
    .await;
    assert_eq!(restored["restored"], true, "{restored}");
    assert_eq!(restored["removed_deny_policy_arn"], shard.as_str());
    // Nobody is denied any more: the empty shard is detached; the team's policy stays.
    assert_eq!(
        account.attached(&role).await,
        vec![account.bedrock_policy_arn.clone()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_mode_attaches_seatcaps_deny_and_restore_removes_exactly_that() {
    let account = Account::new().await;
    let app = app(&account, &[("SEATCAP_ENFORCEMENT", "deny")]);
    let alice = account
        .create_principal(
            "user",
            "alice",
            &[&account.bedrock_policy_arn, &account.other_policy_arn],
        )
        .await;
    enrol(&app, &alice, "seatcap-alice").await;
    let before = account.attached(&alice).await;

    let blocked = admin(
        &app,
        json!({"action": "block", "principal": alice.as_str(), "actor": "finance", "reason": "leaver"}),
    )
    .await;
    let deny = format!(
        "arn:aws:iam::{}:policy/seatcap/seatcap-deny-bedrock",
        account.id
    );
    assert_eq!(blocked["deny_policy_arn"], deny.as_str(), "{blocked}");
    assert_eq!(blocked["detached_policy_arns"], json!([]));
    let mut with_deny = before.clone();
    with_deny.push(deny.clone());
    with_deny.sort();
    assert_eq!(account.attached(&alice).await, with_deny);

    admin(
        &app,
        json!({"action": "restore", "principal": alice.as_str(), "actor": "finance", "reason": "back"}),
    )
    .await;
    assert_eq!(account.attached(&alice).await, before);
}

/// Bedrock also granted through a group (an inline policy and an admin-style managed one):
/// detaching the managed Bedrock policy does not cut access, and seatcap says so instead of
/// claiming a cut-off. Deny mode closes the same gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_that_leaves_access_through_a_group_is_reported_incomplete() {
    let account = Account::new().await;
    let slack = seatcap_tests::SlackReceiver::start().await;
    let app = app(&account, &[("SEATCAP_SLACK_WEBHOOK_URL", &slack.url)]);
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    let iam = &account.iam;
    iam.create_group()
        .group_name("platform")
        .send()
        .await
        .unwrap();
    iam.add_user_to_group()
        .group_name("platform")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    iam.put_group_policy()
        .group_name("platform")
        .policy_name("experiments")
        .policy_document(
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Action": "bedrock:*", "Resource": "*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    enrol(&app, &alice, "seatcap-alice").await;

    let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    let report = serde_json::to_value(app.handle_delivery("m-1", &alert).await.unwrap()).unwrap();
    assert_eq!(report["policies"], json!([account.bedrock_policy_arn]));
    assert_eq!(
        report["remaining_access"],
        json!([{"on": "group:platform", "policy": "inline:experiments"}]),
        "{report}"
    );
    let message = slack.received().pop().unwrap().to_string();
    assert!(
        message.contains("enforcement_incomplete · critical"),
        "{message}"
    );
    assert!(message.contains("access REMAINS"), "{message}");
    assert!(
        !message.contains("cut off"),
        "never claims a cut-off: {message}"
    );
    let audited = account
        .ledger()
        .history(&seatcap::ledger::Subject::Principal(alice.clone()), 10)
        .await
        .unwrap();
    assert!(
        audited
            .iter()
            .any(|e| e.kind == seatcap::ledger::EventKind::EnforcementIncomplete),
        "{audited:?}"
    );

    // The same principal under deny mode: seatcap's explicit deny wins over the group's
    // allow, so nothing remains to report.
    admin(
        &app,
        json!({"action": "restore", "principal": alice.as_str(), "actor": "finance", "reason": "mode change"}),
    )
    .await;
    let deny = self::app(&account, &[("SEATCAP_ENFORCEMENT", "deny")]);
    let blocked = admin(
        &deny,
        json!({"action": "block", "principal": alice.as_str(), "actor": "finance", "reason": "test"}),
    )
    .await;
    assert_eq!(blocked["ok"], true, "{blocked}");
    assert!(blocked.get("remaining_access").is_none(), "{blocked}");
}

/// A model-tier ladder: at 90 % the premium-model policy goes and cheaper models keep
/// working; at the cap the rest goes; the new period gives back both. Reconcile repairs a
/// premium policy attached again without cutting the cheap one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgrade_rung_takes_premium_models_first_and_the_cap_the_rest() {
    let account = Account::new().await;
    let slack = seatcap_tests::SlackReceiver::start().await;
    let premium =
        seatcap_tests::moto::create_policy(&account.iam, "bedrock-premium", "bedrock:InvokeModel")
            .await;
    let cheap = account.bedrock_policy_arn.clone();
    let managed = format!("{cheap},{premium}");
    let env = [
        ("SEATCAP_SLACK_WEBHOOK_URL", slack.url.as_str()),
        ("SEATCAP_MANAGED_POLICY_ARNS", managed.as_str()),
        ("SEATCAP_PREMIUM_POLICY_ARNS", premium.as_str()),
        (
            "SEATCAP_LADDER",
            "50=person,80=finance,90=downgrade,100=enforce",
        ),
    ];
    let app = app(&account, &env);
    let alice = account
        .create_principal("user", "alice", &[&cheap, &premium])
        .await;
    enrol(&app, &alice, "seatcap-alice").await;

    let at_90 = budget_alert("seatcap-alice", "ACTUAL", "200.00", "180.00", "181.00");
    let report = serde_json::to_value(app.handle_delivery("m-90", &at_90).await.unwrap()).unwrap();
    assert_eq!(report["outcome"], "downgrade", "{report}");
    assert_eq!(account.attached(&alice).await, vec![cheap.clone()]);
    let status = admin(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    assert_eq!(
        (status["status"].clone(), status["block_cause"].clone()),
        (json!("blocked"), json!("downgrade"))
    );
    let texts: Vec<String> = slack
        .received()
        .iter()
        .map(|m| m["text"].to_string())
        .collect();
    assert!(
        texts
            .last()
            .unwrap()
            .contains("Premium models paused at 90%"),
        "{texts:?}"
    );

    // The premium policy attached again by hand: reconcile takes it again, only it.
    account
        .iam
        .attach_user_policy()
        .user_name("alice")
        .policy_arn(&premium)
        .send()
        .await
        .unwrap();
    app.reconcile(
        serde_json::from_value(json!({})).unwrap(),
        seatcap::handover::Pace::unlimited(),
    )
    .await
    .unwrap();
    assert_eq!(account.attached(&alice).await, vec![cheap.clone()]);

    let at_cap = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "201.00");
    let report =
        serde_json::to_value(app.handle_delivery("m-100", &at_cap).await.unwrap()).unwrap();
    assert_eq!(report["outcome"], "enforce", "{report}");
    assert!(account.attached(&alice).await.is_empty());
    let status = admin(
        &app,
        json!({"action": "status", "principal": alice.as_str()}),
    )
    .await;
    assert_eq!(status["block_cause"], "cap");
    assert_eq!(status["detached_policy_arns"], json!([premium, cheap]));

    // December: both come back.
    let december = Utc.with_ymd_and_hms(2026, 12, 1, 0, 5, 0).unwrap();
    account
        .app(&env, Arc::new(move || december))
        .roll_over(
            seatcap::rollover::RolloverEvent {
                time: december,
                resume_after: None,
            },
            seatcap::handover::Pace::unlimited(),
        )
        .await
        .unwrap();
    let mut both = vec![cheap, premium];
    both.sort();
    assert_eq!(account.attached(&alice).await, both);
}

/// Someone who may create IAM policies makes `/seatcap/seatcap-deny-bedrock` first, with an
/// `Allow *`. seatcap must never attach it: the alert's cut fails loudly (security hears,
/// audited, retried) and the admin's block is refused `policy_not_seatcaps`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_premade_permissive_seatcap_policy_is_never_attached() {
    let account = Account::new().await;
    let deny = app(&account, &[("SEATCAP_ENFORCEMENT", "deny")]);
    let impostor = account
        .iam
        .create_policy()
        .policy_name("seatcap-deny-bedrock")
        .path("/seatcap/")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap()
        .policy
        .unwrap()
        .arn
        .unwrap();
    let (alice, bob) = (
        account
            .create_principal("user", "alice", &[&account.bedrock_policy_arn])
            .await,
        account
            .create_principal("user", "bob", &[&account.bedrock_policy_arn])
            .await,
    );
    enrol(&deny, &alice, "seatcap-alice").await;
    enrol(&deny, &bob, "seatcap-bob").await;

    let alert = budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    let error = deny
        .handle_delivery("m-alice", &alert)
        .await
        .expect_err("the cut is refused, so the delivery is retried");
    assert!(error.to_string().contains("did not write"), "{error}");
    let refused = admin(
        &deny,
        json!({"action": "block", "principal": bob.as_str(), "actor": "security",
            "reason": "left"}),
    )
    .await;
    assert_eq!(refused["error"]["code"], "policy_not_seatcaps", "{refused}");

    for principal in [&alice, &bob] {
        assert!(
            !account.attached(principal).await.contains(&impostor),
            "{principal}"
        );
        let state = account.ledger().load(principal).await.unwrap().unwrap();
        assert_eq!(state.status, seatcap::state::Status::Active);
        assert!(state.pending.is_none(), "{state:?}");
        let history = account
            .ledger()
            .history(&seatcap::ledger::Subject::Principal(principal.clone()), 10)
            .await
            .unwrap();
        assert!(
            history
                .iter()
                .any(|e| e.kind == seatcap::ledger::EventKind::EnforcementFailed),
            "{history:?}"
        );
    }
    let security: Vec<_> = account
        .sent_notifications()
        .await
        .into_iter()
        .filter(|(_, _, attributes)| {
            attributes.get("audience").map(String::as_str) == Some("security")
        })
        .collect();
    assert_eq!(security.len(), 2, "{security:?}");
}
