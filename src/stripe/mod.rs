//! Everything that speaks Stripe: our narrow client over async-stripe, Stripe's signature
//! scheme, and the stand-in that plays Stripe when the real one is out of reach.

mod client;
pub mod sessions;
pub mod signature;
pub mod standin;

pub use client::{StripeClient, StripeError};

/// The API version our requests and webhook endpoint speak (async-stripe's pinned version).
pub fn api_version() -> &'static str {
    stripe_client_core::VERSION.as_str()
}
