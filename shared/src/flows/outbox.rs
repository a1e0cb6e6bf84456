//! Delivery that never delays enforcement and never loses a message. A notice goes out
//! right after the ledger commit; a channel that fails for a reason that may pass (Slack 429
//! or 5xx, a timeout, SNS unreachable) gets an outbox entry in the ledger, retried with
//! exponential backoff (or after Slack's `Retry-After`) by the notifier function's schedule
//! or the admin's `flush_notifications`. A refusal of the message itself (`invalid_payload`,
//! `channel_not_found`, ...) is audited once and never retried.
//!
//! Never posted twice: a sender claims an entry (a conditional write) before sending it, so
//! two drains cannot both send it; an entry still claimed after its lease may have been
//! sent by a sender that died, so it is given up and audited rather than sent again.

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use crate::app::App;
use crate::ledger::{AuditEvent, CommitError, EventKind, LedgerError, OutboxEntry, Subject};
use crate::metrics;
use crate::notify::{DeliveryFailure, Notice, Retry};

const ACTOR: &str = "seatcap:notifier";
/// Attempts before a notice is given up: with the backoff below, about eight hours.
const MAX_ATTEMPTS: u32 = 10;
/// How long a sender holds an entry it is sending.
const LEASE_SECONDS: i64 = 120;
/// Entries looked at per drain; the rest wait for the next one.
const DRAIN_LIMIT: usize = 500;
const CONCURRENCY: usize = 4;

/// The wait before attempt `attempts + 1`: one minute, doubling, at most an hour.
fn backoff(attempts: u32) -> Duration {
    Duration::minutes(1i64 << attempts.saturating_sub(1).min(6)).min(Duration::hours(1))
}

fn wait(retry: Retry, attempts: u32) -> Duration {
    match retry {
        Retry::Later { after: Some(after) } => {
            Duration::from_std(after).unwrap_or(Duration::hours(1))
        }
        _ => backoff(attempts),
    }
}

/// What a drain did: answered by `flush_notifications` and the notifier function.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    pub delivered: usize,
    /// Still waiting: not due yet, or just failed again.
    pub pending: usize,
    /// Given up for good (audited).
    pub failed: usize,
    /// What this run tried and could not send, and why (still pending or given up).
    pub errors: Vec<FlushError>,
}

/// One message a flush tried and could not send.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlushError {
    pub id: String,
    pub channel: &'static str,
    pub principal: String,
    pub error: String,
}

/// Which outbox entries a flush sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Those whose backoff has run out (the notifier's schedule).
    Due,
    /// Every one now (finance's `flush_notifications`): the backoff is for the schedule, not
    /// for someone asking to send.
    Now,
}

enum Outcome {
    Delivered,
    /// Not sent (not due, taken by another drain, or failed again: then why).
    Pending(Option<FlushError>),
    /// Given up for good, and why.
    Failed(Option<FlushError>),
}

impl App {
    /// Sends a notice to every channel. Each failure is audited; the ones worth retrying wait
    /// in the outbox. Returns how many channels failed. Only a ledger failure is an error.
    pub async fn deliver(&self, notice: &Notice) -> Result<usize, LedgerError> {
        // Boxed: a notice's send (secret read, Slack, SNS) is a deep future of its own.
        let failures = Box::pin(self.notifier.send(notice)).await;
        self.record_failures(notice, failures).await
    }

    /// [`Self::deliver`] for many notices at once (a scheduled run's page): Slack one post
    /// each, email in SNS `PublishBatch`es of ten. Returns how many deliveries failed.
    pub async fn deliver_all(&self, notices: &[Notice]) -> Result<usize, LedgerError> {
        let failures = Box::pin(self.notifier.send_all(notices)).await;
        let mut failed = 0;
        for (notice, failures) in notices.iter().zip(failures) {
            failed += self.record_failures(notice, failures).await?;
        }
        Ok(failed)
    }

