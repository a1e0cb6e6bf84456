//! Metered against billed: once per ended month, reconcile compares each capped principal's
//! metered figure with what AWS Budgets says was spent, and reports those more than 10 %
//! apart (`metered_budget_drift`), so a wrong or missing price, or calls that never reached
//! the invocation logs, is caught within days instead of trusted for months.
//!
//! The check waits until the third day of the next month (Budgets' figures lag up to a day
//! and settle after), runs in the first reconcile from then on, and is done once: a claim
//! marks the month checked. Calls: one query for the month's counters, one batch read of
//! their states, one `DescribeBudgetPerformanceHistory` per capped principal with spend.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use tracing::warn;

use crate::app::App;
use crate::audit::{AuditEvent, Claim, EventKind};
use crate::ledger::{Commit, Subject};
use crate::meter::{metered_drift, usd_of_micros};
use crate::period::{month_key, start_of_month_after};
use crate::principal::PrincipalArn;
use crate::reconcile::{ACTOR, ReconcileError};

/// Days into the next month before an ended month's Budgets figure is trusted.
const SETTLE_DAYS: i64 = 2;

/// One principal whose ended month was metered and billed differently.
#[derive(Debug, Clone, Serialize)]
pub struct MeteredDrift {
    pub principal: PrincipalArn,
    pub period: String,
    pub metered_usd: String,
    pub budgets_usd: String,
    pub difference_percent: String,
}

impl App {
    /// The ended month's comparison, when it is due and not done yet.
    pub(crate) async fn check_metered_drift(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<MeteredDrift>, ReconcileError> {
        let this_month = start_of_month_after(now, 0);
        if now < this_month + Duration::days(SETTLE_DAYS) {
            return Ok(Vec::new());
        }
        let month_start = start_of_month_after(this_month - Duration::days(1), 0);
        let period = month_key(month_start);
        let done = Claim::Notice(format!("metered-drift-checked#{period}"));
        if self.ledger.claimed(&done).await? {
            return Ok(Vec::new());
        }
        let counters = self.ledger.counters_of(&period).await?;
        let arns: Vec<String> = counters.iter().map(|c| c.arn.clone()).collect();
        let states = self.ledger.read_meters(&arns, &[]).await?.states;
        let mut drifts = Vec::new();
        for counter in &counters {
            let Some(state) = states.get(&counter.arn) else {
                continue;
            };
            let account = state.principal.account_id();
            let Some(billed) = self
                .budgets
                .actual_in(account, &state.budget, month_start, this_month)
                .await?
            else {
                continue;
            };
            let metered = usd_of_micros(counter.micros);
            let Some(percent) = metered_drift(metered, billed) else {
                continue;
            };
            let drift = MeteredDrift {
                principal: state.principal.clone(),
                period: period.clone(),
                metered_usd: metered.to_plain_string(),
                budgets_usd: billed.to_plain_string(),
                difference_percent: percent.to_string(),
            };
            let event = AuditEvent::new(
                now,
                EventKind::MeteredBudgetDrift,
                ACTOR,
                json!({"period": period, "metered_usd": drift.metered_usd,
                    "budgets_usd": drift.budgets_usd,
                    "difference_percent": drift.difference_percent}),
            );
            // Each principal's finding under a claim of its own: a run that dies midway
            // leaves the rest to the next, and nobody's is recorded twice.
            let claim = Claim::Notice(format!("metered-drift#{}#{period}", drift.principal));
            let reported = Commit {
                claims: vec![claim],
                events: vec![(Subject::Principal(state.principal.clone()), event)],
                ..Commit::default()
            };
            let what = format!("the metered drift of {period}");
            if self.ledger.record_once(reported, now, &what).await? {
                warn!(principal = %drift.principal, %period, metered = %drift.metered_usd, budgets = %drift.budgets_usd, percent = %drift.difference_percent, "metered and billed spend differ");
                drifts.push(drift);
            }
        }
        let checked = Commit {
            claims: vec![done],
            ..Commit::default()
        };
        let what = format!("the check of {period}");
        self.ledger.record_once(checked, now, &what).await?;
        Ok(drifts)
    }
}
