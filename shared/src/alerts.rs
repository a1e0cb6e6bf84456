//! The budget-alert flow: SNS delivery → parse → claim → decide → enforce → record → notify.
//!
//! IAM is changed before the ledger commit and the commit is conditional, so a conflict (a
//! concurrent alert or admin command) is detected after the fact: what this invocation
//! detached is then carried into the next attempt, which either records it or gives it back.
//! Nothing seatcap detached is ever left unrecorded on a path that returns.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{error, info, warn};

use crate::access::RemainingAccess;
use crate::alert::{AlertParseError, AlertType, BudgetAlert, parse_budget_alert};
use crate::app::App;
use crate::config::Mode;
use crate::decide::{Audience, Decision, DecisionInput, Outcome, decide};
use crate::enforce::{EnforceError, Method, Taken};
use crate::iam::IamError;
use crate::ledger::{
    AlertLookup, AuditEvent, Claim, Commit, CommitError, EventKind, LedgerError, Subject,
};
use crate::metrics;
use crate::notify::{Notice, NoticeKind};
use crate::principal::PrincipalArn;
use crate::state::{BlockCause, EffectiveCap, PrincipalState, Status};

/// The Lambda event SNS sends. Only the fields seatcap reads: deliveries must not be refused
/// over fields it does not use (`SigningCertUrl` vs `SigningCertURL`, a null `Subject`).
#[derive(Debug, Deserialize)]
pub struct SnsEvent {
    #[serde(rename = "Records")]
    pub records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
pub struct SnsRecord {
    #[serde(rename = "Sns")]
    pub sns: SnsMessage,
}

#[derive(Debug, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "Message")]
    pub message: String,
}

/// How one delivery ended, returned as the invocation's result and logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum AlertReport {
    /// Seen before (same MessageId, or same budget + period + type + threshold).
    Duplicate { message_id: String },
    /// Not a Budgets alert seatcap can read; audited, not retried.
    Rejected { message_id: String, error: String },
    /// A budget no principal owns; audited, not enforced.
    Unmanaged { message_id: String, budget: String },
    Handled {
        message_id: String,
        principal: String,
        #[serde(flatten)]
        decision: Decision,
        dry_run: bool,
        /// Detached now (enforce) or that would have been (dry-run).
        policies: Vec<String>,
        /// The seatcap deny policy that now cuts the principal (deny mode, shared roles).
        #[serde(skip_serializing_if = "Option::is_none")]
        deny_policy_arn: Option<String>,
        /// Policies that still allow Bedrock after the cut: the enforcement is incomplete.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        remaining_access: Vec<RemainingAccess>,
        notification_failures: usize,
    },
}

/// Failures that retrying can fix: the invocation fails so SNS/Lambda deliver again.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Iam(#[from] IamError),
    /// A deny list full or busy: retried with the delivery, and announced.
    #[error(transparent)]
    Enforce(EnforceError),
    #[error("gave up after {0} conflicting writes to the ledger; the next delivery will retry")]
    TooManyConflicts(usize),
}

impl From<EnforceError> for AlertError {
    fn from(e: EnforceError) -> Self {
        match e {
            EnforceError::Iam(e) => AlertError::Iam(e),
            EnforceError::Ledger(e) => AlertError::Ledger(e),
            other => AlertError::Enforce(other),
        }
    }
}

const MAX_ATTEMPTS: usize = 8;
const ACTOR: &str = "seatcap";

