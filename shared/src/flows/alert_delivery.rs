//! The budget-alert flow: SNS delivery → parse → check the date → decide → commit engine
//! (claims, write-ahead intent, IAM, confirm) → notify.
//!
//! An alert is decided against the period its spend belongs to: one about an ended period
//! (late) is recorded and audited, never acted on; one dated ahead of the clock is refused
//! before it can claim anything.

use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::{error, info, warn};

use chrono::{DateTime, Utc};

use crate::access::RemainingAccess;
use crate::alert::{AlertType, BudgetAlert, parse_budget_alert};
use crate::app::App;
use crate::commit::{Change, Committed, Decided, EngineError, Outcome as Written};
use crate::config::Mode;
use crate::decide::{Audience, Decision, DecisionInput, Outcome, decide};
use crate::enforce::{EnforceError, Method};
use crate::iam::IamError;
use crate::intent::{IamStep, PlannedStep, Scope};
use crate::ledger::{
    AlertLookup, AuditEvent, Claim, Commit, CommitError, EventKind, LedgerError, Subject,
};
use crate::metrics;
use crate::notify::{Notice, NoticeKind};
use crate::principal::PrincipalArn;
use crate::sns::{Inauthentic, Signed};
use crate::sns_signature::Delivery;
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

/// The fields SNS signs are read too; each is optional here, so a delivery that lacks one is
/// refused by the signature check with a reason, not by the event's parser.
#[derive(Debug, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "MessageId")]
    pub message_id: String,
    #[serde(rename = "Message")]
    pub message: String,
    #[serde(rename = "Type", default)]
    pub kind: Option<String>,
    #[serde(rename = "TopicArn", default)]
    pub topic_arn: Option<String>,
    #[serde(rename = "Subject", default)]
    pub subject: Option<String>,
    #[serde(rename = "Timestamp", default)]
    pub timestamp: Option<String>,
    #[serde(rename = "SignatureVersion", default)]
    pub signature_version: Option<String>,
    #[serde(rename = "Signature", default)]
    pub signature: Option<String>,
    /// Lambda spells it `SigningCertUrl`; raw SNS over HTTP or SQS, `SigningCertURL`.
    #[serde(rename = "SigningCertUrl", alias = "SigningCertURL", default)]
    pub signing_cert_url: Option<String>,
}

impl SnsMessage {
    fn delivery(&self) -> Delivery<'_> {
        Delivery {
            signed: Signed {
                kind: self.kind.as_deref().unwrap_or_default(),
                message_id: &self.message_id,
                message: &self.message,
                subject: self.subject.as_deref(),
                timestamp: self.timestamp.as_deref().unwrap_or_default(),
                topic_arn: self.topic_arn.as_deref().unwrap_or_default(),
            },
            signature_version: self.signature_version.as_deref(),
            signature: self.signature.as_deref(),
            signing_cert_url: self.signing_cert_url.as_deref(),
        }
    }
}

/// How one delivery ended, returned as the invocation's result and logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum AlertReport {
    /// Seen before (same MessageId, or same budget + period + type + threshold).
    Duplicate { message_id: String },
    /// Not a Budgets alert seatcap can read, or dated ahead of its clock; audited, not
    /// retried, and no claim on the alert's natural key is written.
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
    #[error(transparent)]
    Engine(EngineError),
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
const ACTOR: &str = crate::audit::Actor::Alerts.name();

/// An alert seen before (its MessageId, or its natural key): nothing to do.
fn duplicate_alert(message_id: &str, alert: &BudgetAlert) -> AlertReport {
    info!(message_id, budget = %alert.budget_name, "duplicate alert; nothing to do");
    metrics::count("AlertsDuplicate", 1);
    AlertReport::Duplicate {
        message_id: message_id.to_owned(),
    }
}

