//! AWS Budgets: one monthly cost budget per principal, filtered on a cost-allocation tag,
//! whose notifications at the ladder's thresholds go to seatcap's alert topic.

use aws_sdk_budgets::Client;
use aws_sdk_budgets::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_budgets::types::{
    Budget, BudgetType, ComparisonOperator, Notification, NotificationType,
    NotificationWithSubscribers, Spend, Subscriber, SubscriptionType, ThresholdType, TimeUnit,
};
use serde::Serialize;

use crate::alert::PeriodUnit;
use crate::decide::Ladder;
use crate::money::Usd;

#[derive(Debug, thiserror::Error)]
#[error("AWS Budgets {operation} for `{budget}` failed: {message}")]
pub struct BudgetsError {
    pub operation: &'static str,
    pub budget: String,
    pub message: String,
}

impl BudgetInfo {
    fn from_raw(raw: Budget) -> BudgetInfo {
        let usd = |spend: Option<&Spend>| {
            spend
                .filter(|s| s.unit() == "USD")
                .and_then(|s| Usd::parse_budgets_amount(s.amount()).ok())
        };
        BudgetInfo {
            limit: usd(raw.budget_limit()),
            actual_spend: usd(raw.calculated_spend().and_then(|c| c.actual_spend())),
            is_monthly_cost: raw.budget_type() == &BudgetType::Cost
                && raw.time_unit() == &TimeUnit::Monthly,
            raw,
        }
    }

    pub fn name(&self) -> &str {
        self.raw.budget_name()
    }

    /// The period the budget resets on, as alerts name it.
    pub fn period_unit(&self) -> PeriodUnit {
        match self.raw.time_unit() {
            TimeUnit::Daily => PeriodUnit::Daily,
            TimeUnit::Quarterly => PeriodUnit::Quarterly,
            TimeUnit::Annually => PeriodUnit::Annually,
            _ => PeriodUnit::Monthly,
        }
    }

    /// Whether the budget is filtered on the cost-allocation tag `tag_key`: the shape of a
    /// budget made for one principal (by seatcap, or by hand in the console).
    // `CostFilters` is the form both seatcap and the Budgets console write a tag filter in.
    #[allow(deprecated)]
    pub fn filters_on_tag(&self, tag_key: &str) -> bool {
        let prefix = format!("user:{tag_key}$");
        self.raw.cost_filters().is_some_and(|filters| {
            filters
                .get("TagKeyValue")
                .is_some_and(|values| values.iter().any(|v| v.starts_with(&prefix)))
        })
    }
}

/// What seatcap reads from an existing budget.
#[derive(Debug, Clone)]
pub struct BudgetInfo {
    raw: Budget,
    /// The limit, if it is in USD (a usage budget's limit is not money).
    pub limit: Option<Usd>,
    /// `CalculatedSpend.ActualSpend` in USD, as Budgets last computed it.
    pub actual_spend: Option<Usd>,
    pub is_monthly_cost: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationInfo {
    pub notification_type: String,
    pub threshold: f64,
    pub threshold_type: String,
}

/// The budget seatcap creates for a principal.
pub struct NewBudget<'a> {
    pub account_id: &'a str,
    pub name: &'a str,
    pub limit: Usd,
    /// Cost-allocation tag `key` = `value` that marks this principal's Bedrock spend.
    pub tag_key: &'a str,
    pub tag_value: &'a str,
    pub ladder: &'a Ladder,
    pub alert_topic_arn: &'a str,
}

#[derive(Clone)]
pub struct Budgets {
    client: Client,
}

impl Budgets {
    pub fn new(client: Client) -> Self {
        Budgets { client }
    }