impl App {
    /// Handles every record of one SNS event. Records that fail for a retryable reason make
    /// the invocation fail after the others are done; duplicates of the done ones are no-ops.
    pub async fn handle_sns_event(&self, event: SnsEvent) -> Result<Vec<AlertReport>, AlertError> {
        let mut reports = Vec::with_capacity(event.records.len());
        let mut first_error = None;
        for record in event.records {
            match self
                .handle_delivery(&record.sns.message_id, &record.sns.message)
                .await
            {
                Ok(report) => reports.push(report),
                Err(e) => {
                    error!(message_id = %record.sns.message_id, error = %e, "alert failed; will be retried");
                    metrics::count("AlertFailures", 1);
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(reports), Err)
    }

    pub async fn handle_delivery(
        &self,
        message_id: &str,
        message: &str,
    ) -> Result<AlertReport, AlertError> {
        metrics::count("AlertsReceived", 1);
        let alert = match parse_budget_alert(message) {
            Ok(alert) => alert,
            Err(e) => return self.reject(message_id, message, e).await,
        };
        let mut run = AlertRun {
            app: self,
            message_id,
            alert: &alert,
            taken_from: None,
            taken_unrecorded: Taken::default(),
            enforcing: None,
        };
        let result = run.run().await;
        if let Err(e) = &result {
            run.give_back_unrecorded().await;
            let refused = match e {
                AlertError::Iam(iam) => Some(format!(
                    "IAM refused to {} {} for {}: {}",
                    iam.operation.to_lowercase(),
                    iam.policy,
                    iam.principal,
                    iam.brief
                )),
                AlertError::Enforce(e) => Some(e.to_string()),
                _ => None,
            };
            if let (Some(refused), Some(notice)) = (refused, run.enforcing.take()) {
                self.announce_enforcement_failure(&alert, notice, &refused)
                    .await;
            }
        }
        result
    }

    /// The cap is reached and IAM refused to cut access. SNS and Lambda deliver the alert
    /// again, and reconcile catches what they do not, but people must hear of it now, and
    /// once: a claim on the alert's key keeps retries from announcing it again. Best effort:
    /// the invocation fails anyway, so its own errors are only logged.
    async fn announce_enforcement_failure(
        &self,
        alert: &BudgetAlert,
        mut notice: Notice,
        refused: &str,
    ) {
        let now = self.now();
        notice.next_step = format!(
            "{refused}. seatcap retries with the alert's redelivery and reconcile checks \
             hourly; check seatcap's IAM permissions for this principal now."
        );
        let event = AuditEvent::new(
            now,
            EventKind::EnforcementFailed,
            ACTOR,
            json!({"budget": alert.budget_name, "period": alert.period_key(), "error": refused}),
        );
        let commit = Commit {
            claims: vec![Claim::Notice(format!(
                "{}#enforcement_failed",
                alert.natural_key()
            ))],
            events: vec![(Subject::Principal(notice.principal.clone()), event)],
            ..Commit::default()
        };
        match self.ledger.commit(commit, now).await {
            Ok(()) => {
                if let Err(e) = self.deliver(&notice).await {
                    error!(error = %e, "could not record an undelivered enforcement-failure notice");
                }
            }
            Err(CommitError::Conflict) => {
                info!(budget = %alert.budget_name, "enforcement failure already announced");
            }
            Err(CommitError::Ledger(e)) => {
                error!(error = %e, "could not record the enforcement failure");
            }
        }
    }

    async fn reject(
        &self,
        message_id: &str,
        message: &str,
        e: AlertParseError,
    ) -> Result<AlertReport, AlertError> {
        warn!(message_id, error = %e, "unparsable alert; recorded, not retried");
        metrics::count("AlertsRejected", 1);
        let now = self.now();
        let excerpt: String = message.chars().take(4000).collect();
        let event = AuditEvent::new(
            now,
            EventKind::AlertRejected,
            ACTOR,
            json!({"message_id": message_id, "error": e.to_string(), "message": excerpt}),
        );
        let commit = Commit {
            claims: vec![Claim::Message(message_id.to_owned())],
            events: vec![(Subject::UnownedAlerts, event)],
            ..Commit::default()
        };
        match self.ledger.commit(commit, now).await {
            Ok(()) => Ok(AlertReport::Rejected {
                message_id: message_id.to_owned(),
                error: e.to_string(),
            }),
            Err(CommitError::Conflict) => Ok(AlertReport::Duplicate {
                message_id: message_id.to_owned(),
            }),
            Err(CommitError::Ledger(e)) => Err(e.into()),
        }
    }
}

/// One delivery's attempts, with what it has taken but not yet recorded.
struct AlertRun<'a> {
    app: &'a App,
    message_id: &'a str,
    alert: &'a BudgetAlert,
    taken_from: Option<PrincipalArn>,
    taken_unrecorded: Taken,
    /// Set while cutting access: what to announce if IAM refuses.
    enforcing: Option<Notice>,
}

impl AlertRun<'_> {
    async fn run(&mut self) -> Result<AlertReport, AlertError> {
        let (app, alert) = (self.app, self.alert);
        let natural_key = alert.natural_key();
        for _ in 0..MAX_ATTEMPTS {
            let lookup = app
                .ledger
                .lookup_alert(self.message_id, &natural_key, &alert.budget_name)
                .await?;
            let principal = match lookup {
                AlertLookup::Duplicate => {
                    self.settle_unrecorded_after_duplicate().await?;
                    info!(message_id = self.message_id, budget = %alert.budget_name, "duplicate alert; nothing to do");
                    metrics::count("AlertsDuplicate", 1);
                    return Ok(AlertReport::Duplicate {
                        message_id: self.message_id.to_owned(),
                    });
                }
                AlertLookup::Unowned => return self.unmanaged(&natural_key).await,
                AlertLookup::Owner(principal) => principal,
            };
            let Some(state) = app.ledger.load(&principal).await? else {
                // An owner item without a state item: treat the budget as unmanaged, loudly.
                error!(budget = %alert.budget_name, %principal, "budget owner has no state in the ledger");
                return self.unmanaged(&natural_key).await;
            };
            if let Some(report) = self.attempt(&principal, &state, &natural_key).await? {
                return Ok(report);
            }
        }
        Err(AlertError::TooManyConflicts(MAX_ATTEMPTS))
    }

