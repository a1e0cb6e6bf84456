//! IAM: detach and re-attach managed Bedrock policies on users, roles and groups.
//! Callers pass only policies from the managed list; this module does not decide which.

use std::collections::HashMap;

use aws_sdk_iam::Client;
use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_iam::types::{AttachedPolicy, EntityType};
use futures::future::try_join_all;

use crate::access::RemainingAccess;
use crate::principal::{PrincipalArn, PrincipalKind};

#[derive(Debug, thiserror::Error)]
#[error("IAM {operation} on {principal} for {policy} failed: {message}")]
pub struct IamError {
    pub operation: &'static str,
    pub principal: String,
    pub policy: String,
    /// Everything the SDK says, for logs.
    pub message: String,
    /// IAM's own words (`AccessDenied: User ... is not authorized ...`), for people.
    pub brief: String,
}

impl IamError {
    /// IAM refused because the entity is protected (`UnmodifiableEntity`: a role IAM
    /// Identity Center made): no retry can change that. Read from `brief`, which starts with
    /// IAM's error code whenever IAM gave one (see `Failure`), so the error stays small.
    pub fn is_unmodifiable(&self) -> bool {
        self.brief.starts_with("UnmodifiableEntity:")
    }
}

/// The IAM entity whose policies a principal's calls change: a person on a shared role
/// acts on the role (only ever with seatcap's own deny policies).
enum Entity {
    User,
    Role,
    Group,
}

fn entity(principal: &PrincipalArn) -> (Entity, &str) {
    match principal.kind() {
        PrincipalKind::User => (Entity::User, principal.name()),
        PrincipalKind::Role => (Entity::Role, principal.name()),
        PrincipalKind::Group => (Entity::Group, principal.name()),
        PrincipalKind::AssumedRole => (Entity::Role, principal.role_name().unwrap_or_default()),
    }
}

/// The same IAM call on a user, a role or a group. The SDK has one operation (and one
/// builder type) per kind of entity; this writes the call once and expands it for each.
macro_rules! on_entity {
    ($client:expr, $entity:expr, $name:expr, [$user:ident, $role:ident, $group:ident], |$call:ident| $body:expr) => {
        match $entity {
            Entity::User => {
                let $call = $client.$user().user_name($name);
                $body
            }
            Entity::Role => {
                let $call = $client.$role().role_name($name);
                $body
            }
            Entity::Group => {
                let $call = $client.$group().group_name($name);
                $body
            }
        }
    };
}

#[derive(Clone)]
pub struct Iam {
    client: Client,
}

/// Whether a detach found the policy attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detached {
    Yes,
    WasNotAttached,
}

impl Iam {
    pub fn new(client: Client) -> Self {
        Iam { client }
    }

    /// Detaches each policy in `policies` that is attached, concurrently. Returns those that
    /// were attached and are now detached; IAM's `NoSuchEntity` means "was not attached".
    pub async fn detach_all(
        &self,
        principal: &PrincipalArn,
        policies: &[String],
    ) -> Result<Vec<String>, IamError> {
        let results = try_join_all(policies.iter().map(|policy| async move {
            Ok::<_, IamError>((policy.clone(), self.detach(principal, policy).await?))
        }))
        .await?;
        Ok(results
            .into_iter()
            .filter(|(_, d)| *d == Detached::Yes)
            .map(|(p, _)| p)
            .collect())
    }

    /// Attaches each of `policies` (idempotent in IAM: attaching twice is not an error).
    pub async fn attach_all(
        &self,
        principal: &PrincipalArn,
        policies: &[String],
    ) -> Result<(), IamError> {
        try_join_all(policies.iter().map(|policy| self.attach(principal, policy))).await?;
        Ok(())
    }

    pub async fn detach(
        &self,
        principal: &PrincipalArn,
        policy: &str,
    ) -> Result<Detached, IamError> {
        let (entity, name) = entity(principal);
        let result = on_entity!(
            self.client,
            entity,
            name,
            [detach_user_policy, detach_role_policy, detach_group_policy],
            |call| call
                .policy_arn(policy)
                .send()
                .await
                .map(drop)
                .map_err(Failure::from)
        );
        match result {
            Ok(()) => Ok(Detached::Yes),
            Err(f) if f.code.as_deref() == Some("NoSuchEntity") => Ok(Detached::WasNotAttached),
            Err(f) => Err(f.into_error("Detach", principal, policy)),
        }
    }

