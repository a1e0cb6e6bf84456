//! Calls from a session that no principal matches, on a role whose people the ledger caps
//! one by one: someone else on the team, or a capped person calling under a session name
//! of their own choosing. Charged to nobody, so finance must see them: reported once per
//! session and month (`unattributed_session` in seatcap's own audit, the
//! `UnattributedSessions` metric, the batch's report).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tracing::warn;

use crate::app::App;
use crate::ledger::{AuditEvent, EventKind, LedgerError};
use crate::principal::{RoleSession, role_session};

/// How long "the ledger caps people on this role" is taken as read: a first cap on a role
/// is seen by metering at most this much later.
const FRESH_FOR: Duration = Duration::minutes(5);

/// What a process remembers: per role (`partition:account:role`), whether people on it are
/// capped and when that was read; and the sessions reported already, by month.
#[derive(Default)]
pub struct Unattributed {
    roles: std::sync::Mutex<HashMap<String, (DateTime<Utc>, bool)>>,
    pub(crate) reported: std::sync::Mutex<std::collections::BTreeSet<(String, String)>>,
}

impl App {
    /// Of `identities` (charged to nobody by this batch), the sessions reported now as
    /// unattributed for `month`, the first time each is.
    pub(crate) async fn report_unattributed<'a>(
        &self,
        identities: impl Iterator<Item = &'a String>,
        month: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        let mut reported = Vec::new();
        for identity in identities {
            let Some(RoleSession {
                partition,
                account,
                role,
                ..
            }) = role_session(identity)
            else {
                continue;
            };
            let key = (identity.clone(), month.to_owned());
            let memory = &self.metering.unattributed;
            if memory.reported.lock().is_ok_and(|r| r.contains(&key)) {
                continue;
            }
            if !self.people_capped_on(partition, account, role, now).await? {
                continue;
            }
            let event = AuditEvent::new(
                now,
                EventKind::UnattributedSession,
                "metering",
                serde_json::json!({"session": identity, "role": role, "period": month,
                    "why": "no principal matches this session of a role whose people have caps of their own: its calls are charged to nobody"}),
            );
            let claim = format!("unattributed#{identity}#{month}");
            if self
                .ledger
                .report_once(
                    &memory.reported,
                    key,
                    claim,
                    event,
                    "an unattributed session's first call",
                )
                .await?
            {
                warn!(session = %identity, role, period = month, "calls of a session no principal matches, on a role with capped people");
                crate::metrics::count("UnattributedSessions", 1);
                reported.push(identity.clone());
            }
        }
        Ok(reported)
    }

    async fn people_capped_on(
        &self,
        partition: &str,
        account: &str,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, LedgerError> {
        let key = format!("{partition}:{account}:{role}");
        let memory = &self.metering.unattributed;
        let cached = memory.roles.lock().ok().and_then(|roles| {
            roles
                .get(&key)
                .filter(|(at, _)| *at <= now && now.signed_duration_since(*at) < FRESH_FOR)
                .map(|(_, capped)| *capped)
        });
        if let Some(capped) = cached {
            return Ok(capped);
        }
        let capped = self
            .ledger
            .has_people_on_role(partition, account, role)
            .await?;
        if let Ok(mut roles) = memory.roles.lock() {
            roles.insert(key, (now, capped));
        }
        Ok(capped)
    }
}
