//! The flows the Lambda functions run, all of them writing through the one
//! [`commit`] engine.

pub mod admin;
mod admin_reads;
pub mod alarms;
pub mod alert_delivery;
pub mod cap_approval;
pub mod commit;
pub mod finance_prices;
pub mod group_spend;
pub mod handover;
pub mod metered_drift;
pub mod metered_prices;
pub mod metering;
pub mod outbox;
pub mod pricing_sync;
pub mod reconcile;
pub mod rollover;
pub mod unattributed;
