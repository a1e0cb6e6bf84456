//! The two-person line on `set_cap` raises (issue 25). Above `SEATCAP_APPROVAL_OVER_USD`,
//! what a principal's cap rises by within a period, whoever raises it and in how many steps,
//! together with the overrides granted without approval, needs a second finance person: the
//! raise is recorded as a request, changes no cap and no budget, and becomes the cap when
//! another finance person approves it (`approve_override` with its `request_id`). A first
//! cap is a limit where there was none, and lowering one never needs approval.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::EventKind;
use crate::change::Change;
use crate::intent::IamStep;
use crate::money::Usd;
use crate::period::month_key;
use crate::state::PrincipalState;

/// A raise applied without a second person, in `period`: it counts toward the line for the
/// rest of that period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapRaise {
    pub period: String,
    pub usd: Usd,
    pub by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

/// A raise above the line waiting for a second finance person; it lapses with its period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapRequest {
    pub id: String,
    pub cap_usd: Usd,
    pub budget: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub period: String,
}

/// What `cap` raises `state`'s cap by, if it raises it.
pub fn raise_of(state: &PrincipalState, cap: Usd) -> Option<Usd> {
    (cap > state.cap_usd)
        .then(|| Usd::new(cap.as_decimal().saturating_sub(state.cap_usd.as_decimal())))
}

/// What the effective cap rose by this period without a second person: raises applied
/// unapproved and active overrides granted unapproved.
pub fn unapproved_rise(state: &PrincipalState, now: DateTime<Utc>) -> Usd {
    let period = month_key(now);
    let raises = state
        .cap_raises
        .iter()
        .filter(|r| r.period == period && r.approved_by.is_none())
        .fold(Usd::ZERO, |sum, r| sum + r.usd);
    state
        .overrides
        .iter()
        .filter(|o| o.is_active(now) && o.approved_by.is_none())
        .filter_map(|o| o.extra_usd)
        .fold(raises, |sum, extra| sum + extra)
}

/// Whether setting `state`'s cap to `cap` takes a second finance person under `line`.
pub fn raise_needs_approval(
    state: Option<&PrincipalState>,
    cap: Usd,
    line: Option<Usd>,
    now: DateTime<Utc>,
) -> bool {
    let (Some(line), Some(state)) = (line, state) else {
        return false;
    };
    raise_of(state, cap).is_some_and(|raise| unapproved_rise(state, now) + raise > line)
}

/// The requests still open: this period's.
pub fn open_cap_requests(
    state: &PrincipalState,
    now: DateTime<Utc>,
) -> impl Iterator<Item = &CapRequest> {
    let period = month_key(now);
    state
        .cap_requests
        .iter()
        .filter(move |r| r.period == period)
}

/// Records `request`; it changes no cap until approved.
pub fn request_cap(state: &PrincipalState, now: DateTime<Utc>, request: CapRequest) -> Change {
    Change::To {
        next: Box::new(state.next(now, |s| {
            let period = month_key(now);
            s.cap_requests.retain(|r| r.period == period);
            s.cap_requests.push(request);
        })),
        iam: IamStep::Nothing,
        kind: EventKind::CapRaiseRequested,
    }
}

/// Writes into `next` (the state with the new cap) that `before`'s cap rose, and by whom:
/// this period's raises kept, older ones and the approved request dropped.
pub fn record_raise(
    before: &PrincipalState,
    next: &mut PrincipalState,
    now: DateTime<Utc>,
    by: &str,
    approval: Option<(&str, &str)>,
) {
    let period = month_key(now);
    next.cap_raises.retain(|r| r.period == period);
    next.cap_requests.retain(|r| r.period == period);
    if let Some((request_id, _)) = approval {
        next.cap_requests.retain(|r| r.id != request_id);
    }
    if let Some(usd) = raise_of(before, next.cap_usd) {
        next.cap_raises.push(CapRaise {
            period,
            usd,
            by: by.to_owned(),
            approved_by: approval.map(|(_, approver)| approver.to_owned()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Override;

    fn usd(text: &str) -> Usd {
        Usd::new(text.parse().unwrap())
    }

    fn alice(now: DateTime<Utc>) -> PrincipalState {
        PrincipalState::new(
            "arn:aws:iam::123456789012:user/alice".parse().unwrap(),
            "seatcap-alice".into(),
            usd("200"),
            now,
        )
    }

    #[test]
    fn raises_in_steps_and_overrides_add_up_to_the_line() {
        let now = Utc::now();
        let line = Some(usd("500"));
        let mut state = alice(now);
        assert!(
            !raise_needs_approval(None, usd("5000"), line, now),
            "a first cap"
        );
        assert!(!raise_needs_approval(Some(&state), usd("699"), line, now));
        assert!(raise_needs_approval(Some(&state), usd("701"), line, now));
        assert!(
            !raise_needs_approval(Some(&state), usd("100"), line, now),
            "lowering"
        );
        assert!(
            !raise_needs_approval(Some(&state), usd("5000"), None, now),
            "no line"
        );

        // $499 now, then $2 more: the second needs approval.
        let mut next = state.clone();
        next.cap_usd = usd("699");
        record_raise(&state, &mut next, now, "ann", None);
        state = next;
        assert_eq!(unapproved_rise(&state, now), usd("499"));
        assert!(raise_needs_approval(Some(&state), usd("702"), line, now));
        assert!(!raise_needs_approval(Some(&state), usd("700"), line, now));

        // An unapproved override counts too; an approved raise does not.
        state.overrides.push(Override {
            id: "o1".into(),
            extra_usd: Some(usd("1")),
            exempt: false,
            expires_at: now + chrono::Duration::days(1),
            granted_by: "ann".into(),
            reason: "r".into(),
            approved_by: None,
        });
        assert!(raise_needs_approval(Some(&state), usd("700"), line, now));
        let mut approved = state.clone();
        approved.cap_usd = usd("2000");
        record_raise(&state, &mut approved, now, "ann", Some(("q1", "cy")));
        assert_eq!(unapproved_rise(&approved, now), usd("500"));

        // Next month the raises are history.
        let later = now + chrono::Duration::days(40);
        assert_eq!(unapproved_rise(&state, later), Usd::ZERO);
    }
}