    pub async fn attach(&self, principal: &PrincipalArn, policy: &str) -> Result<(), IamError> {
        let (entity, name) = entity(principal);
        let result = on_entity!(
            self.client,
            entity,
            name,
            [attach_user_policy, attach_role_policy, attach_group_policy],
            |call| call
                .policy_arn(policy)
                .send()
                .await
                .map(drop)
                .map_err(Failure::from)
        );
        result.map_err(|f| f.into_error("Attach", principal, policy))
    }

    /// The managed policies attached to `principal` directly (all pages).
    pub async fn attached_policies(
        &self,
        principal: &PrincipalArn,
    ) -> Result<Vec<String>, IamError> {
        let (entity, name) = entity(principal);
        self.attached_of(&entity, name)
            .await
            .map_err(|f| f.into_error("ListAttachedPolicies", principal, "*"))
    }
}

/// The managed policies attached to each user, role and group of the account, as IAM
/// reported them in one sweep.
#[derive(Debug, Default)]
pub struct Attachments {
    attached: HashMap<(PrincipalKind, String), Vec<String>>,
    /// Each role's unique id, by name.
    role_ids: HashMap<String, String>,
    /// The default document of each of seatcap's own policies, by ARN.
    own_documents: HashMap<String, serde_json::Value>,
}

impl Attachments {
    /// The managed policies attached to `principal`, or `None` if IAM has no such principal.
    /// For a person on a shared role, the role's.
    pub fn of(&self, principal: &PrincipalArn) -> Option<&[String]> {
        let key = match principal.kind() {
            PrincipalKind::AssumedRole => (
                PrincipalKind::Role,
                principal.role_name().unwrap_or_default().to_owned(),
            ),
            kind => (kind, principal.name().to_owned()),
        };
        self.attached.get(&key).map(Vec::as_slice)
    }

    /// Whether the seatcap deny policy `policy` denies this person on their shared role,
    /// under the role's current unique id; `None` if IAM showed no such role or policy.
    /// A role principal (on an Identity Center role, the only kind denied through a shard)
    /// is denied as every session of the role.
    pub fn denies_person(&self, principal: &PrincipalArn, policy: &str) -> Option<bool> {
        let (role, session) = match principal.kind() {
            PrincipalKind::Role => (principal.name(), crate::identity_center::WHOLE_ROLE),
            _ => (principal.role_name()?, principal.name()),
        };
        let role_id = self.role_ids.get(role)?;
        let document = self.own_documents.get(policy)?;
        let me = format!("{role_id}:{session}");
        Some(crate::deny::denied_user_ids(document).contains(&me))
    }

    fn insert(
        &mut self,
        kind: PrincipalKind,
        name: Option<String>,
        policies: Option<Vec<AttachedPolicy>>,
    ) {
        if let Some(name) = name {
            let arns = policies
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| p.policy_arn)
                .collect();
            self.attached.insert((kind, name), arns);
        }
    }
}

impl Iam {
    /// Every user, role and group of the account with its attached managed policies, from
    /// GetAccountAuthorizationDetails: a few paginated calls for the whole account instead
    /// of one call per principal, which matters to IAM's rate limits at 10,000 principals.
    pub async fn all_attachments(&self) -> Result<Attachments, IamError> {
        let mut pages = self
            .client
            .get_account_authorization_details()
            .filter(EntityType::User)
            .filter(EntityType::Role)
            .filter(EntityType::Group)
            .filter(EntityType::LocalManagedPolicy)
            .into_paginator()
            .send();
        let mut attachments = Attachments::default();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                Failure::from(e).into_error("GetAccountAuthorizationDetails", "*", "*")
            })?;
            for user in page.user_detail_list.unwrap_or_default() {
                attachments.insert(
                    PrincipalKind::User,
                    user.user_name,
                    user.attached_managed_policies,
                );
            }
            for role in page.role_detail_list.unwrap_or_default() {
                if let (Some(name), Some(id)) = (&role.role_name, &role.role_id) {
                    attachments.role_ids.insert(name.clone(), id.clone());
                }
                attachments.insert(
                    PrincipalKind::Role,
                    role.role_name,
                    role.attached_managed_policies,
                );
            }
            for policy in page.policies.unwrap_or_default() {
                if policy.path.as_deref() != Some(crate::deny::POLICY_PATH) {
                    continue;
                }
                let document = policy
                    .policy_version_list
                    .unwrap_or_default()
                    .into_iter()
                    .find(|v| v.is_default_version)
                    .and_then(|v| v.document)
                    .as_deref()
                    .and_then(crate::access::decode_document);
                if let (Some(arn), Some(document)) = (policy.arn, document) {
                    attachments.own_documents.insert(arn, document);
                }
            }
            for group in page.group_detail_list.unwrap_or_default() {
                attachments.insert(
                    PrincipalKind::Group,
                    group.group_name,
                    group.attached_managed_policies,
                );
            }
        }
        Ok(attachments)
    }
}

