//! People on IAM Identity Center roles (pure): recognising such a role, the account's
//! Identity Center deny shards, and what a deployer must add to a permission set.
//!
//! Identity Center turns each permission set into a role `AWSReservedSSO_<set>_<id>` at
//! path [`ROLE_PATH`]`<region>/` in every account it is assigned to, and **IAM refuses every
//! write to such a role** (`UnmodifiableEntity: Cannot perform the operation on the protected
//! role '…' - this role is only modifiable by AWS`). A plain shared role gets seatcap's
//! per-role shards attached ([`crate::deny`]); a protected one cannot. Instead the template
//! creates, with fixed names (a permission set names them in every account), the customer
//! managed policies [`shard_policy_name`]`(0..N)` at [`crate::deny::POLICY_PATH`], each
//! denying nobody at first. The permission set references them, so Identity Center attaches
//! them to its role, and seatcap only ever rewrites their documents: a person is cut by
//! adding `<role unique id>:<session name>` to a shard. One set of shards serves every
//! Identity Center role of the account; an entry is scoped to one role by its unique id.
//!
//! The limits are the plain shards' ([`crate::deny`]): the same entries, so 67 people per
//! shard at worst and 335 with the default 5 shards, for the account as a whole.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::deny::{DENIED_ACTIONS, DenyListFull, MANAGED_POLICY_MAX_CHARS, POLICY_PATH};

/// Where Identity Center puts the roles it makes (then the region and the role name).
pub const ROLE_PATH: &str = "/aws-reserved/sso.amazonaws.com/";
/// How Identity Center names the roles it makes: `AWSReservedSSO_<permission set>_<id>`.
pub const ROLE_PREFIX: &str = "AWSReservedSSO_";
/// The session part of an entry that denies every session of the role (a cap on the whole
/// role, not on one person): matched by `StringLike`, and no session name holds a `*`.
pub const WHOLE_ROLE: &str = "*";
/// What an empty shard's condition matches: no `aws:userid` is ever this (a role session's
/// is `<AROA…>:<session>`, a user's `AIDA…`), so the shard denies nobody. A deny needs at
/// least one value, and an empty shard stays attached through the permission set.
pub const NOBODY: &str = "seatcap:denies-nobody";

/// Whether `role` (a role name, or a role ARN's path and name) is one Identity Center made,
/// and so one IAM refuses to change.
pub fn is_protected_role(path_and_name: &str) -> bool {
    let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
    name.starts_with(ROLE_PREFIX)
        || path_and_name
            .trim_start_matches('/')
            .starts_with(ROLE_PATH.trim_start_matches('/'))
}

/// The permission set a role was made for: `ClaudeDev` of `AWSReservedSSO_ClaudeDev_0123abcd`
/// (set names may hold underscores; the id after the last one is Identity Center's).
pub fn permission_set_name(role: &str) -> Option<&str> {
    let rest = role.strip_prefix(ROLE_PREFIX)?;
    let (set, _id) = rest.rsplit_once('_')?;
    (!set.is_empty()).then_some(set)
}

/// `seatcap-sso-deny-<n + 1>`: fixed names, the same in every account, numbered from 1.
pub fn shard_policy_name(n: usize) -> String {
    format!("seatcap-sso-deny-{}", n + 1)
}

pub fn shard_policy_arn(partition: &str, account: &str, n: usize) -> String {
    format!(
        "arn:{partition}:iam::{account}:policy{POLICY_PATH}{}",
        shard_policy_name(n)
    )
}

/// Which shard an ARN of [`shard_policy_arn`]'s form names, if it is one.
pub fn shard_number(policy_arn: &str) -> Option<usize> {
    let (_, name) = policy_arn.split_once(&format!(":policy{POLICY_PATH}"))?;
    let n: usize = name.strip_prefix("seatcap-sso-deny-")?.parse().ok()?;
    n.checked_sub(1)
}

