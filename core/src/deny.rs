//! Denying Bedrock to one person on a shared role (pure): who is denied, in which of the
//! role's seatcap-owned deny policies ("shards"), and each shard's policy document.
//!
//! A person on an IAM Identity Center permission set is a session of a role the whole team
//! assumes: detaching from the role would cut the team. Instead seatcap attaches its own
//! managed policies to the role, each denying `bedrock:Invoke*` when `aws:userid` is one of
//! `<role unique id>:<session name>`. The limits that decide how many people fit are IAM's,
//! and computed here rather than guessed:
//!
//! * a managed policy document holds at most [`MANAGED_POLICY_MAX_CHARS`] characters,
//!   whitespace not counted (seatcap writes compact JSON, and names hold no whitespace);
//! * a role has at most 10 managed policies attached by default (20 with a quota raise), so
//!   seatcap uses at most `SEATCAP_DENY_SHARDS_PER_ROLE` of them (default
//!   [`DEFAULT_SHARDS_PER_ROLE`]), leaving the rest to the permission set;
//! * a policy keeps at most 5 versions: the IAM adapter deletes the oldest non-default one
//!   before writing a sixth.
//!
//! With role ids of 21 characters and the longest session names IAM allows (64), one shard
//! holds [`worst_case_per_shard`] = 67 people and the default 5 shards 335; with 30-character
//! email addresses, 108 and 540.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// IAM's limit on a managed policy document, whitespace excluded.
pub const MANAGED_POLICY_MAX_CHARS: usize = 6144;
/// Shards seatcap may attach to one role unless configured otherwise.
pub const DEFAULT_SHARDS_PER_ROLE: usize = 5;
/// IAM's quota on managed policies attached to a role, raised as far as AWS allows.
pub const MAX_ATTACHED_TO_ROLE: usize = 20;
/// Where seatcap's own policies live; nothing else there is seatcap's to touch.
pub const POLICY_PATH: &str = "/seatcap/";
/// IAM role unique ids are `AROA` and 17 more characters.
pub const ROLE_ID_CHARS: usize = 21;
/// IAM's longest session name.
pub const SESSION_NAME_MAX_CHARS: usize = 64;
/// What a deny takes away: every Bedrock invoke (models, streams, agents, flows; the
/// Converse APIs are authorised as InvokeModel*).
pub const DENIED_ACTIONS: &str = "bedrock:Invoke*";

/// The people denied on one role, shard by shard. Stored in the ledger, where every change
/// is a conditional write, so two blocks at once cannot lose one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDenyList {
    /// The role's unique id (`AROA...`): `aws:userid` of its sessions is `<id>:<session>`.
    pub role_id: String,
    /// Session names per shard; shard `n` is the policy [`shard_policy_name`]`(role, n)`.
    pub shards: Vec<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "role {role}: its {shards} deny policies are full ({people} people); raise \
     SEATCAP_DENY_SHARDS_PER_ROLE (IAM allows {MAX_ATTACHED_TO_ROLE} managed policies per \
     role with a quota raise) or use separate roles"
)]
pub struct DenyListFull {
    pub role: String,
    pub shards: usize,
    pub people: usize,
}

impl RoleDenyList {
    pub fn new(role_id: impl Into<String>) -> Self {
        RoleDenyList {
            role_id: role_id.into(),
            shards: Vec::new(),
        }
    }

    pub fn shard_of(&self, session: &str) -> Option<usize> {
        self.shards
            .iter()
            .position(|shard| shard.iter().any(|s| s == session))
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `session` to the first shard it fits in (documents stay within IAM's size) and
    /// returns that shard; a person already denied stays where they are.
    pub fn add(
        &mut self,
        role: &str,
        session: &str,
        max_shards: usize,
    ) -> Result<usize, DenyListFull> {
        if let Some(shard) = self.shard_of(session) {
            return Ok(shard);
        }
        for (n, shard) in self.shards.iter_mut().enumerate() {
            shard.push(session.to_owned());
            if document_chars(&document(&self.role_id, shard, u64::MAX)) <= MANAGED_POLICY_MAX_CHARS
            {
                return Ok(n);
            }
            shard.pop();
        }
        if self.shards.len() < max_shards {
            self.shards.push(vec![session.to_owned()]);
            return Ok(self.shards.len() - 1);
        }
        Err(DenyListFull {
            role: role.to_owned(),
            shards: self.shards.len(),
            people: self.len(),
        })
    }

    /// Removes `session`; returns the shard it was in.
    pub fn remove(&mut self, session: &str) -> Option<usize> {
        let n = self.shard_of(session)?;
        self.shards[n].retain(|s| s != session);
        Some(n)
    }

    /// Shard `n`'s policy document as written under the list's lease `version`, or `None`
    /// when it denies nobody (a deny with an empty list is not a valid policy; an empty
    /// shard is detached from the role instead).
    pub fn shard_document(&self, n: usize, version: u64) -> Option<Value> {
        self.shards
            .get(n)
            .filter(|s| !s.is_empty())
            .map(|s| document(&self.role_id, s, version))
    }
}

/// The statement id prefix that carries the version of the list a shard was written from.
const SID_PREFIX: &str = "SeatcapV";

/// The deny policy for `sessions` of the role whose unique id is `role_id`, written under
/// the list's lease `version`. The version in the statement id is the fence: a writer that
/// finds a newer one in IAM than its own lease does not overwrite it.
pub fn document(role_id: &str, sessions: &[String], version: u64) -> Value {
    let user_ids: Vec<String> = sessions.iter().map(|s| format!("{role_id}:{s}")).collect();
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": format!("{SID_PREFIX}{version}"),
            "Effect": "Deny",
            "Action": DENIED_ACTIONS,
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:userid": user_ids}}
        }]
    })
}