    /// Audits each failed delivery of `notice`; the ones worth retrying wait in the outbox.
    async fn record_failures(
        &self,
        notice: &Notice,
        failures: Vec<DeliveryFailure>,
    ) -> Result<usize, LedgerError> {
        if failures.is_empty() {
            metrics::count("NotificationsSent", 1);
            return Ok(0);
        }
        metrics::count("NotificationFailures", failures.len());
        let now = self.now();
        let mut events = Vec::new();
        for failure in &failures {
            let outcome = match failure.retry {
                Retry::Never => "not_retried",
                Retry::Later { .. } => {
                    let entry = OutboxEntry {
                        id: uuid::Uuid::new_v4().simple().to_string(),
                        channel: failure.channel,
                        notice: notice.clone(),
                        attempts: 1,
                        next_attempt_at: now + wait(failure.retry, 1),
                        sending_until: None,
                        last_error: failure.error.clone(),
                        created_at: now,
                        version: 0,
                    };
                    self.ledger.put_outbox(&entry, None).await.map_err(ledger)?;
                    metrics::count("NotificationsQueued", 1);
                    "queued"
                }
            };
            events.push(failure_event(notice, failure, outcome, 1, now));
        }
        self.ledger.append(events, now).await?;
        Ok(failures.len())
    }

    /// Retries the outbox's entries once: the due ones, or every one ([`Flush`]).
    pub async fn flush_notifications(&self, which: Flush) -> Result<FlushReport, LedgerError> {
        let now = self.now();
        let entries = self.ledger.outbox(DRAIN_LIMIT).await?;
        let outcomes: Vec<Result<Outcome, LedgerError>> = futures::stream::iter(entries)
            .map(|entry| self.retry(entry, now, which))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut report = FlushReport::default();
        for outcome in outcomes {
            match outcome? {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Pending(error) => {
                    report.pending += 1;
                    report.errors.extend(error);
                }
                Outcome::Failed(error) => {
                    report.failed += 1;
                    report.errors.extend(error);
                }
            }
        }
        metrics::count("OutboxDelivered", report.delivered);
        metrics::count("OutboxPending", report.pending);
        metrics::count("OutboxFailed", report.failed);
        info!(?report, "outbox drained");
        Ok(report)
    }

    async fn retry(
        &self,
        entry: OutboxEntry,
        now: DateTime<Utc>,
        which: Flush,
    ) -> Result<Outcome, LedgerError> {
        if let Some(until) = entry.sending_until {
            if until > now {
                return Ok(Outcome::Pending(None));
            }
            let unknown = DeliveryFailure {
                channel: entry.channel,
                error: "a sender claimed it and stopped: it may have been sent, so it is not sent again"
                    .into(),
                retry: Retry::Never,
            };
            return self
                .give_up(&entry, &unknown, "unknown", entry.version, now)
                .await;
        }
        if which == Flush::Due && entry.next_attempt_at > now {
            return Ok(Outcome::Pending(None));
        }
        let mut claimed = entry.clone();
        claimed.sending_until = Some(now + Duration::seconds(LEASE_SECONDS));
        claimed.version += 1;
        match self.ledger.put_outbox(&claimed, Some(entry.version)).await {
            Ok(()) => {}
            // Another drain took it.
            Err(CommitError::Conflict | CommitError::Claimed | CommitError::OwnerTaken) => {
                return Ok(Outcome::Pending(None));
            }
            Err(CommitError::Ledger(e)) => return Err(e),
        }
        match self.notifier.send_to(entry.channel, &entry.notice).await {
            Ok(()) => {
                match self.ledger.delete_outbox(&entry.id, claimed.version).await {
                    Ok(())
                    | Err(CommitError::Conflict | CommitError::Claimed | CommitError::OwnerTaken) =>
                        {}
                    Err(CommitError::Ledger(e)) => return Err(e),
                }
                Ok(Outcome::Delivered)
            }
            Err(failure) => {
                let attempts = entry.attempts + 1;
                if failure.retry == Retry::Never || attempts >= MAX_ATTEMPTS {
                    return self
                        .give_up(&claimed, &failure, "given_up", claimed.version, now)
                        .await;
                }
                warn!(id = %entry.id, channel = entry.channel.as_str(), error = %failure.error, attempts, "notification retry failed");
                let mut again = claimed.clone();
                again.sending_until = None;
                again.attempts = attempts;
                again.next_attempt_at = now + wait(failure.retry, attempts);
                again.last_error = failure.error;
                again.version += 1;
                match self.ledger.put_outbox(&again, Some(claimed.version)).await {
                    Ok(())
                    | Err(CommitError::Conflict | CommitError::Claimed | CommitError::OwnerTaken) => {
                        Ok(Outcome::Pending(Some(FlushError {
                            id: entry.id.clone(),
                            channel: entry.channel.as_str(),
                            principal: entry.notice.principal.to_string(),
                            error: again.last_error.clone(),
                        })))
                    }
                    Err(CommitError::Ledger(e)) => Err(e),
                }
            }
        }
    }

