//! The audit trail's vocabulary (pure): what happened, who did it, and the claims that make
//! a thing happen once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The actor seatcap's own writers record: the budget-alert function.
pub const SEATCAP: &str = "seatcap";
/// The period-rollover function.
pub const ROLLOVER: &str = "seatcap:period-rollover";
/// The reconcile function.
pub const RECONCILE: &str = "seatcap:reconcile";

/// Who made a change. The audit stores the name (a string, as every earlier version wrote
/// it); this is how code tells seatcap's own functions from people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor<'a> {
    /// The budget-alert function.
    Alerts,
    Rollover,
    Reconcile,
    /// A person (finance, an operator), by the name recorded.
    Person(&'a str),
}

impl<'a> Actor<'a> {
    pub fn of(name: &'a str) -> Actor<'a> {
        match name {
            SEATCAP => Actor::Alerts,
            ROLLOVER => Actor::Rollover,
            RECONCILE => Actor::Reconcile,
            person => Actor::Person(person),
        }
    }

    /// The name the audit records.
    pub const fn name(self) -> &'a str {
        match self {
            Actor::Alerts => SEATCAP,
            Actor::Rollover => ROLLOVER,
            Actor::Reconcile => RECONCILE,
            Actor::Person(name) => name,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An alert was handled; `detail.outcome` says how.
    Alert,
    /// An alert could not be parsed.
    AlertRejected,
    /// An alert for a budget no principal owns.
    AlertUnmanaged,
    /// An alert about a period that had ended when it arrived (SNS retries, a dead-letter
    /// replay, every daily alert): recorded, never acted on.
    LateAlert,
    Enforced,
    Restored,
    CapSet,
    Blocked,
    Protected,
    Unprotected,
    OverrideGranted,
    /// An override above the approval line (or an exemption) asked for; it waits for a
    /// second finance principal.
    OverrideRequested,
    /// A cap raise above the approval line, waiting for a second finance person.
    CapRaiseRequested,
    OverrideRevoked,
    /// Overrides past their expiry were removed (reconcile).
    OverrideExpired,
    NotificationFailed,
    /// Managed policies attached again during a block were detached again (reconcile).
    DriftRepaired,
    /// An email address subscribed to the notification topic, with its filter.
    EmailSubscribed,
    /// The cap was reached but IAM refused to cut access (first failure of an alert).
    EnforcementFailed,
    /// Access was cut as configured, but another policy still allows Bedrock.
    EnforcementIncomplete,
    /// A cut is recorded but IAM does not enforce it: the person's Identity Center role does
    /// not carry the shard that lists them (the permission set does not reference it).
    NotEnforceable,
    /// A cut recorded as not enforceable is now in force: the role carries the shard.
    EnforcementCompleted,
    /// A downgrade rung took the premium-model policies.
    Downgraded,
    /// A change whose writer did not finish (timed out, killed) was completed from its
    /// write-ahead record by another writer.
    IntentCompleted,
    /// IAM refused a change's step: what it took was given back and the change dropped.
    IntentReversed,
    /// Metering met a model its price table does not know and priced it at the table's
    /// highest rate (once per model and period).
    UnknownModelPriced,
    /// Finance gave a price to a model no table priced (`set_price`).
    PriceSet,
    /// An ended month's metered figure and Budgets' differ by more than 10 % (reconcile,
    /// once per principal and month): a price is wrong or missing, or calls went unlogged.
    MeteredBudgetDrift,
    /// Metering could not act on a principal's metered figure (IAM refused, the user is
    /// gone, a change held): the batch's others were acted on, the invocation fails and is
    /// delivered again.
    MeteredCutFailed,
    /// Calls of a session no principal matches, on a role whose people have caps of their
    /// own: charged to nobody (once per session and month, under seatcap's own subject).
    UnattributedSession,
}

/// One append-only audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
    pub actor: String,
    /// For an admin request: `true` when `actor` is the caller AWS verified (the Function
    /// URL), `false` when it is only what a direct invoke claimed. Absent on every other
    /// event (seatcap's own functions) and on events written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(at: DateTime<Utc>, kind: EventKind, actor: &str, detail: serde_json::Value) -> Self {
        AuditEvent {
            at,
            kind,
            actor: actor.to_owned(),
            actor_verified: None,
            reason: None,
            detail,
        }
    }

    /// Says whether the actor was verified (admin requests only).
    pub fn verified(mut self, verified: bool) -> Self {
        self.actor_verified = Some(verified);
        self
    }

    pub fn because(mut self, reason: &str) -> Self {
        self.reason = Some(reason.to_owned());
        self
    }

    /// An event of a change to a principal's state, whose detail shows the state before
    /// and after it. Both are left empty here: the commit engine fills them when it files
    /// the event, from the state it replaced and the state it committed, so a write-ahead
    /// intent carries neither (they were two thirds of an intent's size).
    pub fn state_change(at: DateTime<Utc>, kind: EventKind, actor: &str) -> Self {
        AuditEvent::new(
            at,
            kind,
            actor,
            serde_json::json!({"before": null, "after": null}),
        )
    }
}

/// A claim that something happened once: an SNS message, or an alert's natural key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "claim", content = "key")]
pub enum Claim {
    Message(String),
    Alert(String),
    /// A notice sent once for a key (an alert's failed enforcement), however often the
    /// delivery is retried.
    Notice(String),
}

impl Claim {
    /// The ledger key (`pk`) of the claim's item.
    pub fn key(&self) -> String {
        match self {
            Claim::Message(id) => format!("MSG#{id}"),
            Claim::Alert(key) => format!("ALERT#{key}"),
            Claim::Notice(key) => format!("NOTICE#{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_through_their_recorded_names() {
        for actor in [
            Actor::Alerts,
            Actor::Rollover,
            Actor::Reconcile,
            Actor::Person("cfo@example.com"),
        ] {
            assert_eq!(Actor::of(actor.name()), actor);
        }
    }
}
