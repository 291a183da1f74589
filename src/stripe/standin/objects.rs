//! Stripe objects in the shapes of API version 2026-09-30.endive, as the stand-in renders
//! them. Tests compare them with Stripe's example objects (`../shared/stripe/fixtures3.json`)
//! and parse its events with async-stripe's typed events.

use serde_json::{Value, json};

pub fn fee_for(amount: i64, percent_bps: i64, fixed: i64) -> i64 {
    // Stripe rounds the percentage half up to the minor unit.
    (amount * percent_bps + 5_000) / 10_000 + fixed
}

pub fn customer(id: &str, email: Option<&str>, name: Option<&str>, created: i64) -> Value {
    json!({
        "id": id, "object": "customer", "address": null, "balance": 0, "created": created,
        "currency": null, "default_source": null, "delinquent": false, "description": null,
        "discount": null, "email": email, "invoice_prefix": id[4..].to_uppercase().chars().take(8).collect::<String>(),
        "invoice_settings": {"custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null},
        "livemode": false, "metadata": {}, "name": name, "next_invoice_sequence": 1, "phone": null,
        "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null
    })
}

pub struct SessionSpec<'a> {
    pub id: &'a str,
    pub mode: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub customer_email: Option<&'a str>,
    pub client_reference_id: Option<&'a str>,
    pub metadata: Value,
    pub success_url: Option<&'a str>,
    pub cancel_url: Option<&'a str>,
    pub url: &'a str,
    pub submit_type: Option<&'a str>,
    pub created: i64,
}

pub fn checkout_session(s: &SessionSpec<'_>) -> Value {
    json!({
        "id": s.id, "object": "checkout.session",
        "adaptive_pricing": {"enabled": false},
        "after_expiration": null, "allow_promotion_codes": null,
        "amount_subtotal": s.amount, "amount_total": s.amount,
        "automatic_tax": {"enabled": false, "liability": null, "provider": null, "status": null},
        "billing_address_collection": null, "cancel_url": s.cancel_url,
        "client_reference_id": s.client_reference_id, "client_secret": null,
        "collected_information": null, "consent": null, "consent_collection": null,
        "created": s.created, "currency": s.currency, "currency_conversion": null,
        "custom_fields": [], "custom_text": {"after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null},
        "customer": null, "customer_account": null,
        "customer_creation": if s.mode == "payment" { "if_required" } else { "always" },
        "customer_details": null, "customer_email": s.customer_email,
        "discounts": [], "expires_at": s.created + 86_400,
        "integration_identifier": null, "invoice": null, "invoice_creation": if s.mode == "payment" {
            json!({"enabled": false, "invoice_data": {"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": null, "metadata": {}, "rendering_options": null}})
        } else { Value::Null },
        "livemode": false, "locale": null, "managed_payments": {"enabled": false},
        "metadata": s.metadata, "mode": s.mode,
        "origin_context": null, "payment_intent": null, "payment_link": null,
        "payment_method_collection": if s.mode == "subscription" { json!("always") } else { Value::Null },
        "payment_method_configuration_details": null,
        "payment_method_options": {}, "payment_method_types": ["card"],
        "payment_status": "unpaid", "permissions": null,
        "phone_number_collection": {"enabled": false}, "recovered_from": null,
        "saved_payment_method_options": null, "setup_intent": null,
        "shipping_address_collection": null, "shipping_cost": null, "shipping_options": [],
        "status": "open", "submit_type": s.submit_type, "subscription": null,
        "success_url": s.success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted", "url": s.url, "wallet_options": null
    })
}

#[allow(clippy::too_many_arguments)]
pub fn payment_intent(
    id: &str,
    amount: i64,
    currency: &str,
    customer: &str,
    charge: &str,
    metadata: Value,
    description: Option<&str>,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_capturable": 0,
        "amount_details": {"tip": {}}, "amount_received": amount, "application": null,
        "application_fee_amount": null, "automatic_payment_methods": null,
        "canceled_at": null, "cancellation_reason": null, "capture_method": "automatic",
        "client_secret": format!("{id}_secret_standin"), "confirmation_method": "automatic",
        "created": created, "currency": currency, "customer": customer, "customer_account": null,
        "description": description,
        "excluded_payment_method_types": null, "last_payment_error": null, "latest_charge": charge,
        "livemode": false, "managed_payments": {"enabled": false}, "metadata": metadata,
        "next_action": null, "on_behalf_of": null,
        "payment_method": format!("pm_{}", &id[3..]), "payment_method_configuration_details": null,
        "payment_method_options": {"card": {"installments": null, "mandate_options": null, "network": null, "request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"], "processing": null, "receipt_email": null, "review": null,
        "setup_future_usage": null, "shipping": null, "source": null, "statement_descriptor": null,
        "statement_descriptor_suffix": null, "status": "succeeded", "transfer_data": null,
        "transfer_group": null
    })
}

