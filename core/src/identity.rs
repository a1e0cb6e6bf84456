//! Who is asking (pure): the caller AWS verified for a request to the admin's Function URL,
//! whether finance lets them change caps, and whether the change is about themselves.

use serde_json::Value;

use crate::principal::{ArnParts, PrincipalArn, PrincipalKind, split_arn};
use crate::request::{ACTIONS_WITH_AN_ACTOR, NOT_FOR_ONESELF, Refusal};

/// Who made an admin request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The ARN Lambda's IAM authorization verified (`requestContext.authorizer.iam`).
    Verified(String),
    /// A direct invoke: Lambda says nothing of the invoker, so the request's `actor` is
    /// only what the caller claims, and the audit says so.
    Claimed,
}

impl Caller {
    pub fn is_verified(&self) -> bool {
        matches!(self, Caller::Verified(_))
    }
}

/// How an admin request reached the function.
#[derive(Debug)]
pub enum Arrival {
    /// Through the admin's Function URL (`AuthType: AWS_IAM`): Lambda checked the SigV4
    /// signature and names the caller; the answer goes back as an HTTP response.
    Url(Result<(Caller, Value), Refusal>),
    /// A direct `lambda invoke`: the event is the request; Lambda names no caller.
    Direct(Value),
}

/// Tells a Function URL event (payload format 2.0) from a direct invoke's request and takes
/// the caller from `requestContext.authorizer.iam`, where Lambda puts who signed.
pub fn arrival(event: Value) -> Arrival {
    let context = event.get("requestContext");
    let is_url = event.get("version").and_then(Value::as_str) == Some("2.0")
        && context.and_then(|c| c.get("http")).is_some();
    if !is_url {
        return Arrival::Direct(event);
    }
    let caller = context
        .and_then(|c| c.pointer("/authorizer/iam/userArn"))
        .and_then(Value::as_str)
        .filter(|arn| arn.starts_with("arn:"))
        .map(|arn| Caller::Verified(arn.to_owned()))
        .ok_or_else(|| {
            Refusal::new(
                "forbidden",
                "the request carries no IAM caller: the admin's Function URL must use AuthType AWS_IAM",
            )
        });
    Arrival::Url(caller.and_then(|caller| Ok((caller, url_body(&event)?))))
}

fn url_body(event: &Value) -> Result<Value, Refusal> {
    use base64::Engine;
    let bad = |why: String| Refusal::new("invalid_request", why);
    let text = event.get("body").and_then(Value::as_str).unwrap_or("");
    let bytes = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| bad(format!("the body is not base64: {e}")))?
    } else {
        text.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the body must be one JSON request object: {e}")))
}

/// The HTTP response a Function URL returns for `answer` (`{"ok": ...}`): 200 when done,
/// 403 when the caller may not, 400 for any other refusal.
pub fn http_response(answer: &Value) -> Value {
    let status = match answer.pointer("/error/code").and_then(Value::as_str) {
        None => 200,
        Some("forbidden" | "self_service") => 403,
        Some(_) => 400,
    };
    serde_json::json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": answer.to_string(),
    })
}

/// Who may ask the admin for what, decided before the request is read.
pub struct Gate<'a> {
    /// `SEATCAP_FINANCE_PRINCIPALS`: who may change caps (empty: whoever IAM lets in).
    pub finance: &'a [String],
    /// `SEATCAP_DIRECT_INVOKE`: whether a direct invoke (an unverified actor) is served.
    pub direct_invoke: bool,
}