/// One person (or a whole role) denied through the account's Identity Center shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denied {
    pub role: String,
    /// The role's unique id (`AROA...`) when the entry was written: a role Identity Center
    /// made again (a permission set removed and assigned again) has a new one.
    pub role_id: String,
    /// The session name, or [`WHOLE_ROLE`].
    pub session: String,
}

impl Denied {
    /// The `aws:userid` pattern the shard's condition holds.
    pub fn user_id(&self) -> String {
        format!("{}:{}", self.role_id, self.session)
    }
}

/// Who the account's Identity Center shards deny, shard by shard. Stored in the ledger,
/// where every change is a conditional write under the list's lease.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDenyList {
    pub shards: Vec<Vec<Denied>>,
}

impl SsoDenyList {
    pub fn shard_of(&self, role: &str, session: &str) -> Option<usize> {
        self.shards
            .iter()
            .position(|shard| shard.iter().any(|d| d.role == role && d.session == session))
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `role_id` as `role`'s unique id; returns the shards whose entries changed (a
    /// role made again: each must be written again, or it denies an id no session has).
    pub fn set_role_id(&mut self, role: &str, role_id: &str) -> Vec<usize> {
        let mut changed = Vec::new();
        for (n, shard) in self.shards.iter_mut().enumerate() {
            for denied in shard.iter_mut().filter(|d| d.role == role) {
                if denied.role_id != role_id {
                    denied.role_id = role_id.to_owned();
                    if !changed.contains(&n) {
                        changed.push(n);
                    }
                }
            }
        }
        changed
    }

    /// Adds the entry to the first shard it fits in (documents stay within IAM's size) and
    /// returns that shard; one listed already stays where it is.
    pub fn add(&mut self, denied: Denied, max_shards: usize) -> Result<usize, DenyListFull> {
        if let Some(n) = self.shard_of(&denied.role, &denied.session) {
            return Ok(n);
        }
        for (n, shard) in self.shards.iter_mut().enumerate() {
            shard.push(denied.clone());
            if crate::deny::document_chars(&document(shard, u64::MAX)) <= MANAGED_POLICY_MAX_CHARS {
                return Ok(n);
            }
            shard.pop();
        }
        if self.shards.len() < max_shards {
            self.shards.push(vec![denied]);
            return Ok(self.shards.len() - 1);
        }
        Err(DenyListFull {
            role: "(the account's Identity Center roles)".to_owned(),
            shards: self.shards.len(),
            people: self.len(),
        })
    }

    /// Removes the entry; returns the shard it was in.
    pub fn remove(&mut self, role: &str, session: &str) -> Option<usize> {
        let n = self.shard_of(role, session)?;
        self.shards[n].retain(|d| !(d.role == role && d.session == session));
        Some(n)
    }

    /// Shard `n`'s document under the list's lease `version`. An empty (or not yet used)
    /// shard denies nobody: it stays referenced by the permission sets.
    pub fn shard_document(&self, n: usize, version: u64) -> Value {
        document(self.shards.get(n).map_or(&[][..], Vec::as_slice), version)
    }
}

/// An Identity Center shard's document: deny `bedrock:Invoke*` when `aws:userid` is like
/// one of the entries (exact for a session, whose name holds no wildcard; every session of
/// the role for [`WHOLE_ROLE`]). The statement id carries the list's lease version, the
/// fence the plain shards use too ([`crate::deny::written_version`]).
pub fn document(entries: &[Denied], version: u64) -> Value {
    let mut user_ids: Vec<String> = entries.iter().map(Denied::user_id).collect();
    if user_ids.is_empty() {
        user_ids.push(NOBODY.to_owned());
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": format!("SeatcapV{version}"),
            "Effect": "Deny",
            "Action": DENIED_ACTIONS,
            "Resource": "*",
            "Condition": {"StringLike": {"aws:userid": user_ids}}
        }]
    })
}

/// The document the template creates each shard with (version 0: any list seatcap writes
/// is newer).
pub fn empty_document() -> Value {
    document(&[], 0)
}

