//! Overrides and in-period restores that Budgets sees: seatcap adds `ABSOLUTE_VALUE` ACTUAL
//! notifications at the ladder's rungs of the new effective cap, removes only its own, and
//! reconcile adds back what a writer that died or lost a race left out. Against moto's
//! Budgets (CreateNotification, DeleteNotification, DescribeNotificationsForBudget).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_budgets::types::{
    ComparisonOperator, Notification, NotificationType, Subscriber, SubscriptionType, ThresholdType,
};
use seatcap::App;
use seatcap::handover::Pace;
use seatcap::principal::PrincipalArn;
use seatcap::state::Status;
use seatcap_tests::{Account, Function, KillingProxy, binary, todays_budget_alert};
use serde_json::{Value, json};

const ALERT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:seatcap-budget-alerts";

fn env(account: &Account) -> HashMap<String, String> {
    let mut env = account.env();
    env.insert("SEATCAP_ALERT_TOPIC_ARN".into(), ALERT_TOPIC.into());
    env
}

fn app(account: &Account) -> App {
    account.app(
        &[("SEATCAP_ALERT_TOPIC_ARN", ALERT_TOPIC)],
        seatcap::app::system_clock(),
    )
}

async fn admin(app: &App, request: Value) -> Value {
    let answer = app.handle_admin(request).await.unwrap();
    assert_eq!(answer["ok"], true, "{answer}");
    answer
}

/// alice with a $200 cap (seatcap creates her budget), cut off by an alert at $201.
async fn cut_alice(account: &Account, app: &App) -> PrincipalArn {
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    admin(
        app,
        json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
        "cap_usd": "200", "actor": "finance", "reason": "seat"}),
    )
    .await;
    let alert = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "201.00");
    app.handle_delivery("m-cap", &alert).await.unwrap();
    assert!(account.attached(&alice).await.is_empty());
    alice
}

fn grant(principal: &PrincipalArn, extra: &str) -> Value {
    let expires = (chrono::Utc::now() + chrono::Duration::days(20)).to_rfc3339();
    json!({"action": "grant_override", "principal": principal.as_str(), "extra_usd": extra,
        "expires_at": expires, "actor": "finance", "reason": "launch"})
}

/// The budget's notifications as (type, threshold type, threshold in cents).
async fn notifications(account: &Account) -> BTreeSet<(String, String, i64)> {
    let out = aws_sdk_budgets::Client::new(&account.sdk)
        .describe_notifications_for_budget()
        .account_id(&account.id)
        .budget_name("seatcap-alice")
        .send()
        .await
        .unwrap();
    out.notifications()
        .iter()
        .map(|n| {
            (
                n.notification_type().as_str().to_owned(),
                n.threshold_type().map_or("", |t| t.as_str()).to_owned(),
                (n.threshold() * 100.0).round() as i64,
            )
        })
        .collect()
}

/// The absolute ACTUAL thresholds on the budget, in cents.
async fn absolute(account: &Account) -> BTreeSet<i64> {
    notifications(account)
        .await
        .into_iter()
        .filter(|(kind, threshold_type, _)| kind == "ACTUAL" && threshold_type == "ABSOLUTE_VALUE")
        .map(|(_, _, cents)| cents)
        .collect()
}

async fn recorded(account: &Account, principal: &PrincipalArn) -> BTreeSet<i64> {
    let state = account.ledger().load(principal).await.unwrap().unwrap();
    state
        .budget_alarms_usd
        .iter()
        .map(|usd| {
            (usd.as_decimal() * rust_decimal::Decimal::ONE_HUNDRED)
                .try_into()
                .unwrap()
        })
        .collect()
}

