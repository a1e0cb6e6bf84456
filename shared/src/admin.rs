//! Finance's admin commands: one JSON object in, one JSON object out.
//!
//! Answers are `{"ok": true, ...}` or `{"ok": false, "error": {"code", "message"}}`. A request
//! that does not validate changes nothing. Infrastructure failures are errors of the
//! invocation (not `ok: false`), so callers and retries see them for what they are.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::info;

use crate::alerts::cap_json;
use crate::app::App;
use crate::config::Mode;
use crate::decide::Audience;
use crate::iam::IamError;
use crate::ledger::{AuditEvent, Commit, CommitError, EventKind, LedgerError, Subject};
use crate::metrics;
use crate::money::Usd;
use crate::notify::{Notice, NoticeKind};
use crate::principal::PrincipalArn;
use crate::state::{BlockCause, EffectiveCap, PrincipalState, Status};

/// Requests as deployers send them. Unknown fields are refused, not ignored: a typo in a
/// field name must not silently do something else.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum Request {
    SetCap(SetCap),
    Restore(Restore),
    Status(StatusRequest),
}

const ACTIONS: &[&str] = &["set_cap", "restore", "status"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetCap {
    principal: String,
    budget: String,
    cap_usd: String,
    actor: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Restore {
    principal: String,
    actor: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusRequest {
    principal: String,
}

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
    #[error("gave up after {0} conflicting writes to the ledger; try again")]
    TooManyConflicts(usize),
}

const MAX_ATTEMPTS: usize = 8;

/// The principal's state as admin answers show it.
#[derive(Debug, Serialize)]
struct StateView<'a> {
    principal: &'a PrincipalArn,
    budget: &'a str,
    status: Status,
    cap_usd: Usd,
    effective_cap_usd: Value,
    detached_policy_arns: &'a [String],
    protected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    block_cause: Option<BlockCause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_period: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_actual_usd: Option<Usd>,
    version: u64,
    updated_at: chrono::DateTime<chrono::Utc>,
}

fn view(state: &PrincipalState, now: chrono::DateTime<chrono::Utc>) -> Value {
    let view = StateView {
        principal: &state.principal,
        budget: &state.budget,
        status: state.status,
        cap_usd: state.cap_usd,
        effective_cap_usd: cap_json(state.effective_cap(now)),
        detached_policy_arns: &state.detached_policy_arns,
        protected: state.protected,
        block_cause: state.block_cause,
        blocked_period: state.blocked_period.as_deref(),
        last_actual_usd: state.last_actual_usd,
        version: state.version,
        updated_at: state.updated_at,
    };
    serde_json::to_value(view).expect("a state view always serialises")
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

impl App {
    /// Handles one admin request. `Ok` carries the answer, refusals included.
    pub async fn handle_admin(&self, request: Value) -> Result<Value, AdminError> {
        let request = match parse_request(request) {
            Ok(r) => r,
            Err(refusal) => {
                info!(code = refusal.code, message = %refusal.message, "admin request refused");
                return Ok(refusal_answer(&refusal));
            }
        };
        let answer = match request {
            Request::SetCap(r) => self.set_cap(r).await?,
            Request::Restore(r) => self.restore(r).await?,
            Request::Status(r) => self.status(r).await?,
        };
        Ok(answer.unwrap_or_else(|refusal| {
            info!(code = refusal.code, message = %refusal.message, "admin request refused");
            refusal_answer(&refusal)
        }))
    }

    async fn status(&self, r: StatusRequest) -> Result<Result<Value, Refusal>, AdminError> {
        let principal = match parse_principal(&r.principal) {
            Ok(p) => p,
            Err(refusal) => return Ok(Err(refusal)),
        };
        Ok(match self.ledger.load(&principal).await? {
            Some(state) => Ok(ok(view(&state, self.now()))),
            None => Err(not_found(&principal)),
        })
    }

    async fn set_cap(&self, r: SetCap) -> Result<Result<Value, Refusal>, AdminError> {
        let validated = (|| {
            let principal = parse_principal(&r.principal)?;
            let budget = parse_budget_name(&r.budget)?;
            let cap = Usd::parse_request_amount(&r.cap_usd, self.config.max_amount_usd)
                .map_err(|e| Refusal::new("invalid_amount", format!("cap_usd: {e}")))?;
            let (actor, reason) = parse_actor_reason(&r.actor, &r.reason)?;
            Ok((principal, budget, cap, actor, reason))
        })();
        let (principal, budget, cap, actor, reason) = match validated {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };

        for _ in 0..MAX_ATTEMPTS {
            let now = self.now();
            if let Some(owner) = self.ledger.owner_of(&budget).await?
                && owner != principal
            {
                return Ok(Err(Refusal::new(
                    "budget_taken",
                    format!(
                        "budget `{budget}` already belongs to {owner}; give each principal its own budget"
                    ),
                )));
            }
            let before = self.ledger.load(&principal).await?;
            let mut next = match &before {
                None => PrincipalState::new(principal.clone(), budget.clone(), cap, now),
                Some(state) => state.next(now, |s| {
                    s.cap_usd = cap;
                    s.budget = budget.clone();
                }),
            };
            // Dry-run mutates no IAM, so there the ledger cannot say access is back.
            let restored =
                restorable_under_new_cap(&next, now) && self.config.mode == Mode::Enforce;
            let mut attached = Vec::new();
            if restored {
                attached = next.detached_policy_arns.clone();
                self.iam.attach_all(&principal, &attached).await?;
                mark_restored(&mut next);
            }

            let mut events = vec![(
                Subject::Principal(principal.clone()),
                AuditEvent::new(
                    now,
                    EventKind::CapSet,
                    &actor,
                    json!({"before": before.as_ref().map(|s| view(s, now)), "after": view(&next, now)}),
                )
                .because(&reason),
            )];
            if restored {
                events.push(restored_event(
                    &principal,
                    now,
                    &actor,
                    &reason,
                    &attached,
                    "cap raised above spend",
                ));
            }
            let moved_from = before
                .as_ref()
                .map(|s| s.budget.clone())
                .filter(|old| *old != budget);
            let commit = Commit {
                state: Some((next.clone(), before.as_ref().map(|s| s.version))),
                owner: Some((budget.clone(), principal.clone())),
                release_owner: moved_from.map(|old| (old, principal.clone())),
                events,
                ..Commit::default()
            };
            match self.ledger.commit(commit, now).await {
                Ok(()) => {
                    info!(%principal, %budget, cap = %cap, restored, %actor, "cap set");
                    if restored {
                        metrics::count("Restores", 1);
                        self.announce_restore(&next, now).await?;
                    }
                    let mut answer = view(&next, now);
                    answer["restored"] = Value::Bool(restored);
                    return Ok(Ok(ok(answer)));
                }
                Err(CommitError::Conflict) => self.undo_attach(&principal, &attached).await?,
                Err(CommitError::Ledger(e)) => {
                    self.undo_attach(&principal, &attached).await?;
                    return Err(e.into());
                }
            }
        }
        Err(AdminError::TooManyConflicts(MAX_ATTEMPTS))
    }

    async fn restore(&self, r: Restore) -> Result<Result<Value, Refusal>, AdminError> {
        let validated = (|| {
            let principal = parse_principal(&r.principal)?;
            let (actor, reason) = parse_actor_reason(&r.actor, &r.reason)?;
            Ok((principal, actor, reason))
        })();
        let (principal, actor, reason) = match validated {
            Ok(v) => v,
            Err(refusal) => return Ok(Err(refusal)),
        };

        for _ in 0..MAX_ATTEMPTS {
            let now = self.now();
            let Some(state) = self.ledger.load(&principal).await? else {
                return Ok(Err(not_found(&principal)));
            };
            if state.status == Status::Active {
                let mut answer = view(&state, now);
                answer["restored"] = Value::Bool(false);
                return Ok(Ok(ok(answer)));
            }
            if self.config.mode == Mode::DryRun {
                return Ok(Err(Refusal::new(
                    "dry_run",
                    format!(
                        "seatcap is in dry-run mode and changes no IAM; it would re-attach {:?}",
                        state.detached_policy_arns
                    ),
                )));
            }
            let attached = state.detached_policy_arns.clone();
            self.iam.attach_all(&principal, &attached).await?;
            let next = state.next(now, mark_restored);
            let commit = Commit {
                state: Some((next.clone(), Some(state.version))),
                events: vec![restored_event(
                    &principal,
                    now,
                    &actor,
                    &reason,
                    &attached,
                    "restored by admin",
                )],
                ..Commit::default()
            };
            match self.ledger.commit(commit, now).await {
                Ok(()) => {
                    info!(%principal, policies = ?attached, %actor, "restored");
                    metrics::count("Restores", 1);
                    self.announce_restore(&next, now).await?;
                    let mut answer = view(&next, now);
                    answer["restored"] = Value::Bool(true);
                    answer["reattached_policy_arns"] = json!(attached);
                    return Ok(Ok(ok(answer)));
                }
                Err(CommitError::Conflict) => self.undo_attach(&principal, &attached).await?,
                Err(CommitError::Ledger(e)) => {
                    self.undo_attach(&principal, &attached).await?;
                    return Err(e.into());
                }
            }
        }
        Err(AdminError::TooManyConflicts(MAX_ATTEMPTS))
    }

    /// A write lost a race after re-attaching: take the policies away again so IAM matches the
    /// ledger, which still says blocked; the next attempt decides afresh.
    async fn undo_attach(
        &self,
        principal: &PrincipalArn,
        attached: &[String],
    ) -> Result<(), IamError> {
        if !attached.is_empty() {
            self.iam.detach_all(principal, attached).await?;
        }
        Ok(())
    }

    async fn announce_restore(
        &self,
        state: &PrincipalState,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), LedgerError> {
        let notice = Notice {
            kind: NoticeKind::Restored,
            audience: Audience::PersonAndFinance,
            principal: state.principal.clone(),
            budget: state.budget.clone(),
            spend: state.last_actual_usd,
            cap: match state.effective_cap(now) {
                EffectiveCap::Limited(cap) => Some(cap),
                EffectiveCap::Exempt => None,
            },
            period: None,
            headline: "Bedrock access restored".to_owned(),
            next_step: "Nothing to do: access works again.".to_owned(),
        };
        self.deliver(&notice).await.map(drop)
    }
}

/// A principal blocked by its cap whose last known spend is under the new effective cap.
fn restorable_under_new_cap(state: &PrincipalState, now: chrono::DateTime<chrono::Utc>) -> bool {
    state.status == Status::Blocked
        && state.block_cause == Some(BlockCause::Cap)
        && !state
            .effective_cap(now)
            .is_reached_by(state.last_actual_usd.unwrap_or(Usd::ZERO))
}

fn mark_restored(state: &mut PrincipalState) {
    state.status = Status::Active;
    state.block_cause = None;
    state.blocked_period = None;
    state.detached_policy_arns.clear();
}

fn restored_event(
    principal: &PrincipalArn,
    now: chrono::DateTime<chrono::Utc>,
    actor: &str,
    reason: &str,
    attached: &[String],
    why: &str,
) -> (Subject, AuditEvent) {
    let detail = json!({"reattached_policy_arns": attached, "why": why});
    (
        Subject::Principal(principal.clone()),
        AuditEvent::new(now, EventKind::Restored, actor, detail).because(reason),
    )
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
