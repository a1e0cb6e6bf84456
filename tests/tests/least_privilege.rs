//! Every function, run as its built binary, under a role holding exactly the statements
//! `template.yaml` gives it, on a moto server with IAM authorization on: a permission the
//! code calls and the template lacks fails here.
//!
//! What moto's evaluation can and cannot prove (the fixtures' notes): it checks each call's
//! action, matches resources only against `"*"` and evaluates no conditions. So the roles
//! here keep the template's actions with `Resource: "*"` and no conditions; the scoping is
//! checked statically (parliament, checkov). moto also names actions after the API
//! operation where IAM has an action of its own for several operations; [`moto_names`]
//! adds those names, as AWS's service authorization reference maps them, and only in this
//! test: the template holds IAM's names.
//!
//! pricing-sync is not here: moto has no Price List API to call under its role. Its one
//! ledger write is a `PutItem`, which its template statement grants (parliament checks it).

use std::collections::{BTreeSet, HashMap};

use seatcap::ledger::{Commit, EventKind};
use seatcap::principal::PrincipalArn;
use seatcap::state::Status;
use seatcap_tests::moto::MotoServer;
use seatcap_tests::template::{Grant, function_grants};
use seatcap_tests::{
    Account, Function, binary, invocation_record, log_file, log_file_key, logs_batch,
    s3_objects_created, sns_event, todays_budget_alert,
};
use serde_json::{Value, json};

const ALERT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:seatcap-budget-alerts";

/// The operation names moto checks for an action of IAM's own, per AWS's service
/// authorization reference.
fn moto_names(action: &str) -> &'static [&'static str] {
    match action {
        // Each item of a transaction is authorized as its own action; moto asks for these.
        "dynamodb:PutItem"
        | "dynamodb:UpdateItem"
        | "dynamodb:DeleteItem"
        | "dynamodb:ConditionCheckItem" => &["dynamodb:TransactWriteItems"],
        "dynamodb:GetItem" => &["dynamodb:TransactGetItems"],
        "sns:Publish" => &["sns:PublishBatch"],
        "lambda:InvokeFunction" => &["lambda:Invoke"],
        "budgets:ViewBudget" => &[
            "budgets:DescribeBudget",
            "budgets:DescribeBudgets",
            "budgets:DescribeNotificationsForBudget",
        ],
        "budgets:ModifyBudget" => &[
            "budgets:CreateBudget",
            "budgets:UpdateBudget",
            "budgets:CreateNotification",
            "budgets:DeleteNotification",
        ],
        _ => &[],
    }
}

