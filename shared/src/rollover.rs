//! period-rollover: at the start of a budget period, give back the access that the cap took
//! in the period that ended. Manual blocks stay until `restore`.
//!
//! The boundary is the scheduled event's `time`, not the wall clock, so a late or replayed
//! event acts on the right period. Each restore is the admin's restore (conditional on the
//! version read, audited, announced), so running twice, late, or after a partial run never
//! acts twice: a principal already restored is no longer in the blocked index.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info};

use crate::admin::{AdminError, Change, restore};
use crate::app::App;
use crate::ledger::LedgerError;
use crate::metrics;
use crate::period::period_end;
use crate::state::{BlockCause, PrincipalState, Status};

const ACTOR: &str = "seatcap:period-rollover";
/// How many principals are restored at once: IAM's rate limits are per account and unpublished.
const CONCURRENCY: usize = 8;

/// The scheduled event: an EventBridge rule's event, or EventBridge Scheduler's input
/// `{"time": "..."}`; either way `time` is the boundary.
#[derive(Debug, Deserialize)]
pub struct RolloverEvent {
    pub time: DateTime<Utc>,
}

#[derive(Debug, Default, Serialize)]
pub struct RolloverReport {
    pub at: Option<DateTime<Utc>>,
    pub blocked: usize,
    pub restored: Vec<String>,
    /// Manual blocks: they stay until finance restores them.
    pub kept_manual: usize,
    /// Blocked in a period that has not ended yet.
    pub kept_current_period: usize,
    /// Blocked by the cap with no readable period: reported, not guessed.
    pub unknown_period: Vec<String>,
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum RolloverError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("{} of {} restores failed; the next run retries them: {:?}", .0.failed.len(), .0.blocked, .0.failed)]
    Incomplete(Box<RolloverReport>),
}

/// Whether a principal's cap block belongs to a period that has ended by `at`.
fn cap_period_ended(state: &PrincipalState, at: DateTime<Utc>) -> bool {
    state.status == Status::Blocked
        && state.block_cause == Some(BlockCause::Cap)
        && state
            .blocked_period
            .as_deref()
            .and_then(period_end)
            .is_some_and(|end| end <= at)
}

impl App {
    pub async fn roll_over(&self, at: DateTime<Utc>) -> Result<RolloverReport, RolloverError> {
        let blocked = self.ledger.list_by_status(Status::Blocked).await?;
        let mut report = RolloverReport {
            at: Some(at),
            blocked: blocked.len(),
            ..RolloverReport::default()
        };
        let mut due = Vec::new();
        for state in blocked {
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
        let results: Vec<(String, Result<Value, AdminError>)> = futures::stream::iter(due)
            .map(|state| async move {
                let reason = format!(
                    "budget period {} ended",
                    state.blocked_period.as_deref().unwrap_or("?")
                );
                // Decided again from each fresh read: a principal restored or re-blocked
                // manually in the meantime is left as it is.
                let result = self
                    .change_principal(&state.principal, ACTOR, &reason, |s, now| {
                        if cap_period_ended(s, at) {
                            restore(s, now)
                        } else {
                            Ok(Change::Unchanged)
                        }
                    })
                    .await
                    .map(|answer| {
                        answer.unwrap_or_else(
                            |refusal| serde_json::json!({"refused": refusal.to_string()}),
                        )
                    });
                (state.principal.to_string(), result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
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
        report.restored.sort();
        metrics::count("RolloverRestores", report.restored.len());
        info!(
            restored = report.restored.len(),
            kept_manual = report.kept_manual,
            kept_current_period = report.kept_current_period,
            failed = report.failed.len(),
            "period rollover"
        );
        if report.failed.is_empty() {
            Ok(report)
        } else {
            Err(RolloverError::Incomplete(Box::new(report)))
        }
    }
}