pub struct ChargeSpec<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub customer: &'a str,
    pub payment_intent: &'a str,
    pub balance_transaction: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub metadata: Value,
    pub created: i64,
}

pub fn charge(c: &ChargeSpec<'_>) -> Value {
    json!({
        "id": c.id, "object": "charge", "amount": c.amount, "amount_captured": c.amount,
        "amount_refunded": 0, "application": null, "application_fee": null,
        "application_fee_amount": null, "balance_transaction": c.balance_transaction,
        "billing_details": {"address": {"city": null, "country": "US", "line1": null, "line2": null, "postal_code": "10001", "state": null},
            "email": c.email, "name": c.name, "phone": null, "tax_id": null},
        "calculated_statement_descriptor": "NEWSROOM", "captured": true, "created": c.created,
        "currency": c.currency, "customer": c.customer, "description": null, "disputed": false,
        "failure_balance_transaction": null, "failure_code": null, "failure_message": null,
        "fraud_details": {}, "livemode": false, "metadata": c.metadata, "on_behalf_of": null,
        "outcome": {"advice_code": null, "network_advice_code": null, "network_decline_code": null, "network_status": "approved_by_network", "reason": null, "risk_level": "normal", "risk_score": 32, "seller_message": "Payment complete.", "type": "authorized"},
        "paid": true, "payment_intent": c.payment_intent, "payment_method": format!("pm_{}", &c.payment_intent[3..]),
        "payment_method_details": {"card": {"amount_authorized": c.amount, "authorization_code": null, "brand": "visa",
            "checks": {"address_line1_check": null, "address_postal_code_check": "pass", "cvc_check": "pass"},
            "country": "US", "exp_month": 12, "exp_year": 2030, "extended_authorization": {"status": "disabled"},
            "fingerprint": "standinfingerprint", "funding": "credit", "incremental_authorization": {"status": "unavailable"},
            "installments": null, "last4": "4242", "mandate": null, "multicapture": {"status": "unavailable"},
            "network": "visa", "network_token": {"used": false}, "network_transaction_id": "standin",
            "overcapture": {"maximum_amount_capturable": c.amount, "status": "unavailable"},
            "regulated_status": "unregulated", "three_d_secure": null, "transaction_link_id": null,
            "wallet": null}, "type": "card"},
        "receipt_email": c.email, "receipt_number": null, "receipt_url": null, "refunded": false,
        "review": null, "shipping": null, "source": null, "source_transfer": null,
        "statement_descriptor": null, "statement_descriptor_suffix": null, "status": "succeeded",
        "transfer_data": null, "transfer_group": null
    })
}

#[allow(clippy::too_many_arguments)]
pub fn balance_transaction(
    id: &str,
    amount: i64,
    fee: i64,
    currency: &str,
    source: &str,
    kind: &str,
    category: &str,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "balance_transaction", "amount": amount,
        "available_on": created + 2 * 86_400, "balance_type": "payments", "created": created, "currency": currency,
        "description": null, "exchange_rate": null, "fee": fee,
        "fee_details": if fee != 0 { json!([{"amount": fee, "application": null, "currency": currency, "description": "Stripe processing fees", "type": "stripe_fee"}]) } else { json!([]) },
        "net": amount - fee, "reporting_category": category, "source": source,
        "status": "pending", "type": kind
    })
}

pub struct SubscriptionSpec<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub interval: &'a str,
    pub metadata: Value,
    pub latest_invoice: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub created: i64,
}