impl Gate<'_> {
    /// Admits `request` from `caller`, or refuses it with nothing changed. A verified
    /// caller's ARN replaces whatever `actor` the request names: the audit records who AWS
    /// says asked, never a field. Reads are open to whoever reaches the function; changes
    /// only to finance, and never to one's own cap or access (`self_service`).
    pub fn admit(&self, caller: &Caller, request: &mut Value) -> Result<(), Refusal> {
        let arn = match caller {
            Caller::Claimed if self.direct_invoke => return Ok(()),
            Caller::Claimed => {
                return Err(Refusal::new(
                    "forbidden",
                    "direct invoke of the admin function is switched off \
                     (SEATCAP_DIRECT_INVOKE=off): send the request to its Function URL, \
                     signed with your AWS credentials (the seatcap CLI does)",
                ));
            }
            Caller::Verified(arn) => arn,
        };
        let Some(object) = request.as_object_mut() else {
            return Ok(()); // not a request at all: parsing refuses it
        };
        let action = object.get("action").and_then(Value::as_str).unwrap_or("");
        if !ACTIONS_WITH_AN_ACTOR.contains(&action) {
            return Ok(());
        }
        if !self.finance.is_empty() && !is_listed(self.finance, arn) {
            return Err(Refusal::new(
                "forbidden",
                format!(
                    "{arn} is not one of the finance principals (SEATCAP_FINANCE_PRINCIPALS): \
                     only finance may `{action}`"
                ),
            ));
        }
        if NOT_FOR_ONESELF.contains(&action) {
            let target = object.get("principal").and_then(Value::as_str);
            if let Some(target) = target.and_then(|t| t.parse::<PrincipalArn>().ok())
                && is_self(arn, &target)
            {
                return Err(Refusal::new(
                    "self_service",
                    format!(
                        "{arn} may not `{action}` for {target}: that is the caller's own cap \
                         or access; another finance principal must do it"
                    ),
                ));
            }
        }
        object.insert("actor".into(), Value::String(arn.clone()));
        Ok(())
    }
}

/// Whether `arn` is one of `patterns` (`SEATCAP_FINANCE_PRINCIPALS`): each an ARN where `*`
/// stands for any run of characters, e.g. `arn:aws:sts::123456789012:assumed-role/Finance/*`.
pub fn is_listed(patterns: &[String], arn: &str) -> bool {
    patterns.iter().any(|pattern| glob(pattern, arn))
}

fn glob(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether a person on a shared role may have a cap of their own: only where the session
/// name is theirs, not the caller's pick. On an IAM Identity Center role Identity Center
/// names each session after its user; on a role of the account's own the deployer declares
/// (`SEATCAP_SESSION_NAMED_ROLES`) that its trust policy pins the session name
/// (`sts:RoleSessionName` to `${aws:username}` or a SAML name, or `sts:SourceIdentity`).
/// Anywhere else, a person capped as `assumed-role/Dev/alice` calls as `alice2`, or as
/// `bob@example.com`, and escapes the cap or charges someone else: refused.
pub fn session_names_the_person(
    principal: &PrincipalArn,
    session_named_roles: &std::collections::HashSet<String>,
) -> Result<(), Refusal> {
    let Some(role) = principal.role_name() else {
        return Ok(());
    };
    if principal.identity_center_role().is_some() || session_named_roles.contains(role) {
        return Ok(());
    }
    Err(Refusal::new(
        "session_name_not_enforced",
        format!(
            "on role {role} the caller picks the session name, so a cap on one session of it is \
             a cap nobody has to keep: cap the role ({}) instead, or make its trust policy pin \
             the session name (sts:RoleSessionName or sts:SourceIdentity) and add {role} to \
             SEATCAP_SESSION_NAMED_ROLES",
            format_args!(
                "arn:{}:iam::{}:role/{role}",
                principal.partition(),
                principal.account_id()
            )
        ),
    ))
}

/// The person behind an actor, as far as seatcap can tell, for the two-person rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Person {
    /// A name that stands for one person: an IAM user; an IAM Identity Center user (the
    /// session name, the same on every `AWSReservedSSO_*` role: Ann on the finance
    /// permission set is Ann on the developers' too); a session of a role declared
    /// session-named; or, for an actor that is no ARN (a direct invoke's claim), the claim.
    Is(String),
    /// A session of a role whose session names the caller picks: `Finance/ann` and
    /// `Finance/ann2` may be one person, so such a caller may read and ask, not approve.
    NotAPerson,
}