/// The role document for moto: the template's actions (and moto's names for them), on `*`.
fn policy_for(grants: &[Grant]) -> String {
    let actions: BTreeSet<String> = grants
        .iter()
        .flat_map(|g| g.actions.iter())
        .flat_map(|a| {
            std::iter::once(a.clone()).chain(moto_names(a).iter().map(|n| (*n).to_owned()))
        })
        .collect();
    json!({"Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
    .to_string()
}

/// An account on a moto server of its own with authorization on, and each function's
/// environment under the role the template gives it.
struct Deployed {
    account: Account,
    env: HashMap<&'static str, HashMap<String, String>>,
    _server: MotoServer,
}

const FUNCTIONS: [(&str, &str); 6] = [
    ("budget-alert", "BudgetAlertFunction"),
    ("metering", "MeteringFunction"),
    ("admin", "AdminFunction"),
    ("period-rollover", "PeriodRolloverFunction"),
    ("reconcile", "ReconcileFunction"),
    ("notifier", "NotifierFunction"),
];

impl Deployed {
    async fn new() -> Deployed {
        let server = MotoServer::start().unwrap();
        let account = Account::on(&server).await;
        account.authorization_on().await;
        let mut env = HashMap::new();
        for (binary_name, logical_id) in FUNCTIONS {
            let policy = policy_for(&function_grants(logical_id));
            let (key, secret, token) = account.role_holding(logical_id, &policy).await;
            let mut function_env = account.env();
            function_env.insert("AWS_ACCESS_KEY_ID".into(), key);
            function_env.insert("AWS_SECRET_ACCESS_KEY".into(), secret);
            function_env.insert("AWS_SESSION_TOKEN".into(), token);
            function_env.insert("SEATCAP_ALERT_TOPIC_ARN".into(), ALERT_TOPIC.into());
            env.insert(binary_name, function_env);
        }
        Deployed {
            account,
            env,
            _server: server,
        }
    }

    /// One invocation of `binary_name` under its template role; its answer.
    async fn invoke(&self, binary_name: &str, payload: &Value) -> Value {
        let function = Function::start(binary(binary_name), &self.env[binary_name]).await;
        function.invoke(payload).await.expect_response()
    }

    async fn admin(&self, request: Value) -> Value {
        let answer = self.invoke("admin", &request).await;
        assert_eq!(answer["ok"], true, "{answer}");
        answer
    }

    async fn developer(&self, name: &str) -> PrincipalArn {
        let principal = self
            .account
            .create_principal("user", name, &[&self.account.bedrock_policy_arn])
            .await;
        self.admin(json!({"action": "set_cap", "principal": principal.as_str(),
            "budget": format!("seatcap-{name}"), "cap_usd": "200", "actor": "finance",
            "reason": "seat"}))
            .await;
        principal
    }

    async fn kinds(&self, principal: &PrincipalArn) -> Vec<EventKind> {
        self.account
            .history(principal)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

/// The 100 % alert under budget-alert's role: access is cut, the check after the cut reads
/// every other policy of the user (it may, so no false `enforcement_incomplete`), and the
/// person and finance hear `cut_off`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cutting_alert_under_the_template_role_ends_cut_off() {
    let deployed = Deployed::new().await;
    let alice = deployed.developer("alice").await;
    // Another managed policy, a group with one, and an inline policy: the check after the
    // cut reads each of them.
    let iam = &deployed.account.iam;
    iam.attach_user_policy()
        .user_name("alice")
        .policy_arn(&deployed.account.other_policy_arn)
        .send()
        .await
        .unwrap();
    iam.create_group().group_name("devs").send().await.unwrap();
    iam.add_user_to_group()
        .group_name("devs")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    iam.attach_group_policy()
        .group_name("devs")
        .policy_arn(&deployed.account.other_policy_arn)
        .send()
        .await
        .unwrap();
    iam.put_user_policy()
        .user_name("alice")
        .policy_name("s3")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();

    let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "230.00");
    let report = deployed
        .invoke("budget-alert", &sns_event("m-cap", &alert))
        .await;
    assert_eq!(report["reports"][0]["outcome"], "enforce", "{report}");
    assert!(
        report["reports"][0].get("remaining_access").is_none(),
        "{report}"
    );
    assert_eq!(report["reports"][0]["notification_failures"], 0, "{report}");
    assert_eq!(
        deployed.account.attached(&alice).await,
        vec![deployed.account.other_policy_arn.clone()],
        "only the Bedrock policy is taken"
    );
    let kinds = deployed.kinds(&alice).await;
    assert!(
        kinds.contains(&EventKind::Enforced) && !kinds.contains(&EventKind::EnforcementIncomplete),
        "{kinds:?}"
    );
    let sent = deployed.account.sent_notifications().await;
    assert!(
        sent.iter().any(
            |(_, _, attributes)| attributes.get("kind").map(String::as_str) == Some("cut_off")
        ),
        "{sent:?}"
    );
}

/// Metering under its role: a runaway loop's batch is counted (the counter's `ADD` and the
/// request-id claims), priced, and cut at the cap, with the check after the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_runaway_under_the_template_role_is_cut_off() {
    let deployed = Deployed::new().await;
    let alice = deployed.developer("alice").await;
    // Alice is in a capped group: her calls count for it too (its members read from IAM).
    let team = deployed
        .account
        .create_principal("group", "team", &[])
        .await;
    deployed
        .admin(json!({"action": "set_cap", "principal": team.as_str(),
        "budget": "seatcap-team", "cap_usd": "1000", "actor": "finance", "reason": "team"}))
        .await;
    deployed
        .account
        .iam
        .add_user_to_group()
        .group_name("team")
        .user_name("alice")
        .send()
        .await
        .unwrap();
    let opus = "global.anthropic.claude-opus-4-5-20251101-v1:0";
    let records: Vec<Value> = (0..9)
        .map(|i| invocation_record(alice.as_str(), &format!("r-{i}"), opus, 1_000_000))
        .collect();
    let report = deployed.invoke("metering", &logs_batch(&records)).await;
    assert_eq!(
        report["counted"], 18,
        "9 calls, for Alice and her team: {report}"
    );
    assert_eq!(report["alerts"][0]["outcome"], "enforce", "{report}");
    assert!(
        report["alerts"][0].get("remaining_access").is_none(),
        "{report}"
    );
    assert!(deployed.account.attached(&alice).await.is_empty());
    let kinds = deployed.kinds(&alice).await;
    assert!(
        kinds.contains(&EventKind::Enforced) && !kinds.contains(&EventKind::EnforcementIncomplete),
        "{kinds:?}"
    );
    // S3 delivery: the log file is read under the role too.
    let key = log_file_key(&deployed.account.id, "late");
    let late = invocation_record(alice.as_str(), "r-late", opus, 1_000);
    let bucket = deployed
        .account
        .log_bucket(&[(&key, log_file(&[late]))])
        .await;
    let report = deployed
        .invoke("metering", &s3_objects_created(&bucket, &[&key]))
        .await;
    assert_eq!(report["counted"], 2, "{report}");
}

/// Admin under its role: a block (cut and the check after it), an override that re-arms
/// the budget, a restore, and the reads finance uses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_under_the_template_role_does_finances_whole_workflow() {
    let deployed = Deployed::new().await;
    let bob = deployed.developer("bob").await;
    let blocked = deployed
        .admin(
            json!({"action": "block", "principal": bob.as_str(), "actor": "finance",
            "reason": "left"}),
        )
        .await;
    assert_eq!(blocked["status"], "blocked", "{blocked}");
    assert!(blocked.get("remaining_access").is_none(), "{blocked}");
    assert!(deployed.account.attached(&bob).await.is_empty());
    let restored = deployed
        .admin(
            json!({"action": "restore", "principal": bob.as_str(), "actor": "finance",
            "reason": "back"}),
        )
        .await;
    assert_eq!(restored["restored"], true, "{restored}");

    // A cap block, then an override: the budget is re-armed above the spend.
    let alert = todays_budget_alert("seatcap-bob", "ACTUAL", "200.00", "200.00", "201.00");
    deployed
        .invoke("budget-alert", &sns_event("m-bob", &alert))
        .await;
    let expires = (chrono::Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let granted = deployed
        .admin(
            json!({"action": "grant_override", "principal": bob.as_str(),
            "extra_usd": "100", "expires_at": expires, "actor": "finance", "reason": "launch"}),
        )
        .await;
    assert_eq!(
        granted["budget_alarms_usd"],
        json!(["240.00", "300.00"]),
        "{granted}"
    );
    for request in [
        json!({"action": "status", "principal": bob.as_str()}),
        json!({"action": "list"}),
        json!({"action": "history", "principal": bob.as_str()}),
        json!({"action": "usage", "by": "team"}),
        json!({"action": "flush_notifications"}),
        json!({"action": "doctor"}),
        json!({"action": "set_price", "model": "us.acme.model-x-v1:0",
            "input_per_million_usd": "2", "output_per_million_usd": "8",
            "actor": "finance", "reason": "quote"}),
    ] {
        deployed.admin(request).await;
    }
}

/// period-rollover, reconcile and notifier under their roles: the rollover restores a
/// block of an ended month, reconcile detaches a policy someone attached again during a
/// block and tells security, the notifier drains the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_functions_do_their_jobs_under_their_template_roles() {
    let deployed = Deployed::new().await;
    let (carol, dan) = (
        deployed.developer("carol").await,
        deployed.developer("dan").await,
    );
    for (name, principal) in [("carol", &carol), ("dan", &dan)] {
        let alert = todays_budget_alert(
            &format!("seatcap-{name}"),
            "ACTUAL",
            "200.00",
            "200.00",
            "230.00",
        );
        deployed
            .invoke("budget-alert", &sns_event(&format!("m-{name}"), &alert))
            .await;
        assert!(deployed.account.attached(principal).await.is_empty());
    }
    // carol's block belongs to last month, so the rollover ends it.
    let ledger = deployed.account.ledger();
    let state = ledger.load(&carol).await.unwrap().unwrap();
    let now = chrono::Utc::now();
    let last_month = seatcap::period::month_key(now - chrono::Duration::days(40));
    let next = state.next(now, |s| s.blocked_period = Some(last_month.clone()));
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
    let rolled = deployed
        .invoke("period-rollover", &json!({"time": now.to_rfc3339()}))
        .await;
    assert_eq!(rolled["restored"], json!([carol.as_str()]), "{rolled}");
    assert_eq!(
        deployed.account.attached(&carol).await,
        vec![deployed.account.bedrock_policy_arn.clone()]
    );

    // Someone attaches dan's policy again during his block.
    deployed
        .account
        .iam
        .attach_user_policy()
        .user_name("dan")
        .policy_arn(&deployed.account.bedrock_policy_arn)
        .send()
        .await
        .unwrap();
    let reconciled = deployed.invoke("reconcile", &json!({})).await;
    assert_eq!(reconciled["failed"], json!([]), "{reconciled}");
    assert!(
        deployed.account.attached(&dan).await.is_empty(),
        "{reconciled}"
    );
    let state = ledger.load(&dan).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Blocked);

    let drained = deployed.invoke("notifier", &json!({})).await;
    assert!(drained.get("failed").is_some(), "{drained}");
}