pub fn subscription(s: &SubscriptionSpec<'_>) -> Value {
    let price = json!({
        "id": format!("price_{}", &s.id[4..]), "object": "price", "active": false, "billing_scheme": "per_unit",
        "created": s.created, "currency": s.currency, "custom_unit_amount": null, "livemode": false,
        "lookup_key": null, "metadata": {}, "nickname": null, "product": format!("prod_{}", &s.id[4..]),
        "recurring": {"interval": s.interval, "interval_count": 1, "meter": null, "trial_period_days": null, "usage_type": "licensed"},
        "tax_behavior": "unspecified", "tiers_mode": null, "transform_quantity": null, "type": "recurring",
        "unit_amount": s.amount, "unit_amount_decimal": s.amount.to_string()
    });
    // The legacy mirror of the price that Stripe still renders on every subscription item.
    let plan = json!({
        "id": format!("price_{}", &s.id[4..]), "object": "plan", "active": false,
        "amount": s.amount, "amount_decimal": s.amount.to_string(), "billing_scheme": "per_unit",
        "created": s.created, "currency": s.currency, "interval": s.interval, "interval_count": 1,
        "livemode": false, "metadata": {}, "meter": null, "nickname": null,
        "product": format!("prod_{}", &s.id[4..]), "tiers_mode": null, "transform_usage": null,
        "trial_period_days": null, "usage_type": "licensed"
    });
    json!({
        "id": s.id, "object": "subscription", "application": null, "application_fee_percent": null,
        "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null},
        "billing_cycle_anchor": s.period_start, "billing_cycle_anchor_config": null,
        "billing_mode": {"flexible": null, "type": "classic"}, "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null, "cancel_at_period_end": false, "canceled_at": null,
        "cancellation_details": {"comment": null, "feedback": null, "reason": null},
        "collection_method": "charge_automatically", "created": s.created, "currency": s.currency,
        "customer": s.customer, "customer_account": null, "days_until_due": null,
        "default_payment_method": null,
        "default_source": null, "default_tax_rates": [], "description": null, "discounts": [],
        "ended_at": null,
        "invoice_settings": {"account_tax_ids": null, "custom_fields": null, "description": null, "footer": null, "issuer": {"type": "self"}},
        "items": {"object": "list", "data": [{
            "id": format!("si_{}", &s.id[4..]), "object": "subscription_item", "billing_thresholds": null,
            "created": s.created, "current_period_end": s.period_end, "current_period_start": s.period_start,
            "discounts": [], "metadata": {}, "plan": plan, "price": price, "quantity": 1,
            "subscription": s.id, "tax_rates": []
        }], "has_more": false, "url": format!("/v1/subscription_items?subscription={}", s.id)},
        "latest_invoice": s.latest_invoice, "livemode": false, "managed_payments": {"enabled": false},
        "metadata": s.metadata,
        "next_pending_invoice_item_invoice": null, "on_behalf_of": null, "pause_collection": null,
        "payment_settings": {"payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off"},
        "pending_invoice_item_interval": null, "pending_setup_intent": null, "pending_update": null,
        "schedule": null, "start_date": s.created, "status": "active", "test_clock": null,
        "transfer_data": null, "trial_end": null,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}}, "trial_start": null
    })
}

pub struct InvoiceSpec<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub customer_email: Option<&'a str>,
    pub subscription: &'a str,
    pub subscription_metadata: Value,
    pub amount: i64,
    pub currency: &'a str,
    pub paid: bool,
    pub billing_reason: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub attempt_count: i64,
    pub created: i64,
}

pub fn invoice(i: &InvoiceSpec<'_>) -> Value {
    let paid = i.paid;
    json!({
        "id": i.id, "object": "invoice", "account_country": "US", "account_name": "The Newsroom (stand-in)",
        "account_tax_ids": null, "amount_due": i.amount, "amount_overpaid": 0,
        "amount_paid": if paid { i.amount } else { 0 }, "amount_remaining": if paid { 0 } else { i.amount },
        "amount_shipping": 0, "application": null, "attempt_count": i.attempt_count, "attempted": true,
        "auto_advance": !paid, "automatic_tax": {"disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null},
        "automatically_finalizes_at": null, "billing_reason": i.billing_reason,
        "collection_method": "charge_automatically", "created": i.created, "currency": i.currency,
        "custom_fields": null, "customer": i.customer, "customer_account": null, "customer_address": null,
        "customer_email": i.customer_email, "customer_name": null, "customer_phone": null,
        "customer_shipping": null, "customer_tax_exempt": "none", "customer_tax_ids": [],
        "default_payment_method": null, "default_source": null, "default_tax_rates": [],
        "description": null, "discounts": [], "due_date": null, "effective_at": i.created,
        "ending_balance": 0, "footer": null, "from_invoice": null, "hosted_invoice_url": null,
        "invoice_pdf": null, "issuer": {"type": "self"}, "last_finalization_error": null,
        "latest_revision": null,
        "lines": {"object": "list", "data": [{
            "id": format!("il_{}", &i.id[3..]), "object": "line_item", "amount": i.amount, "currency": i.currency,
            "description": "1 × Support our newsroom", "discount_amounts": [], "discountable": true,
            "discounts": [], "invoice": i.id, "livemode": false, "metadata": {},
            "parent": {"invoice_item_details": null, "subscription_item_details": {
                "invoice_item": null, "proration": false, "proration_details": {"credited_items": null},
                "subscription": i.subscription, "subscription_item": format!("si_{}", &i.subscription[4..])},
                "type": "subscription_item_details"},
            "period": {"end": i.period_end, "start": i.period_start},
            "pretax_credit_amounts": [], "pricing": null, "quantity": 1, "quantity_decimal": "1",
            "subscription": i.subscription, "subtotal": i.amount, "taxes": []
        }], "has_more": false, "url": format!("/v1/invoices/{}/lines", i.id)},
        "livemode": false, "metadata": {}, "next_payment_attempt": null, "number": null,
        "on_behalf_of": null,
        "parent": {"quote_details": null, "subscription_details": {"metadata": i.subscription_metadata, "subscription": i.subscription}, "type": "subscription_details"},
        "payment_settings": {"default_mandate": null, "payment_method_options": null, "payment_method_types": null},
        "period_end": i.period_end, "period_start": i.period_start,
        "post_payment_credit_notes_amount": 0, "pre_payment_credit_notes_amount": 0,
        "receipt_number": null, "rendering": null, "shipping_cost": null, "shipping_details": null,
        "starting_balance": 0, "statement_descriptor": null, "status": if paid { "paid" } else { "open" },
        "status_transitions": {"finalized_at": i.created, "marked_uncollectible_at": null, "paid_at": if paid { json!(i.created) } else { Value::Null }, "voided_at": null},
        "subtotal": i.amount, "subtotal_excluding_tax": i.amount, "test_clock": null, "total": i.amount,
        "total_discount_amounts": [], "total_excluding_tax": i.amount, "total_pretax_credit_amounts": [],
        "total_taxes": [], "webhooks_delivered_at": i.created
    })
}

pub fn invoice_payment(
    id: &str,
    invoice: &str,
    payment_intent: &str,
    amount: i64,
    currency: &str,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "invoice_payment", "amount_paid": amount, "amount_requested": amount,
        "created": created, "currency": currency, "invoice": invoice, "is_default": true, "livemode": false,
        "payment": {"payment_intent": payment_intent, "type": "payment_intent"}, "status": "paid",
        "status_transitions": {"canceled_at": null, "paid_at": created}
    })
}

