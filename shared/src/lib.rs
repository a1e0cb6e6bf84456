//! seatcap: per-seat AI spending caps on AWS, enforced by infrastructure.
//!
//! Three layers, one direction of dependency:
//!
//! * the pure core, the `seatcap-core` crate (re-exported here: [`alert`], [`decide`],
//!   [`state`], [`intent`], [`money`], ...), which has no AWS dependency at all;
//! * [`aws`], the adapters: [`ledger`] (DynamoDB), [`iam`], [`enforce`] (the ways of cutting
//!   access), [`notify`] (Slack, SNS), [`budgets`], [`secret`];
//! * [`flows`], what the functions run: [`alert_delivery`], [`admin`], [`rollover`],
//!   [`reconcile`], [`outbox`], every change going through the one [`commit`] engine.
//!
//! Each `functions/*/src/main.rs` only wires one flow up.

pub mod app;
pub mod aws;
pub mod config;
pub mod flows;
pub mod metrics;
pub mod telemetry;

pub use app::App;
pub use aws::{
    budgets, enforce, iam, inference_profiles, ledger, log_objects, notify, secret, sns_signature,
    web,
};
pub use flows::{
    admin, alarms, alert_delivery, commit, group_spend, handover, metered_drift, metered_prices,
    metering, outbox, pricing_sync, reconcile, rollover, unattributed,
};
pub use seatcap_core::{
    access, alert, announce, audit, cap_raise, change, decide, deny, finance_price, findings,
    identity, identity_center, intent, invocation, log_object, meter, money, notice, period, price,
    price_list, principal, rearm, request, sns, state, unit_price, usage,
};
