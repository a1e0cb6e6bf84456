//! seatcap: per-seat AI spending caps on AWS, enforced by infrastructure.
//!
//! A pure core that knows nothing of AWS — [`access`] (does a policy still allow Bedrock?), [`alert`] (parse Budgets alerts), [`decide`]
//! (what to do about one), [`deny`] (per-person denies on shared roles), [`announce`] (what a change tells people), [`findings`] (what reconcile finds), [`money`], [`period`],
//! [`principal`], [`state`] — and thin adapters around it: [`ledger`] (DynamoDB),
//! [`iam`], [`notify`] (Slack, SNS), [`budgets`]. [`alerts`], [`admin`], [`rollover`] and
//! [`reconcile`] are the flows the Lambda functions run ([`handover`] lets the scheduled ones
//! continue in a new invocation); each `functions/*/src/main.rs` only wires one of them up.

pub mod access;
pub mod admin;
pub mod alert;
pub mod alerts;
pub mod announce;
pub mod app;
pub mod budgets;
pub mod commit;
pub mod config;
pub mod decide;
pub mod deny;
pub mod enforce;
pub mod findings;
pub mod handover;
pub mod iam;
pub mod intent;
pub mod ledger;
pub mod metrics;
pub mod money;
pub mod notify;
pub mod outbox;
pub mod period;
pub mod principal;
pub mod reconcile;
pub mod rollover;
pub mod secret;
pub mod state;
pub mod telemetry;

pub use app::App;
