//! Everything that speaks Stripe: our narrow client over async-stripe, Stripe's signature
//! scheme, and the stand-in that plays Stripe when the real one is out of reach.

mod client;
pub mod sessions;
pub mod signature;
pub mod standin;

pub use client::{StripeClient, StripeError};

/// The id of an expandable field, whether Stripe sent the id or the expanded object.
pub fn expandable_id(v: Option<&serde_json::Value>) -> Option<String> {
    match v {
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(serde_json::Value::Object(o)) => o
            .get("id")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

/// The API version our requests and webhook endpoint speak (async-stripe's pinned version).
pub fn api_version() -> &'static str {
    stripe_client_core::VERSION.as_str()
}
