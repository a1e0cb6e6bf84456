//! Reports written once, under a claim, that change no principal's state: an unknown
//! model's first price, a month's metered drift. Whichever run claims first writes; the
//! others learn it was done.

use chrono::{DateTime, Utc};

use super::{Commit, CommitError, Ledger, LedgerError};

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
}
