//! Keeping a principal's budget re-armed within a period: after a change commits, the
//! budget's seatcap notifications are made what the state records ([`crate::rearm`] decides
//! which). Best effort: the change holds either way. A run that finds a newer version of the
//! state leaves the work to that version's writer; reconcile adds any recorded alarm the
//! budget lacks (a writer that died after its commit, or lost that race).

use tracing::{info, warn};

use crate::app::App;
use crate::money::Usd;
use crate::state::PrincipalState;

impl App {
    /// The alarms `next` records after a change from `before`: as the rule says, when
    /// seatcap keeps budgets (`SEATCAP_ALERT_TOPIC_ARN`); otherwise untouched.
    pub(crate) fn arm(
        &self,
        before: Option<&PrincipalState>,
        next: &mut PrincipalState,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if self.config.budget_sync.is_none() {
            return;
        }
        if let Some(alarms) = crate::rearm::alarms_after(before, next, &self.config.ladder, now) {
            next.budget_alarms_usd = alarms;
        }
    }

    /// After `state` committed with alarms that differ from `owned_before` (what the state
    /// before it recorded): add the missing ones, remove those seatcap owned and no longer
    /// wants. Nothing else on the budget is touched.
    pub(crate) async fn sync_alarms(&self, owned_before: &[Usd], state: &PrincipalState) {
        if owned_before == state.budget_alarms_usd.as_slice() {
            return;
        }
        match self.ledger.load(&state.principal).await {
            Ok(Some(latest)) if latest.version == state.version => {}
            Ok(_) => {
                info!(principal = %state.principal, "a newer change re-arms the budget");
                return;
            }
            Err(e) => {
                warn!(principal = %state.principal, error = %e, "could not read the state to re-arm its budget");
                crate::metrics::count("BudgetAlarmFailures", 1);
                return;
            }
        }
        if let Err(e) = self.put_alarms(owned_before, state).await {
            warn!(principal = %state.principal, error = %e, "could not re-arm the budget; reconcile retries");
            crate::metrics::count("BudgetAlarmFailures", 1);
        }
    }

    /// Makes the budget's seatcap alarms `state.budget_alarms_usd`, removing only those in
    /// `owned`. Reconcile calls it with the state's own alarms to add what is missing.
    pub(crate) async fn put_alarms(
        &self,
        owned: &[Usd],
        state: &PrincipalState,
    ) -> Result<(), crate::budgets::BudgetsError> {
        let Some(sync) = &self.config.budget_sync else {
            return Ok(());
        };
        let (account, budget) = (state.principal.account_id(), state.budget.as_str());
        let present = self.budgets.alarms(account, budget).await?;
        let wanted = &state.budget_alarms_usd;
        let missing: Vec<Usd> = wanted
            .iter()
            .filter(|t| !present.contains(t))
            .copied()
            .collect();
        let unwanted: Vec<Usd> = owned
            .iter()
            .filter(|t| !wanted.contains(t) && present.contains(t))
            .copied()
            .collect();
        for threshold in &missing {
            self.budgets
                .add_alarm(account, budget, *threshold, &sync.alert_topic_arn)
                .await?;
        }
        for threshold in &unwanted {
            self.budgets
                .remove_alarm(account, budget, *threshold)
                .await?;
        }
        if !(missing.is_empty() && unwanted.is_empty()) {
            info!(principal = %state.principal, budget, added = ?missing, removed = ?unwanted, "budget re-armed");
        }
        Ok(())
    }
}