/// The list version a shard's document was written under (see [`document`]).
pub fn written_version(document: &Value) -> Option<u64> {
    document["Statement"][0]["Sid"]
        .as_str()?
        .strip_prefix(SID_PREFIX)?
        .parse()
        .ok()
}

/// The sessions a shard's document denies, as `<role id>:<session>` (a plain role's shard
/// matches them exactly, an Identity Center shard by `StringLike`; see [`sso_document`]).
pub fn denied_user_ids(document: &Value) -> Vec<String> {
    let condition = &document["Statement"][0]["Condition"];
    let ids = match &condition["StringEquals"]["aws:userid"] {
        Value::Null => &condition["StringLike"]["aws:userid"],
        ids => ids,
    };
    match ids {
        Value::Array(ids) => ids
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Value::String(id) => vec![id.clone()],
        _ => Vec::new(),
    }
}

/// The characters IAM counts: the compact JSON, whose only whitespace would be inside
/// names that IAM does not allow whitespace in.
pub fn document_chars(document: &Value) -> usize {
    document
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count()
}

/// `seatcap-deny-<role>-<n>`: at most 13 + 64 + 1 + 2 characters, within IAM's 128.
pub fn shard_policy_name(role: &str, n: usize) -> String {
    format!("seatcap-deny-{role}-{n}")
}

pub fn shard_policy_arn(partition: &str, account: &str, role: &str, n: usize) -> String {
    format!(
        "arn:{partition}:iam::{account}:policy{POLICY_PATH}{}",
        shard_policy_name(role, n)
    )
}

/// How many people with the longest session names fit one shard.
pub fn worst_case_per_shard() -> usize {
    per_shard(SESSION_NAME_MAX_CHARS)
}

/// How many people with session names of `session_chars` characters fit one shard.
pub fn per_shard(session_chars: usize) -> usize {
    let role_id = "A".repeat(ROLE_ID_CHARS);
    let session = "s".repeat(session_chars);
    let mut people = Vec::new();
    loop {
        people.push(session.clone());
        // The longest version a statement id can carry.
        if document_chars(&document(&role_id, &people, u64::MAX)) > MANAGED_POLICY_MAX_CHARS {
            return people.len() - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE_ID: &str = "AROAEXAMPLEID12345678";

    fn session(n: usize, width: usize) -> String {
        format!("{n:0width$}")
    }

    #[test]
    fn the_computed_limits() {
        assert_eq!(ROLE_ID.len(), ROLE_ID_CHARS);
        assert_eq!(worst_case_per_shard(), 67);
        assert!(worst_case_per_shard() * DEFAULT_SHARDS_PER_ROLE >= 300);
        // Typical Identity Center session names: 30-character e-mail addresses.
        assert_eq!(per_shard(30) * DEFAULT_SHARDS_PER_ROLE, 540);
        // The policy name fits IAM's 128 characters with the longest role name.
        assert!(shard_policy_name(&"r".repeat(64), DEFAULT_SHARDS_PER_ROLE).len() <= 128);
    }

    #[test]
    fn shards_fill_to_the_size_limit_and_no_further() {
        let mut list = RoleDenyList::new(ROLE_ID);
        let widest = SESSION_NAME_MAX_CHARS;
        let capacity = worst_case_per_shard() * DEFAULT_SHARDS_PER_ROLE;
        for n in 0..capacity {
            list.add("dev", &session(n, widest), DEFAULT_SHARDS_PER_ROLE)
                .unwrap();
        }
        assert_eq!(list.shards.len(), DEFAULT_SHARDS_PER_ROLE);
        for n in 0..list.shards.len() {
            let chars = document_chars(&list.shard_document(n, u64::MAX).unwrap());
            assert!(chars <= MANAGED_POLICY_MAX_CHARS, "shard {n}: {chars}");
            assert!(
                chars > MANAGED_POLICY_MAX_CHARS - 90,
                "shard {n} is full: {chars}"
            );
        }
        let full = list
            .add("dev", &session(capacity, widest), DEFAULT_SHARDS_PER_ROLE)
            .unwrap_err();
        assert_eq!(full.people, capacity);
        assert!(
            full.to_string().contains("SEATCAP_DENY_SHARDS_PER_ROLE"),
            "{full}"
        );
    }

    #[test]
    fn adding_twice_keeps_one_entry_and_removing_frees_the_place() {
        let mut list = RoleDenyList::new(ROLE_ID);
        assert_eq!(list.add("dev", "alice@example.com", 2), Ok(0));
        assert_eq!(list.add("dev", "alice@example.com", 2), Ok(0));
        assert_eq!(list.len(), 1);
        assert_eq!(list.remove("alice@example.com"), Some(0));
        assert_eq!(list.remove("alice@example.com"), None);
        assert_eq!(
            list.shard_document(0, 1),
            None,
            "an empty shard has no document"
        );
    }

    #[test]
    fn the_document_denies_exactly_the_listed_sessions() {
        let doc = document(ROLE_ID, &["alice@example.com".into(), "bob".into()], 42);
        assert_eq!(written_version(&doc), Some(42));
        assert_eq!(denied_user_ids(&doc).len(), 2);
        let statement = &doc["Statement"][0];
        assert_eq!(statement["Effect"], "Deny");
        assert_eq!(statement["Action"], DENIED_ACTIONS);
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:userid"],
            json!([
                format!("{ROLE_ID}:alice@example.com"),
                format!("{ROLE_ID}:bob")
            ])
        );
        assert_eq!(
            shard_policy_arn("aws", "123456789012", "dev", 1),
            "arn:aws:iam::123456789012:policy/seatcap/seatcap-deny-dev-1"
        );
    }
}
