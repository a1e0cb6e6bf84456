//! AWS Budgets kept in step with the ledger: against moto where it implements the call
//! (CreateBudget, DescribeBudget, notifications, CalculatedSpend), with aws-smithy-mocks for
//! UpdateBudget, which moto 5.2.5 does not implement.

use std::sync::Arc;

use aws_sdk_budgets::operation::create_notification::CreateNotificationOutput;
use aws_sdk_budgets::operation::describe_budget::DescribeBudgetOutput;
use aws_sdk_budgets::operation::describe_notifications_for_budget::DescribeNotificationsForBudgetOutput;
use aws_sdk_budgets::operation::update_budget::UpdateBudgetOutput;
use aws_sdk_budgets::types::{
    Budget, BudgetType, CalculatedSpend, Notification, NotificationType,
    NotificationWithSubscribers, Spend, Subscriber, SubscriptionType, ThresholdType, TimeUnit,
};
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use chrono::{TimeZone, Utc};
use seatcap::App;
use seatcap::budgets::Budgets;
use seatcap_tests::{Account, budget_alert};
use serde_json::{Value, json};

const ALERT_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:seatcap-budget-alerts";

fn app(account: &Account) -> App {
    account.app(
        &[
            ("SEATCAP_ALERT_TOPIC_ARN", ALERT_TOPIC),
            ("SEATCAP_COST_TAG_KEY", "claude-seat"),
        ],
        Arc::new(|| Utc.with_ymd_and_hms(2026, 11, 21, 9, 0, 0).unwrap()),
    )
}

fn budgets(account: &Account) -> aws_sdk_budgets::Client {
    aws_sdk_budgets::Client::new(&account.sdk)
}

async fn admin(app: &App, request: Value) -> Value {
    app.handle_admin(request)
        .await
        .expect("no infrastructure failure")
}