pub fn refund(
    id: &str,
    charge: &str,
    payment_intent: &str,
    amount: i64,
    currency: &str,
    balance_transaction: &str,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "refund", "amount": amount, "balance_transaction": balance_transaction,
        "charge": charge, "created": created, "currency": currency,
        "customer": null, "customer_account": null,
        "destination_details": {"card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"}, "type": "card"},
        "metadata": {}, "payment_intent": payment_intent,
        "payment_method": payment_intent.strip_prefix("pi_").map(|rest| format!("pm_{rest}")),
        "reason": "requested_by_customer",
        "receipt_number": null, "source_transfer_reversal": null, "status": "succeeded",
        "transfer_reversal": null
    })
}

#[allow(clippy::too_many_arguments)]
pub fn dispute(
    id: &str,
    charge: &str,
    payment_intent: &str,
    amount: i64,
    currency: &str,
    status: &str,
    balance_transactions: Value,
    created: i64,
) -> Value {
    json!({
        "id": id, "object": "dispute", "amount": amount, "balance_transactions": balance_transactions,
        "charge": charge, "created": created, "currency": currency, "enhanced_eligibility_types": [],
        "evidence": {"access_activity_log": null, "billing_address": null, "cancellation_policy": null,
            "cancellation_policy_disclosure": null, "cancellation_rebuttal": null, "customer_communication": null,
            "customer_email_address": null, "customer_name": null, "customer_purchase_ip": null,
            "customer_signature": null, "duplicate_charge_documentation": null, "duplicate_charge_explanation": null,
            "duplicate_charge_id": null, "enhanced_evidence": {}, "product_description": null, "receipt": null,
            "refund_policy": null, "refund_policy_disclosure": null, "refund_refusal_explanation": null,
            "service_date": null, "service_documentation": null, "shipping_address": null,
            "shipping_carrier": null, "shipping_date": null, "shipping_documentation": null,
            "shipping_tracking_number": null, "uncategorized_file": null, "uncategorized_text": null},
        "evidence_details": {"due_by": created + 7 * 86_400, "enhanced_eligibility": {}, "has_evidence": false, "past_due": false, "submission_count": 0},
        "is_charge_refundable": false, "livemode": false, "metadata": {}, "payment_intent": payment_intent,
        "payment_method_details": {"card": {"brand": "visa", "case_type": "chargeback", "network": "visa", "network_reason_code": "10.4"}, "type": "card"},
        "reason": "fraudulent", "status": status
    })
}

pub fn event(
    id: &str,
    kind: &str,
    object: Value,
    previous_attributes: Option<Value>,
    created: i64,
    api_version: &str,
) -> Value {
    let mut data = json!({"object": object});
    if let Some(prev) = previous_attributes {
        data["previous_attributes"] = prev;
    }
    json!({
        "id": id, "object": "event", "api_version": api_version, "created": created,
        "data": data, "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null}, "type": kind
    })
}