/// Someone's own absolute notification on the budget: seatcap must never remove it.
async fn add_foreign_alarm(account: &Account, dollars: f64) {
    aws_sdk_budgets::Client::new(&account.sdk)
        .create_notification()
        .account_id(&account.id)
        .budget_name("seatcap-alice")
        .notification(
            Notification::builder()
                .notification_type(NotificationType::Actual)
                .comparison_operator(ComparisonOperator::GreaterThan)
                .threshold(dollars)
                .threshold_type(ThresholdType::AbsoluteValue)
                .build()
                .unwrap(),
        )
        .subscribers(
            Subscriber::builder()
                .subscription_type(SubscriptionType::Email)
                .address("finance@example.com")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

async fn reconcile(app: &App) {
    let event = serde_json::from_value(json!({})).unwrap();
    let report = app.reconcile(event, Pace::unlimited()).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
}

/// Scenario 4: after `+$100` on a $200 cap, Budgets' 100 % notification (sent already) would
/// never fire at $300. seatcap adds $240 and $300, the crossing of $300 cuts again, and
/// revoking removes exactly seatcap's own notifications.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_re_arms_budgets_at_the_new_cap_and_a_revoke_disarms_only_seatcaps() {
    let account = Account::new().await;
    let app = app(&account);
    let alice = cut_alice(&account, &app).await;
    add_foreign_alarm(&account, 250.0).await;
    let ladder_before = notifications(&account).await;
    assert_eq!(absolute(&account).await, BTreeSet::from([250_00]));

    let answer = admin(&app, grant(&alice, "100")).await;
    assert_eq!(answer["status"], "active", "{answer}");
    assert_eq!(
        absolute(&account).await,
        BTreeSet::from([240_00, 250_00, 300_00])
    );
    assert_eq!(
        recorded(&account, &alice).await,
        BTreeSet::from([240_00, 300_00])
    );

    // Budgets' alert at the new notification: above the effective cap, so it cuts.
    let crossing = todays_budget_alert("seatcap-alice", "ACTUAL", "200.00", "300.00", "301.00");
    let report = app.handle_delivery("m-300", &crossing).await.unwrap();
    assert_eq!(serde_json::to_value(&report).unwrap()["outcome"], "enforce");
    assert!(account.attached(&alice).await.is_empty());

    admin(
        &app,
        json!({"action": "revoke_override", "principal": alice.as_str(), "actor": "finance",
        "reason": "launch over"}),
    )
    .await;
    assert_eq!(absolute(&account).await, BTreeSet::from([250_00]));
    assert!(recorded(&account, &alice).await.is_empty());
    assert_eq!(notifications(&account).await, ladder_before);
}

/// Two overrides granted at once (two finance people): the ledger serialises them, and after
/// reconcile every alarm the final state records is on the budget; nothing foreign is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_overrides_leave_every_recorded_alarm_on_the_budget() {
    let account = Account::new().await;
    let app = Arc::new(app(&account));
    let alice = cut_alice(&account, &app).await;
    add_foreign_alarm(&account, 250.0).await;
    for round in 0..3 {
        let (a, b) = (app.clone(), app.clone());
        let (one, two) = (
            grant(&alice, "100"),
            grant(&alice, &format!("{}", 150 + round)),
        );
        let first = tokio::spawn(async move { a.handle_admin(one).await.unwrap() });
        let second = tokio::spawn(async move { b.handle_admin(two).await.unwrap() });
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert_eq!(
            (first["ok"].clone(), second["ok"].clone()),
            (json!(true), json!(true))
        );
        reconcile(&app).await;
        let (present, wanted) = (absolute(&account).await, recorded(&account, &alice).await);
        assert!(!wanted.is_empty(), "round {round}");
        assert!(
            wanted.is_subset(&present) && present.contains(&250_00),
            "round {round}: recorded {wanted:?}, on the budget {present:?}"
        );
    }
    let state = account.ledger().load(&alice).await.unwrap().unwrap();
    assert_eq!(state.status, Status::Active);
}

/// The admin dies right after Budgets took the first of the two notifications an override
/// re-arms: the ledger records both, and reconcile adds the one the budget lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_killed_while_re_arming_is_completed_by_reconcile() {
    let account = Account::new().await;
    let app = app(&account);
    let alice = cut_alice(&account, &app).await;

    let victim = Arc::new(Mutex::new(None));
    let upstream = account.endpoint.trim_start_matches("http://").to_owned();
    let proxy = KillingProxy::start(upstream, "ABSOLUTE_VALUE".to_owned(), victim.clone()).await;
    let mut env = env(&account);
    env.insert("AWS_ENDPOINT_URL".into(), proxy.url.clone());
    let mut function = Function::start(binary("admin"), &env).await;
    *victim.lock().unwrap() = function.pid();
    let answer = function
        .invoke_or_die(&grant(&alice, "100"), Duration::from_secs(3))
        .await;
    assert!(answer.is_none() && proxy.fired(), "{answer:?}");

    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
    assert_eq!(
        recorded(&account, &alice).await,
        BTreeSet::from([240_00, 300_00])
    );
    assert_eq!(absolute(&account).await.len(), 1, "killed after the first");
    reconcile(&app).await;
    assert_eq!(absolute(&account).await, BTreeSet::from([240_00, 300_00]));
}
