//! Integration tests: one binary, one helper; each test gets a fresh database.

mod checkout;
mod helpers;
mod pages;
mod reports;
mod webhooks;
