//! The ledger: one DynamoDB table holding principal state, budget ownership, the audit trail
//! and idempotency claims. Every write is conditional; a group of writes that belong
//! together (claims, state, audit) commits as one transaction or not at all.
//!
//! | pk                  | sk                  | item                                   |
//! |---------------------|---------------------|----------------------------------------|
//! | `P#<principal arn>` | `STATE`             | [`PrincipalState`] (+ `status` for the GSI) |
//! | `P#<principal arn>` | `EV#<time>#<id>`    | [`AuditEvent`]                         |
//! | `B#<budget name>`   | `OWNER`             | the principal that owns the budget     |
//! | `SYS#alerts`        | `EV#<time>#<id>`    | audit of alerts no principal owns      |
//! | `SYS#seatcap`       | `EV#<time>#<id>`    | audit of changes no principal owns     |
//! | `MSG#<message id>`  | `SEEN`              | idempotency claim (TTL `expires_at`)   |
//! | `ALERT#<natural key>` | `SEEN`            | idempotency claim (TTL `expires_at`)   |
//! | `OUT#<id>`          | `OUTBOX`            | [`OutboxEntry`] (`status` = `outbox`)  |

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

mod cancellation;
mod meter;
mod once;
mod prices;

pub use meter::{Counted, MeterRead, MeteredCall};

use cancellation::{Cancelled, ItemRole, read_cancellation};
pub use seatcap_core::audit::{AuditEvent, Claim, EventKind};

use crate::deny::RoleDenyList;
use crate::identity_center::SsoDenyList;
use crate::notify::{Channel, Notice};
use crate::principal::PrincipalArn;
use crate::state::{PrincipalState, Status};

pub const STATUS_INDEX: &str = "by-status";
const STATE_SK: &str = "STATE";
const OWNER_SK: &str = "OWNER";
const SEEN_SK: &str = "SEEN";
const SYSTEM_ALERTS_PK: &str = "SYS#alerts";
const SYSTEM_PK: &str = "SYS#seatcap";
const OUTBOX_SK: &str = "OUTBOX";
const ROLE_SK: &str = "DENY";
/// The status-index partition every outbox entry sits in.
const OUTBOX_STATUS: &str = "outbox";

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("DynamoDB {operation} failed: {message}")]
    Dynamo {
        operation: &'static str,
        message: String,
    },
    #[error("ledger item {key} is unreadable: {message}")]
    Corrupt { key: String, message: String },
}

fn dynamo_error<E: std::error::Error + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> LedgerError {
    move |e| LedgerError::Dynamo {
        operation,
        message: DisplayErrorContext(&e).to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The version condition failed: someone else changed the item first. Read again and
    /// decide again.
    #[error("the ledger changed underneath this write; read again and retry")]
    Conflict,
    /// A claim of the transaction exists already: what it claims happened before (a
    /// duplicate delivery). Nothing was written.
    #[error("already claimed: this happened before")]
    Claimed,
    /// The budget belongs to another principal. Nothing was written.
    #[error("the budget is owned by another principal")]
    OwnerTaken,
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Attempts of a transaction DynamoDB cancelled for throttling or a transaction conflict.
const CANCELLED_ATTEMPTS: u32 = 6;

/// Where an audit event is filed.
#[derive(Clone, Debug)]
pub enum Subject {
    Principal(PrincipalArn),
    /// Alerts with no principal: unparsable, or for a budget seatcap does not manage.
    UnownedAlerts,
    /// Changes that belong to no principal (e.g. finance's email subscription).
    System,
}

impl Subject {
    fn pk(&self) -> String {
        match self {
            Subject::Principal(p) => principal_pk(p),
            Subject::UnownedAlerts => SYSTEM_ALERTS_PK.to_owned(),
            Subject::System => SYSTEM_PK.to_owned(),
        }
    }
}

/// A group of writes that commit together or not at all.
#[derive(Clone, Debug, Default)]
pub struct Commit {
    /// Each must not exist yet.
    pub claims: Vec<Claim>,
    /// The new state and the version it replaces (`None`: the principal must be new).
    pub state: Option<(PrincipalState, Option<u64>)>,
    /// Budget → principal; the budget must be unowned or already owned by this principal.
    pub owner: Option<(String, PrincipalArn)>,
    /// The previous budget of a principal that moved to another one: released.
    pub release_owner: Option<(String, PrincipalArn)>,
    pub events: Vec<(Subject, AuditEvent)>,
}

/// A notice not yet delivered to one channel, waiting for its next attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub id: String,
    pub channel: Channel,
    pub notice: Notice,
    /// Attempts made so far, the first (at the time of the event) included.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    /// Set while a sender holds the entry: nobody else sends it until then, and an entry
    /// still held after that may have been sent, so it is never sent again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_until: Option<DateTime<Utc>>,
    pub last_error: String,
    pub created_at: DateTime<Utc>,
    pub version: u64,
}

#[derive(Serialize, Deserialize)]
struct OutboxItem {
    pk: String,
    sk: String,
    status: String,
    #[serde(flatten)]
    entry: OutboxEntry,
}

/// What the ledger knows about an incoming alert, from one read.
#[derive(Debug, PartialEq, Eq)]
pub enum AlertLookup {
    /// The message or the alert was handled before.
    Duplicate,
    Owner(PrincipalArn),
    Unowned,
}

#[derive(Serialize, Deserialize)]
struct StateItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    state: PrincipalState,
}

