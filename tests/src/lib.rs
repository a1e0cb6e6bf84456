//! Test harness for seatcap: real parts only. A moto server for AWS (one per test process,
//! one account per test), the real function binaries under a Lambda Runtime API, and a local
//! Slack receiver. Used by the tests in `tests/tests/` and by the demo.

pub mod moto;
pub mod proxy;
pub mod runtime;
pub mod slack;
pub mod template;

pub use moto::{Account, moto};
pub use proxy::{HoldingProxy, KillingProxy};
pub use runtime::{Function, Invocation, binary, binary_in, serve_invoke_api};
pub use slack::SlackReceiver;

/// An SNS → Lambda event carrying `message` under `message_id`, as Lambda delivers it.
pub fn sns_event(message_id: &str, message: &str) -> serde_json::Value {
    let mut event: serde_json::Value =
        serde_json::from_str(include_str!("../../events/sns-monthly-actual.json"))
            .expect("the sample event is JSON");
    event["Records"][0]["Sns"]["MessageId"] = message_id.into();
    event["Records"][0]["Sns"]["Message"] = message.into();
    event
}

/// A Budgets alert in Budgets' own words, for `budget` at `threshold` of `budgeted`, dated
/// November 21, 2026: the day the tests' injected clocks stand on.
pub fn budget_alert(
    budget: &str,
    alert_type: &str,
    budgeted: &str,
    threshold: &str,
    amount: &str,
) -> String {
    let november = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("a date");
    budget_alert_on(november, budget, alert_type, budgeted, threshold, amount)
}

/// The same alert dated today, for functions that run on the wall clock (the binaries):
/// an alert about an ended month would be late, and only recorded.
pub fn todays_budget_alert(
    budget: &str,
    alert_type: &str,
    budgeted: &str,
    threshold: &str,
    amount: &str,
) -> String {
    let today = chrono::Utc::now().date_naive();
    budget_alert_on(today, budget, alert_type, budgeted, threshold, amount)
}

/// A monthly Budgets alert dated `date`.
pub fn budget_alert_on(
    date: chrono::NaiveDate,
    budget: &str,
    alert_type: &str,
    budgeted: &str,
    threshold: &str,
    amount: &str,
) -> String {
    let date = date.format("%B %d, %Y");
    format!(
        "AWS Budget Notification {date}\nAWS Account 123456789012\n\nDear AWS Customer,\n\n\
         You requested that we alert you when the {alert_type} Cost associated with your {budget} budget is greater \
         than ${threshold} for the current month. The {alert_type} Cost associated with this budget is ${amount}. \
         You can find additional details below and by accessing the AWS Budgets dashboard [1].\n\n\
         Budget Name: {budget}\nBudget Type: Cost\nBudgeted Amount: ${budgeted}\nAlert Type: {alert_type}\n\
         Alert Threshold: > ${threshold}\n{alert_type} Amount: ${amount}\n\n\
         [1] https://console.aws.amazon.com/costmanagement/home#/budgets\n"
    )
}

/// An aws-smithy-mocks rule for IAM clients standing in for the real one: every user has
/// `policies` attached (what seatcap reads before it plans a cut).
pub fn attached_user_policies(policies: &[&str]) -> aws_smithy_mocks::Rule {
    let policies: Vec<String> = policies.iter().map(|p| (*p).to_owned()).collect();
    aws_smithy_mocks::mock!(aws_sdk_iam::Client::list_attached_user_policies).then_output(
        move || {
            aws_sdk_iam::operation::list_attached_user_policies::ListAttachedUserPoliciesOutput::builder()
                .set_attached_policies(Some(
                    policies
                        .iter()
                        .map(|p| {
                            aws_sdk_iam::types::AttachedPolicy::builder()
                                .policy_arn(p)
                                .policy_name(p.rsplit('/').next().unwrap_or(p))
                                .build()
                        })
                        .collect(),
                ))
                .is_truncated(false)
                .build()
        },
    )
}
