//! period-rollover: at the start of a budget period, give back the access that the cap took
//! in the period that ended. Manual blocks stay until `restore`.
//!
//! The boundary is the scheduled event's `time`, not the wall clock, so a late or replayed
//! event acts on the right period. Each restore is the admin's restore (conditional on the
//! version read, audited, announced), so running twice, late, or after a partial run never
//! acts twice: a principal already restored is no longer in the blocked index.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info};

use crate::admin::AdminError;
use crate::app::App;
use crate::change::{Change, restore};
use crate::handover::{HandoverError, Pace, Walk};
use crate::ledger::LedgerError;
use crate::metrics;
use crate::period::period_end;
use crate::principal::PrincipalArn;
use crate::state::{BlockCause, PrincipalState, Status};

pub(crate) const ACTOR: &str = crate::audit::Actor::Rollover.name();

/// The scheduled event: an EventBridge rule's event, or EventBridge Scheduler's input
/// `{"time": "..."}`; either way `time` is the boundary. A follow-up invocation carries the
/// same `time` and the principal to resume after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloverEvent {
    pub time: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<PrincipalArn>,
}

#[derive(Debug, Default, Serialize)]
pub struct RolloverReport {
    pub at: Option<DateTime<Utc>>,
    /// Blocked principals looked at in this invocation.
    pub blocked: usize,
    pub restored: Vec<String>,
    /// Manual blocks: they stay until finance restores them.
    pub kept_manual: usize,
    /// Blocked in a period that has not ended yet.
    pub kept_current_period: usize,
    /// Blocked by the cap with no readable period: reported, not guessed.
    pub unknown_period: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// The follow-up invocation's event, when this one ran out of time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handed_over: Option<RolloverEvent>,
}

#[derive(Debug, thiserror::Error)]
pub enum RolloverError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Handover(#[from] HandoverError),
    #[error("{} of {} restores failed; the next run retries them: {:?}", .0.failed.len(), .0.blocked, .0.failed)]
    Incomplete(Box<RolloverReport>),
    /// The event says a time later than the clock allows: whoever invoked the function
    /// with it would end every cap block of the current period today. Nothing is restored.
    #[error(
        "the event's time {time} is more than {} minutes ahead of the clock ({now}); refusing to end periods that have not ended",
        LARGEST_EVENT_SKEW.num_minutes()
    )]
    TimeAhead {
        time: DateTime<Utc>,
        now: DateTime<Utc>,
    },
}

/// How far ahead of the clock a scheduled event's `time` may be: EventBridge stamps the
/// scheduled time, which is never ahead of the invocation by more than clock drift.
const LARGEST_EVENT_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Whether a principal's cap block belongs to a period that has ended by `at`.
fn cap_period_ended(state: &PrincipalState, at: DateTime<Utc>) -> bool {
    state.status == Status::Blocked
        && state.block_cause.is_some_and(BlockCause::ends_with_the_cap)
        && state
            .blocked_period
            .as_deref()
            .and_then(period_end)
            .is_some_and(|end| end <= at)
}

impl App {
    /// The period-rollover function's invocation: one run within `context`'s deadline, the
    /// rest handed over, and an error if any restore failed (after all the others ran).
    pub async fn rollover_invocation(
        &self,
        event: RolloverEvent,
        context: &lambda_runtime::Context,
    ) -> Result<RolloverReport, RolloverError> {
        let report = self.roll_over(event, Pace::of(context)).await?;
        if let Some(next) = &report.handed_over {
            self.hand_over(&context.invoked_function_arn, next).await?;
        }
        if report.failed.is_empty() {
            Ok(report)
        } else {
            Err(RolloverError::Incomplete(Box::new(report)))
        }
    }

    /// Restores, page by page of the blocked index, every cap block whose period ended by
    /// `event.time`, until done or past `pace`'s deadline (checked between pages).
    pub async fn roll_over(
        &self,
        event: RolloverEvent,
        pace: Pace,
    ) -> Result<RolloverReport, RolloverError> {
        let at = event.time;
        let now = self.now();
        if at > now + LARGEST_EVENT_SKEW {
            return Err(RolloverError::TimeAhead { time: at, now });
        }
        let mut report = RolloverReport {
            at: Some(at),
            ..RolloverReport::default()
        };
        let walk = self
            .walk_status(
                Status::Blocked,
                event.resume_after.clone(),
                pace,
                async |page| {
                    report.blocked += page.len();
                    self.roll_over_page(page, at, &mut report).await;
                    Ok::<_, RolloverError>(())
                },
            )
            .await?;
        if let Walk::Stopped { after } = walk {
            report.handed_over = Some(RolloverEvent {
                time: at,
                resume_after: Some(after),
            });
        }
        report.restored.sort();
        metrics::count("RolloverRestores", report.restored.len());
        info!(
            restored = report.restored.len(),
            kept_manual = report.kept_manual,
            kept_current_period = report.kept_current_period,
            failed = report.failed.len(),
            handed_over = report.handed_over.is_some(),
            "period rollover"
        );
        Ok(report)
    }

    async fn roll_over_page(
        &self,
        page: Vec<PrincipalState>,
        at: DateTime<Utc>,
        report: &mut RolloverReport,
    ) {
        let mut due = Vec::new();
        for state in page {
            match (
                state.block_cause,
                state.blocked_period.as_deref().and_then(period_end),
            ) {
                (Some(BlockCause::Manual), _) => report.kept_manual += 1,
                (_, None) => report.unknown_period.push(state.principal.to_string()),
                (_, Some(end)) if end > at => report.kept_current_period += 1,
                _ => due.push(state),
            }
        }
        // Decided again from each state as read: the page came from the status index, and
        // every write is conditional on its version, so a principal restored or blocked
        // again in the meantime is read afresh and left as it is.
        let results: Vec<(String, Result<Value, AdminError>)> = self
            .change_many(
                due,
                ACTOR,
                |s| {
                    format!(
                        "budget period {} ended",
                        s.blocked_period.as_deref().unwrap_or("?")
                    )
                },
                |s, now| {
                    if cap_period_ended(s, at) {
                        restore(s, now)
                    } else {
                        Ok(Change::Unchanged)
                    }
                },
            )
            .await
            .into_iter()
            .map(|(principal, result)| {
                let answer = result.map(|answer| {
                    answer.unwrap_or_else(
                        |refusal| serde_json::json!({"refused": refusal.to_string()}),
                    )
                });
                (principal.to_string(), answer)
            })
            .collect();
        for (principal, result) in results {
            match result {
                Ok(answer) if answer["restored"] == true => report.restored.push(principal),
                Ok(_) => {}
                Err(e) => {
                    error!(%principal, error = %e, "rollover restore failed");
                    report.failed.push((principal, e.to_string()));
                }
            }
        }
    }
}