impl App {
    /// Handles every record of one SNS event. Records that fail for a retryable reason make
    /// the invocation fail after the others are done; duplicates of the done ones are no-ops.
    pub async fn handle_sns_event(&self, event: SnsEvent) -> Result<Vec<AlertReport>, AlertError> {
        let mut reports = Vec::with_capacity(event.records.len());
        let mut first_error = None;
        for record in event.records {
            let sns = &record.sns;
            let checked = match self.sns.check(&sns.delivery()).await {
                Ok(()) => Box::pin(self.handle_delivery(&sns.message_id, &sns.message)).await,
                Err(why) => self.reject_inauthentic(sns, &why).await,
            };
            match checked {
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
            Err(e) => return self.reject(message_id, message, e.to_string()).await,
        };
        // Before any claim: a forged or skewed date must not take the natural key of an
        // alert that is still to come.
        let now = self.now();
        if alert.is_dated_ahead_of(now) {
            let why = format!(
                "the alert is dated {}, more than {} day ahead of seatcap's clock ({})",
                alert.notification_date,
                crate::alert::LARGEST_CLOCK_SKEW_DAYS,
                now.date_naive()
            );
            return self.reject(message_id, message, why).await;
        }
        if let Some(why) = alert.impossible_for_budgets() {
            return self
                .reject(
                    message_id,
                    message,
                    format!("not an alert Budgets sends: {why}"),
                )
                .await;
        }
        let natural_key = alert.natural_key();
        let duplicate = || duplicate_alert(message_id, &alert);
        let lookup = self
            .ledger
            .lookup_alert(message_id, &natural_key, &alert.budget_name)
            .await?;
        let principal = match lookup {
            AlertLookup::Duplicate => return Ok(duplicate()),
            AlertLookup::Unowned => return self.unmanaged(message_id, &alert, &natural_key).await,
            AlertLookup::Owner(principal) => principal,
        };
        self.act_on_alert(message_id, &alert, principal, Source::Budgets)
            .await
    }

    /// Acts on an alert about `principal` through the commit engine: decide, claim (its
    /// message id and natural key), enforce, record, notify. Budgets' alerts come here after
    /// their lookup; metering's when a metered figure reaches a rung.
    pub(crate) async fn act_on_alert(
        &self,
        message_id: &str,
        alert: &BudgetAlert,
        principal: PrincipalArn,
        source: Source,
    ) -> Result<AlertReport, AlertError> {
        let natural_key = alert.natural_key();
        let duplicate = || duplicate_alert(message_id, alert);
        let run = AlertRun {
            app: self,
            message_id,
            alert,
            natural_key: &natural_key,
            dry_run: self.config.mode == Mode::DryRun,
            source,
        };
        // The last state and decision, to tell people if IAM refuses the cut.
        let mut last: Option<(PrincipalState, Decision)> = None;
        // Boxed: the engine's future is deep, and the entry point's layout has a depth limit.
        let outcome = Box::pin(self.commit_change(&principal, ACTOR, |state, now| {
            let decided = run.decide(state, now);
            if let (Some(state), Decided::Change(change)) = (state, &decided) {
                last = Some((state.clone(), change.report));
            }
            decided
        }))
        .await;
        match outcome {
            Ok(Written::Committed(committed)) => run.handled(*committed).await,
            Ok(Written::Claimed) => Ok(duplicate()),
            Ok(Written::Kept(Kept::NoState)) => {
                // An owner item without a state item: treat the budget as unmanaged, loudly.
                error!(budget = %alert.budget_name, %principal, "budget owner has no state in the ledger");
                self.unmanaged(message_id, alert, &natural_key).await
            }
            Ok(Written::OwnerTaken) => Err(AlertError::Engine(EngineError::Superseded(
                principal.to_string(),
            ))),
            Err(EngineError::Enforce(e)) => {
                let refused = match &e {
                    EnforceError::Iam(iam) => format!(
                        "IAM refused to {} {} for {}: {}",
                        iam.operation.to_lowercase(),
                        iam.policy,
                        iam.principal,
                        iam.brief
                    ),
                    other => other.to_string(),
                };
                if let Some((state, decision)) = &last {
                    let notice = run.enforcement_failed(state, decision);
                    self.announce_enforcement_failure(alert, notice, &refused)
                        .await;
                }
                Err(e.into())
            }
            Err(e) => Err(AlertError::Engine(e)),
        }
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
            Err(CommitError::Claimed | CommitError::Conflict | CommitError::OwnerTaken) => {
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
        why: String,
    ) -> Result<AlertReport, AlertError> {
        warn!(message_id, error = %why, "alert refused; recorded, not retried");
        metrics::count("AlertsRejected", 1);
        let now = self.now();
        let excerpt: String = message.chars().take(4000).collect();
        let event = AuditEvent::new(
            now,
            EventKind::AlertRejected,
            ACTOR,
            json!({"message_id": message_id, "error": why, "message": excerpt}),
        );
        let commit = Commit {
            claims: vec![Claim::Message(message_id.to_owned())],
            events: vec![(Subject::UnownedAlerts, event)],
            ..Commit::default()
        };
        match self.ledger.commit(commit, now).await {
            Ok(()) => Ok(AlertReport::Rejected {
                message_id: message_id.to_owned(),
                error: why,
            }),
            Err(CommitError::Claimed | CommitError::Conflict | CommitError::OwnerTaken) => {
                Ok(AlertReport::Duplicate {
                    message_id: message_id.to_owned(),
                })
            }
            Err(CommitError::Ledger(e)) => Err(e.into()),
        }
    }

    /// A delivery that is not SNS's, or not from the alert topic: audited with the reason,
    /// and no claim of any kind, so it can take nothing from the real alert. Not retried.
    async fn reject_inauthentic(
        &self,
        sns: &SnsMessage,
        why: &Inauthentic,
    ) -> Result<AlertReport, AlertError> {
        warn!(message_id = %sns.message_id, topic = ?sns.topic_arn, error = %why, "delivery is not an authentic SNS alert; recorded, not acted on");
        metrics::count("AlertsInauthentic", 1);
        let now = self.now();
        let excerpt: String = sns.message.chars().take(4000).collect();
        let event = AuditEvent::new(
            now,
            EventKind::AlertRejected,
            ACTOR,
            json!({"message_id": sns.message_id, "topic_arn": sns.topic_arn,
                "error": why.to_string(), "authentic": false, "message": excerpt}),
        );
        let commit = Commit {
            events: vec![(Subject::UnownedAlerts, event)],
            ..Commit::default()
        };
        match self.ledger.commit(commit, now).await {
            Ok(()) => Ok(AlertReport::Rejected {
                message_id: sns.message_id.clone(),
                error: why.to_string(),
            }),
            Err(CommitError::Ledger(e)) => Err(e.into()),
            // An audit event alone has no condition to fail.
            Err(other) => Err(AlertError::Ledger(LedgerError::Dynamo {
                operation: "PutItem",
                message: other.to_string(),
            })),
        }
    }

    async fn unmanaged(
        &self,
        message_id: &str,
        alert: &BudgetAlert,
        natural_key: &str,
    ) -> Result<AlertReport, AlertError> {
        let app = self;
        warn!(budget = %alert.budget_name, "alert for a budget seatcap does not manage; recorded, not enforced");
        metrics::count("AlertsUnmanaged", 1);
        let now = app.now();
        let event = AuditEvent::new(
            now,
            EventKind::AlertUnmanaged,
            ACTOR,
            json!({"message_id": message_id, "budget": alert.budget_name, "alert": alert}),
        );
        let commit = Commit {
            claims: vec![
                Claim::Message(message_id.to_owned()),
                Claim::Alert(natural_key.to_owned()),
            ],
            events: vec![(Subject::UnownedAlerts, event)],
            ..Commit::default()
        };
        match app.ledger.commit(commit, now).await {
            Ok(()) => Ok(AlertReport::Unmanaged {
                message_id: message_id.to_owned(),
                budget: alert.budget_name.clone(),
            }),
            Err(CommitError::Claimed | CommitError::Conflict | CommitError::OwnerTaken) => {
                Ok(AlertReport::Duplicate {
                    message_id: message_id.to_owned(),
                })
            }
            Err(CommitError::Ledger(e)) => Err(e.into()),
        }
    }
}

/// One delivery of an alert to a managed principal.
struct AlertRun<'a> {
    app: &'a App,
    message_id: &'a str,
    alert: &'a BudgetAlert,
    natural_key: &'a str,
    dry_run: bool,
    source: Source,
}

/// Where an alert's figure comes from: AWS Budgets (finance's source of truth, hours late),
/// or seatcap's own metering of Bedrock's invocation logs (within a minute, estimated).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Budgets,
    Metered,
}