/// An IAM call's failure with its error code, whatever operation it came from.
struct Failure {
    code: Option<String>,
    message: String,
    brief: String,
}

impl<E: ProvideErrorMetadata + std::error::Error + 'static, R: std::fmt::Debug> From<SdkError<E, R>>
    for Failure
{
    fn from(e: SdkError<E, R>) -> Self {
        let brief = match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => e
                .as_service_error()
                .map(ToString::to_string)
                .unwrap_or_else(|| e.to_string()),
        };
        Failure {
            code: e.code().map(str::to_owned),
            message: DisplayErrorContext(&e).to_string(),
            brief,
        }
    }
}

impl Failure {
    fn into_error(
        self,
        operation: &'static str,
        principal: impl ToString,
        policy: &str,
    ) -> IamError {
        IamError {
            operation,
            principal: principal.to_string(),
            policy: policy.to_owned(),
            message: self.message,
            brief: self.brief,
        }
    }
}

/// seatcap's own policies (under [`crate::deny::POLICY_PATH`]): created and rewritten here,
/// never any other.
impl Iam {
    /// The unique id (`AROA...`) of a role, the first half of its sessions' `aws:userid`.
    /// The ARNs of the users in `group` (metering charges a group principal its members'
    /// calls).
    pub async fn group_members(&self, group: &PrincipalArn) -> Result<Vec<String>, IamError> {
        let pages = self
            .client
            .get_group()
            .group_name(group.name())
            .into_paginator()
            .send()
            .collect::<Vec<_>>()
            .await;
        let mut members = Vec::new();
        for page in pages {
            let page =
                page.map_err(|e| Failure::from(e).into_error("GetGroup", group.as_str(), "-"))?;
            members.extend(page.users.into_iter().map(|user| user.arn));
        }
        Ok(members)
    }

    pub async fn role_id(&self, role: &str) -> Result<String, IamError> {
        let out = self
            .client
            .get_role()
            .role_name(role)
            .send()
            .await
            .map_err(|e| Failure::from(e).into_error("GetRole", role, "-"))?;
        Ok(out.role.map(|r| r.role_id).unwrap_or_default())
    }

    /// The managed policies attached to role `role` (reading a protected role's is allowed).
    pub async fn role_attachments(&self, role: &str) -> Result<Vec<String>, IamError> {
        self.attached_of(&Entity::Role, role)
            .await
            .map_err(|f| f.into_error("ListAttachedRolePolicies", role, "*"))
    }

    /// Makes `document` the default version of seatcap's policy `name` (creating it the
    /// first time). `replacing` is the default version the writer read: deleted once the
    /// new one is the default, so a policy never nears IAM's five versions (history is in
    /// seatcap's audit and CloudTrail). At the limit anyway, the oldest is deleted first.
    pub async fn put_own_policy(
        &self,
        arn: &str,
        name: &str,
        document: &serde_json::Value,
        replacing: Option<&str>,
    ) -> Result<(), IamError> {
        let text = document.to_string();
        for _ in 0..3 {
            let created = self
                .client
                .create_policy_version()
                .policy_arn(arn)
                .policy_document(&text)
                .set_as_default(true)
                .send()
                .await
                .map_err(Failure::from);
            match created {
                Ok(_) => {
                    if let Some(old) = replacing {
                        self.delete_version(arn, old).await?;
                    }
                    return Ok(());
                }
                Err(f) if f.code.as_deref() == Some("NoSuchEntity") => {
                    return self.create_own_policy(arn, name, &text).await;
                }
                Err(f) if f.code.as_deref() == Some("LimitExceeded") => {
                    self.delete_oldest_version(arn).await?;
                }
                Err(f) => return Err(f.into_error("CreatePolicyVersion", "-", arn)),
            }
        }
        Err(IamError {
            operation: "CreatePolicyVersion",
            principal: "-".into(),
            policy: arn.into(),
            message: "still at IAM's limit of 5 versions after deleting old ones".into(),
            brief: "LimitExceeded: policy versions".into(),
        })
    }