    /// Removes an entry that will not be sent, and audits why (once: the delete is
    /// conditional, and only the drain that deletes it audits).
    async fn give_up(
        &self,
        entry: &OutboxEntry,
        failure: &DeliveryFailure,
        outcome: &str,
        version: u64,
        now: DateTime<Utc>,
    ) -> Result<Outcome, LedgerError> {
        match self.ledger.delete_outbox(&entry.id, version).await {
            Ok(()) => {}
            Err(CommitError::Conflict | CommitError::Claimed | CommitError::OwnerTaken) => {
                return Ok(Outcome::Pending(None));
            }
            Err(CommitError::Ledger(e)) => return Err(e),
        }
        warn!(id = %entry.id, channel = entry.channel.as_str(), error = %failure.error, outcome, "notification given up");
        let event = failure_event(&entry.notice, failure, outcome, entry.attempts, now);
        self.ledger.append(vec![event], now).await?;
        Ok(Outcome::Failed(Some(FlushError {
            id: entry.id.clone(),
            channel: entry.channel.as_str(),
            principal: entry.notice.principal.to_string(),
            error: failure.error.clone(),
        })))
    }
}

fn failure_event(
    notice: &Notice,
    failure: &DeliveryFailure,
    outcome: &str,
    attempts: u32,
    now: DateTime<Utc>,
) -> (Subject, AuditEvent) {
    warn!(principal = %notice.principal, channel = failure.channel.as_str(), error = %failure.error, outcome, "notification failed");
    let detail = json!({
        "channel": failure.channel,
        "error": failure.error,
        "kind": notice.kind,
        "outcome": outcome,
        "attempts": attempts,
    });
    (
        Subject::Principal(notice.principal.clone()),
        AuditEvent::new(now, EventKind::NotificationFailed, ACTOR, detail),
    )
}

fn ledger(e: CommitError) -> LedgerError {
    match e {
        CommitError::Ledger(e) => e,
        // Outbox ids are fresh uuids: a clash means a broken id source.
        CommitError::Conflict | CommitError::Claimed | CommitError::OwnerTaken => {
            LedgerError::Dynamo {
                operation: "PutItem",
                message: "outbox id collision".into(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_a_minute_up_to_an_hour() {
        let minutes: Vec<i64> = (1..=9).map(|a| backoff(a).num_minutes()).collect();
        assert_eq!(minutes, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn slacks_retry_after_wins_over_the_backoff() {
        let after = Retry::Later {
            after: Some(std::time::Duration::from_secs(120)),
        };
        assert_eq!(wait(after, 5), Duration::seconds(120));
        assert_eq!(wait(Retry::Later { after: None }, 3), Duration::minutes(4));
    }
}