fn usd(amount: &str) -> Spend {
    Spend::builder().amount(amount).unit("USD").build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_cap_creates_the_budget_with_the_ladder_and_the_tag_filter() {
    let account = Account::new().await;
    let app = app(&account);
    let alice = account.principal("user", "alice");
    let answer = admin(
        &app,
        json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
        "cap_usd": "200.00", "actor": "finance@example.com", "reason": "new seat"}),
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");

    let budget = budgets(&account)
        .describe_budget()
        .account_id(&account.id)
        .budget_name("seatcap-alice")
        .send()
        .await
        .unwrap()
        .budget
        .unwrap();
    assert_eq!(
        budget.budget_limit().map(|l| (l.amount(), l.unit())),
        Some(("200.00", "USD"))
    );
    assert_eq!(
        (budget.budget_type(), budget.time_unit()),
        (&BudgetType::Cost, &TimeUnit::Monthly)
    );
    #[allow(deprecated)]
    let filters = budget.cost_filters().cloned().unwrap_or_default();
    assert_eq!(
        filters.get("TagKeyValue"),
        Some(&vec!["user:claude-seat$alice".to_owned()])
    );

    let mut notifications: Vec<(String, f64)> = app
        .budgets
        .notifications(&account.id, "seatcap-alice")
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.notification_type, n.threshold))
        .collect();
    notifications.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        notifications,
        [
            ("ACTUAL".into(), 50.0),
            ("ACTUAL".into(), 80.0),
            ("ACTUAL".into(), 100.0),
            ("FORECASTED".into(), 100.0)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_a_console_budget_takes_its_limit_and_reports_its_notifications() {
    let account = Account::new().await;
    let app = app(&account);
    let bob = account
        .create_principal("user", "bob", &[&account.bedrock_policy_arn])
        .await;
    // A budget made in the console, with Budgets' computed spend already over its limit.
    budgets(&account)
        .create_budget()
        .account_id(&account.id)
        .budget(
            Budget::builder()
                .budget_name("Team Atlas - Bob")
                .budget_type(BudgetType::Cost)
                .time_unit(TimeUnit::Monthly)
                .budget_limit(usd("150"))
                .calculated_spend(
                    CalculatedSpend::builder()
                        .actual_spend(usd("180.25"))
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .notifications_with_subscribers(
            NotificationWithSubscribers::builder()
                .notification(
                    Notification::builder()
                        .notification_type(NotificationType::Actual)
                        .comparison_operator(
                            aws_sdk_budgets::types::ComparisonOperator::GreaterThan,
                        )
                        .threshold(80.0)
                        .threshold_type(ThresholdType::Percentage)
                        .build()
                        .unwrap(),
                )
                .subscribers(
                    Subscriber::builder()
                        .subscription_type(SubscriptionType::Sns)
                        .address(ALERT_TOPIC)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let adopted = admin(
        &app,
        json!({"action": "adopt_budget", "principal": bob.as_str(), "budget": "Team Atlas - Bob",
        "actor": "finance@example.com", "reason": "take over"}),
    )
    .await;
    assert_eq!(adopted["ok"], true, "{adopted}");
    assert_eq!(adopted["cap_usd"], "150.00");
    assert_eq!(adopted["last_actual_usd"], "180.25");
    assert_eq!(adopted["notifications"][0]["threshold"], 80.0);
    assert!(
        adopted["warnings"][0].as_str().unwrap().contains("100 %"),
        "{adopted}"
    );

    let missing = admin(
        &app,
        json!({"action": "adopt_budget", "principal": bob.as_str(), "budget": "nope",
        "actor": "f", "reason": "r"}),
    )
    .await;
    assert_eq!(missing["error"]["code"], "not_found");
    let carol = account.principal("user", "carol");
    let taken = admin(
        &app,
        json!({"action": "adopt_budget", "principal": carol.as_str(), "budget": "Team Atlas - Bob",
        "actor": "f", "reason": "r"}),
    )
    .await;
    assert_eq!(taken["error"]["code"], "budget_taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raising_the_cap_updates_the_budget_and_restores_when_budgets_says_spend_is_under() {
    let account = Account::new().await;
    let mut app = app(&account);
    let alice = account
        .create_principal("user", "alice", &[&account.bedrock_policy_arn])
        .await;
    admin(
        &app,
        json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
        "cap_usd": "200.00", "actor": "f", "reason": "r"}),
    )
    .await;
    app.handle_delivery(
        "m-1",
        &budget_alert("seatcap-alice", "ACTUAL", "200.00", "200.00", "205.00"),
    )
    .await
    .unwrap();
    assert!(account.attached(&alice).await.is_empty());

    // moto cannot UpdateBudget: Budgets answers from mocks, which record what was sent.
    let existing = Budget::builder()
        .budget_name("seatcap-alice")
        .budget_type(BudgetType::Cost)
        .time_unit(TimeUnit::Monthly)
        .budget_limit(usd("200.00"))
        .calculated_spend(
            CalculatedSpend::builder()
                .actual_spend(usd("240.00"))
                .build(),
        )
        .build()
        .unwrap();
    let describe = mock!(aws_sdk_budgets::Client::describe_budget).then_output(move || {
        DescribeBudgetOutput::builder()
            .budget(existing.clone())
            .build()
    });
    let update = mock!(aws_sdk_budgets::Client::update_budget)
        .match_requests(|r| {
            let budget = r.new_budget().expect("a new budget");
            budget.budget_limit().map(|l| (l.amount(), l.unit())) == Some(("250.00", "USD"))
                && budget.budget_name() == "seatcap-alice"
                && budget.calculated_spend().is_none()
        })
        .then_output(|| UpdateBudgetOutput::builder().build());
    // Restored within the period: Budgets has sent its 100 % already, so seatcap re-arms
    // it with an absolute notification at the rung of the new cap above the spend.
    let existing_notifications = mock!(aws_sdk_budgets::Client::describe_notifications_for_budget)
        .then_output(|| DescribeNotificationsForBudgetOutput::builder().build());
    let rearm = mock!(aws_sdk_budgets::Client::create_notification)
        .match_requests(|r| {
            r.notification().is_some_and(|n| {
                n.threshold() == 250.0
                    && n.threshold_type() == Some(&ThresholdType::AbsoluteValue)
                    && n.notification_type() == &NotificationType::Actual
            }) && r.subscribers().iter().any(|s| s.address() == ALERT_TOPIC)
        })
        .then_output(|| CreateNotificationOutput::builder().build());
    app.budgets = Budgets::new(mock_client!(
        aws_sdk_budgets,
        RuleMode::MatchAny,
        [&describe, &update, &existing_notifications, &rearm]
    ));

    // Budgets says $240 spent: a $250 cap is above it, so access comes back at once.
    let raised = admin(
        &app,
        json!({"action": "set_cap", "principal": alice.as_str(), "budget": "seatcap-alice",
        "cap_usd": "250.00", "actor": "finance@example.com", "reason": "crunch week"}),
    )
    .await;
    assert_eq!(
        update.num_calls(),
        1,
        "UpdateBudget sent with the new limit"
    );
    assert_eq!(
        (raised["restored"].clone(), raised["status"].clone()),
        (json!(true), json!("active")),
        "{raised}"
    );
    assert_eq!(raised["last_actual_usd"], "240.00");
    assert_eq!(rearm.num_calls(), 1, "re-armed at $250");
    assert_eq!(raised["budget_alarms_usd"], json!(["250.00"]));
    assert_eq!(
        account.attached(&alice).await,
        vec![account.bedrock_policy_arn.clone()]
    );
}
