//! Integration tests: one binary, one helper; each test gets a fresh database.

mod browser;
mod checkout;
mod helpers;
mod ledger;
mod manage;
mod pages;
mod payouts;
mod reconcile;
mod reports;
mod webhooks;
