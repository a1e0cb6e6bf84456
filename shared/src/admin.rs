//! Finance's admin commands: one JSON object in, one JSON object out.
//!
//! Answers are `{"ok": true, ...}` or `{"ok": false, "error": {"code", "message"}}`. A request
//! that does not validate changes nothing. Infrastructure failures are errors of the
//! invocation (not `ok: false`), so callers and retries see them for what they are.

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::info;

use crate::announce::{Access, Committed, announcement};
use crate::app::App;
use crate::budgets::BudgetsError;
use crate::commit::{Decided, EngineError, Outcome};
use crate::enforce::{EnforceError, Taken};
use crate::iam::IamError;
pub(crate) use crate::intent::IamStep;
use crate::intent::{PlannedStep, Scope};
use crate::ledger::{AuditEvent, EventKind, LedgerError, Subject};
use crate::metrics;
use crate::money::Usd;
use crate::period;
use crate::principal::PrincipalArn;
use crate::state::{BlockCause, Override, PrincipalState, Status};
use chrono::{DateTime, Utc};

/// Requests as deployers send them. Unknown fields are refused, not ignored: a typo in a
/// field name must not silently do something else.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Request {
    SetCap(SetCap),
    AdoptBudget(AdoptBudget),
    Restore(Mutation),
    Block(Mutation),
    Protect(Mutation),
    Unprotect(Mutation),
    GrantOverride(GrantOverride),
    RevokeOverride(RevokeOverride),
    Status(PrincipalOnly),
    List(ListRequest),
    History(HistoryRequest),
    FlushNotifications(NoFields),
    SubscribeEmail(SubscribeEmail),
}

const ACTIONS: &[&str] = &[
    "set_cap",
    "adopt_budget",
    "restore",
    "block",
    "protect",
    "unprotect",
    "grant_override",
    "revoke_override",
    "status",
    "list",
    "history",
    "flush_notifications",
    "subscribe_email",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCap {
    principal: String,
    budget: String,
    cap_usd: String,
    /// The cost-allocation tag value of a budget seatcap creates; the principal's name if
    /// not given.
    #[serde(default)]
    tag_value: Option<String>,
    /// The team whose Slack channel hears about this principal; kept if not given.
    #[serde(default)]
    team: Option<String>,
    actor: String,
    reason: String,
}

/// Takes a budget made elsewhere (the console) under management; its limit becomes the cap.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdoptBudget {
    principal: String,
    budget: String,
    #[serde(default)]
    team: Option<String>,
    actor: String,
    reason: String,
}

/// `restore`, `block`, `protect`, `unprotect`: who, by whom, why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Mutation {
    principal: String,
    actor: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantOverride {
    principal: String,
    #[serde(default)]
    extra_usd: Option<String>,
    #[serde(default)]
    exempt: bool,
    expires_at: String,
    actor: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeOverride {
    principal: String,
    /// One override by id; without it, every override of the principal.
    #[serde(default)]
    override_id: Option<String>,
    actor: String,
    reason: String,
}

/// An email subscription to the notification topic: a person's own messages (`principal`),
/// or everything finance (`audience: finance`, severity warning and above) or security
/// (`audience: security`) should see.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SubscribeEmail {
    email: String,
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    actor: String,
    reason: String,
}