    /// The budget named `name`, or `None` if there is none.
    pub async fn describe(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Option<BudgetInfo>, BudgetsError> {
        let result = self
            .client
            .describe_budget()
            .account_id(account_id)
            .budget_name(name)
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.budget.map(BudgetInfo::from_raw)),
            Err(e) if e.code() == Some("NotFoundException") => Ok(None),
            Err(e) => Err(error("DescribeBudget", name, &e)),
        }
    }

    /// What Budgets says was actually spent on `name` in the period from `start` to `end`
    /// (an ended month, for reconcile's comparison with the metered figure); `None` when it
    /// has no figure for it (or the budget is gone).
    pub async fn actual_in(
        &self,
        account_id: &str,
        name: &str,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Usd>, BudgetsError> {
        let time =
            |t: chrono::DateTime<chrono::Utc>| aws_smithy_types::DateTime::from_secs(t.timestamp());
        let result = self
            .client
            .describe_budget_performance_history()
            .account_id(account_id)
            .budget_name(name)
            .time_period(
                aws_sdk_budgets::types::TimePeriod::builder()
                    .start(time(start))
                    .end(time(end))
                    .build(),
            )
            .send()
            .await;
        let history = match result {
            Ok(out) => out.budget_performance_history,
            Err(e) if e.code() == Some("NotFoundException") => return Ok(None),
            Err(e) => return Err(error("DescribeBudgetPerformanceHistory", name, &e)),
        };
        let amounts = history
            .iter()
            .flat_map(|h| h.budgeted_and_actual_amounts_list())
            .filter_map(|a| a.actual_amount())
            .filter(|spend| spend.unit() == "USD")
            .filter_map(|spend| Usd::parse_budgets_amount(spend.amount()).ok());
        Ok(amounts.reduce(|a, b| a + b))
    }

    /// Every budget of the account, all pages.
    pub async fn describe_all(&self, account_id: &str) -> Result<Vec<BudgetInfo>, BudgetsError> {
        let mut pages = self
            .client
            .describe_budgets()
            .account_id(account_id)
            .into_paginator()
            .send();
        let mut budgets = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("DescribeBudgets", "*", &e))?;
            budgets.extend(
                page.budgets
                    .unwrap_or_default()
                    .into_iter()
                    .map(BudgetInfo::from_raw),
            );
        }
        Ok(budgets)
    }

    /// Creates the budget with ACTUAL notifications at each ladder step and a FORECASTED one
    /// at 100 %, all to the alert topic.
    // `CostFilters` is deprecated in favour of `FilterExpression`, but it is the form the
    // Budgets console and the emulator both show for a tag filter (`user:key$value`).
    #[allow(deprecated)]
    pub async fn create(&self, spec: &NewBudget<'_>) -> Result<(), BudgetsError> {
        let build = |e: aws_sdk_budgets::error::BuildError| BudgetsError {
            operation: "CreateBudget",
            budget: spec.name.to_owned(),
            message: e.to_string(),
        };
        let budget = Budget::builder()
            .budget_name(spec.name)
            .budget_type(BudgetType::Cost)
            .time_unit(TimeUnit::Monthly)
            .budget_limit(
                Spend::builder()
                    .amount(spec.limit.to_plain_string())
                    .unit("USD")
                    .build()
                    .map_err(build)?,
            )
            .cost_filters(
                "TagKeyValue",
                vec![format!("user:{}${}", spec.tag_key, spec.tag_value)],
            )
            .build()
            .map_err(build)?;
        let subscriber = Subscriber::builder()
            .subscription_type(SubscriptionType::Sns)
            .address(spec.alert_topic_arn)
            .build()
            .map_err(build)?;
        let mut notifications = Vec::new();
        let thresholds = spec
            .ladder
            .steps()
            .iter()
            .map(|s| (NotificationType::Actual, f64::from(s.percent)));
        for (kind, percent) in thresholds.chain([(NotificationType::Forecasted, 100.0)]) {
            let notification = Notification::builder()
                .notification_type(kind)
                .comparison_operator(ComparisonOperator::GreaterThan)
                .threshold(percent)
                .threshold_type(ThresholdType::Percentage)
                .build()
                .map_err(build)?;
            notifications.push(
                NotificationWithSubscribers::builder()
                    .notification(notification)
                    .subscribers(subscriber.clone())
                    .build()
                    .map_err(build)?,
            );
        }
        self.client
            .create_budget()
            .account_id(spec.account_id)
            .budget(budget)
            .set_notifications_with_subscribers(Some(notifications))
            .send()
            .await
            .map(drop)
            .map_err(|e| error("CreateBudget", spec.name, &e))
    }

    /// Sets a new limit on an existing budget, keeping everything else as it is.
    pub async fn update_limit(
        &self,
        account_id: &str,
        existing: &BudgetInfo,
        limit: Usd,
    ) -> Result<(), BudgetsError> {
        let name = existing.raw.budget_name().to_owned();
        let mut budget = existing.raw.clone();
        budget.budget_limit = Some(
            Spend::builder()
                .amount(limit.to_plain_string())
                .unit("USD")
                .build()
                .map_err(|e| BudgetsError {
                    operation: "UpdateBudget",
                    budget: name.clone(),
                    message: e.to_string(),
                })?,
        );
        // Budgets computes these; sending them back is refused.
        budget.calculated_spend = None;
        budget.last_updated_time = None;
        self.client
            .update_budget()
            .account_id(account_id)
            .new_budget(budget)
            .send()
            .await
            .map(drop)
            .map_err(|e| error("UpdateBudget", &name, &e))
    }

    pub async fn notifications(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<Vec<NotificationInfo>, BudgetsError> {
        let out = self
            .client
            .describe_notifications_for_budget()
            .account_id(account_id)
            .budget_name(name)
            .send()
            .await
            .map_err(|e| error("DescribeNotificationsForBudget", name, &e))?;
        Ok(out
            .notifications
            .unwrap_or_default()
            .iter()
            .map(|n| NotificationInfo {
                notification_type: n.notification_type().as_str().to_owned(),
                threshold: n.threshold(),
                threshold_type: n
                    .threshold_type()
                    .map_or("PERCENTAGE", |t| t.as_str())
                    .to_owned(),
            })
            .collect())
    }
}

