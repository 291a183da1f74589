//! Checkout Sessions: created through async-stripe's typed request, read back narrowly.

use std::collections::HashMap;

use serde::Deserialize;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionLineItemsPriceData,
    CreateCheckoutSessionLineItemsPriceDataRecurring,
    CreateCheckoutSessionLineItemsPriceDataRecurringInterval,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionSubscriptionData, ProductData,
    RetrieveCheckoutSession,
};
use stripe_client_core::StripeRequest;
use stripe_shared::{CheckoutSessionMode, CheckoutSessionSubmitType};

use super::{StripeClient, StripeError};
use crate::gifts::Frequency;

/// What we ask Stripe Checkout for.
#[derive(Debug)]
pub struct NewSession<'a> {
    pub frequency: Frequency,
    pub amount: i64,
    pub currency: &'a str,
    pub product_name: &'a str,
    pub customer_email: Option<&'a str>,
    pub client_reference_id: &'a str,
    /// Copied onto the session and onto the PaymentIntent or Subscription it creates, so
    /// every later webhook ties back to the gift.
    pub metadata: HashMap<String, String>,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// The parts of a Checkout Session we read.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: String,
    pub url: Option<String>,
    pub status: Option<String>,
    pub payment_status: Option<String>,
    pub mode: Option<String>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    pub client_reference_id: Option<String>,
}

pub fn create_request(s: &NewSession<'_>) -> CreateCheckoutSession {
    let Ok(currency) = s.currency.parse::<stripe_types::Currency>();
    let mut price = CreateCheckoutSessionLineItemsPriceData::new(currency);
    price.unit_amount = Some(s.amount);
    price.product_data = Some(ProductData::new(s.product_name));
    let mut req = CreateCheckoutSession::new()
        .client_reference_id(s.client_reference_id)
        .metadata(s.metadata.clone())
        .success_url(s.success_url)
        .cancel_url(s.cancel_url);
    match s.frequency.interval() {
        None => {
            let mut pi = CreateCheckoutSessionPaymentIntentData::new();
            pi.metadata = Some(s.metadata.clone());
            req = req
                .mode(CheckoutSessionMode::Payment)
                .submit_type(CheckoutSessionSubmitType::Donate)
                .payment_intent_data(pi);
        }
        Some(interval) => {
            let interval = match interval {
                "year" => CreateCheckoutSessionLineItemsPriceDataRecurringInterval::Year,
                _ => CreateCheckoutSessionLineItemsPriceDataRecurringInterval::Month,
            };
            price.recurring = Some(CreateCheckoutSessionLineItemsPriceDataRecurring::new(
                interval,
            ));
            let mut sub = CreateCheckoutSessionSubscriptionData::new();
            sub.metadata = Some(s.metadata.clone());
            req = req
                .mode(CheckoutSessionMode::Subscription)
                .subscription_data(sub);
        }
    }
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price_data = Some(price);
    item.quantity = Some(1);
    req = req.line_items(vec![item]);
    if let Some(email) = s.customer_email {
        req = req.customer_email(email);
    }
    req
}

impl StripeClient {
    pub async fn create_checkout_session(
        &self,
        s: &NewSession<'_>,
        idempotency_key: &str,
    ) -> Result<Session, StripeError> {
        self.send(create_request(s).build(), Some(idempotency_key))
            .await
    }

    pub async fn retrieve_checkout_session(&self, id: &str) -> Result<Session, StripeError> {
        self.send(RetrieveCheckoutSession::new(id).build(), None)
            .await
    }
}