/// The lease one writer at a time holds on a deny list while it changes the list and the
/// policies written from it. `version` counts every lease taken and is the fencing token
/// each shard's document carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_until: Option<DateTime<Utc>>,
}

/// A deny list in the ledger, under its lease: a plain shared role's ([`RoleDenials`]) or
/// the account's Identity Center shards' ([`SsoDenials`]).
pub trait DenyListItem: Clone + Serialize + serde::de::DeserializeOwned + Send + Sync {
    /// The item's key (`ROLE#...`, `SSO#...`).
    fn pk(&self) -> String;
    /// Who the list is about, in logs and errors.
    fn label(&self) -> String;
    fn lease(&self) -> &Lease;
    fn lease_mut(&mut self) -> &mut Lease;
}

/// A shared role's deny list (who is denied, in which shard), and its lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDenials {
    pub account: String,
    pub role: String,
    #[serde(flatten)]
    pub list: RoleDenyList,
    #[serde(flatten)]
    pub lease: Lease,
}

impl DenyListItem for RoleDenials {
    fn pk(&self) -> String {
        role_pk(&self.account, &self.role)
    }
    fn label(&self) -> String {
        self.role.clone()
    }
    fn lease(&self) -> &Lease {
        &self.lease
    }
    fn lease_mut(&mut self) -> &mut Lease {
        &mut self.lease
    }
}

/// The account's Identity Center deny list (every person on any Identity Center role, in
/// the shards the permission sets reference), and its lease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDenials {
    pub account: String,
    #[serde(flatten)]
    pub list: SsoDenyList,
    #[serde(flatten)]
    pub lease: Lease,
}

impl DenyListItem for SsoDenials {
    fn pk(&self) -> String {
        sso_pk(&self.account)
    }
    fn label(&self) -> String {
        "(Identity Center roles)".to_owned()
    }
    fn lease(&self) -> &Lease {
        &self.lease
    }
    fn lease_mut(&mut self) -> &mut Lease {
        &mut self.lease
    }
}

#[derive(Serialize, Deserialize)]
struct DenyItem<T> {
    pk: String,
    sk: String,
    #[serde(flatten)]
    denials: T,
}

pub fn role_pk(account: &str, role: &str) -> String {
    format!("ROLE#{account}:{role}")
}

pub fn sso_pk(account: &str) -> String {
    format!("SSO#{account}")
}

#[derive(Serialize, Deserialize)]
struct OwnerItem {
    pk: String,
    sk: String,
    principal: PrincipalArn,
}

