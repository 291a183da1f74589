#![recursion_limit = "512"]
//! chipin: the donation backend of a reader-funded newsroom.
//!
//! Readers give through Stripe Checkout (`checkout`), Stripe tells us what happened through
//! webhooks (`webhooks`), and every gift is kept once in the ledger (`gifts`).

pub mod checkout;
pub mod cli;
pub mod config;
pub mod db;
pub mod dev;
pub mod error;
pub mod gifts;
pub mod manage;
pub mod pages;
pub mod ratelimit;
pub mod reconcile;
pub mod reports;
pub mod startup;
pub mod state;
pub mod stripe;
pub mod telemetry;
pub mod webhooks;