/// A request that takes nothing but its `action`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalOnly {
    principal: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListRequest {
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryRequest {
    principal: String,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    next_token: Option<String>,
}

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// A refusal: the request was wrong, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

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

fn view(state: &PrincipalState, now: chrono::DateTime<chrono::Utc>) -> Value {
    state.view(now)
}

fn ok(mut body: Value) -> Value {
    body.as_object_mut()
        .expect("answers are objects")
        .insert("ok".into(), Value::Bool(true));
    body
}

pub fn refusal_answer(refusal: &Refusal) -> Value {
    json!({"ok": false, "error": {"code": refusal.code, "message": refusal.message}})
}

/// What a command does to one principal, decided from its current state (pure).
pub(crate) enum Change {
    /// Already as asked: nothing to write.
    Unchanged,
    To {
        // Boxed: a state is large next to `Unchanged`.
        next: Box<PrincipalState>,
        iam: IamStep,
        kind: EventKind,
    },
}

pub(crate) type Answer = Result<Value, Refusal>;

/// Whose cap, on which budget, how much, and (when given) their team.
struct CapTarget {
    principal: PrincipalArn,
    budget: String,
    cap: Usd,
    team: Option<String>,
}

impl App {
    /// Handles one admin request. `Ok` carries the answer, refusals included.
    pub async fn handle_admin(&self, request: Value) -> Result<Value, AdminError> {
        let answer = match parse_request(request) {
            Err(refusal) => Err(refusal),
            // Boxed: every command's future nested in one is deeper than the compiler's
            // layout queries allow in the function's entry point.
            Ok(request) => Box::pin(self.run(request)).await?,
        };
        Ok(answer.unwrap_or_else(|refusal| {
            info!(code = refusal.code, message = %refusal.message, "admin request refused");
            refusal_answer(&refusal)
        }))
    }

    async fn run(&self, request: Request) -> Result<Answer, AdminError> {
        let now = self.now();
        let max = self.config.max_amount_usd;
        match request {
            Request::SetCap(r) => {
                let (principal, budget, cap, who) = match validate_set_cap(&r, max) {
                    Ok(v) => v,
                    Err(refusal) => return Ok(Err(refusal)),
                };
                match self
                    .sync_budget(&principal, &budget, cap, r.tag_value.as_deref())
                    .await?
                {
                    Ok(spend) => {
                        let target = CapTarget {
                            principal,
                            budget,
                            cap,
                            team: r.team,
                        };
                        self.set_cap(target, who, spend).await
                    }
                    Err(refusal) => Ok(Err(refusal)),
                }
            }
            Request::AdoptBudget(r) => self.adopt_budget(r).await,
            Request::Restore(r) => self.mutate(&r, restore).await,
            Request::Block(r) => self.mutate(&r, block).await,
            Request::Protect(r) => self.mutate(&r, protect).await,
            Request::Unprotect(r) => self.mutate(&r, unprotect).await,
            Request::GrantOverride(r) => match validate_override(&r, max, now) {
                Ok((grant, who)) => {
                    let request = Mutation {
                        principal: r.principal,
                        actor: who.0,
                        reason: who.1,
                    };
                    self.mutate(&request, move |s, now| {
                        Ok(grant_override(s, now, grant.clone()))
                    })
                    .await
                }
                Err(refusal) => Ok(Err(refusal)),
            },
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
            Request::SubscribeEmail(r) => self.subscribe_email(r).await,
            Request::FlushNotifications(NoFields {}) => {
                let report = self.flush_notifications().await?;
                Ok(Ok(ok(json!({
                    "delivered": report.delivered,
                    "pending": report.pending,
                    "failed": report.failed,
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
                    subject,
                    AuditEvent::new(now, EventKind::EmailSubscribed, &actor, detail)
                        .because(&reason),
                )],
                now,
            )
            .await?;
        Ok(Ok(ok(
            json!({"subscription_arn": subscription, "filter_policy": filter}),
        )))
    }

    async fn status(&self, principal: &str) -> Result<Answer, AdminError> {
        let principal = match parse_principal(principal) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(match self.ledger.load(&principal).await? {
            Some(state) => Ok(ok(view(&state, self.now()))),
            None => Err(not_found(&principal)),
        })
    }

    /// `{"ok": true, "principals": [...], "next_token"?}`: blocked first, then active, each
    /// in ARN order, through the status index.
    async fn list(&self, r: ListRequest) -> Result<Answer, AdminError> {
        let limit = match page_size(r.limit) {
            Ok(l) => l,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let statuses: Vec<Status> = r
            .status
            .map_or(vec![Status::Blocked, Status::Active], |s| vec![s]);
        let (mut status_index, mut after) = match r
            .next_token
            .as_deref()
            .map(|t| parse_list_token(t, &statuses))
        {
            None => (0, None),
            Some(Ok(position)) => position,
            Some(Err(refusal)) => return Ok(Err(refusal)),
        };
        let now = self.now();
        let mut principals = Vec::new();
        let mut next_token = None;
        while status_index < statuses.len() && principals.len() < limit as usize {
            let status = statuses[status_index];
            let room = limit as i32 - principals.len() as i32;
            let (page, last) = self.ledger.list_page(status, room, after.as_ref()).await?;
            principals.extend(page.iter().map(|s| view(s, now)));
            match last {
                Some(last) => {
                    next_token = Some(format!("{}|{last}", status.as_str()));
                    after = Some(last);
                }
                None => {
                    next_token = None;
                    status_index += 1;
                    after = None;
                }
            }
        }
        if next_token.is_none() && status_index < statuses.len() && !principals.is_empty() {
            // The page filled up exactly at the end of one status: continue with the next.
            next_token = Some(format!("{}|", statuses[status_index].as_str()));
        }
        let mut answer = json!({"principals": principals});
        if let Some(token) = next_token {
            answer["next_token"] = Value::String(token);
        }
        Ok(Ok(ok(answer)))
    }

    /// `{"ok": true, "events": [...], "next_token"?}`, newest first.
    async fn history(&self, r: HistoryRequest) -> Result<Answer, AdminError> {
        let validated = parse_principal(&r.principal).and_then(|p| Ok((p, page_size(r.limit)?)));
        let (principal, limit) = match validated {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if let Some(token) = &r.next_token
            && !token.starts_with("EV#")
        {
            return Ok(Err(Refusal::new(
                "invalid_request",
                "next_token is not one this function gave out",
            )));
        }
        let (events, next) = self
            .ledger
            .history_page(
                &Subject::Principal(principal),
                limit as i32,
                r.next_token.as_deref(),
            )
            .await?;
        let mut answer = json!({"events": events});
        if let Some(token) = next {
            answer["next_token"] = Value::String(token);
        }
        Ok(Ok(ok(answer)))
    }

    /// Creates the principal's AWS Budget, or sets its limit to `cap`, when budget sync is on.
    /// Returns the budget's actual spend, if Budgets has computed one.
    async fn sync_budget(
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
        let answer = self.set_cap(target, who, info.actual_spend).await?;
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
    async fn set_cap(
        &self,
        target: CapTarget,
        (actor, reason): (String, String),
        budgets_spend: Option<Usd>,
    ) -> Result<Answer, AdminError> {
        let CapTarget {
            principal,
            budget,
            cap,
            team,
        } = target;
        let contact = &self.config.finance_contact;
        let outcome = self
            .commit_change(&principal, &actor, |before, now| {
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
                // Budgets' own figure, when it has one, is fresher than the last alert's.
                if budgets_spend.is_some() {
                    next.last_actual_usd = budgets_spend;
                }
                let restore = restorable_under_cap(&next, now);
                if restore {
                    mark_restored(&mut next);
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
                change.owner = Some((budget.clone(), principal.clone()));
                change.release_owner = moved_from.map(|old| (old, principal.clone()));
                Decided::<(), Answer>::Change(Box::new(change))
            })
            .await;
        match outcome {
            Err(EngineError::Enforce(EnforceError::DenyListFull(full))) => {
                Ok(Err(Refusal::new("deny_list_full", full.to_string())))
            }
            Err(EngineError::DryRun(what)) => Ok(Err(dry_run_refusal(what))),
            Err(e) => Err(e.into()),
            Ok(Outcome::OwnerTaken) => Ok(Err(self
                .owned_by_another(&principal, &budget)
                .await?
                .unwrap_or_else(|| {
                    Refusal::new(
                        "budget_taken",
                        format!("budget `{budget}` already belongs to another principal"),
                    )
                }))),
            Ok(Outcome::Kept(answer, _)) => Ok(answer),
            Ok(Outcome::Claimed) => Err(AdminError::Engine(EngineError::Superseded(
                principal.to_string(),
            ))),
            Ok(Outcome::Committed(committed)) => {
                info!(%principal, %budget, cap = %cap, %actor, "cap set");
                Ok(Ok(committed_answer(
                    &committed,
                    EventKind::CapSet,
                    self.now(),
                )))
            }
        }
    }

    /// The one way an existing principal changes: validated, then through the commit
    /// engine with `change` decided afresh from each read.
    async fn mutate(
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
        let mut kind = EventKind::Restored;
        let outcome = self
            .commit_change(principal, actor, |state, now| {
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
                    Ok(Change::To {
                        next,
                        iam,
                        kind: change_kind,
                    }) => {
                        kind = change_kind;
                        Decided::Change(Box::new(change_of(
                            Some(state),
                            *next,
                            iam,
                            change_kind,
                            (actor, reason),
                            contact,
                            now,
                        )))
                    }
                }
            })
            .await;
        match outcome {
            Err(EngineError::Enforce(EnforceError::DenyListFull(full))) => {
                Ok(Err(Refusal::new("deny_list_full", full.to_string())))
            }
            Err(EngineError::DryRun(what)) => Ok(Err(dry_run_refusal(what))),
            Err(e) => Err(e.into()),
            Ok(Outcome::Kept(answer, _)) => Ok(answer),
            Ok(Outcome::Claimed | Outcome::OwnerTaken) => Err(AdminError::Engine(
                EngineError::Superseded(principal.to_string()),
            )),
            Ok(Outcome::Committed(committed)) => {
                info!(%principal, ?kind, %actor, "principal changed");
                Ok(Ok(committed_answer(&committed, kind, self.now())))
            }
        }
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
) -> crate::commit::Change<()> {
    let detail = json!({
        "before": before.map(|s| view(s, now)),
        "after": view(&next, now),
    });
    let audit = AuditEvent::new(now, kind, actor, detail).because(reason);
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
        report: (),
    }
}

/// The answer to a committed admin change, and its metrics.
fn committed_answer(
    committed: &crate::commit::Committed<()>,
    kind: EventKind,
    now: DateTime<Utc>,
) -> Value {
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

// The changes, one pure function each.

pub(crate) fn restore(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    if state.status == Status::Active {
        return Ok(Change::Unchanged);
    }
    Ok(Change::To {
        next: Box::new(state.next(now, mark_restored)),
        iam: IamStep::GiveBack(Taken::of(state)),
        kind: EventKind::Restored,
    })
}

/// A manual block: it survives period rollover and cap raises until `restore`.
fn block(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    match (state.status, state.block_cause) {
        (Status::Blocked, Some(BlockCause::Manual)) => Ok(Change::Unchanged),
        // Downgraded: take the rest too.
        (Status::Blocked, Some(BlockCause::Downgrade)) => Ok(Change::To {
            next: Box::new(state.next(now, |s| s.block_cause = Some(BlockCause::Manual))),
            iam: IamStep::Cut(Scope::Everything),
            kind: EventKind::Blocked,
        }),
        // Already cut off by the cap: keep what was detached, make the block a manual one.
        (Status::Blocked, _) => Ok(Change::To {
            next: Box::new(state.next(now, |s| s.block_cause = Some(BlockCause::Manual))),
            iam: IamStep::Nothing,
            kind: EventKind::Blocked,
        }),
        (Status::Active, _) => Ok(Change::To {
            next: Box::new(state.next(now, |s| {
                s.status = Status::Blocked;
                s.block_cause = Some(BlockCause::Manual);
                s.blocked_period = Some(period::month_key(now));
            })),
            iam: IamStep::Cut(Scope::Everything),
            kind: EventKind::Blocked,
        }),
    }
}

/// Break-glass: never enforced by the cap; a cap block ends at once. A manual block stays.
fn protect(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    if state.protected {
        return Ok(Change::Unchanged);
    }
    let lift_cap_block = state.status == Status::Blocked
        && state.block_cause.is_some_and(BlockCause::ends_with_the_cap);
    Ok(Change::To {
        next: Box::new(state.next(now, |s| {
            s.protected = true;
            if lift_cap_block {
                mark_restored(s);
            }
        })),
        iam: if lift_cap_block {
            IamStep::GiveBack(Taken::of(state))
        } else {
            IamStep::Nothing
        },
        kind: EventKind::Protected,
    })
}

fn unprotect(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    if !state.protected {
        return Ok(Change::Unchanged);
    }
    Ok(enforce_if_over_cap(
        state.next(now, |s| s.protected = false),
        now,
        EventKind::Unprotected,
    ))
}

fn grant_override(state: &PrincipalState, now: DateTime<Utc>, grant: Override) -> Change {
    let mut next = state.next(now, |s| {
        s.overrides.retain(|o| o.is_active(now));
        s.overrides.push(grant);
    });
    let restore = restorable_under_cap(&next, now);
    if restore {
        mark_restored(&mut next);
    }
    let iam = if restore {
        IamStep::GiveBack(Taken::of(state))
    } else {
        IamStep::Nothing
    };
    Change::To {
        next: Box::new(next),
        iam,
        kind: EventKind::OverrideGranted,
    }
}

fn revoke_override(
    state: &PrincipalState,
    now: DateTime<Utc>,
    id: Option<&str>,
) -> Result<Change, Refusal> {
    if let Some(id) = id
        && !state.overrides.iter().any(|o| o.id == id)
    {
        return Err(Refusal::new(
            "not_found",
            format!("{} has no override `{id}`", state.principal),
        ));
    }
    if state.overrides.is_empty() {
        return Ok(Change::Unchanged);
    }
    let next = state.next(now, |s| {
        s.overrides.retain(|o| id.is_some_and(|id| o.id != id))
    });
    Ok(enforce_if_over_cap(next, now, EventKind::OverrideRevoked))
}

/// After a change that can only lower the effective cap or lift protection: if the last
/// known spend is now at or over it, cut access at once, as the alert would have.
fn enforce_if_over_cap(mut next: PrincipalState, now: DateTime<Utc>, kind: EventKind) -> Change {
    let open = next.status == Status::Active || next.block_cause == Some(BlockCause::Downgrade);
    let over = open
        && !next.protected
        && next
            .last_actual_usd
            .is_some_and(|spend| next.effective_cap(now).is_reached_by(spend));
    if !over {
        return Change::To {
            next: Box::new(next),
            iam: IamStep::Nothing,
            kind,
        };
    }
    next.status = Status::Blocked;
    next.block_cause = Some(BlockCause::Cap);
    next.blocked_period = Some(period::month_key(now));
    Change::To {
        next: Box::new(next),
        iam: IamStep::Cut(Scope::Everything),
        kind,
    }
}

/// A principal blocked (or downgraded) by its cap whose last known spend is under its
/// effective cap.
fn restorable_under_cap(state: &PrincipalState, now: DateTime<Utc>) -> bool {
    state.status == Status::Blocked
        && state.block_cause.is_some_and(BlockCause::ends_with_the_cap)
        && !state
            .effective_cap(now)
            .is_reached_by(state.last_actual_usd.unwrap_or(Usd::ZERO))
}

pub(crate) fn mark_restored(state: &mut PrincipalState) {
    state.status = Status::Active;
    state.block_cause = None;
    state.blocked_period = None;
    state.detached_policy_arns.clear();
    state.deny_policy_arn = None;
}

fn validate_set_cap(
    r: &SetCap,
    max: Usd,
) -> Result<(PrincipalArn, String, Usd, (String, String)), Refusal> {
    let principal = parse_principal(&r.principal)?;
    let budget = parse_budget_name(&r.budget)?;
    let cap = Usd::parse_request_amount(&r.cap_usd, max)
        .map_err(|e| Refusal::new("invalid_amount", format!("cap_usd: {e}")))?;
    if let Some(tag) = &r.tag_value
        && (tag.trim().is_empty()
            || tag.len() > 256
            || tag.contains('$')
            || tag.chars().any(char::is_control))
    {
        return Err(Refusal::new(
            "invalid_request",
            "tag_value must be 1 to 256 characters, without `$`",
        ));
    }
    parse_team(r.team.as_deref())?;
    Ok((
        principal,
        budget,
        cap,
        parse_actor_reason(&r.actor, &r.reason)?,
    ))
}

/// A team name names a Slack route (`teams` in the webhook secret): a short slug.
fn parse_team(team: Option<&str>) -> Result<(), Refusal> {
    let Some(team) = team else { return Ok(()) };
    let slug = (1..=64).contains(&team.len())
        && team
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if slug {
        Ok(())
    } else {
        Err(Refusal::new(
            "invalid_team",
            format!("team `{team}`: 1 to 64 letters, digits, `-`, `_` or `.`"),
        ))
    }
}

/// The filter policy for a `subscribe_email` request, and where its audit goes.
fn email_filter(r: &SubscribeEmail) -> Result<(Value, Subject), Refusal> {
    let email = r.email.trim();
    let plausible = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if !plausible {
        return Err(Refusal::new(
            "invalid_email",
            format!("`{email}` is not an email address"),
        ));
    }
    match (&r.principal, r.audience.as_deref()) {
        (Some(principal), None) => {
            let principal = parse_principal(principal)?;
            let filter = json!({
                "principal": [principal.as_str()],
                "audience": ["person", "person_and_finance"],
            });
            Ok((filter, Subject::Principal(principal)))
        }
        (None, Some("finance")) => Ok((
            json!({"severity": ["warning", "critical"]}),
            Subject::System,
        )),
        (None, Some("security")) => Ok((json!({"audience": ["security"]}), Subject::System)),
        _ => Err(Refusal::new(
            "invalid_request",
            "give either `principal` (a person's own messages) or `audience`: `finance` or `security`",
        )),
    }
}

fn validate_override(
    r: &GrantOverride,
    max: Usd,
    now: DateTime<Utc>,
) -> Result<(Override, (String, String)), Refusal> {
    parse_principal(&r.principal)?;
    let who = parse_actor_reason(&r.actor, &r.reason)?;
    let extra_usd = match (&r.extra_usd, r.exempt) {
        (Some(_), true) | (None, false) => {
            return Err(Refusal::new(
                "invalid_request",
                "give either extra_usd (e.g. \"50.00\") or \"exempt\": true",
            ));
        }
        (Some(text), false) => Some(
            Usd::parse_request_amount(text, max)
                .map_err(|e| Refusal::new("invalid_amount", format!("extra_usd: {e}")))?,
        ),
        (None, true) => None,
    };
    let expires_at = DateTime::parse_from_rfc3339(&r.expires_at)
        .map_err(|_| {
            Refusal::new(
                "invalid_expiry",
                format!(
                    "expires_at `{}` is not a time like 2026-12-31T23:59:59Z",
                    r.expires_at
                ),
            )
        })?
        .with_timezone(&Utc);
    if expires_at <= now {
        return Err(Refusal::new(
            "invalid_expiry",
            format!("expires_at {expires_at} is in the past"),
        ));
    }
    let latest = period::start_of_month_after(now, 2);
    if expires_at > latest {
        return Err(Refusal::new(
            "invalid_expiry",
            format!(
                "expires_at may be at most the end of the next budget period ({latest}); grant again then"
            ),
        ));
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let grant = Override {
        id,
        extra_usd,
        exempt: r.exempt,
        expires_at,
        granted_by: who.0.clone(),
        reason: who.1.clone(),
    };
    Ok((grant, who))
}

fn page_size(limit: Option<u32>) -> Result<u32, Refusal> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(Refusal::new(
            "invalid_request",
            format!("limit {n} is outside 1..={MAX_PAGE}"),
        )),
    }
}

/// `blocked|arn:...`: resume in `blocked` after that principal; `active|`: start of `active`.
fn parse_list_token(
    token: &str,
    statuses: &[Status],
) -> Result<(usize, Option<PrincipalArn>), Refusal> {
    let bad = || {
        Refusal::new(
            "invalid_request",
            "next_token is not one this function gave out",
        )
    };
    let (status, after) = token.split_once('|').ok_or_else(bad)?;
    let index = statuses
        .iter()
        .position(|s| s.as_str() == status)
        .ok_or_else(bad)?;
    let after = if after.is_empty() {
        None
    } else {
        Some(after.parse().map_err(|_| bad())?)
    };
    Ok((index, after))
}

fn parse_request(request: Value) -> Result<Request, Refusal> {
    let Some(object) = request.as_object() else {
        return Err(Refusal::new(
            "invalid_request",
            "the request must be a JSON object with an `action` field",
        ));
    };
    match object.get("action") {
        None => {
            return Err(Refusal::new(
                "invalid_request",
                format!("missing `action`; one of {}", ACTIONS.join(", ")),
            ));
        }
        Some(Value::String(action)) if !ACTIONS.contains(&action.as_str()) => {
            return Err(Refusal::new(
                "unknown_action",
                format!("unknown action `{action}`; one of {}", ACTIONS.join(", ")),
            ));
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(Refusal::new("invalid_request", "`action` must be a string")),
    }
    serde_json::from_value(request).map_err(|e| Refusal::new("invalid_request", e.to_string()))
}

fn parse_principal(text: &str) -> Result<PrincipalArn, Refusal> {
    text.parse().map_err(|e: crate::principal::PrincipalError| {
        Refusal::new("invalid_principal", e.to_string())
    })
}

fn parse_budget_name(text: &str) -> Result<String, Refusal> {
    let name = text.trim();
    let chars = name.chars().count();
    if !(1..=100).contains(&chars) || name.chars().any(|c| c.is_control()) || name != text {
        return Err(Refusal::new(
            "invalid_budget",
            "budget must be the AWS Budget's name: 1 to 100 characters, no control characters or surrounding spaces",
        ));
    }
    Ok(name.to_owned())
}

fn parse_actor_reason(actor: &str, reason: &str) -> Result<(String, String), Refusal> {
    if actor.trim().is_empty() {
        return Err(Refusal::new(
            "invalid_request",
            "actor must name who is making the change",
        ));
    }
    if reason.trim().is_empty() {
        return Err(Refusal::new(
            "invalid_request",
            "reason must say why; it goes into the audit",
        ));
    }
    Ok((actor.trim().to_owned(), reason.trim().to_owned()))
}

fn not_found(principal: &PrincipalArn) -> Refusal {
    Refusal::new(
        "not_found",
        format!("{principal} has no cap in the ledger; set one with set_cap"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(request: Value) -> Refusal {
        parse_request(request).expect_err("should be refused")
    }

    #[test]
    fn well_formed_requests_parse() {
        let request = json!({"action": "set_cap", "principal": "arn:aws:iam::123456789012:user/alice",
            "budget": "seatcap-alice", "cap_usd": "200.00", "actor": "finance@example.com", "reason": "Q4 project"});
        assert!(matches!(parse_request(request), Ok(Request::SetCap(_))));
        assert!(matches!(
            parse_request(json!({"action": "status", "principal": "x"})),
            Ok(Request::Status(_))
        ));
    }

    #[test]
    fn malformed_requests_are_refused_with_a_code() {
        assert_eq!(refusal(json!([1])).code, "invalid_request");
        assert_eq!(refusal(json!({"principal": "x"})).code, "invalid_request");
        assert_eq!(
            refusal(json!({"action": "delete_everything"})).code,
            "unknown_action"
        );
        assert_eq!(refusal(json!({"action": 7})).code, "invalid_request");
        let missing = refusal(json!({"action": "restore", "principal": "x", "actor": "a"}));
        assert_eq!(missing.code, "invalid_request");
        assert!(missing.message.contains("reason"), "{}", missing.message);
        let unknown = refusal(json!({"action": "status", "principal": "x", "principle": "y"}));
        assert!(unknown.message.contains("principle"), "{}", unknown.message);
        // A number where a decimal string is expected: money is never a float.
        let float = refusal(
            json!({"action": "set_cap", "principal": "x", "budget": "b", "cap_usd": 200.0, "actor": "a", "reason": "r"}),
        );
        assert_eq!(float.code, "invalid_request");
    }

    #[test]
    fn field_validation_names_the_problem() {
        assert_eq!(
            parse_principal("alice").unwrap_err().code,
            "invalid_principal"
        );
        assert_eq!(parse_budget_name("").unwrap_err().code, "invalid_budget");
        assert_eq!(
            parse_budget_name(" padded").unwrap_err().code,
            "invalid_budget"
        );
        assert_eq!(
            parse_budget_name(&"b".repeat(101)).unwrap_err().code,
            "invalid_budget"
        );
        assert_eq!(
            parse_budget_name("Team Atlas - Bedrock").unwrap(),
            "Team Atlas - Bedrock"
        );
        assert_eq!(
            parse_actor_reason("a", " ").unwrap_err().code,
            "invalid_request"
        );
        assert_eq!(
            parse_actor_reason("", "r").unwrap_err().code,
            "invalid_request"
        );
    }
}