    /// seatcap's policy `arn` as IAM has it: its default version's id and document, or
    /// `None` if there is no such policy.
    pub async fn own_policy_document(
        &self,
        arn: &str,
    ) -> Result<Option<(String, serde_json::Value)>, IamError> {
        let fail = |operation: &'static str| move |f: Failure| f.into_error(operation, "-", arn);
        let policy = match self
            .client
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(Failure::from)
        {
            Ok(out) => out.policy,
            Err(f) if f.code.as_deref() == Some("NoSuchEntity") => return Ok(None),
            Err(f) => return Err(fail("GetPolicy")(f)),
        };
        let Some(version_id) = policy.and_then(|p| p.default_version_id) else {
            return Ok(None);
        };
        let document = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(&version_id)
            .send()
            .await
            .map_err(|e| fail("GetPolicyVersion")(Failure::from(e)))?
            .policy_version
            .and_then(|v| v.document)
            .as_deref()
            .and_then(crate::access::decode_document)
            .unwrap_or_default();
        Ok(Some((version_id, document)))
    }

    /// Creates seatcap's policy `name` with `document` unless it exists. One that exists must
    /// hold exactly `document` as its default version: anyone who can create a policy could
    /// have made one of that name first (`Allow *`, say), and seatcap would attach it to
    /// every principal it cuts. `false`: it exists with another document; nothing attached.
    pub async fn ensure_own_policy(
        &self,
        arn: &str,
        name: &str,
        document: &serde_json::Value,
    ) -> Result<bool, IamError> {
        match self.own_policy_document(arn).await? {
            Some((_, found)) => Ok(&found == document),
            None => {
                self.create_own_policy(arn, name, &document.to_string())
                    .await?;
                Ok(true)
            }
        }
    }

    async fn create_own_policy(&self, arn: &str, name: &str, text: &str) -> Result<(), IamError> {
        let created = self
            .client
            .create_policy()
            .policy_name(name)
            .path(crate::deny::POLICY_PATH)
            .policy_document(text)
            .description(
                "seatcap: denies Bedrock to principals over their cap. Managed by seatcap.",
            )
            .send()
            .await
            .map_err(Failure::from);
        match created {
            Ok(_) => Ok(()),
            Err(f) if f.code.as_deref() == Some("EntityAlreadyExists") => Ok(()),
            Err(f) => Err(f.into_error("CreatePolicy", "-", arn)),
        }
    }

    async fn delete_oldest_version(&self, arn: &str) -> Result<(), IamError> {
        let versions = self
            .client
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| Failure::from(e).into_error("ListPolicyVersions", "-", arn))?
            .versions
            .unwrap_or_default();
        // Version ids count up (`v1`, `v2`, ...): the smallest is the oldest.
        let Some(version_id) = versions
            .into_iter()
            .filter(|v| !v.is_default_version)
            .filter_map(|v| v.version_id)
            .min_by_key(|id| version_number(id).unwrap_or(u64::MAX))
        else {
            return Ok(());
        };
        self.delete_version(arn, &version_id).await
    }

    /// Deletes a non-default version; one already gone, or the default, is left alone.
    async fn delete_version(&self, arn: &str, version_id: &str) -> Result<(), IamError> {
        match self
            .client
            .delete_policy_version()
            .policy_arn(arn)
            .version_id(version_id)
            .send()
            .await
            .map_err(Failure::from)
        {
            Ok(_) => Ok(()),
            Err(f) if matches!(f.code.as_deref(), Some("NoSuchEntity" | "DeleteConflict")) => {
                Ok(())
            }
            Err(f) => Err(f.into_error("DeletePolicyVersion", "-", arn)),
        }
    }
}