/// A cut recorded in the ledger that IAM does not enforce: the person's shard lists them,
/// but their Identity Center role does not carry it, because the permission set does not
/// reference it. Shown by `status` and `list`; reconcile completes the cut once it does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotEnforceable {
    pub role: String,
    /// The permission set the role was made for (from the role's name).
    pub permission_set: String,
    /// The shard that lists the person.
    pub policy_arn: String,
    /// Every seatcap shard the role does not carry: what the permission set must reference.
    pub missing: Vec<String>,
    pub since: DateTime<Utc>,
}

impl NotEnforceable {
    /// What security and finance must hear: why the cut is not in force, and the fix.
    pub fn explain(&self) -> String {
        format!(
            "IAM Identity Center role {} does not carry {} (permission set {} does not reference it), \
             so the deny that lists this person is not in force. In the Identity Center account, add \
             the customer managed policy references {} (path {POLICY_PATH}) to permission set {} and \
             provision it again; `seatcap doctor` prints the commands. seatcap completes the cut \
             within the hour after.",
            self.role,
            self.policy_arn,
            self.permission_set,
            self.missing.join(", "),
            self.permission_set,
        )
    }
}

/// The commands that make permission set `set` reference the shards `missing` (policy
/// names), then provision it to its accounts. Identity Center's ARNs are not in the role
/// name: the first command finds the permission set's.
pub fn fix_commands(set: &str, missing: &[String]) -> Vec<String> {
    let mut commands = vec![format!(
        "PS=$(for p in $(aws sso-admin list-permission-sets --instance-arn \"$SSO_INSTANCE_ARN\" --query 'PermissionSets[]' --output text); do \
         [ \"$(aws sso-admin describe-permission-set --instance-arn \"$SSO_INSTANCE_ARN\" --permission-set-arn $p --query PermissionSet.Name --output text)\" = {set} ] && echo $p; done)"
    )];
    for name in missing {
        commands.push(format!(
            "aws sso-admin attach-customer-managed-policy-reference-to-permission-set --instance-arn \"$SSO_INSTANCE_ARN\" \
             --permission-set-arn \"$PS\" --customer-managed-policy-reference Name={name},Path={POLICY_PATH}"
        ));
    }
    commands.push(
        "aws sso-admin provision-permission-set --instance-arn \"$SSO_INSTANCE_ARN\" --permission-set-arn \"$PS\" \
         --target-type ALL_PROVISIONED_ACCOUNTS"
            .to_owned(),
    );
    commands
}

