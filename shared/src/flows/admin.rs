//! Finance's admin commands: one JSON object in, one JSON object out.
//!
//! Answers are `{"ok": true, ...}` or `{"ok": false, "error": {"code", "message"}}`. A request
//! that does not validate changes nothing. Infrastructure failures are errors of the
//! invocation (not `ok: false`), so callers and retries see them for what they are.

use serde_json::{Value, json};
use tracing::info;

use crate::announce::{Access, Committed, announcement};
use crate::app::App;
use crate::budgets::BudgetsError;
use crate::change::*;
use crate::commit::{Decided, EngineError, Outcome};
use crate::decide::Audience;
use crate::enforce::{EnforceError, Taken};
use crate::iam::IamError;
use crate::identity::{
    Arrival, Caller, Gate, Person, arrival, http_response, person_of, session_names_the_person,
};
pub(crate) use crate::intent::IamStep;
use crate::intent::PlannedStep;
use crate::ledger::{AuditEvent, Commit, CommitError, EventKind, LedgerError, Subject};
use crate::metrics;
use crate::money::Usd;
use crate::notify::{Notice, NoticeKind};
use crate::principal::PrincipalArn;
pub use crate::request::Refusal;
use crate::request::*;
use crate::state::PrincipalState;
use chrono::{DateTime, Utc};

/// Failures that are not the caller's fault: the invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Iam(#[from] IamError),
    #[error(transparent)]
    Enforce(EnforceError),
    #[error(transparent)]
    Budgets(#[from] BudgetsError),
    #[error(transparent)]
    Engine(EngineError),
    #[error("SNS Subscribe failed: {0}")]
    Subscribe(String),
}

impl From<EnforceError> for AdminError {
    fn from(e: EnforceError) -> Self {
        match e {
            EnforceError::Iam(e) => AdminError::Iam(e),
            EnforceError::Ledger(e) => AdminError::Ledger(e),
            other => AdminError::Enforce(other),
        }
    }
}

impl From<EngineError> for AdminError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Ledger(e) => AdminError::Ledger(e),
            EngineError::Enforce(e) => e.into(),
            other => AdminError::Engine(other),
        }
    }
}

pub(super) fn view(state: &PrincipalState, now: chrono::DateTime<chrono::Utc>) -> Value {
    state.view(now)
}

pub(super) fn ok(mut body: Value) -> Value {
    body.as_object_mut()
        .expect("answers are objects")
        .insert("ok".into(), Value::Bool(true));
    body
}

pub fn refused(refusal: &Refusal) -> Value {
    json!({"ok": false, "error": {"code": refusal.code, "message": refusal.message}})
}

pub(crate) type Answer = Result<Value, Refusal>;

/// Whose cap, on which budget, how much, and (when given) their team.
pub(crate) struct CapTarget {
    pub principal: PrincipalArn,
    pub budget: String,
    pub cap: Usd,
    pub team: Option<String>,
}

impl App {
    /// The admin function's invocation: a request through its Function URL (the caller
    /// verified by Lambda, the answer an HTTP response) or a direct invoke (the request
    /// itself, the actor only claimed).
    pub async fn handle_admin_event(&self, event: Value) -> Result<Value, AdminError> {
        // Boxed, like every entry into the commands: see `handle_admin_as`.
        match arrival(event) {
            Arrival::Direct(request) => {
                Box::pin(self.handle_admin_as(Caller::Claimed, request)).await
            }
            Arrival::Url(Err(refusal)) => Ok(http_response(&refused(&refusal))),
            Arrival::Url(Ok((caller, request))) => {
                let answer = Box::pin(self.handle_admin_as(caller, request)).await?;
                Ok(http_response(&answer))
            }
        }
    }

    /// Handles one directly invoked admin request (its actor claimed, not verified).
    pub async fn handle_admin(&self, request: Value) -> Result<Value, AdminError> {
        self.handle_admin_as(Caller::Claimed, request).await
    }

