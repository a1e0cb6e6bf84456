//! Finance's admin requests as typed data (what deployers and the `seatcap` CLI send), their
//! validation, and the change each one makes to a principal, decided purely from its state.
//! A request that does not validate is a [`Refusal`] and changes nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::money::Usd;
use crate::period;
use crate::principal::PrincipalArn;
use crate::state::{Override, Status};

/// Requests as deployers send them. Unknown fields are refused, not ignored: a typo in a
/// field name must not silently do something else.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Request {
    SetCap(SetCap),
    AdoptBudget(AdoptBudget),
    Restore(Mutation),
    Block(Mutation),
    Protect(Mutation),
    Unprotect(Mutation),
    GrantOverride(GrantOverride),
    ApproveOverride(ApproveOverride),
    RevokeOverride(RevokeOverride),
    Status(PrincipalOnly),
    List(ListRequest),
    History(HistoryRequest),
    Usage(UsageRequest),
    FlushNotifications(NoFields),
    SubscribeEmail(SubscribeEmail),
    /// What a deployment needs and lacks, each with its fix.
    Doctor(NoFields),
    /// Finance's price for a model no table prices yet.
    SetPrice(crate::finance_price::SetPrice),
}

pub const ACTIONS: &[&str] = &[
    "set_cap",
    "adopt_budget",
    "restore",
    "block",
    "protect",
    "unprotect",
    "grant_override",
    "approve_override",
    "revoke_override",
    "status",
    "list",
    "history",
    "usage",
    "flush_notifications",
    "subscribe_email",
    "doctor",
    "set_price",
];

/// The actions that change something and say who does it (`actor`): through the Function
/// URL, `actor` is the caller AWS verified, whatever the request says.
pub const ACTIONS_WITH_AN_ACTOR: &[&str] = &[
    "set_cap",
    "adopt_budget",
    "restore",
    "block",
    "protect",
    "unprotect",
    "grant_override",
    "approve_override",
    "revoke_override",
    "subscribe_email",
    "set_price",
];

/// The changes no caller may make to its own cap or access (separation of duties): a
/// person cannot raise, restore, protect or exempt themselves. Blocking oneself, or
/// subscribing to one's own messages, is allowed.
pub const NOT_FOR_ONESELF: &[&str] = &[
    "set_cap",
    "adopt_budget",
    "restore",
    "protect",
    "unprotect",
    "grant_override",
    "approve_override",
    "revoke_override",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCap {
    pub principal: String,
    pub budget: String,
    pub cap_usd: String,
    /// The cost-allocation tag value of a budget seatcap creates; the principal's name if
    /// not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_value: Option<String>,
    /// The team whose Slack channel hears about this principal; kept if not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub actor: String,
    pub reason: String,
}

/// Takes a budget made elsewhere (the console) under management; its limit becomes the cap.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptBudget {
    pub principal: String,
    pub budget: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    pub actor: String,
    pub reason: String,
}

/// `restore`, `block`, `protect`, `unprotect`: who, by whom, why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mutation {
    pub principal: String,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantOverride {
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_usd: Option<String>,
    #[serde(default)]
    pub exempt: bool,
    pub expires_at: String,
    pub actor: String,
    pub reason: String,
}

/// A second finance principal's approval of an override request (two-person rule).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveOverride {
    pub principal: String,
    /// The `id` of the request, as `status` or `list` with `pending` show it.
    pub request_id: String,
    pub actor: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeOverride {
    pub principal: String,
    /// One override by id; without it, every override of the principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_id: Option<String>,
    pub actor: String,
    pub reason: String,
}

/// An email subscription to the notification topic: a person's own messages (`principal`),
/// or everything finance (`audience: finance`, severity warning and above) or security
/// (`audience: security`) should see.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeEmail {
    pub email: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    pub actor: String,
    pub reason: String,
}

/// A request that takes nothing but its `action`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalOnly {
    pub principal: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Only principals with override requests waiting for approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryRequest {
    pub principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One month's metered spend, summed by person, model or team.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    /// A month, `YYYY-MM`, or a day, `YYYY-MM-DD`; this month when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default)]
    pub by: crate::usage::UsageBy,
}

/// A `usage` period: a month, `YYYY-MM`, or a day, `YYYY-MM-DD`.
pub fn parse_usage_period(text: &str) -> Result<String, Refusal> {
    use crate::alert::PeriodUnit::{Daily, Monthly};
    match period::unit_of(text) {
        Some(Monthly | Daily) => Ok(text.to_owned()),
        _ => Err(Refusal {
            code: "invalid_period",
            message: format!(
                "period must be a month, YYYY-MM, or a day, YYYY-MM-DD (got {text:?})"
            ),
        }),
    }
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 500;

/// A refusal: the request was wrong, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

pub fn validate_set_cap(
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
pub fn parse_team(team: Option<&str>) -> Result<(), Refusal> {
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
pub fn email_filter(r: &SubscribeEmail) -> Result<(Value, Option<PrincipalArn>), Refusal> {
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
            Ok((filter, Some(principal)))
        }
        (None, Some("finance")) => Ok((json!({"severity": ["warning", "critical"]}), None)),
        (None, Some("security")) => Ok((json!({"audience": ["security"]}), None)),
        _ => Err(Refusal::new(
            "invalid_request",
            "give either `principal` (a person's own messages) or `audience`: `finance` or `security`",
        )),
    }
}

/// The override a valid grant makes, under the new override's `id`.
pub fn validate_override(
    r: &GrantOverride,
    max: Usd,
    now: DateTime<Utc>,
    id: String,
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
    let grant = Override {
        id,
        extra_usd,
        exempt: r.exempt,
        expires_at,
        granted_by: who.0.clone(),
        reason: who.1.clone(),
        approved_by: None,
    };
    Ok((grant, who))
}

pub fn page_size(limit: Option<u32>) -> Result<u32, Refusal> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        n @ 1..=MAX_PAGE => Ok(n),
        n => Err(Refusal::new(
            "invalid_request",
            format!("limit {n} is outside 1..={MAX_PAGE}"),
        )),
    }
}

/// `blocked|arn:...`: resume in `blocked` after that principal; `active|`: start of `active`.
pub fn parse_list_token(
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

pub fn parse_request(request: Value) -> Result<Request, Refusal> {
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

pub fn parse_principal(text: &str) -> Result<PrincipalArn, Refusal> {
    text.parse().map_err(|e: crate::principal::PrincipalError| {
        Refusal::new("invalid_principal", e.to_string())
    })
}

pub fn parse_budget_name(text: &str) -> Result<String, Refusal> {
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

pub fn parse_actor_reason(actor: &str, reason: &str) -> Result<(String, String), Refusal> {
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

pub fn not_found(principal: &PrincipalArn) -> Refusal {
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