    /// One read-decide-act-commit pass. `None`: the commit conflicted; read and go again.
    async fn attempt(
        &mut self,
        principal: &PrincipalArn,
        state: &PrincipalState,
        natural_key: &str,
    ) -> Result<Option<AlertReport>, AlertError> {
        let (app, alert) = (self.app, self.alert);
        let now = app.now();
        let decision = decide(DecisionInput {
            alert,
            state,
            protected_by_config: app.config.protected_principals.contains(principal),
            ladder: &app.config.ladder,
            can_downgrade: app.can_downgrade(principal),
            now,
        });
        let dry_run = app.config.mode == Mode::DryRun;
        let enforcing = decision.outcome == Outcome::Enforce && !dry_run;
        let downgrading = decision.outcome == Outcome::Downgrade && !dry_run;

        let taken = if enforcing {
            self.enforcing = Some(self.enforcement_failed(state, &decision));
            self.taken_from = Some(principal.clone());
            app.cut(principal, &mut self.taken_unrecorded).await?;
            if self.taken_unrecorded.is_empty() {
                warn!(%principal, "enforcing, but none of the managed policies was attached");
            }
            self.taken_unrecorded.clone()
        } else if downgrading {
            // A superseded attempt may have cut everything: give that back first.
            self.give_back_unrecorded_or_fail().await?;
            self.enforcing = Some(self.enforcement_failed(state, &decision));
            self.taken_from = Some(principal.clone());
            app.take_premium(principal, &mut self.taken_unrecorded)
                .await?;
            self.taken_unrecorded.clone()
        } else {
            // A previous attempt cut access, but the fresh read says not to enforce any more
            // (a cap was raised meanwhile): give it back before recording the new decision.
            self.give_back_unrecorded_or_fail().await?;
            let detaching = app.method_for(principal) == Method::Detach;
            if decision.outcome == Outcome::Enforce && detaching {
                let attached = app.iam.attached_policies(principal).await?;
                Taken {
                    detached_policy_arns: attached
                        .into_iter()
                        .filter(|p| app.config.is_managed_policy(p))
                        .collect(),
                    deny_policy_arn: None,
                }
            } else {
                Taken::default()
            }
        };
        let policies = taken.detached_policy_arns.clone();

        let next = state.next(now, |s| {
            if alert.alert_type == AlertType::Actual {
                s.last_actual_usd = Some(alert.amount);
            }
            if enforcing || downgrading {
                s.status = Status::Blocked;
                s.block_cause = Some(if enforcing {
                    BlockCause::Cap
                } else {
                    BlockCause::Downgrade
                });
                s.blocked_period = Some(alert.period_key());
                // After a downgrade, the premium policies are on record already.
                taken.record_in(s);
            }
        });
        let detail = json!({
            "message_id": self.message_id,
            "budget": alert.budget_name,
            "period": alert.period_key(),
            "alert_type": alert.alert_type,
            "threshold_usd": alert.threshold,
            "amount_usd": alert.amount,
            "effective_cap_usd": cap_json(decision.effective_cap),
            "decision": decision,
            "dry_run": dry_run && decision.outcome == Outcome::Enforce,
            "policies": policies,
            "deny_policy_arn": taken.deny_policy_arn,
        });
        let kind = if enforcing {
            EventKind::Enforced
        } else if downgrading {
            EventKind::Downgraded
        } else {
            EventKind::Alert
        };
        let commit = Commit {
            claims: vec![
                Claim::Message(self.message_id.to_owned()),
                Claim::Alert(natural_key.to_owned()),
            ],
            state: Some((next.clone(), Some(state.version))),
            events: vec![(
                Subject::Principal(principal.clone()),
                AuditEvent::new(now, kind, ACTOR, detail),
            )],
            ..Commit::default()
        };
        match app.ledger.commit(commit, now).await {
            Ok(()) => self.taken_unrecorded = Taken::default(),
            Err(CommitError::Conflict) => {
                info!(%principal, "ledger changed while handling the alert; reading again");
                return Ok(None);
            }
            Err(CommitError::Ledger(e)) => return Err(e.into()),
        }

        info!(
            %principal, budget = %alert.budget_name, outcome = ?decision.outcome, dry_run, ?policies,
            "alert handled"
        );
        match decision.outcome {
            Outcome::Enforce if enforcing => metrics::count("Enforcements", 1),
            Outcome::Enforce => metrics::count("DryRunEnforcements", 1),
            Outcome::Downgrade if downgrading => metrics::count("Downgrades", 1),
            _ => {}
        }
        let remaining = if enforcing {
            app.remaining_after_cut(principal).await
        } else {
            Vec::new()
        };
        if !remaining.is_empty() {
            app.record_incomplete(principal, &remaining, ACTOR, now)
                .await?;
        }
        let mut notice = self.notice(&next, &decision, dry_run);
        if let Some(notice) = notice.as_mut().filter(|_| !remaining.is_empty()) {
            let (kind, audience, headline, next_step) = crate::announce::incomplete(&remaining);
            (
                notice.kind,
                notice.audience,
                notice.headline,
                notice.next_step,
            ) = (kind, audience, headline, next_step);
        }
        let failures = match notice {
            Some(notice) => app.deliver(&notice).await?,
            None => 0,
        };
        Ok(Some(AlertReport::Handled {
            message_id: self.message_id.to_owned(),
            principal: principal.to_string(),
            decision,
            dry_run,
            policies,
            deny_policy_arn: taken.deny_policy_arn,
            remaining_access: remaining,
            notification_failures: failures,
        }))
    }

