//! seatcap's pure core. Nothing here does I/O or knows AWS: the crate has no such
//! dependency, so the compiler keeps it pure. The adapters and flows in the `seatcap` crate
//! read and write the world; everything they decide, they decide here.
//!
//! [`alert`] parses Budgets alerts, [`decide`] says what to do about one, [`state`] is a
//! principal's record and [`intent`] the write-ahead record of a change under way,
//! [`findings`] is what reconcile finds, [`identity`] who is asking the admin, [`rearm`] the Budgets notifications a change
//! within a period needs, [`deny`] the per-person deny lists of shared roles,
//! [`access`] whether a policy still allows Bedrock, [`announce`] and [`notice`] what people
//! are told, [`audit`] the audit trail's vocabulary, [`sns`] what makes an SNS delivery authentic, [`invocation`], [`log_object`], [`price`] (and [`price_list`], its daily refresh) and [`meter`] what metering reads and counts, [`usage`] finance's sums of it, and [`money`], [`period`], [`principal`]
//! the values everything is made of.

pub mod access;
pub mod alert;
pub mod announce;
pub mod audit;
pub mod decide;
pub mod deny;
pub mod findings;
pub mod identity;
pub mod intent;
pub mod invocation;
pub mod log_object;
pub mod meter;
pub mod money;
pub mod notice;
pub mod period;
pub mod price;
pub mod price_list;
pub mod principal;
pub mod rearm;
pub mod request;
pub mod sns;
pub mod state;
pub mod usage;
