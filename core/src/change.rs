//! What each of finance's changes does to one principal, decided purely from its state:
//! the state after it, the IAM step it needs and the audit kind, or a [`Refusal`].

use chrono::{DateTime, Utc};

use crate::audit::EventKind;
use crate::intent::{IamStep, Scope, Taken};
use crate::money::Usd;
use crate::period;
use crate::request::Refusal;
use crate::state::{BlockCause, Override, OverrideRequest, PrincipalState, Status};

/// What a command does to one principal, decided from its current state (pure).
pub enum Change {
    /// Already as asked: nothing to write.
    Unchanged,
    To {
        // Boxed: a state is large next to `Unchanged`.
        next: Box<PrincipalState>,
        iam: IamStep,
        kind: EventKind,
    },
}

pub fn restore(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    if state.status == Status::Active {
        return Ok(Change::Unchanged);
    }
    Ok(Change::To {
        next: Box::new(state.next(now, |s| mark_restored(s, now))),
        iam: IamStep::GiveBack(Taken::of(state)),
        kind: EventKind::Restored,
    })
}

/// A manual block: it survives period rollover and cap raises until `restore`.
pub fn block(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
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
pub fn protect(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    if state.protected {
        return Ok(Change::Unchanged);
    }
    let lift_cap_block = state.status == Status::Blocked
        && state.block_cause.is_some_and(BlockCause::ends_with_the_cap);
    Ok(Change::To {
        next: Box::new(state.next(now, |s| {
            s.protected = true;
            if lift_cap_block {
                mark_restored(s, now);
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

pub fn unprotect(state: &PrincipalState, now: DateTime<Utc>) -> Result<Change, Refusal> {
    if !state.protected {
        return Ok(Change::Unchanged);
    }
    Ok(enforce_if_over_cap(
        state.next(now, |s| s.protected = false),
        now,
        EventKind::Unprotected,
    ))
}

pub fn grant_override(state: &PrincipalState, now: DateTime<Utc>, grant: Override) -> Change {
    let mut next = state.next(now, |s| {
        s.overrides.retain(|o| o.is_active(now));
        s.overrides.push(grant);
    });
    let restore = restorable_under_cap(&next, now);
    if restore {
        mark_restored(&mut next, now);
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

/// Whether a grant waits for a second finance principal (`SEATCAP_APPROVAL_OVER_USD`):
/// an exemption, or one that would lift the effective cap above the line by what one person
/// granted, counting the overrides still active that nobody approved (so $499 twice is
/// $998: the line is on what the cap becomes, not on each step). No line: nothing waits.
pub fn needs_approval(
    grant: &Override,
    line: Option<Usd>,
    state: Option<&PrincipalState>,
    now: DateTime<Utc>,
) -> bool {
    let Some(line) = line else {
        return false;
    };
    if grant.exempt {
        return true;
    }
    // Raises of the cap this period count the same as overrides.
    let unapproved = state.map_or(Usd::ZERO, |state| {
        crate::cap_raise::unapproved_rise(state, now)
    });
    grant
        .extra_usd
        .is_some_and(|extra| unapproved + extra > line)
}

/// Records a grant that needs approval; it changes no cap until approved.
pub fn request_override(state: &PrincipalState, now: DateTime<Utc>, grant: Override) -> Change {
    let request = OverrideRequest {
        grant,
        requested_at: now,
    };
    Change::To {
        next: Box::new(state.next(now, |s| {
            s.override_requests.retain(|r| r.grant.is_active(now));
            s.override_requests.push(request);
        })),
        iam: IamStep::Nothing,
        kind: EventKind::OverrideRequested,
    }
}

/// The second finance principal's approval: the request becomes an override (both names
/// kept), exactly as a grant would. The one who asked cannot approve it: `asked_it` says
/// whether the actor who asked (`granted_by`) is the approver's person.
pub fn approve_override(
    state: &PrincipalState,
    now: DateTime<Utc>,
    request_id: &str,
    approver: &str,
    asked_it: impl Fn(&str) -> bool,
) -> Result<Change, Refusal> {
    let Some(request) = state
        .open_override_requests(now)
        .find(|r| r.grant.id == request_id)
    else {
        return Err(Refusal::new(
            "not_found",
            format!(
                "{} has no override request `{request_id}` waiting (approved already, lapsed, or never made)",
                state.principal
            ),
        ));
    };
    if request.grant.granted_by == approver || asked_it(&request.grant.granted_by) {
        return Err(Refusal::new(
            "second_approver_required",
            format!(
                "{approver} asked for this override; another finance principal must approve it"
            ),
        ));
    }
    let grant = Override {
        approved_by: Some(approver.to_owned()),
        ..request.grant.clone()
    };
    let mut without = state.clone();
    without
        .override_requests
        .retain(|r| r.grant.id != request_id && r.grant.is_active(now));
    Ok(grant_override(&without, now, grant))
}

pub fn revoke_override(
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
pub fn enforce_if_over_cap(
    mut next: PrincipalState,
    now: DateTime<Utc>,
    kind: EventKind,
) -> Change {
    let open = next.status == Status::Active || next.block_cause == Some(BlockCause::Downgrade);
    let over_in = next
        .spend_now(now)
        .filter(|(spend, _)| next.effective_cap(now).is_reached_by(*spend))
        .map(|(_, period)| period.to_owned());
    let Some(period) = over_in.filter(|_| open && !next.protected) else {
        return Change::To {
            next: Box::new(next),
            iam: IamStep::Nothing,
            kind,
        };
    };
    next.status = Status::Blocked;
    next.block_cause = Some(BlockCause::Cap);
    next.blocked_period = Some(period);
    Change::To {
        next: Box::new(next),
        iam: IamStep::Cut(Scope::Everything),
        kind,
    }
}

/// A cut at the cap because `spend`, known for `period` (the current one), is at or over the
/// effective cap: decided on the state as read, so a principal blocked by the cap meanwhile,
/// protected, exempt, or under a cap raised since is left as it is.
pub fn block_at_cap(
    state: &PrincipalState,
    now: DateTime<Utc>,
    period: &str,
    spend: Usd,
) -> Change {
    let downgraded = state.block_cause == Some(BlockCause::Downgrade);
    let over = state.effective_cap(now).is_reached_by(spend);
    if (state.status == Status::Blocked && !downgraded) || state.protected || !over {
        return Change::Unchanged;
    }
    Change::To {
        next: Box::new(state.next(now, |s| {
            s.status = Status::Blocked;
            s.block_cause = Some(BlockCause::Cap);
            s.blocked_period = Some(period.to_owned());
            s.record_spend(period.to_owned(), spend);
        })),
        iam: IamStep::Cut(crate::intent::Scope::Everything),
        kind: EventKind::Enforced,
    }
}

/// A principal blocked (or downgraded) by its cap whose spend known for the current period
/// is under its effective cap.
pub fn restorable_under_cap(state: &PrincipalState, now: DateTime<Utc>) -> bool {
    let spend = state.spend_now(now).map_or(Usd::ZERO, |(spend, _)| spend);
    state.status == Status::Blocked
        && state.block_cause.is_some_and(BlockCause::ends_with_the_cap)
        && !state.effective_cap(now).is_reached_by(spend)
}

/// The state after everything seatcap took is given back. A spend figure from an ended
/// period goes too: in the new period it must not cut anyone again.
pub fn mark_restored(state: &mut PrincipalState, now: DateTime<Utc>) {
    state.status = Status::Active;
    state.block_cause = None;
    state.blocked_period = None;
    state.detached_policy_arns.clear();
    state.deny_policy_arn = None;
    state.not_enforceable = None;
    state.forget_ended_spend(now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::PrincipalArn;

    fn grant(extra: Option<&str>, exempt: bool, by: &str) -> Override {
        let now = chrono::Utc::now();
        Override {
            id: "o1".into(),
            extra_usd: extra
                .map(|e| Usd::parse_request_amount(e, Usd::from_cents(1_000_000_00)).unwrap()),
            exempt,
            expires_at: now + chrono::Duration::days(3),
            granted_by: by.into(),
            reason: "launch".into(),
            approved_by: None,
        }
    }

    #[test]
    fn only_exemptions_and_grants_above_the_line_wait_for_approval() {
        let line = Some(Usd::from_cents(100_00));
        let now = chrono::Utc::now();
        assert!(!needs_approval(
            &grant(Some("100.00"), false, "ann"),
            line,
            None,
            now
        ));
        assert!(needs_approval(
            &grant(Some("100.01"), false, "ann"),
            line,
            None,
            now
        ));
        assert!(needs_approval(&grant(None, true, "ann"), line, None, now));
        assert!(!needs_approval(&grant(None, true, "ann"), None, None, now));
        // The line is on what the cap rises by: a second $60 after an unapproved $60 waits;
        // after an approved one it does not.
        let mut state = PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            Usd::from_cents(200_00),
            now,
        );
        state.overrides.push(grant(Some("60.00"), false, "ann"));
        assert!(needs_approval(
            &grant(Some("60.00"), false, "ann"),
            line,
            Some(&state),
            now
        ));
        assert!(!needs_approval(
            &grant(Some("40.00"), false, "ann"),
            line,
            Some(&state),
            now
        ));
        state.overrides[0].approved_by = Some("carl".into());
        assert!(!needs_approval(
            &grant(Some("60.00"), false, "ann"),
            line,
            Some(&state),
            now
        ));
    }

    #[test]
    fn a_request_counts_for_nothing_until_a_second_person_approves_it() {
        let now = chrono::Utc::now();
        let alice: PrincipalArn = "arn:aws:iam::123456789012:user/alice".parse().unwrap();
        let state =
            PrincipalState::new(alice, "seatcap-alice".into(), Usd::from_cents(200_00), now);
        let Change::To { next, iam, kind } =
            request_override(&state, now, grant(Some("500.00"), false, "ann"))
        else {
            panic!("a change");
        };
        assert_eq!(kind, EventKind::OverrideRequested);
        assert!(matches!(iam, IamStep::Nothing));
        assert!(next.overrides.is_empty());
        assert_eq!(next.effective_cap(now), state.effective_cap(now));
        assert_eq!(next.open_override_requests(now).count(), 1);

        let own = approve_override(&next, now, "o1", "ann", |asker| asker == "ann")
            .err()
            .unwrap();
        assert_eq!(own.code, "second_approver_required");
        assert_eq!(
            approve_override(&next, now, "o2", "carl", |_| false)
                .err()
                .unwrap()
                .code,
            "not_found"
        );
        let Ok(Change::To {
            next: approved,
            kind,
            ..
        }) = approve_override(&next, now, "o1", "carl", |_| false)
        else {
            panic!("approved");
        };
        assert_eq!(kind, EventKind::OverrideGranted);
        assert_eq!(approved.override_requests.len(), 0);
        assert_eq!(approved.overrides[0].granted_by, "ann");
        assert_eq!(approved.overrides[0].approved_by.as_deref(), Some("carl"));
        assert_eq!(approved.version, next.version + 1);
        // Approved once: a second approval finds nothing.
        assert_eq!(
            approve_override(&approved, now, "o1", "dave", |_| false)
                .err()
                .unwrap()
                .code,
            "not_found"
        );
        // A request whose expiry passed lapses.
        let later = now + chrono::Duration::days(4);
        assert_eq!(
            approve_override(&next, later, "o1", "carl", |_| false)
                .err()
                .unwrap()
                .code,
            "not_found"
        );
    }
}