    /// Another delivery of the same alert committed first. If it blocked the principal,
    /// what this one detached joins the record; otherwise it goes back.
    async fn settle_unrecorded_after_duplicate(&mut self) -> Result<(), AlertError> {
        let Some(principal) = self
            .taken_from
            .clone()
            .filter(|_| !self.taken_unrecorded.is_empty())
        else {
            return Ok(());
        };
        for _ in 0..MAX_ATTEMPTS {
            let now = self.app.now();
            let Some(state) = self.app.ledger.load(&principal).await? else {
                break;
            };
            if state.status != Status::Blocked {
                break;
            }
            let next = state.next(now, |s| self.taken_unrecorded.record_in(s));
            let event = AuditEvent::new(
                now,
                EventKind::Enforced,
                ACTOR,
                json!({"message_id": self.message_id, "taken": self.taken_unrecorded, "note": "taken by a concurrent delivery of the same alert"}),
            );
            let commit = Commit {
                state: Some((next, Some(state.version))),
                events: vec![(Subject::Principal(principal.clone()), event)],
                ..Commit::default()
            };
            match self.app.ledger.commit(commit, now).await {
                Ok(()) => {
                    self.taken_unrecorded = Taken::default();
                    return Ok(());
                }
                Err(CommitError::Conflict) => continue,
                Err(CommitError::Ledger(e)) => return Err(e.into()),
            }
        }
        self.give_back_unrecorded_or_fail().await
    }

    async fn give_back_unrecorded_or_fail(&mut self) -> Result<(), AlertError> {
        let Some(principal) = &self.taken_from else {
            return Ok(());
        };
        if !self.taken_unrecorded.is_empty() {
            self.app
                .give_back(principal, &self.taken_unrecorded)
                .await?;
            info!(%principal, taken = ?self.taken_unrecorded, "gave back what a superseded attempt took");
            self.taken_unrecorded = Taken::default();
        }
        Ok(())
    }

    /// Last resort on an error path: try to give back what was detached but not recorded,
    /// so a failed invocation leaves IAM as the ledger says it is.
    async fn give_back_unrecorded(&mut self) {
        if let Err(e) = self.give_back_unrecorded_or_fail().await {
            error!(
                error = %e, taken = ?self.taken_unrecorded, budget = %self.alert.budget_name,
                "could not re-attach policies after a failed enforcement; reconcile must repair this"
            );
        }
    }