#[derive(Serialize)]
struct ClaimItem<'a> {
    pk: String,
    sk: &'a str,
    at: DateTime<Utc>,
    /// Epoch seconds: DynamoDB TTL deletes the claim after the longest budget period.
    expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct EventItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    event: AuditEvent,
}

fn principal_pk(p: &PrincipalArn) -> String {
    format!("P#{p}")
}

fn budget_pk(budget: &str) -> String {
    format!("B#{budget}")
}

fn key(pk: String, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, LedgerError> {
    serde_dynamo::to_item(value).map_err(|e| LedgerError::Corrupt {
        key: "<new item>".into(),
        message: e.to_string(),
    })
}

fn from_item<T: for<'de> Deserialize<'de>>(
    item: HashMap<String, AttributeValue>,
) -> Result<T, LedgerError> {
    let key = match (item.get("pk"), item.get("sk")) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => format!("{pk}/{sk}"),
        _ => "<no key>".to_owned(),
    };
    serde_dynamo::from_item(item).map_err(|e| LedgerError::Corrupt {
        key,
        message: e.to_string(),
    })
}

#[derive(Clone)]
pub struct Ledger {
    client: Client,
    table: String,
    claim_ttl: Duration,
}

impl Ledger {
    pub fn new(client: Client, table: impl Into<String>, claim_ttl_days: u32) -> Self {
        Ledger {
            client,
            table: table.into(),
            claim_ttl: Duration::days(i64::from(claim_ttl_days)),
        }
    }

    /// One consistent read answers "seen before?" and "whose budget?".
    pub async fn lookup_alert(
        &self,
        message_id: &str,
        natural_key: &str,
        budget: &str,
    ) -> Result<AlertLookup, LedgerError> {
        let keys = vec![
            key(Claim::Message(message_id.to_owned()).key(), SEEN_SK),
            key(Claim::Alert(natural_key.to_owned()).key(), SEEN_SK),
            key(budget_pk(budget), OWNER_SK),
        ];
        found_to_lookup(self.batch_get(keys).await?)
    }

    /// The budgets among `budgets` that have an owner in the ledger.
    pub async fn owned_budgets(
        &self,
        budgets: &[String],
    ) -> Result<std::collections::HashSet<String>, LedgerError> {
        let mut owned = std::collections::HashSet::new();
        // BatchGetItem takes at most 100 keys.
        for chunk in budgets.chunks(100) {
            let keys = chunk.iter().map(|b| key(budget_pk(b), OWNER_SK)).collect();
            for item in self.batch_get(keys).await? {
                if let Some(AttributeValue::S(pk)) = item.get("pk")
                    && let Some(budget) = pk.strip_prefix("B#")
                {
                    owned.insert(budget.to_owned());
                }
            }
        }
        Ok(owned)
    }

    /// Consistent reads of up to 100 `keys` in one BatchGetItem, asking again for any keys
    /// DynamoDB hands back unprocessed under load.
    async fn batch_get(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, LedgerError> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(dynamo_error("BatchGetItem"))?;
        let mut pending = HashMap::from([(self.table.clone(), request)]);
        let mut found = Vec::new();
        for _ in 0..5 {
            let out = self
                .client
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(dynamo_error("BatchGetItem"))?;
            found.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            match out.unprocessed_keys.filter(|u| !u.is_empty()) {
                Some(unprocessed) => pending = unprocessed,
                None => return Ok(found),
            }
        }
        Err(LedgerError::Dynamo {
            operation: "BatchGetItem",
            message: "keys still unprocessed after 5 attempts".into(),
        })
    }

    pub async fn load(
        &self,
        principal: &PrincipalArn,
    ) -> Result<Option<PrincipalState>, LedgerError> {
        self.get(principal_pk(principal), STATE_SK)
            .await?
            .map(|item| from_item::<StateItem>(item).map(|i| i.state))
            .transpose()
    }

    pub async fn owner_of(&self, budget: &str) -> Result<Option<PrincipalArn>, LedgerError> {
        self.get(budget_pk(budget), OWNER_SK)
            .await?
            .map(|item| from_item::<OwnerItem>(item).map(|i| i.principal))
            .transpose()
    }