/// seatcap's own notifications on a budget: ACTUAL, `GREATER_THAN` an absolute amount (the
/// budget's ladder notifications are percentages). Which of them seatcap may remove, the
/// ledger says; these calls only read, add and remove the ones they are given.
impl Budgets {
    /// The absolute ACTUAL thresholds on the budget, to the cent.
    pub async fn alarms(&self, account_id: &str, name: &str) -> Result<Vec<Usd>, BudgetsError> {
        let mut pages = self
            .client
            .describe_notifications_for_budget()
            .account_id(account_id)
            .budget_name(name)
            .into_paginator()
            .send();
        let mut alarms = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| error("DescribeNotificationsForBudget", name, &e))?;
            alarms.extend(
                page.notifications
                    .unwrap_or_default()
                    .iter()
                    .filter(|n| {
                        n.notification_type() == &NotificationType::Actual
                            && n.comparison_operator() == &ComparisonOperator::GreaterThan
                            && n.threshold_type() == Some(&ThresholdType::AbsoluteValue)
                    })
                    .filter_map(|n| {
                        Usd::parse_budgets_amount(&format!("{:.2}", n.threshold())).ok()
                    }),
            );
        }
        Ok(alarms)
    }

    /// Adds an ACTUAL notification at `threshold` dollars to the alert topic; one that is
    /// there already is left as it is.
    pub async fn add_alarm(
        &self,
        account_id: &str,
        name: &str,
        threshold: Usd,
        alert_topic_arn: &str,
    ) -> Result<(), BudgetsError> {
        let build = |e: aws_sdk_budgets::error::BuildError| BudgetsError {
            operation: "CreateNotification",
            budget: name.to_owned(),
            message: e.to_string(),
        };
        let subscriber = Subscriber::builder()
            .subscription_type(SubscriptionType::Sns)
            .address(alert_topic_arn)
            .build()
            .map_err(build)?;
        let result = self
            .client
            .create_notification()
            .account_id(account_id)
            .budget_name(name)
            .notification(alarm(threshold).map_err(build)?)
            .subscribers(subscriber)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("DuplicateRecordException") => Ok(()),
            Err(e) => Err(error("CreateNotification", name, &e)),
        }
    }

    /// Removes the ACTUAL notification at `threshold` dollars; one already gone is fine.
    pub async fn remove_alarm(
        &self,
        account_id: &str,
        name: &str,
        threshold: Usd,
    ) -> Result<(), BudgetsError> {
        let notification = alarm(threshold).map_err(|e| BudgetsError {
            operation: "DeleteNotification",
            budget: name.to_owned(),
            message: e.to_string(),
        })?;
        let result = self
            .client
            .delete_notification()
            .account_id(account_id)
            .budget_name(name)
            .notification(notification)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("NotFoundException") => Ok(()),
            Err(e) => Err(error("DeleteNotification", name, &e)),
        }
    }
}

/// The notification seatcap keeps at `threshold` dollars. Budgets takes the amount as a
/// double; cents convert exactly enough (Budgets itself shows thresholds to the cent).
fn alarm(threshold: Usd) -> Result<Notification, aws_sdk_budgets::error::BuildError> {
    let dollars = threshold
        .to_plain_string()
        .parse::<f64>()
        .unwrap_or_default();
    Notification::builder()
        .notification_type(NotificationType::Actual)
        .comparison_operator(ComparisonOperator::GreaterThan)
        .threshold(dollars)
        .threshold_type(ThresholdType::AbsoluteValue)
        .build()
}

fn error<E: std::error::Error + 'static>(
    operation: &'static str,
    budget: &str,
    e: &E,
) -> BudgetsError {
    BudgetsError {
        operation,
        budget: budget.to_owned(),
        message: DisplayErrorContext(e).to_string(),
    }
}
