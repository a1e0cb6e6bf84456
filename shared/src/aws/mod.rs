//! The adapters: each AWS service seatcap talks to, behind a narrow type of its own.

pub mod budgets;
pub mod enforce;
pub mod iam;
pub mod inference_profiles;
pub mod ledger;
pub mod log_objects;
pub mod notify;
pub mod secret;
pub mod signed;
pub mod sns_signature;
pub mod web;