    /// Handles one admin request from `caller`. `Ok` carries the answer, refusals included.
    pub async fn handle_admin_as(
        &self,
        caller: Caller,
        mut request: Value,
    ) -> Result<Value, AdminError> {
        let gate = Gate {
            finance: &self.config.finance_principals,
            direct_invoke: self.config.direct_invoke,
        };
        let answer = match gate
            .admit(&caller, &mut request)
            .and_then(|()| parse_request(request))
        {
            Err(refusal) => Err(refusal),
            // Boxed: every command's future nested in one is deeper than the compiler's
            // layout queries allow in the function's entry point.
            Ok(request) => {
                let app = App {
                    caller: Some(caller),
                    ..self.clone()
                };
                Box::pin(app.run(request)).await?
            }
        };
        Ok(answer.unwrap_or_else(|refusal| {
            info!(code = refusal.code, message = %refusal.message, "admin request refused");
            refused(&refusal)
        }))
    }

    /// Whether this request's actor was verified, for its audit (`None`: not an admin
    /// request, e.g. reconcile acting through the admin's changes).
    fn actor_verified(&self) -> Option<bool> {
        self.caller.as_ref().map(Caller::is_verified)
    }

    async fn run(&self, request: Request) -> Result<Answer, AdminError> {
        let now = self.now();
        let max = self.config.max_amount_usd;
        match request {
            Request::SetCap(r) => {
                let (principal, budget, cap, who) = match validate_set_cap(&r, max).and_then(|v| {
                    session_names_the_person(&v.0, &self.config.session_named_roles).map(|()| v)
                }) {
                    Ok(v) => v,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                let target = CapTarget {
                    principal,
                    budget,
                    cap,
                    team: r.team,
                };
                if let Some(held) = self.hold_raise(&target, &who, now).await? {
                    return Ok(held);
                }
                self.set_cap_and_budget(target, who, r.tag_value.as_deref(), None)
                    .await
            }
            Request::AdoptBudget(r) => self.adopt_budget(r).await,
            Request::Restore(r) => self.mutate(&r, restore).await,
            Request::Block(r) => self.mutate(&r, block).await,
            Request::Protect(r) => self.mutate(&r, protect).await,
            Request::Unprotect(r) => self.mutate(&r, unprotect).await,
            Request::GrantOverride(r) => match validate_override(&r, max, now, short_id()) {
                Ok((grant, who)) => {
                    let request = Mutation {
                        principal: r.principal,
                        actor: who.0,
                        reason: who.1,
                    };
                    // Decided on each state read: a concurrent grant counts toward the line.
                    let line = self.config.approval_over_usd;
                    self.mutate(&request, move |s, now| {
                        Ok(if needs_approval(&grant, line, Some(s), now) {
                            request_override(s, now, grant.clone())
                        } else {
                            grant_override(s, now, grant.clone())
                        })
                    })
                    .await
                }
                Err(refusal) => Ok(Err(refusal)),
            },
            Request::ApproveOverride(r) => {
                let id = r.request_id.clone();
                let approver = r.actor.trim().to_owned();
                let roles = &self.config.session_named_roles;
                let Person::Is(person) = person_of(&approver, roles) else {
                    return Ok(Err(Refusal::new(
                        "approver_not_a_person",
                        format!(
                            "{approver} is a session of a role whose session names the caller picks: \
                             two of its sessions may be one person, so it may ask for overrides but \
                             not approve them. Approve as an IAM user, through IAM Identity Center, or \
                             from a role listed in SEATCAP_SESSION_NAMED_ROLES"
                        ),
                    )));
                };
                if let Some(answer) = self
                    .approve_cap_raise(&r.principal, &id, (&approver, &person), &r.reason)
                    .await?
                {
                    return Ok(answer);
                }
                let request = Mutation {
                    principal: r.principal,
                    actor: r.actor,
                    reason: r.reason,
                };
                self.mutate(&request, move |s, now| {
                    approve_override(s, now, &id, &approver, |asker| {
                        person_of(asker, roles) == Person::Is(person.clone())
                    })
                })
                .await
            }
            Request::RevokeOverride(r) => {
                let id = r.override_id.clone();
                let request = Mutation {
                    principal: r.principal,
                    actor: r.actor,
                    reason: r.reason,
                };
                self.mutate(&request, move |s, now| {
                    revoke_override(s, now, id.as_deref())
                })
                .await
            }
            Request::Status(r) => self.status(&r.principal).await,
            Request::List(r) => self.list(r).await,
            Request::History(r) => self.history(r).await,
            Request::Usage(r) => self.usage(r).await,
            Request::SubscribeEmail(r) => self.subscribe_email(r).await,
            Request::Doctor(NoFields {}) => self.doctor().await,
            Request::SetPrice(r) => {
                let prices = crate::flows::finance_prices::FinancePrices {
                    ledger: &self.ledger,
                    actor_verified: self.actor_verified(),
                };
                Ok(prices.set(&r, now).await?)
            }
            Request::FlushNotifications(NoFields {}) => {
                let report = self.flush_notifications(crate::outbox::Flush::Now).await?;
                Ok(Ok(ok(json!({
                    "delivered": report.delivered,
                    "pending": report.pending,
                    "failed": report.failed,
                    "errors": report.errors,
                }))))
            }
        }
    }

    async fn subscribe_email(&self, r: SubscribeEmail) -> Result<Answer, AdminError> {
        let (filter, subject) = match email_filter(&r) {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let (actor, reason) = match parse_actor_reason(&r.actor, &r.reason) {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let subscription = self
            .notifier
            .subscribe_email(r.email.trim(), &filter)
            .await
            .map_err(AdminError::Subscribe)?;
        let now = self.now();
        let detail =
            json!({"email": r.email.trim(), "filter_policy": filter, "subscription": subscription});
        self.ledger
            .append(
                vec![(
                    subject.map_or(Subject::System, Subject::Principal),
                    AuditEvent {
                        actor_verified: self.actor_verified(),
                        ..AuditEvent::new(now, EventKind::EmailSubscribed, &actor, detail)
                    }
                    .because(&reason),
                )],
                now,
            )
            .await?;
        Ok(Ok(ok(
            json!({"subscription_arn": subscription, "filter_policy": filter}),
        )))
    }

    /// Creates the principal's AWS Budget, or sets its limit to `cap`, when budget sync is on.
    /// Returns the budget's actual spend, if Budgets has computed one.
    pub(crate) async fn sync_budget(
        &self,
        principal: &PrincipalArn,
        budget: &str,
        cap: Usd,
        tag_value: Option<&str>,
    ) -> Result<Result<Option<Usd>, Refusal>, AdminError> {
        // Never touch a budget another principal owns.
        if let Some(refusal) = self.owned_by_another(principal, budget).await? {
            return Ok(Err(refusal));
        }
        let Some(sync) = &self.config.budget_sync else {
            return Ok(Ok(None));
        };
        let account = principal.account_id();
        match self.budgets.describe(account, budget).await? {
            None => {
                let spec = crate::budgets::NewBudget {
                    account_id: account,
                    name: budget,
                    limit: cap,
                    tag_key: &self.config.cost_tag_key,
                    tag_value: tag_value.unwrap_or(principal.name()),
                    ladder: &self.config.ladder,
                    alert_topic_arn: &sync.alert_topic_arn,
                };
                self.budgets.create(&spec).await?;
                info!(%principal, budget, cap = %cap, "AWS Budget created");
                Ok(Ok(None))
            }
            Some(info) if !info.is_monthly_cost => Ok(Err(Refusal::new(
                "invalid_budget",
                format!(
                    "AWS Budget `{budget}` is not a monthly cost budget; seatcap caps those only"
                ),
            ))),
            Some(info) => {
                if info.limit != Some(cap) {
                    self.budgets.update_limit(account, &info, cap).await?;
                    info!(%principal, budget, cap = %cap, "AWS Budget limit updated");
                }
                Ok(Ok(info.actual_spend))
            }
        }
    }

    async fn owned_by_another(
        &self,
        principal: &PrincipalArn,
        budget: &str,
    ) -> Result<Option<Refusal>, LedgerError> {
        Ok(self.ledger.owner_of(budget).await?.filter(|owner| owner != principal).map(|owner| {
            Refusal::new(
                "budget_taken",
                format!("budget `{budget}` already belongs to {owner}; give each principal its own budget"),
            )
        }))
    }

    async fn adopt_budget(&self, r: AdoptBudget) -> Result<Answer, AdminError> {
        let validated = (|| {
            let principal = parse_principal(&r.principal)?;
            session_names_the_person(&principal, &self.config.session_named_roles)?;
            parse_team(r.team.as_deref())?;
            Ok((
                principal,
                parse_budget_name(&r.budget)?,
                parse_actor_reason(&r.actor, &r.reason)?,
            ))
        })();
        let (principal, budget, who) = match validated {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(refusal) = self.owned_by_another(&principal, &budget).await? {
            return Ok(Err(refusal));
        }
        let account = principal.account_id();
        let Some(info) = self.budgets.describe(account, &budget).await? else {
            return Ok(Err(Refusal::new(
                "not_found",
                format!("there is no AWS Budget named `{budget}` in account {account}"),
            )));
        };
        let cap = match (info.is_monthly_cost, info.limit) {
            (true, Some(limit)) if limit > Usd::ZERO => limit,
            _ => {
                return Ok(Err(Refusal::new(
                    "invalid_budget",
                    format!("AWS Budget `{budget}` is not a monthly cost budget with a USD limit"),
                )));
            }
        };
        let notifications = self.budgets.notifications(account, &budget).await?;
        let target = CapTarget {
            principal,
            budget,
            cap,
            team: r.team,
        };
        let answer = self.set_cap(target, who, info.actual_spend, None).await?;
        Ok(answer.map(|mut answer| {
            let reaches_cap = notifications
                .iter()
                .any(|n| n.notification_type == "ACTUAL" && n.threshold_type == "PERCENTAGE" && n.threshold >= 100.0);
            if !reaches_cap {
                answer["warnings"] = json!([
                    "the budget has no ACTUAL notification at 100 %: the cap will not be enforced on time until one is added"
                ]);
            }
            answer["notifications"] = json!(notifications);
            answer
        }))
    }

    /// The ledger part of `set_cap` and `adopt_budget`. Both callers have already refused a
    /// budget owned by another principal; if another principal claims it meanwhile, the
    /// owner write's condition fails and the request is refused the same way.
    pub(crate) async fn set_cap(
        &self,
        target: CapTarget,
        (actor, reason): (String, String),
        budgets_spend: Option<Usd>,
        approval: Option<&crate::flows::cap_approval::Approval>,
    ) -> Result<Answer, AdminError> {
        let verified = self.actor_verified();
        let line = self.config.approval_over_usd;
        let CapTarget {
            principal,
            budget,
            cap,
            team,
        } = target;
        let contact = &self.config.finance_contact;
        let outcome = Box::pin(self.commit_change(&principal, &actor, |before, now| {
            // Decided on each read: a raise committed meanwhile counts toward the line.
            if let Some(refusal) =
                crate::flows::cap_approval::refuse_raise(before, cap, line, approval, now)
            {
                return Decided::Keep(Err(refusal));
            }
            let mut next = match before {
                None => PrincipalState::new(principal.clone(), budget.clone(), cap, now),
                Some(state) => state.next(now, |s| {
                    s.cap_usd = cap;
                    s.budget = budget.clone();
                }),
            };
            if team.is_some() {
                next.team = team.clone();
            }
            // Budgets' figure is for its current period, and may trail the alert that
            // blocked: the highest figure known for the period decides.
            if let Some(spend) = budgets_spend {
                next.record_spend(crate::period::month_key(now), spend);
            }
            if let Some(before) = before {
                let by = approval.map_or(actor.as_str(), |a| a.requested_by.as_str());
                let approved = approval.map(|a| (a.request_id.as_str(), a.approver.as_str()));
                crate::cap_raise::record_raise(before, &mut next, now, by, approved);
            }
            let restore = restorable_under_cap(&next, now);
            if restore {
                mark_restored(&mut next, now);
            }
            let iam = if restore {
                IamStep::GiveBack(before.map(Taken::of).unwrap_or_default())
            } else {
                IamStep::Nothing
            };
            let moved_from = before
                .map(|s| s.budget.clone())
                .filter(|old| *old != budget);
            let mut change = change_of(
                before,
                next,
                iam,
                EventKind::CapSet,
                (&actor, &reason),
                contact,
                now,
            );
            change.audit.actor_verified = verified;
            change.owner = Some((budget.clone(), principal.clone()));
            change.release_owner = moved_from.map(|old| (old, principal.clone()));
            Decided::<EventKind, Answer>::Change(Box::new(change))
        }))
        .await;
        match outcome {
            Err(e) => Ok(Err(self.refusal_for(&principal, &actor, e).await?)),
            Ok(Outcome::OwnerTaken) => Ok(Err(self
                .owned_by_another(&principal, &budget)
                .await?
                .unwrap_or_else(|| {
                    Refusal::new(
                        "budget_taken",
                        format!("budget `{budget}` already belongs to another principal"),
                    )
                }))),
            Ok(Outcome::Kept(answer)) => Ok(answer),
            Ok(Outcome::Claimed) => Err(AdminError::Engine(EngineError::Superseded(
                principal.to_string(),
            ))),
            Ok(Outcome::Committed(committed)) => {
                info!(%principal, %budget, cap = %cap, %actor, "cap set");
                Ok(Ok(committed_answer(&committed, self.now())))
            }
        }
    }

    /// The one way an existing principal changes: validated, then through the commit
    /// engine with `change` decided afresh from each read.
    pub(crate) async fn mutate(
        &self,
        request: &Mutation,
        change: impl Fn(&PrincipalState, DateTime<Utc>) -> Result<Change, Refusal>,
    ) -> Result<Answer, AdminError> {
        let validated = parse_principal(&request.principal)
            .and_then(|p| Ok((p, parse_actor_reason(&request.actor, &request.reason)?)));
        match validated {
            Ok((principal, (actor, reason))) => {
                self.change_principal(&principal, &actor, &reason, change)
                    .await
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    /// [`Self::mutate`] for a principal, actor and reason already validated (also used by
    /// the scheduled functions). `change` is decided afresh from each read.
    pub(crate) async fn change_principal(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        reason: &str,
        change: impl Fn(&PrincipalState, DateTime<Utc>) -> Result<Change, Refusal>,
    ) -> Result<Answer, AdminError> {
        let contact = &self.config.finance_contact;
        let verified = self.actor_verified();
        let outcome = Box::pin(self.commit_change(principal, actor, |state, now| {
            let who = Who {
                actor,
                reason,
                verified,
            };
            decide_change(state, now, principal, who, contact, &change)
        }))
        .await;
        self.answer(principal, actor, outcome).await
    }

    /// [`Self::change_principal`] for many principals read in bulk (a scheduled function's
    /// page of the status index): one reason each, decided from its state.
    pub(crate) async fn change_many(
        &self,
        states: Vec<PrincipalState>,
        actor: &str,
        reason: impl Fn(&PrincipalState) -> String + Sync,
        change: impl Fn(&PrincipalState, DateTime<Utc>) -> Result<Change, Refusal> + Sync,
    ) -> Vec<(PrincipalArn, Result<Answer, AdminError>)> {
        let contact = &self.config.finance_contact;
        let outcomes = Box::pin(self.commit_many(states, actor, |state, now| match state {
            Some(s) => decide_change(
                state,
                now,
                &s.principal,
                Who {
                    actor,
                    reason: &reason(s),
                    verified: self.actor_verified(),
                },
                contact,
                &change,
            ),
            None => Decided::Keep(Ok(ok(json!({"changed": false})))),
        }))
        .await;
        let mut answers = Vec::with_capacity(outcomes.len());
        for (principal, outcome) in outcomes {
            let answer = self.answer(&principal, actor, outcome).await;
            answers.push((principal, answer));
        }
        answers
    }

    /// The answer to an admin change the engine has carried out (or refused).
    async fn answer(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        outcome: Result<Outcome<EventKind, Answer>, EngineError>,
    ) -> Result<Answer, AdminError> {
        match outcome {
            Err(e) => Ok(Err(self.refusal_for(principal, actor, e).await?)),
            Ok(Outcome::Kept(answer)) => Ok(answer),
            Ok(Outcome::Claimed | Outcome::OwnerTaken) => Err(AdminError::Engine(
                EngineError::Superseded(principal.to_string()),
            )),
            Ok(Outcome::Committed(committed)) => {
                info!(%principal, kind = ?committed.report, %actor, "principal changed");
                Ok(Ok(committed_answer(&committed, self.now())))
            }
        }
    }
}

/// Who makes a change, why, and whether AWS verified who (admin requests only).
struct Who<'a> {
    actor: &'a str,
    reason: &'a str,
    verified: Option<bool>,
}

/// What an admin change does to `state`, for the engine (pure).
fn decide_change(
    state: Option<&PrincipalState>,
    now: DateTime<Utc>,
    principal: &PrincipalArn,
    who: Who<'_>,
    contact: &str,
    change: &impl Fn(&PrincipalState, DateTime<Utc>) -> Result<Change, Refusal>,
) -> Decided<EventKind, Answer> {
    let Some(state) = state else {
        return Decided::Keep(Err(not_found(principal)));
    };
    match change(state, now) {
        Err(refusal) => Decided::Keep(Err(refusal)),
        Ok(Change::Unchanged) => {
            let mut answer = view(state, now);
            answer["changed"] = Value::Bool(false);
            Decided::Keep(Ok(ok(answer)))
        }
        Ok(Change::To { next, iam, kind }) => {
            let mut change = change_of(
                Some(state),
                *next,
                iam,
                kind,
                (who.actor, who.reason),
                contact,
                now,
            );
            change.audit.actor_verified = who.verified;
            Decided::Change(Box::new(change))
        }
    }
}

/// A new override's id: eight hex digits.
pub(crate) fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

impl App {
    /// The refusal finance gets for an engine error that is an answer, not a failure to
    /// retry; any other error is returned as it is. A policy under seatcap's name that
    /// seatcap did not write is audited under the principal and told to security too.
    async fn refusal_for(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        e: EngineError,
    ) -> Result<Refusal, AdminError> {
        match e {
            EngineError::Enforce(EnforceError::DenyListFull(full)) => {
                Ok(Refusal::new("deny_list_full", full.to_string()))
            }
            EngineError::DryRun(what) => Ok(dry_run_refusal(what)),
            EngineError::Enforce(refused @ EnforceError::NotSeatcaps { .. }) => {
                self.tell_security_of_refused_cut(principal, actor, &refused.to_string())
                    .await?;
                Ok(Refusal::new("policy_not_seatcaps", refused.to_string()))
            }
            other => Err(other.into()),
        }
    }

    /// A cut seatcap refused to make for a reason security must look at: audited
    /// (`enforcement_failed`) and announced to security now.
    async fn tell_security_of_refused_cut(
        &self,
        principal: &PrincipalArn,
        actor: &str,
        why: &str,
    ) -> Result<(), AdminError> {
        let now = self.now();
        let state = self.ledger.load(principal).await?;
        let event = AuditEvent {
            actor_verified: self.actor_verified(),
            ..AuditEvent::new(
                now,
                EventKind::EnforcementFailed,
                actor,
                json!({"error": why}),
            )
        };
        self.ledger
            .commit(
                Commit {
                    events: vec![(Subject::Principal(principal.clone()), event)],
                    ..Commit::default()
                },
                now,
            )
            .await
            .map_err(|e| match e {
                CommitError::Ledger(e) => AdminError::Ledger(e),
                other => AdminError::Engine(EngineError::Superseded(other.to_string())),
            })?;
        let notice = Notice {
            kind: NoticeKind::EnforcementFailed,
            audience: Audience::Security,
            principal: principal.clone(),
            budget: state.as_ref().map(|s| s.budget.clone()).unwrap_or_default(),
            spend: None,
            cap: None,
            period: Some(crate::period::month_key(now)),
            team: state.and_then(|s| s.team),
            headline: "Bedrock access could NOT be cut off: seatcap's policy is not seatcap's"
                .to_owned(),
            next_step: why.to_owned(),
        };
        self.deliver(&notice).await.map_err(AdminError::Ledger)?;
        Ok(())
    }
}

fn dry_run_refusal(what: String) -> Refusal {
    Refusal::new(
        "dry_run",
        format!("seatcap is in dry-run mode and changes no IAM; it would {what}"),
    )
}

/// A decided admin change as the engine takes it: its audit (before and after) and the
/// announcement of it (pure).
fn change_of(
    before: Option<&PrincipalState>,
    next: PrincipalState,
    iam: IamStep,
    kind: EventKind,
    (actor, reason): (&str, &str),
    contact: &str,
    now: DateTime<Utc>,
) -> crate::commit::Change<EventKind> {
    let audit = AuditEvent::state_change(now, kind, actor).because(reason);
    let none = Taken::default();
    let access = match &iam {
        IamStep::Nothing => Access::Unchanged,
        IamStep::GiveBack(_) => Access::Restored,
        IamStep::Cut(_) => Access::Cut(&none),
        IamStep::TakeAgain(taken) => Access::Cut(taken),
    };
    let committed = Committed {
        change: kind,
        actor,
        before,
        after: &next,
        access,
        remaining: &[],
        now,
        contact,
    };
    let notices = announcement(&committed).into_iter().collect();
    crate::commit::Change {
        next,
        step: iam,
        audit,
        claims: Vec::new(),
        owner: None,
        release_owner: None,
        notices,
        report: kind,
    }
}

/// The answer to a committed admin change, and its metrics.
fn committed_answer(committed: &crate::commit::Committed<EventKind>, now: DateTime<Utc>) -> Value {
    let kind = committed.report;
    let mut answer = view(&committed.state, now);
    answer["changed"] = Value::Bool(true);
    let mut restored = false;
    match &committed.step {
        Some(PlannedStep::GiveBack(taken)) => {
            metrics::count("Restores", 1);
            restored = true;
            answer["reattached_policy_arns"] = json!(taken.detached_policy_arns);
            if let Some(arn) = &taken.deny_policy_arn {
                answer["removed_deny_policy_arn"] = json!(arn);
            }
        }
        Some(PlannedStep::Take(taken)) => {
            let metric = if kind == EventKind::DriftRepaired {
                "DriftRepaired"
            } else {
                "Enforcements"
            };
            metrics::count(metric, 1);
            answer["detached_policy_arns"] = json!(taken.detached_policy_arns);
            if let Some(role) = committed.state.principal.identity_center_role() {
                // Whatever the configured mode: IAM refuses any write to such a role.
                answer["warnings"] = json!([format!(
                    "{role} is an IAM Identity Center role, which IAM does not let seatcap change: \
                     denied through the account's seatcap-sso-deny-* policies, which its permission \
                     set must reference (see `seatcap doctor`)"
                )]);
            }
        }
        None => {}
    }
    if !committed.remaining.is_empty() {
        answer["remaining_access"] = json!(committed.remaining);
    }
    // `restored` is part of the set_cap/restore answers since the first release.
    answer["restored"] = Value::Bool(restored);
    ok(answer)
}
