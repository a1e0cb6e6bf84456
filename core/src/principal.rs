//! Principal ARNs: the IAM identities whose Bedrock access seatcap caps.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What kind of IAM identity a principal is; it decides which IAM calls enforce its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    Role,
    Group,
    /// A person on a shared role (IAM Identity Center): one session name of a role many
    /// people assume. Its access is cut by a deny on the role, not by detaching anything.
    AssumedRole,
}

/// A validated IAM user, role or group ARN, e.g. `arn:aws:iam::123456789012:user/alice` or
/// `arn:aws:iam::123456789012:role/team/claude-dev` (paths allowed), or a person on a shared
/// role as their sessions name them:
/// `arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123abcd/alice@example.com`.
/// The text form is the identity everywhere: in the ledger, in admin requests and in answers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrincipalArn {
    arn: String,
    kind: PrincipalKind,
    /// Byte offset of the friendly name (the last path segment) in `arn`.
    name_start: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error(
        "`{0}` is not an IAM principal ARN; expected arn:aws:iam::<12-digit account>:user/<name>, :role/<name> or :group/<name>, or arn:aws:sts::<12-digit account>:assumed-role/<role name>/<session name>"
    )]
    Malformed(String),
    #[error("`{arn}`: {problem}")]
    Invalid { arn: String, problem: &'static str },
}

impl PrincipalArn {
    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The friendly name IAM's APIs take (`UserName`, `RoleName`, `GroupName`): the last
    /// path segment. For a person on a shared role, the session name.
    pub fn name(&self) -> &str {
        &self.arn[self.name_start..]
    }

    /// `user`, `role`, `group` or `assumed-role`, as the ARN says.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
            PrincipalKind::Group => "group",
            PrincipalKind::AssumedRole => "assumed-role",
        }
    }

    /// The shared role a person's sessions are of (`AssumedRole` only).
    pub fn role_name(&self) -> Option<&str> {
        (self.kind == PrincipalKind::AssumedRole).then(|| {
            let resource = self.arn.splitn(6, ':').nth(5).unwrap_or_default();
            resource
                .trim_start_matches("assumed-role/")
                .split('/')
                .next()
                .unwrap_or_default()
        })
    }

    /// The IAM Identity Center role this principal is (a role) or is a session of (a
    /// person), if it is one: IAM refuses every write to such a role, so its cut is a deny
    /// in the account's Identity Center shards ([`crate::identity_center`]).
    pub fn identity_center_role(&self) -> Option<&str> {
        match self.kind {
            PrincipalKind::AssumedRole => self
                .role_name()
                .filter(|role| crate::identity_center::is_protected_role(role)),
            PrincipalKind::Role => {
                let resource = self.arn.splitn(6, ':').nth(5).unwrap_or_default();
                let path_and_name = resource.trim_start_matches("role/");
                crate::identity_center::is_protected_role(path_and_name).then(|| self.name())
            }
            PrincipalKind::User | PrincipalKind::Group => None,
        }
    }

    /// `aws`, `aws-cn` or `aws-us-gov`, as the ARN says (validated at parse time).
    pub fn partition(&self) -> &str {
        self.arn.split(':').nth(1).unwrap_or("aws")
    }

    pub fn account_id(&self) -> &str {
        // Validated at parse time: arn:<partition>:iam::<account>:...
        self.arn.split(':').nth(4).unwrap_or_default()
    }
}

impl FromStr for PrincipalArn {
    type Err = PrincipalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || PrincipalError::Malformed(text.to_owned());
        let invalid = |problem| PrincipalError::Invalid {
            arn: text.to_owned(),
            problem,
        };

        let mut parts = text.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(""), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(malformed());
        };
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") {
            return Err(invalid("unknown AWS partition"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("the account id must be 12 digits"));
        }
        let (kind, rest) = resource.split_once('/').ok_or_else(malformed)?;
        let kind = match (service, kind) {
            ("iam", "user") => PrincipalKind::User,
            ("iam", "role") => PrincipalKind::Role,
            ("iam", "group") => PrincipalKind::Group,
            ("sts", "assumed-role") => PrincipalKind::AssumedRole,
            _ => return Err(malformed()),
        };
        if kind == PrincipalKind::AssumedRole {
            return assumed_role(text, rest).map_err(invalid);
        }
        let name = rest.rsplit('/').next().unwrap_or(rest);
        // IAM's own rules: names of [\w+=,.@-], at most 64 characters (128 for groups).
        if name.is_empty() || name.len() > 128 {
            return Err(invalid("the name must be 1 to 128 characters"));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
        if !name.chars().all(allowed) || !rest.chars().all(|c| allowed(c) || c == '/') {
            return Err(invalid(
                "IAM names and paths allow only letters, digits and _+=,.@-/",
            ));
        }
        if rest.contains("//") {
            return Err(invalid("empty path segment"));
        }
        Ok(PrincipalArn {
            arn: text.to_owned(),
            kind,
            name_start: text.len() - name.len(),
        })
    }
}