fn version_number(id: &str) -> Option<u64> {
    id.strip_prefix('v')?.parse().ok()
}

/// What is left after a cut: the policies that still allow Bedrock invocation.
impl Iam {
    /// Every policy on `principal` (and, for a user, on its groups) that still allows
    /// `bedrock:InvokeModel*`. Managed policies are read at their default version.
    /// `attached`: the managed policies on the principal itself, when the caller has just
    /// read them (one call fewer on the cut's path).
    pub async fn remaining_bedrock_access(
        &self,
        principal: &PrincipalArn,
        attached: Option<Vec<String>>,
    ) -> Result<Vec<RemainingAccess>, IamError> {
        let fail =
            |operation: &'static str| move |f: Failure| f.into_error(operation, principal, "*");
        let (entity, name) = entity(principal);
        let mut holders = vec![(entity, name.to_owned(), principal.kind_name().to_owned())];
        if let Entity::User = holders[0].0 {
            let groups = self
                .client
                .list_groups_for_user()
                .user_name(name)
                .into_paginator()
                .items()
                .send()
                .collect::<Vec<_>>()
                .await;
            for group in groups {
                let group = group
                    .map_err(Failure::from)
                    .map_err(fail("ListGroupsForUser"))?;
                let label = format!("group:{}", group.group_name);
                holders.push((Entity::Group, group.group_name, label));
            }
        }
        let mut remaining = Vec::new();
        let mut attached = attached;
        for (entity, name, label) in holders {
            let (managed, inline) = self
                .policies_of(&entity, &name, attached.take())
                .await
                .map_err(fail("ListPolicies"))?;
            for arn in managed {
                if self
                    .managed_allows(&arn)
                    .await
                    .map_err(fail("GetPolicyVersion"))?
                {
                    remaining.push(RemainingAccess {
                        on: label.clone(),
                        policy: arn,
                    });
                }
            }
            for (policy, document) in inline {
                if crate::access::decode_document(&document)
                    .is_some_and(|d| crate::access::allows_bedrock_invoke(&d))
                {
                    remaining.push(RemainingAccess {
                        on: label.clone(),
                        policy: format!("inline:{policy}"),
                    });
                }
            }
        }
        Ok(remaining)
    }

    /// The managed policy ARNs and the inline policies (name, document) of one entity.
    async fn policies_of(
        &self,
        entity: &Entity,
        name: &str,
        attached: Option<Vec<String>>,
    ) -> Result<(Vec<String>, Vec<(String, String)>), Failure> {
        let c = &self.client;
        let managed = match attached {
            Some(known) => known,
            None => self.attached_of(entity, name).await?,
        };
        let inline_names: Vec<String> = on_entity!(
            c,
            entity,
            name,
            [list_user_policies, list_role_policies, list_group_policies],
            |call| {
                call.into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await?
            }
        );
        let mut inline = Vec::new();
        for policy in inline_names {
            let document = on_entity!(
                c,
                entity,
                name,
                [get_user_policy, get_role_policy, get_group_policy],
                |call| call.policy_name(&policy).send().await?.policy_document
            );
            inline.push((policy, document));
        }
        Ok((managed, inline))
    }

    /// The managed policy ARNs attached to one entity (all pages).
    async fn attached_of(&self, entity: &Entity, name: &str) -> Result<Vec<String>, Failure> {
        let c = &self.client;
        let policies = on_entity!(
            c,
            entity,
            name,
            [
                list_attached_user_policies,
                list_attached_role_policies,
                list_attached_group_policies
            ],
            |call| {
                call.into_paginator()
                    .items()
                    .send()
                    .collect::<Result<Vec<_>, _>>()
                    .await?
            }
        );
        Ok(policies.into_iter().filter_map(|p| p.policy_arn).collect())
    }

    async fn managed_allows(&self, arn: &str) -> Result<bool, Failure> {
        let policy = self.client.get_policy().policy_arn(arn).send().await?;
        let Some(version) = policy.policy.and_then(|p| p.default_version_id) else {
            return Ok(false);
        };
        let document = self
            .client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await?
            .policy_version
            .and_then(|v| v.document);
        Ok(document
            .as_deref()
            .and_then(crate::access::decode_document)
            .is_some_and(|d| crate::access::allows_bedrock_invoke(&d)))
    }
}