    /// Writes everything in `commit` in one transaction, each item under its condition.
    pub async fn commit(&self, commit: Commit, now: DateTime<Utc>) -> Result<(), CommitError> {
        self.commit_all(&[commit], now).await
    }

    /// Writes several commits (of different principals) as one transaction: all or none.
    /// DynamoDB takes at most 100 items in one.
    pub async fn commit_all(
        &self,
        commits: &[Commit],
        now: DateTime<Utc>,
    ) -> Result<(), CommitError> {
        let mut items = Vec::new();
        let mut roles = Vec::new();
        for commit in commits {
            self.transaction_items(commit, now, &mut items, &mut roles)?;
        }
        self.transact(items, &roles).await
    }

    /// The items of one commit, each under its condition, and what each is.
    fn transaction_items(
        &self,
        commit: &Commit,
        now: DateTime<Utc>,
        items: &mut Vec<TransactWriteItem>,
        roles: &mut Vec<ItemRole>,
    ) -> Result<(), LedgerError> {
        let expires_at = (now + self.claim_ttl).timestamp();
        for claim in &commit.claims {
            let item = to_item(&ClaimItem {
                pk: claim.key(),
                sk: SEEN_SK,
                at: now,
                expires_at,
            })?;
            items.push(self.put(item, "attribute_not_exists(pk)", &[])?);
            roles.push(ItemRole::Claim);
        }
        if let Some((state, expected_version)) = &commit.state {
            let mut item = to_item(&StateItem {
                pk: principal_pk(&state.principal),
                sk: STATE_SK.into(),
                state: state.clone(),
            })?;
            // serde_dynamo writes `status` as part of the state; the GSI indexes it as is.
            debug_assert!(item.contains_key("status"));
            item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
            items.push(match expected_version {
                None => self.put(item, "attribute_not_exists(pk)", &[])?,
                Some(v) => self.put(
                    item,
                    "version = :v",
                    &[(":v", AttributeValue::N(v.to_string()))],
                )?,
            });
            roles.push(ItemRole::State);
        }
        if let Some((budget, principal)) = &commit.owner {
            let item = to_item(&OwnerItem {
                pk: budget_pk(budget),
                sk: OWNER_SK.into(),
                principal: principal.clone(),
            })?;
            items.push(self.put(
                item,
                "attribute_not_exists(pk) OR principal = :p",
                &[(":p", AttributeValue::S(principal.to_string()))],
            )?);
            roles.push(ItemRole::Owner);
        }
        if let Some((budget, principal)) = &commit.release_owner {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(budget_pk(budget), OWNER_SK)))
                .condition_expression("principal = :p")
                .expression_attribute_values(":p", AttributeValue::S(principal.to_string()))
                .build()
                .map_err(dynamo_error("TransactWriteItems"))?;
            items.push(TransactWriteItem::builder().delete(delete).build());
            roles.push(ItemRole::Owner);
        }
        for (subject, event) in &commit.events {
            items.push(self.event_put(subject, event)?);
            roles.push(ItemRole::Event);
        }
        Ok(())
    }

    /// An audit event's item, written once under its own unique key.
    fn event_put(
        &self,
        subject: &Subject,
        event: &AuditEvent,
    ) -> Result<TransactWriteItem, LedgerError> {
        let sk = format!(
            "EV#{}#{}",
            event.at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            short_id()
        );
        let item = to_item(&EventItem {
            pk: subject.pk(),
            sk,
            event: event.clone(),
        })?;
        self.put(item, "attribute_not_exists(pk)", &[])
    }

    /// Sends one transaction, again while DynamoDB cancels it for throttling or a
    /// transaction conflict.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        roles: &[ItemRole],
    ) -> Result<(), CommitError> {
        for attempt in 1..=CANCELLED_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let cancelled = match result {
                Ok(_) => return Ok(()),
                Err(e) => match e.as_service_error() {
                    Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                        let codes: Vec<Option<&str>> =
                            c.cancellation_reasons().iter().map(|r| r.code()).collect();
                        read_cancellation(&codes, roles)
                    }
                    _ => return Err(dynamo_error("TransactWriteItems")(e).into()),
                },
            };
            match cancelled {
                Cancelled::Failed(e) => return Err(e),
                Cancelled::Retry if attempt < CANCELLED_ATTEMPTS => {
                    let pause = 25u64 << attempt.min(6);
                    tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                }
                Cancelled::Retry => {}
            }
        }
        Err(LedgerError::Dynamo {
            operation: "TransactWriteItems",
            message: format!("still throttled or in conflict after {CANCELLED_ATTEMPTS} attempts"),
        }
        .into())
    }

    /// Appends audit events on their own (e.g. a notification that failed after the commit).
    pub async fn append(
        &self,
        events: Vec<(Subject, AuditEvent)>,
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        match self
            .commit(
                Commit {
                    events,
                    ..Commit::default()
                },
                now,
            )
            .await
        {
            Ok(()) => Ok(()),
            // Event keys are unique; a conflict here means a broken clock or id source.
            Err(CommitError::Conflict | CommitError::Claimed | CommitError::OwnerTaken) => {
                Err(LedgerError::Dynamo {
                    operation: "TransactWriteItems",
                    message: "audit event key collision".into(),
                })
            }
            Err(CommitError::Ledger(e)) => Err(e),
        }
    }

    /// The audit of a principal, newest first (the first page of [`Self::history_page`]).
    pub async fn history(
        &self,
        subject: &Subject,
        limit: i32,
    ) -> Result<Vec<AuditEvent>, LedgerError> {
        Ok(self.history_page(subject, limit, None).await?.0)
    }

    /// Up to `limit` audit events older than the event keyed `before` (a token from an
    /// earlier page), newest first, and the token for the next page if there is one.
    pub async fn history_page(
        &self,
        subject: &Subject,
        limit: i32,
        before: Option<&str>,
    ) -> Result<(Vec<AuditEvent>, Option<String>), LedgerError> {
        let start = before.map(|sk| key(subject.pk(), sk));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :ev)")
            .expression_attribute_values(":pk", AttributeValue::S(subject.pk()))
            .expression_attribute_values(":ev", AttributeValue::S("EV#".into()))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(dynamo_error("Query"))?;
        let next = out
            .last_evaluated_key
            .and_then(|mut k| match k.remove("sk") {
                Some(AttributeValue::S(sk)) => Some(sk),
                _ => None,
            });
        let events = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| from_item::<EventItem>(item).map(|i| i.event))
            .collect::<Result<_, _>>()?;
        Ok((events, next))
    }

    /// Up to `limit` principals with `status` after the principal `after`, in ARN order, and
    /// the last one returned if more may follow.
    pub async fn list_page(
        &self,
        status: Status,
        limit: i32,
        after: Option<&PrincipalArn>,
    ) -> Result<(Vec<PrincipalState>, Option<PrincipalArn>), LedgerError> {
        let start = after.map(|p| {
            let mut k = key(principal_pk(p), STATE_SK);
            k.insert("status".into(), AttributeValue::S(status.as_str().into()));
            k
        });
        let (items, next) = self
            .query_status(status.as_str(), Some(limit), start)
            .await?;
        let states: Vec<PrincipalState> = items
            .into_iter()
            .map(|item| from_item::<StateItem>(item).map(|i| i.state))
            .collect::<Result<_, _>>()?;
        let more = next.is_some();
        let last = states.last().map(|s| s.principal.clone()).filter(|_| more);
        Ok((states, last))
    }

    /// Writes `entry`: a new one (`expected` = `None`), or the next version of the one read.
    pub async fn put_outbox(
        &self,
        entry: &OutboxEntry,
        expected: Option<u64>,
    ) -> Result<(), CommitError> {
        let item = to_item(&OutboxItem {
            pk: format!("OUT#{}", entry.id),
            sk: OUTBOX_SK.into(),
            status: OUTBOX_STATUS.into(),
            entry: entry.clone(),
        })?;
        self.put_versioned(item, expected).await
    }

    /// One item, read consistently.
    async fn get(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, LedgerError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(dynamo_error("GetItem"))?
            .item)
    }

    /// Puts `item` if it is new (`expected` = `None`) or still at version `expected`.
    async fn put_versioned(
        &self,
        item: HashMap<String, AttributeValue>,
        expected: Option<u64>,
    ) -> Result<(), CommitError> {
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(pk)"),
            Some(v) => request
                .condition_expression("version = :v")
                .expression_attribute_values(":v", AttributeValue::N(v.to_string())),
        };
        conditional("PutItem", request.send().await)
    }

    /// Removes the entry, if it is still at `version`.
    pub async fn delete_outbox(&self, id: &str, version: u64) -> Result<(), CommitError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(format!("OUT#{id}"), OUTBOX_SK)))
            .condition_expression("version = :v")
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        conditional("DeleteItem", result)
    }

    /// The deny list under key `pk` (see [`DenyListItem::pk`]), if seatcap has written it.
    pub async fn load_deny_list<T: DenyListItem>(
        &self,
        pk: &str,
    ) -> Result<Option<T>, LedgerError> {
        self.get(pk.to_owned(), ROLE_SK)
            .await?
            .map(|item| from_item::<DenyItem<T>>(item).map(|i| i.denials))
            .transpose()
    }

    /// Writes a deny list: a new one (`expected` = `None`), or the next version of the one
    /// read.
    pub async fn put_deny_list<T: DenyListItem>(
        &self,
        denials: &T,
        expected: Option<u64>,
    ) -> Result<(), CommitError> {
        let item = to_item(&DenyItem {
            pk: denials.pk(),
            sk: ROLE_SK.into(),
            denials: denials.clone(),
        })?;
        self.put_versioned(item, expected).await
    }

    /// Up to `limit` outbox entries, through the status index.
    pub async fn outbox(&self, limit: usize) -> Result<Vec<OutboxEntry>, LedgerError> {
        let mut entries = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_status(OUTBOX_STATUS, None, start).await?;
            for item in items {
                entries.push(from_item::<OutboxItem>(item)?.entry);
            }
            start = next;
            if start.is_none() || entries.len() >= limit {
                entries.truncate(limit);
                return Ok(entries);
            }
        }
    }

    /// One page of the status index's `status` partition, in `pk` order, from after `start`,
    /// and where the next page starts if there is one.
    async fn query_status(
        &self,
        status: &str,
        limit: Option<i32>,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<
        (
            Vec<HashMap<String, AttributeValue>>,
            Option<HashMap<String, AttributeValue>>,
        ),
        LedgerError,
    > {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(STATUS_INDEX)
            .key_condition_expression("#status = :status")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", AttributeValue::S(status.to_owned()))
            .set_limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(dynamo_error("Query"))?;
        let next = out.last_evaluated_key.filter(|k| !k.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, LedgerError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition);
        for (name, value) in values {
            put = put.expression_attribute_values(*name, value.clone());
        }
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(dynamo_error("TransactWriteItems"))?)
            .build())
    }
}

/// A single conditional write's result: a failed condition is a [`CommitError::Conflict`].
fn conditional<T, E, R>(
    operation: &'static str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<(), CommitError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("ConditionalCheckFailedException") => Err(CommitError::Conflict),
        Err(e) => Err(dynamo_error(operation)(e).into()),
    }
}

fn found_to_lookup(
    found: Vec<HashMap<String, AttributeValue>>,
) -> Result<AlertLookup, LedgerError> {
    let mut owner = None;
    for item in found {
        match item.get("sk") {
            Some(AttributeValue::S(sk)) if sk == SEEN_SK => return Ok(AlertLookup::Duplicate),
            Some(AttributeValue::S(sk)) if sk == OWNER_SK => {
                owner = Some(from_item::<OwnerItem>(item)?.principal)
            }
            _ => {}
        }
    }
    Ok(owner.map_or(AlertLookup::Unowned, AlertLookup::Owner))
}

/// Eight hex digits: enough to keep two events of the same microsecond apart.
fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}