pub fn person_of(actor: &str, session_named_roles: &std::collections::HashSet<String>) -> Person {
    let Some(ArnParts {
        service,
        account,
        resource,
        ..
    }) = split_arn(actor)
    else {
        return Person::Is(actor.to_owned());
    };
    match (service, resource.split_once('/')) {
        ("iam", Some(("user", path))) => {
            let name = path.rsplit('/').next().unwrap_or(path);
            Person::Is(format!("user:{account}:{name}"))
        }
        ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
            Some((role, session)) if crate::identity_center::is_protected_role(role) => {
                Person::Is(format!("identity-center:{}", session.to_lowercase()))
            }
            Some((role, session)) if session_named_roles.contains(role) => {
                Person::Is(format!("role:{account}:{role}/{session}"))
            }
            _ => Person::NotAPerson,
        },
        _ => Person::Is(actor.to_owned()),
    }
}

/// Whether a caller (`arn:...:iam::<account>:user/...` or `arn:...:sts::<account>:
/// assumed-role/<role>/<session>`) would be changing its own cap with a change to
/// `target`: the same user, the same session on a shared role, the role it is using, or,
/// on IAM Identity Center, the same user on another permission set's role (the session
/// name is the user, whichever set it came through).
pub fn is_self(caller: &str, target: &PrincipalArn) -> bool {
    let Some(ArnParts {
        service,
        account,
        resource,
        ..
    }) = split_arn(caller)
    else {
        return false;
    };
    if account != target.account_id() {
        return false;
    }
    let last = |path: &str| path.rsplit('/').next().unwrap_or_default().to_owned();
    match (service, target.kind()) {
        ("iam", PrincipalKind::User) => {
            resource.starts_with("user/") && last(resource) == target.name()
        }
        ("sts", kind) => {
            let Some(assumed) = resource.strip_prefix("assumed-role/") else {
                return false;
            };
            let Some((role, session)) = assumed.split_once('/') else {
                return false;
            };
            match kind {
                PrincipalKind::Role => role == target.name(),
                PrincipalKind::AssumedRole => {
                    let both_identity_center = crate::identity_center::is_protected_role(role)
                        && target.identity_center_role().is_some();
                    target
                        .as_str()
                        .ends_with(&format!(":assumed-role/{role}/{session}"))
                        || (both_identity_center && target.name().eq_ignore_ascii_case(session))
                }
                PrincipalKind::User | PrincipalKind::Group => false,
            }
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arn(text: &str) -> PrincipalArn {
        text.parse().unwrap()
    }

    #[test]
    fn finance_lists_roles_with_any_session() {
        let finance = vec![
            "arn:aws:sts::123456789012:assumed-role/Finance/*".to_owned(),
            "arn:aws:iam::123456789012:user/cfo".to_owned(),
        ];
        assert!(is_listed(
            &finance,
            "arn:aws:sts::123456789012:assumed-role/Finance/ann@example.com"
        ));
        assert!(is_listed(&finance, "arn:aws:iam::123456789012:user/cfo"));
        assert!(!is_listed(&finance, "arn:aws:iam::123456789012:user/cfo2"));
        assert!(!is_listed(
            &finance,
            "arn:aws:sts::123456789012:assumed-role/FinanceX/ann"
        ));
        assert!(!is_listed(
            &finance,
            "arn:aws:sts::999999999999:assumed-role/Finance/ann"
        ));
        assert!(!is_listed(&[], "arn:aws:iam::123456789012:user/cfo"));
        assert!(glob("a*b*c", "a-x-b-y-c") && !glob("a*b*c", "a-x-c") && glob("*", ""));
    }

    fn gate(finance: &[String]) -> Gate<'_> {
        Gate {
            finance,
            direct_invoke: true,
        }
    }

    #[test]
    fn a_verified_caller_is_the_actor_whatever_the_request_claims() {
        let finance = vec!["arn:aws:sts::123456789012:assumed-role/Finance/*".to_owned()];
        let ann = Caller::Verified("arn:aws:sts::123456789012:assumed-role/Finance/ann".into());
        let mut request = serde_json::json!({"action": "restore",
            "principal": "arn:aws:iam::123456789012:user/bob", "actor": "cfo@example.com", "reason": "r"});
        gate(&finance).admit(&ann, &mut request).unwrap();
        assert_eq!(
            request["actor"],
            "arn:aws:sts::123456789012:assumed-role/Finance/ann"
        );
        // Without an actor at all, too.
        let mut request = serde_json::json!({"action": "block",
            "principal": "arn:aws:iam::123456789012:user/bob", "reason": "r"});
        gate(&finance).admit(&ann, &mut request).unwrap();
        assert_eq!(
            request["actor"],
            "arn:aws:sts::123456789012:assumed-role/Finance/ann"
        );
        // Reads are not changed and need no finance listing.
        let dev = Caller::Verified("arn:aws:iam::123456789012:user/bob".into());
        let mut status = serde_json::json!({"action": "status", "principal": "x"});
        gate(&finance).admit(&dev, &mut status).unwrap();
        assert!(status.get("actor").is_none());
    }

    #[test]
    fn changes_are_for_finance_only_and_never_for_oneself() {
        let finance = vec![
            "arn:aws:sts::123456789012:assumed-role/Finance/*".to_owned(),
            "arn:aws:iam::123456789012:user/bob".to_owned(),
        ];
        let request = |action: &str, principal: &str| serde_json::json!({"action": action, "principal": principal, "actor": "x", "reason": "r"});
        let dev = Caller::Verified("arn:aws:iam::123456789012:user/carol".into());
        let refused = gate(&finance)
            .admit(
                &dev,
                &mut request("restore", "arn:aws:iam::123456789012:user/carol"),
            )
            .unwrap_err();
        assert_eq!(refused.code, "forbidden");
        // Finance themselves: not their own cap, access or exemption ...
        let bob = Caller::Verified("arn:aws:iam::123456789012:user/bob".into());
        for action in NOT_FOR_ONESELF {
            let refused = gate(&finance)
                .admit(
                    &bob,
                    &mut request(action, "arn:aws:iam::123456789012:user/bob"),
                )
                .unwrap_err();
            assert_eq!(refused.code, "self_service", "{action}");
        }
        // ... but blocking oneself, and changing someone else's, are fine.
        gate(&finance)
            .admit(
                &bob,
                &mut request("block", "arn:aws:iam::123456789012:user/bob"),
            )
            .unwrap();
        gate(&finance)
            .admit(
                &bob,
                &mut request("restore", "arn:aws:iam::123456789012:user/carol"),
            )
            .unwrap();
        // No finance list: whoever IAM lets through the URL, still not for oneself.
        gate(&[])
            .admit(
                &dev,
                &mut request("restore", "arn:aws:iam::123456789012:user/bob"),
            )
            .unwrap();
        assert_eq!(
            gate(&[])
                .admit(
                    &dev,
                    &mut request("grant_override", "arn:aws:iam::123456789012:user/carol")
                )
                .unwrap_err()
                .code,
            "self_service"
        );
    }

    #[test]
    fn a_function_url_event_names_its_caller_and_carries_the_request_in_its_body() {
        let request = serde_json::json!({"action": "status", "principal": "p"});
        let event = |authorizer: Value, body: Value, base64: bool| {
            serde_json::json!({"version": "2.0", "rawPath": "/", "body": body,
                "isBase64Encoded": base64,
                "requestContext": {"http": {"method": "POST"}, "authorizer": authorizer}})
        };
        let iam = serde_json::json!({"iam": {"userArn": "arn:aws:iam::123456789012:user/ann"}});
        let Arrival::Url(Ok((caller, body))) =
            arrival(event(iam.clone(), request.to_string().into(), false))
        else {
            panic!("a URL request");
        };
        assert_eq!(
            caller,
            Caller::Verified("arn:aws:iam::123456789012:user/ann".into())
        );
        assert_eq!(body, request);
        use base64::Engine;
        let encoded = base64::engine::general_purpose::STANDARD.encode(request.to_string());
        assert!(matches!(
            arrival(event(iam.clone(), encoded.into(), true)),
            Arrival::Url(Ok(_))
        ));
        let Arrival::Url(Err(no_iam)) =
            arrival(event(Value::Null, request.to_string().into(), false))
        else {
            panic!("refused");
        };
        assert_eq!(no_iam.code, "forbidden");
        let Arrival::Url(Err(bad)) = arrival(event(iam, "{not json".into(), false)) else {
            panic!("refused");
        };
        assert_eq!(bad.code, "invalid_request");
        // A request that merely has a field called requestContext is a direct invoke.
        assert!(matches!(arrival(request.clone()), Arrival::Direct(_)));
        assert_eq!(
            http_response(&serde_json::json!({"ok": true}))["statusCode"],
            200
        );
        let refused =
            serde_json::json!({"ok": false, "error": {"code": "self_service", "message": "m"}});
        assert_eq!(http_response(&refused)["statusCode"], 403);
    }

    #[test]
    fn a_direct_invoke_is_served_as_claimed_unless_switched_off() {
        let mut request = serde_json::json!({"action": "restore", "principal": "p", "actor": "cfo", "reason": "r"});
        gate(&[]).admit(&Caller::Claimed, &mut request).unwrap();
        assert_eq!(request["actor"], "cfo");
        let off = Gate {
            finance: &[],
            direct_invoke: false,
        };
        let refused = off.admit(&Caller::Claimed, &mut request).unwrap_err();
        assert_eq!(refused.code, "forbidden");
        // Even a read: a direct invoke is not served at all.
        let mut status = serde_json::json!({"action": "status", "principal": "p"});
        assert!(off.admit(&Caller::Claimed, &mut status).is_err());
    }

    #[test]
    fn a_caller_is_itself_as_a_user_a_session_or_the_role_it_uses() {
        let user = "arn:aws:iam::123456789012:user/dev/alice";
        assert!(is_self(user, &arn("arn:aws:iam::123456789012:user/alice")));
        assert!(!is_self(user, &arn("arn:aws:iam::123456789012:user/bob")));
        assert!(!is_self(user, &arn("arn:aws:iam::999999999999:user/alice")));
        let session =
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123/alice@example.com";
        assert!(is_self(
            session,
            &arn(
                "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123/alice@example.com"
            )
        ));
        assert!(!is_self(
            session,
            &arn("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123/bob@example.com")
        ));
        assert!(is_self(
            session,
            &arn(
                "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Dev_0123"
            )
        ));
        assert!(!is_self(
            session,
            &arn("arn:aws:iam::123456789012:user/alice@example.com")
        ));
        assert!(!is_self(
            "not an arn",
            &arn("arn:aws:iam::123456789012:user/alice")
        ));
    }

    #[test]
    fn one_person_across_identity_center_roles_and_none_behind_a_chosen_session_name() {
        let ann_dev = arn(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_ClaudeDev_0123abcd/ann@example.com",
        );
        let finance = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Finance_4567ef01/Ann@example.com";
        assert!(
            is_self(finance, &ann_dev),
            "Ann on two permission sets is Ann"
        );
        assert!(!is_self(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Finance_4567ef01/bob@example.com",
            &ann_dev
        ));
        let declared: std::collections::HashSet<String> = ["Approvers".to_owned()].into();
        assert_eq!(
            person_of(finance, &declared),
            person_of(ann_dev.as_str(), &declared)
        );
        assert_eq!(
            person_of(
                "arn:aws:sts::123456789012:assumed-role/Finance/ann2",
                &declared
            ),
            Person::NotAPerson
        );
        assert_eq!(
            person_of(
                "arn:aws:sts::123456789012:assumed-role/Approvers/ann",
                &declared
            ),
            Person::Is("role:123456789012:Approvers/ann".into())
        );
        assert_eq!(
            person_of("arn:aws:iam::123456789012:user/team/cfo", &declared),
            Person::Is("user:123456789012:cfo".into())
        );
        assert_eq!(
            person_of("finance@example.com", &declared),
            Person::Is("finance@example.com".into()),
            "a direct invoke's claim"
        );
    }
}
