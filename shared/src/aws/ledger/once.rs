//! Reports written once, under a claim, that change no principal's state: an unknown
//! model's first price, a month's metered drift. Whichever run claims first writes; the
//! others learn it was done.

use std::collections::BTreeSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::{Claim, Commit, CommitError, Ledger, LedgerError, Subject};
use crate::audit::AuditEvent;

impl Ledger {
    /// Writes `report` (claims and audit events, no state): `true` written now, `false`
    /// written before. Such a write has no version or owner to conflict with, so a conflict
    /// or a taken owner says the report was built wrong: an error naming `what`.
    pub async fn record_once(
        &self,
        report: Commit,
        now: DateTime<Utc>,
        what: &str,
    ) -> Result<bool, LedgerError> {
        match self.commit(report, now).await {
            Ok(()) => Ok(true),
            Err(CommitError::Claimed) => Ok(false),
            Err(CommitError::Ledger(e)) => Err(e),
            Err(e @ (CommitError::Conflict | CommitError::OwnerTaken)) => {
                Err(LedgerError::Dynamo {
                    operation: "TransactWriteItems",
                    message: format!("recording {what}: {e}"),
                })
            }
        }
    }

    /// Files `event` under seatcap's own subject once ever (claimed by `claim`, so no other
    /// batch or process files it again), and remembers `key` in this process's `memo` so it
    /// does not ask again. `true`: this call filed it.
    pub async fn report_once(
        &self,
        memo: &Mutex<BTreeSet<(String, String)>>,
        key: (String, String),
        claim: String,
        event: AuditEvent,
        what: &str,
    ) -> Result<bool, LedgerError> {
        let now = event.at;
        let commit = Commit {
            claims: vec![Claim::Notice(claim)],
            events: vec![(Subject::System, event)],
            ..Commit::default()
        };
        let filed = self.record_once(commit, now, what).await?;
        if let Ok(mut reported) = memo.lock() {
            reported.insert(key);
        }
        Ok(filed)
    }
}
