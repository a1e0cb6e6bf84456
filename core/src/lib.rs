//! seatcap's pure core. Nothing here does I/O or knows AWS: the crate has no such
//! dependency, so the compiler keeps it pure. The adapters and flows in the `seatcap` crate
//! read and write the world; everything they decide, they decide here.
//!
//! [`alert`] parses Budgets alerts, [`decide`] says what to do about one, [`state`] is a
//! principal's record and [`intent`] the write-ahead record of a change under way.
//! [`request`] is finance's admin requests and their validation, [`change`] what each does
//! to a principal, [`identity`] who is asking. [`findings`] is what reconcile finds,
//! [`rearm`] the Budgets notifications a change within a period needs, [`deny`] the
//! per-person deny lists of shared roles (and [`identity_center`] those of the roles IAM
//! Identity Center makes, which IAM refuses to change), [`access`] whether a policy still allows Bedrock.
//! [`announce`] and [`notice`] are what people are told, [`audit`] the audit trail's
//! vocabulary, [`sns`] what makes an SNS delivery authentic. [`invocation`],
//! [`log_object`], [`price`] (and [`price_list`], its daily refresh) and [`meter`] are what
//! metering reads and counts, [`usage`] finance's sums of it. [`money`], [`period`] and
//! [`principal`] are the values everything is made of.

pub mod access;
pub mod alert;
pub mod announce;
pub mod audit;
pub mod cap_raise;
pub mod change;
pub mod decide;
pub mod deny;
pub mod finance_price;
pub mod findings;
pub mod identity;
pub mod identity_center;
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
pub mod unit_price;
pub mod usage;
