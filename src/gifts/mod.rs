//! The gift ledger's domain: values that can only hold good data, and the SQL that records
//! gifts, plans, donors, refunds and disputes.

mod domain;
pub mod fees;
pub mod ledger;

pub use domain::*;
