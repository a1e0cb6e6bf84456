//! What a committed change to a principal tells people (pure): one notice kind per change,
//! or nothing for changes nobody needs to hear about (enrolment, protect, unprotect, a cap
//! set again to the same amount).

use chrono::{DateTime, Utc};

use crate::access::RemainingAccess;
use crate::audit::{Actor, EventKind};
use crate::decide::Audience;
use crate::identity_center::NotEnforceable;
use crate::intent::Taken;
use crate::notice::{Notice, NoticeKind};
use crate::state::{EffectiveCap, PrincipalState, Status};

/// A change as committed: what it was, who made it, the state before and after, and what
/// it did to IAM.
pub struct Committed<'a> {
    pub change: EventKind,
    pub actor: &'a str,
    pub before: Option<&'a PrincipalState>,
    pub after: &'a PrincipalState,
    pub access: Access<'a>,
    /// Where Bedrock access remains after a cut (see [`crate::access`]).
    pub remaining: &'a [RemainingAccess],
    pub now: DateTime<Utc>,
    /// Who people ask for more (`SEATCAP_FINANCE_CONTACT`).
    pub contact: &'a str,
}

/// What the change did to the principal's Bedrock access.
pub enum Access<'a> {
    Restored,
    Cut(&'a Taken),
    Unchanged,
}

pub fn announcement(c: &Committed) -> Option<Notice> {
    let (kind, audience, headline, next_step) = match c.access {
        Access::Restored => (
            NoticeKind::Restored,
            Audience::PersonAndFinance,
            format!("Bedrock access restored: {}", restored_because(c)),
            "Nothing to do: access works again.".to_owned(),
        ),
        Access::Cut(_) if !c.remaining.is_empty() => incomplete(c.remaining),
        Access::Cut(taken) => cut(c, taken),
        Access::Unchanged => unchanged_access(c)?,
    };
    Some(Notice {
        kind,
        audience,
        principal: c.after.principal.clone(),
        budget: c.after.budget.clone(),
        spend: c.after.spend_now(c.now).map(|(spend, _)| spend),
        cap: match c.after.effective_cap(c.now) {
            EffectiveCap::Limited(cap) => Some(cap),
            EffectiveCap::Exempt => None,
        },
        // A block's own period; otherwise now's (a rollover's restore is about the new one).
        period: Some(
            c.after
                .blocked_period
                .clone()
                .unwrap_or_else(|| crate::period::month_key(c.now)),
        ),
        team: c.after.team.clone(),
        headline,
        next_step,
    })
}

fn restored_because(c: &Committed) -> String {
    match c.change {
        EventKind::CapSet => format!("the cap was raised to {}", c.after.cap_usd),
        EventKind::OverrideGranted => format!("override granted ({})", newest_override(c)),
        EventKind::Protected => "protected by finance (break-glass)".to_owned(),
        EventKind::Restored if Actor::of(c.actor) == Actor::Rollover => {
            "a new budget period started".to_owned()
        }
        EventKind::Restored if Actor::of(c.actor) == Actor::Reconcile => {
            "spend is under the cap (found by reconcile)".to_owned()
        }
        _ => "restored by finance".to_owned(),
    }
}

type Draft = (NoticeKind, Audience, String, String);

/// Access was cut as configured but still flows from elsewhere: never claim a cut-off.
pub fn incomplete(remaining: &[RemainingAccess]) -> Draft {
    let places: Vec<String> = remaining
        .iter()
        .map(|r| format!("{} on {}", r.policy, r.on))
        .collect();
    (
        NoticeKind::EnforcementIncomplete,
        Audience::Security,
        "Cap reached and managed policies detached, but Bedrock access REMAINS".to_owned(),
        format!(
            "Still allowed by: {}. Remove Bedrock from those policies, or switch to \
             SEATCAP_ENFORCEMENT=deny, whose explicit deny wins over any allow.",
            places.join("; ")
        ),
    )
}

/// A cut recorded but not in force: the person's Identity Center role does not carry the
/// shard that lists them. Security and finance hear it with the fix.
pub fn not_enforceable(not_enforceable: &NotEnforceable) -> Draft {
    (
        NoticeKind::NotEnforceable,
        Audience::Security,
        "Cap reached, but Bedrock access could NOT be cut: the permission set does not reference seatcap's policy"
            .to_owned(),
        not_enforceable.explain(),
    )
}