/// Why an alert wrote nothing.
enum Kept {
    /// The budget's owner has no state item.
    NoState,
}

impl AlertRun<'_> {
    /// What this alert does to `state` (pure): the ladder's decision, the state after it,
    /// its audit and notices. The claims go with it, so it is recorded once.
    fn decide(
        &self,
        state: Option<&PrincipalState>,
        now: DateTime<Utc>,
    ) -> Decided<Decision, Kept> {
        let (app, alert) = (self.app, self.alert);
        let Some(state) = state else {
            return Decided::Keep(Kept::NoState);
        };
        let principal = &state.principal;
        let decision = decide(DecisionInput {
            alert,
            state,
            protected_by_config: app.config.protected_principals.contains(principal),
            ladder: &app.config.ladder,
            can_downgrade: app.can_downgrade(principal),
            now,
        });
        let enforcing = decision.outcome == Outcome::Enforce && !self.dry_run;
        let downgrading = decision.outcome == Outcome::Downgrade && !self.dry_run;
        let late = decision.outcome == Outcome::Late;
        let next = state.next(now, |s| {
            if alert.alert_type == AlertType::Actual && !late {
                s.record_spend(alert.period_key(), alert.amount);
            }
            if enforcing || downgrading {
                s.status = Status::Blocked;
                s.block_cause = Some(if enforcing {
                    BlockCause::Cap
                } else {
                    BlockCause::Downgrade
                });
                s.blocked_period = Some(alert.period_key());
            }
        });
        let (kind, step) = if enforcing {
            (EventKind::Enforced, IamStep::Cut(Scope::Everything))
        } else if downgrading {
            (EventKind::Downgraded, IamStep::Cut(Scope::Premium))
        } else if late {
            (EventKind::LateAlert, IamStep::Nothing)
        } else {
            (EventKind::Alert, IamStep::Nothing)
        };
        let detail = json!({
            "message_id": self.message_id,
            "budget": alert.budget_name,
            "period": alert.period_key(),
            "alert_type": alert.alert_type,
            "threshold_usd": alert.threshold,
            "amount_usd": alert.amount,
            "effective_cap_usd": decision.effective_cap.to_json(),
            "decision": decision,
            "dry_run": self.dry_run && decision.outcome == Outcome::Enforce,
            "source": self.source,
        });
        let notices = self.notice(&next, &decision).into_iter().collect();
        Decided::Change(Box::new(Change {
            next,
            step,
            audit: AuditEvent::new(now, kind, ACTOR, detail),
            claims: vec![
                Claim::Message(self.message_id.to_owned()),
                Claim::Alert(self.natural_key.to_owned()),
            ],
            owner: None,
            release_owner: None,
            notices,
            report: decision,
        }))
    }

    /// The report of a committed alert, and its metrics.
    async fn handled(&self, committed: Committed<Decision>) -> Result<AlertReport, AlertError> {
        let app = self.app;
        let decision = committed.report;
        let principal = &committed.state.principal;
        let taken = match &committed.step {
            Some(PlannedStep::Take(taken)) => Some(taken.clone()),
            _ => None,
        };
        let policies = match (&taken, decision.outcome) {
            (Some(taken), _) => taken.detached_policy_arns.clone(),
            // Dry-run: what a cut would have detached.
            (None, Outcome::Enforce)
                if self.dry_run && app.method_for(principal) == Method::Detach =>
            {
                app.iam
                    .attached_policies(principal)
                    .await?
                    .into_iter()
                    .filter(|p| app.config.is_managed_policy(p))
                    .collect()
            }
            _ => Vec::new(),
        };
        let cut =
            !self.dry_run && matches!(decision.outcome, Outcome::Enforce | Outcome::Downgrade);
        info!(
            %principal, budget = %self.alert.budget_name, outcome = ?decision.outcome, dry_run = self.dry_run, ?policies,
            "alert handled"
        );
        match decision.outcome {
            Outcome::Enforce if !self.dry_run => metrics::count("Enforcements", 1),
            Outcome::Enforce => metrics::count("DryRunEnforcements", 1),
            Outcome::Downgrade if !self.dry_run => metrics::count("Downgrades", 1),
            Outcome::Late => metrics::count("AlertsLate", 1),
            _ => {}
        }
        Ok(AlertReport::Handled {
            message_id: self.message_id.to_owned(),
            principal: principal.to_string(),
            decision,
            dry_run: self.dry_run,
            policies,
            deny_policy_arn: committed.state.deny_policy_arn.clone().filter(|_| cut),
            remaining_access: committed.remaining,
            notification_failures: committed.notification_failures,
        })
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
        let headline = match self.source {
            Source::Budgets => headline,
            Source::Metered => format!(
                "{headline} (metered from Bedrock's invocation logs: an estimate; AWS Budgets' figure follows within a day)"
            ),
        };
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

    fn notice(&self, state: &PrincipalState, decision: &Decision) -> Option<Notice> {
        let (alert, dry_run) = (self.alert, self.dry_run);
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
            Outcome::AlreadyBlocked | Outcome::BelowLadder | Outcome::Late => return None,
        };
        Some(self.notice_about(state, decision, (kind, audience), headline, next_step))
    }
}