/// The shards of `0..shards` whose policy ARN is not among `attached`, by name.
pub fn missing_shards(
    partition: &str,
    account: &str,
    shards: usize,
    attached: &[String],
) -> Vec<String> {
    (0..shards)
        .filter(|n| !attached.contains(&shard_policy_arn(partition, account, *n)))
        .map(shard_policy_name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deny::{denied_user_ids, document_chars, worst_case_per_shard, written_version};

    fn entry(role: &str, session: &str) -> Denied {
        Denied {
            role: role.into(),
            role_id: "AROAEXAMPLEID12345678".into(),
            session: session.into(),
        }
    }

    #[test]
    fn identity_center_roles_are_known_by_name_or_path() {
        assert!(is_protected_role("AWSReservedSSO_ClaudeDev_0123abcd"));
        assert!(is_protected_role(
            "aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_ClaudeDev_0123abcd"
        ));
        assert!(is_protected_role(
            "/aws-reserved/sso.amazonaws.com/us-east-1/Anything"
        ));
        assert!(!is_protected_role("ClaudeCodeBedrock"));
        assert!(!is_protected_role("team/AWSReservedSSOish"));
        assert_eq!(
            permission_set_name("AWSReservedSSO_Claude_Dev_0123abcd"),
            Some("Claude_Dev")
        );
        assert_eq!(permission_set_name("AWSReservedSSO__0123"), None);
        assert_eq!(permission_set_name("ClaudeDev"), None);
    }

    #[test]
    fn shard_names_are_fixed_and_read_back() {
        let arn = shard_policy_arn("aws", "123456789012", 0);
        assert_eq!(
            arn,
            "arn:aws:iam::123456789012:policy/seatcap/seatcap-sso-deny-1"
        );
        assert_eq!(shard_number(&arn), Some(0));
        assert_eq!(
            shard_number(&shard_policy_arn("aws", "123456789012", 4)),
            Some(4)
        );
        assert_eq!(
            shard_number("arn:aws:iam::123456789012:policy/seatcap/seatcap-deny-dev-0"),
            None
        );
        assert_eq!(
            shard_number("arn:aws:iam::123456789012:policy/seatcap-sso-deny-1"),
            None,
            "only under seatcap's path"
        );
    }

    #[test]
    fn an_empty_shard_denies_nobody_and_entries_are_exact_or_the_whole_role() {
        let empty = empty_document();
        assert_eq!(denied_user_ids(&empty), vec![NOBODY.to_owned()]);
        assert_eq!(written_version(&empty), Some(0));
        let doc = document(
            &[entry("R", "alice@example.com"), entry("R", WHOLE_ROLE)],
            7,
        );
        assert_eq!(
            denied_user_ids(&doc),
            vec![
                "AROAEXAMPLEID12345678:alice@example.com".to_owned(),
                "AROAEXAMPLEID12345678:*".to_owned()
            ]
        );
        assert_eq!(doc["Statement"][0]["Effect"], "Deny");
        assert_eq!(written_version(&doc), Some(7));
    }

    #[test]
    fn one_list_serves_every_role_and_fills_like_the_plain_shards() {
        let mut list = SsoDenyList::default();
        assert_eq!(list.add(entry("A", "alice"), 5), Ok(0));
        assert_eq!(list.add(entry("B", "alice"), 5), Ok(0));
        assert_eq!(list.add(entry("A", "alice"), 5), Ok(0), "listed once");
        assert_eq!(list.len(), 2);
        assert_eq!(list.remove("A", "alice"), Some(0));
        assert_eq!(
            list.shard_of("B", "alice"),
            Some(0),
            "the other role's alice stays"
        );
        let mut full = SsoDenyList::default();
        let wide = "s".repeat(crate::deny::SESSION_NAME_MAX_CHARS);
        let capacity = worst_case_per_shard() * 5;
        for n in 0..capacity {
            full.add(entry("R", &format!("{n:04}{}", &wide[4..])), 5)
                .unwrap();
        }
        for n in 0..5 {
            assert!(document_chars(&full.shard_document(n, u64::MAX)) <= MANAGED_POLICY_MAX_CHARS);
        }
        assert!(full.add(entry("R", "one-more"), 5).is_err());
    }

    #[test]
    fn a_role_made_again_rewrites_its_entries_only() {
        let mut list = SsoDenyList::default();
        list.add(entry("A", "alice"), 5).unwrap();
        list.add(entry("B", "bob"), 5).unwrap();
        assert_eq!(list.set_role_id("A", "AROANEWID"), vec![0]);
        assert_eq!(list.set_role_id("A", "AROANEWID"), Vec::<usize>::new());
        assert!(
            list.shards[0]
                .iter()
                .any(|d| d.user_id() == "AROANEWID:alice")
        );
        assert!(
            list.shards[0]
                .iter()
                .any(|d| d.user_id() == "AROAEXAMPLEID12345678:bob")
        );
    }

    #[test]
    fn the_fix_names_each_missing_shard_and_provisions() {
        let missing = missing_shards(
            "aws",
            "123456789012",
            3,
            &[shard_policy_arn("aws", "123456789012", 1)],
        );
        assert_eq!(missing, vec!["seatcap-sso-deny-1", "seatcap-sso-deny-3"]);
        let commands = fix_commands("ClaudeDev", &missing);
        assert_eq!(commands.len(), 4);
        assert!(commands[0].contains("= ClaudeDev ]"));
        assert!(commands[1].contains("Name=seatcap-sso-deny-1,Path=/seatcap/"));
        assert!(commands[3].starts_with("aws sso-admin provision-permission-set"));
    }
}
