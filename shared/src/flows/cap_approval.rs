//! `set_cap` raises above the two-person line (see [`crate::cap_raise`]): held as a request
//! that changes neither the cap nor the AWS Budget, and applied, budget first, when a second
//! finance person approves it. The line is decided again on every read inside the commit:
//! a raise that passed the first check but meets another committed meanwhile is refused
//! (`approval_needed`), and its budget is put back to the cap the ledger holds.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::admin::{AdminError, Answer, CapTarget, short_id};
use crate::app::App;
use crate::cap_raise::{CapRequest, open_cap_requests, raise_needs_approval, request_cap};
use crate::identity::{Person, person_of};
use crate::money::Usd;
use crate::period::month_key;
use crate::principal::PrincipalArn;
use crate::request::{Mutation, Refusal, parse_principal};
use crate::state::PrincipalState;

/// A second finance person's approval of a held raise.
pub struct Approval {
    pub request_id: String,
    pub approver: String,
    pub requested_by: String,
}

/// Why the raise to `cap` may not be committed on `before`, if it may not: above the line
/// without an approval, or approving a request no longer open (approved already, lapsed).
pub(crate) fn refuse_raise(
    before: Option<&PrincipalState>,
    cap: Usd,
    line: Option<Usd>,
    approval: Option<&Approval>,
    now: DateTime<Utc>,
) -> Option<Refusal> {
    match approval {
        None => raise_needs_approval(before, cap, line, now).then(|| {
            Refusal::new(
                "approval_needed",
                format!(
                    "raising the cap to {cap} takes this period's unapproved rises above the \
                     approval line ({}): send it again as `set_cap` to record it for a second \
                     finance person",
                    line.unwrap_or(Usd::ZERO)
                ),
            )
        }),
        Some(approval) => {
            let open = before.is_some_and(|state| {
                open_cap_requests(state, now).any(|r| r.id == approval.request_id)
            });
            (!open).then(|| {
                Refusal::new(
                    "not_found",
                    format!(
                        "no cap raise `{}` is waiting (approved already, lapsed with its month, or never made)",
                        approval.request_id
                    ),
                )
            })
        }
    }
}

impl App {
    /// A raise above the line becomes a request: `Some(answer)` with `approval_needed` and
    /// its `request_id`. `None`: the raise may go ahead (or it is no raise).
    pub(crate) async fn hold_raise(
        &self,
        target: &CapTarget,
        (actor, reason): &(String, String),
        now: DateTime<Utc>,
    ) -> Result<Option<Answer>, AdminError> {
        let line = self.config.approval_over_usd;
        if line.is_none() {
            return Ok(None);
        }
        let Some(state) = self.ledger.load(&target.principal).await? else {
            return Ok(None);
        };
        if !raise_needs_approval(Some(&state), target.cap, line, now) {
            return Ok(None);
        }
        let request = CapRequest {
            id: short_id(),
            cap_usd: target.cap,
            budget: target.budget.clone(),
            team: target.team.clone(),
            requested_by: actor.clone(),
            reason: reason.clone(),
            requested_at: now,
            period: month_key(now),
        };
        let id = request.id.clone();
        let mutation = Mutation {
            principal: target.principal.to_string(),
            actor: actor.clone(),
            reason: reason.clone(),
        };
        let answer = self
            .mutate(&mutation, move |state, now| {
                Ok(request_cap(state, now, request.clone()))
            })
            .await?;
        Ok(Some(answer.map(|mut answer| {
            answer["approval_needed"] = true.into();
            answer["request_id"] = id.into();
            answer
        })))
    }

    /// The budget first (a cut must never wait on a limit Budgets does not have), then the
    /// ledger; a raise the ledger then refuses puts the budget back.
    pub(crate) async fn set_cap_and_budget(
        &self,
        target: CapTarget,
        who: (String, String),
        tag_value: Option<&str>,
        approval: Option<&Approval>,
    ) -> Result<Answer, AdminError> {
        let spend = match self
            .sync_budget(&target.principal, &target.budget, target.cap, tag_value)
            .await?
        {
            Ok(spend) => self.with_metered(&target.principal, spend).await?,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let principal = target.principal.clone();
        let answer = self.set_cap(target, who, spend, approval).await?;
        if let Err(refusal) = &answer
            && matches!(refusal.code, "approval_needed" | "not_found")
        {
            self.budget_back(&principal).await?;
        }
        Ok(answer)
    }

    async fn budget_back(&self, principal: &PrincipalArn) -> Result<(), AdminError> {
        if let Some(state) = self.ledger.load(principal).await? {
            let _ = self
                .sync_budget(principal, &state.budget, state.cap_usd, None)
                .await?;
        }
        Ok(())
    }

    /// `approve_override` naming a held cap raise: `None` when `request_id` is not one (an
    /// override request, then). The one who asked may not approve, as any of their roles.
    pub(crate) async fn approve_cap_raise(
        &self,
        principal: &str,
        request_id: &str,
        (approver, person): (&str, &str),
        reason: &str,
    ) -> Result<Option<Answer>, AdminError> {
        let Ok(principal) = parse_principal(principal) else {
            return Ok(None);
        };
        let Some(state) = self.ledger.load(&principal).await? else {
            return Ok(None);
        };
        let now = self.now();
        let Some(request) = open_cap_requests(&state, now)
            .find(|r| r.id == request_id)
            .cloned()
        else {
            return Ok(None);
        };
        let asked = person_of(&request.requested_by, &self.config.session_named_roles);
        if request.requested_by == approver || asked == Person::Is(person.to_owned()) {
            return Ok(Some(Err(Refusal::new(
                "second_approver_required",
                format!(
                    "{approver} asked for this raise; another finance principal must approve it"
                ),
            ))));
        }
        let target = CapTarget {
            principal,
            budget: request.budget.clone(),
            cap: request.cap_usd,
            team: request.team.clone(),
        };
        let approval = Approval {
            request_id: request.id.clone(),
            approver: approver.to_owned(),
            requested_by: request.requested_by.clone(),
        };
        let answer = self
            .set_cap_and_budget(
                target,
                (approver.to_owned(), reason.to_owned()),
                None,
                Some(&approval),
            )
            .await?;
        Ok(Some(answer.map(|mut answer| {
            answer["approved"] =
                json!({"request_id": request.id, "requested_by": request.requested_by});
            answer
        })))
    }
}