/// `<role name>/<session name>`: IAM's rules, role names of 1 to 64 and session names of 2
/// to 64 characters of [\w+=,.@-]. No path: a session ARN never carries the role's path.
fn assumed_role(text: &str, rest: &str) -> Result<PrincipalArn, &'static str> {
    let (role, session) = rest
        .split_once('/')
        .ok_or("expected assumed-role/<role name>/<session name>")?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    if role.is_empty() || role.len() > 64 || !role.chars().all(allowed) {
        return Err("the role name must be 1 to 64 letters, digits or _+=,.@-");
    }
    if !(2..=64).contains(&session.len()) || !session.chars().all(allowed) {
        return Err("the session name must be 2 to 64 letters, digits or _+=,.@-");
    }
    Ok(PrincipalArn {
        arn: text.to_owned(),
        kind: PrincipalKind::AssumedRole,
        name_start: text.len() - session.len(),
    })
}

impl fmt::Display for PrincipalArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.arn)
    }
}

impl Serialize for PrincipalArn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.arn)
    }
}

impl<'de> Deserialize<'de> for PrincipalArn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The fields of any ARN, `arn:<partition>:<service>:<region>:<account>:<resource>`, for
/// callers' and invocation identities, which are not all principals seatcap manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArnParts<'a> {
    pub partition: &'a str,
    pub service: &'a str,
    pub account: &'a str,
    pub resource: &'a str,
}

/// A role session's ARN, `arn:<partition>:sts::<account>:assumed-role/<role>/<session>`,
/// read into its parts; `None` for anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleSession<'a> {
    pub partition: &'a str,
    pub account: &'a str,
    pub role: &'a str,
    pub session: &'a str,
}

pub fn role_session(text: &str) -> Option<RoleSession<'_>> {
    let ArnParts {
        partition,
        service: "sts",
        account,
        resource,
    } = split_arn(text)?
    else {
        return None;
    };
    let (role, session) = resource.strip_prefix("assumed-role/")?.split_once('/')?;
    Some(RoleSession {
        partition,
        account,
        role,
        session,
    })
}

pub fn split_arn(text: &str) -> Option<ArnParts<'_>> {
    let mut fields = text.splitn(6, ':');
    let (Some("arn"), Some(partition), Some(service), Some(_region), Some(account), Some(resource)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return None;
    };
    Some(ArnParts {
        partition,
        service,
        account,
        resource,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_users_roles_and_groups_with_paths() {
        let alice: PrincipalArn = "arn:aws:iam::123456789012:user/alice".parse().unwrap();
        assert_eq!(
            (alice.kind(), alice.name(), alice.account_id()),
            (PrincipalKind::User, "alice", "123456789012")
        );

        let role: PrincipalArn = "arn:aws:iam::123456789012:role/team/claude-dev"
            .parse()
            .unwrap();
        assert_eq!(
            (role.kind(), role.name()),
            (PrincipalKind::Role, "claude-dev")
        );

        let group: PrincipalArn = "arn:aws-us-gov:iam::123456789012:group/atlas"
            .parse()
            .unwrap();
        assert_eq!(
            (group.kind(), group.name()),
            (PrincipalKind::Group, "atlas")
        );

        let email: PrincipalArn = "arn:aws:iam::123456789012:user/quinn.lee@example.com"
            .parse()
            .unwrap();
        assert_eq!(email.name(), "quinn.lee@example.com");
    }

    #[test]
    fn parses_people_on_shared_roles() {
        let arn =
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev_0123abcd/alice@example.com";
        let alice: PrincipalArn = arn.parse().unwrap();
        assert_eq!(
            (
                alice.kind(),
                alice.name(),
                alice.role_name(),
                alice.account_id()
            ),
            (
                PrincipalKind::AssumedRole,
                "alice@example.com",
                Some("AWSReservedSSO_Dev_0123abcd"),
                "123456789012"
            )
        );
        assert_eq!(alice.as_str(), arn);
        let user: PrincipalArn = "arn:aws:iam::123456789012:user/alice".parse().unwrap();
        assert_eq!(user.role_name(), None);
        for bad in [
            "arn:aws:sts::123456789012:assumed-role/dev",
            "arn:aws:sts::123456789012:assumed-role/dev/a",
            "arn:aws:sts::123456789012:assumed-role//alice",
            "arn:aws:sts::123456789012:assumed-role/dev/al ice",
            "arn:aws:sts::123456789012:assumed-role/path/dev/alice",
            "arn:aws:sts::123456789012:user/alice",
            "arn:aws:iam::123456789012:assumed-role/dev/alice",
            &format!(
                "arn:aws:sts::123456789012:assumed-role/dev/{}",
                "x".repeat(65)
            ),
        ] {
            assert!(
                bad.parse::<PrincipalArn>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_an_iam_principal() {
        for bad in [
            "",
            "alice",
            "arn:aws:iam::123456789012:policy/Bedrock",
            "arn:aws:iam::12345:user/alice",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:user/",
            "arn:aws:iam::123456789012:user/al ice",
            "arn:aws:iam::123456789012:user/a//b",
            "arn:foo:iam::123456789012:user/alice",
            "arn:aws:iam:us-east-1:123456789012:user/alice",
        ] {
            assert!(
                bad.parse::<PrincipalArn>().is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn round_trips_through_json_as_its_arn() {
        let arn: PrincipalArn = "arn:aws:iam::123456789012:role/dev".parse().unwrap();
        let json = serde_json::to_string(&arn).unwrap();
        assert_eq!(json, "\"arn:aws:iam::123456789012:role/dev\"");
        assert_eq!(serde_json::from_str::<PrincipalArn>(&json).unwrap(), arn);
        assert!(serde_json::from_str::<PrincipalArn>("\"arn:aws:iam::1:user/x\"").is_err());
    }
}