fn cut(c: &Committed, taken: &Taken) -> Draft {
    let ask = format!(
        "Ask {} for an override, or wait for the next budget period.",
        c.contact
    );
    match c.change {
        EventKind::DriftRepaired => (
            NoticeKind::Drift,
            Audience::Security,
            match &taken.deny_policy_arn {
                Some(deny) if taken.detached_policy_arns.is_empty() => format!(
                    "seatcap's deny policy was detached while blocked; attached again: {deny}"
                ),
                _ => format!(
                    "Bedrock policies re-attached while blocked; detached again: {:?}",
                    taken.detached_policy_arns
                ),
            },
            format!(
                "Changed behind seatcap's back between {} (the last change seatcap made) and \
                 {}; CloudTrail's Attach*Policy and Detach*Policy events name who.",
                c.before
                    .map_or(c.now, |b| b.updated_at)
                    .format("%Y-%m-%d %H:%M UTC"),
                c.now.format("%Y-%m-%d %H:%M UTC")
            ),
        ),
        EventKind::Blocked => (
            NoticeKind::CutOff,
            Audience::PersonAndFinance,
            "Bedrock access blocked by finance".to_owned(),
            format!("Ask {} why and when it returns.", c.contact),
        ),
        EventKind::OverrideRevoked => (
            NoticeKind::CutOff,
            Audience::PersonAndFinance,
            "Bedrock access cut off: the override was revoked and the cap is reached".to_owned(),
            ask,
        ),
        _ => (
            NoticeKind::CutOff,
            Audience::PersonAndFinance,
            "Bedrock access cut off: the cap is reached".to_owned(),
            ask,
        ),
    }
}

/// A change that left IAM as it was: cap and override changes are still news to the person.
fn unchanged_access(c: &Committed) -> Option<Draft> {
    let still_blocked = if c.after.status == Status::Blocked {
        " Access stays blocked: a block by finance lasts until finance restores it."
    } else {
        ""
    };
    match c.change {
        EventKind::CapSet => {
            // Enrolling a principal is not announced: a rollout of a thousand seats must
            // not post a thousand messages. Its first message is its first warning.
            let before = c.before.filter(|b| b.cap_usd != c.after.cap_usd)?;
            let headline = format!(
                "Monthly cap changed from {} to {}",
                before.cap_usd, c.after.cap_usd
            );
            Some((
                NoticeKind::CapChanged,
                Audience::PersonAndFinance,
                headline,
                format!(
                    "Nothing to do. You are warned before the cap; at the cap Bedrock access \
                     stops until the next budget period.{still_blocked}"
                ),
            ))
        }
        EventKind::OverrideGranted => Some((
            NoticeKind::OverrideGranted,
            Audience::PersonAndFinance,
            format!("Override granted: {}", newest_override(c)),
            format!("Nothing to do: the cap is higher until the override expires.{still_blocked}"),
        )),
        EventKind::OverrideRevoked => Some((
            NoticeKind::OverrideRevoked,
            Audience::PersonAndFinance,
            "Override revoked: the monthly cap applies again".to_owned(),
            format!(
                "Access continues while spend is under the cap. If you need more, ask {}.",
                c.contact
            ),
        )),
        EventKind::OverrideExpired => Some((
            NoticeKind::OverrideExpired,
            Audience::PersonAndFinance,
            "Override expired: the monthly cap applies again".to_owned(),
            format!(
                "Access continues while spend is under the cap. If you need more, ask {}.",
                c.contact
            ),
        )),
        _ => None,
    }
}

/// `+$50.00 until 2026-11-30 14:00 UTC` or `exempt until ...`.
fn newest_override(c: &Committed) -> String {
    let Some(grant) = c.after.overrides.last() else {
        return "no override".to_owned();
    };
    let amount = match (grant.exempt, grant.extra_usd) {
        (true, _) => "exempt from the cap".to_owned(),
        (false, Some(extra)) => format!("+{extra}"),
        (false, None) => "+$0.00".to_owned(),
    };
    format!(
        "{amount} until {}",
        grant.expires_at.format("%Y-%m-%d %H:%M UTC")
    )
}