    async fn unmanaged(&self, natural_key: &str) -> Result<AlertReport, AlertError> {
        let (app, alert) = (self.app, self.alert);
        warn!(budget = %alert.budget_name, "alert for a budget seatcap does not manage; recorded, not enforced");
        metrics::count("AlertsUnmanaged", 1);
        let now = app.now();
        let event = AuditEvent::new(
            now,
            EventKind::AlertUnmanaged,
            ACTOR,
            json!({"message_id": self.message_id, "budget": alert.budget_name, "alert": alert}),
        );
        let commit = Commit {
            claims: vec![
                Claim::Message(self.message_id.to_owned()),
                Claim::Alert(natural_key.to_owned()),
            ],
            events: vec![(Subject::UnownedAlerts, event)],
            ..Commit::default()
        };
        match app.ledger.commit(commit, now).await {
            Ok(()) => Ok(AlertReport::Unmanaged {
                message_id: self.message_id.to_owned(),
                budget: alert.budget_name.clone(),
            }),
            Err(CommitError::Conflict) => Ok(AlertReport::Duplicate {
                message_id: self.message_id.to_owned(),
            }),
            Err(CommitError::Ledger(e)) => Err(e.into()),
        }
    }

    fn enforcement_failed(&self, state: &PrincipalState, decision: &Decision) -> Notice {
        self.notice_about(
            state,
            decision,
            (NoticeKind::EnforcementFailed, Audience::Security),
            "Cap reached, but Bedrock access could NOT be cut off".to_owned(),
            String::new(),
        )
    }

    /// A notice about this alert for `state`'s principal.
    fn notice_about(
        &self,
        state: &PrincipalState,
        decision: &Decision,
        (kind, audience): (NoticeKind, Audience),
        headline: String,
        next_step: String,
    ) -> Notice {
        let alert = self.alert;
        Notice {
            kind,
            audience,
            principal: state.principal.clone(),
            budget: alert.budget_name.clone(),
            spend: Some(alert.amount),
            cap: match decision.effective_cap {
                EffectiveCap::Limited(cap) => Some(cap),
                EffectiveCap::Exempt => None,
            },
            period: Some(alert.period_key()),
            team: state.team.clone(),
            headline,
            next_step,
        }
    }

    fn notice(&self, state: &PrincipalState, decision: &Decision, dry_run: bool) -> Option<Notice> {
        let alert = self.alert;
        let contact = &self.app.config.finance_contact;
        let audience = decision.outcome.audience()?;
        let (kind, headline, next_step) = match decision.outcome {
            Outcome::Warn { forecast: true, .. } => (
                NoticeKind::Forecast,
                format!("Forecast: {} is on course to pass {}", alert.budget_name, alert.threshold),
                format!("Nothing is blocked: this is a forecast. If you need more, ask {contact} before the cap is reached."),
            ),
            Outcome::Warn { .. } => (
                NoticeKind::Warning,
                format!("{}% of the Bedrock budget used", alert.threshold_percent()),
                format!("Access continues until the cap. If you need more, ask {contact} to raise the cap or grant an override."),
            ),
            Outcome::Enforce if dry_run => (
                NoticeKind::WouldCutOff,
                "Dry run: Bedrock access would have been cut off".to_owned(),
                "seatcap is in dry-run mode and changed nothing. Switch SEATCAP_MODE to enforce when ready.".to_owned(),
            ),
            Outcome::Enforce => (
                NoticeKind::CutOff,
                "Bedrock access cut off: monthly cap reached".to_owned(),
                format!(
                    "Access returns when the cap is raised, an override is granted, or the next budget period starts. Ask {contact}."
                ),
            ),
            Outcome::Downgrade if dry_run => (
                NoticeKind::WouldDowngrade,
                format!("Dry run: premium models would have been paused at {}%", alert.threshold_percent()),
                "seatcap is in dry-run mode and changed nothing. Switch SEATCAP_MODE to enforce when ready.".to_owned(),
            ),
            Outcome::Downgrade => (
                NoticeKind::Downgraded,
                format!("Premium models paused at {}% of the Bedrock budget", alert.threshold_percent()),
                format!(
                    "Cheaper models still work until the cap. Premium ones return with the next budget period, or ask {contact} to raise the cap."
                ),
            ),
            Outcome::ProtectedOverCap => (
                NoticeKind::ProtectedOverCap,
                "Over the cap, not cut off: protected principal".to_owned(),
                "This principal is protected (break-glass). Review the spend with its owner.".to_owned(),
            ),
            Outcome::AlreadyBlocked | Outcome::BelowLadder => return None,
        };
        Some(self.notice_about(state, decision, (kind, audience), headline, next_step))
    }
}

pub(crate) fn cap_json(cap: EffectiveCap) -> serde_json::Value {
    match cap {
        EffectiveCap::Limited(usd) => json!(usd),
        EffectiveCap::Exempt => json!("exempt"),
    }
}
