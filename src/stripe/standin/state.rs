//! The stand-in's memory: every object by id, the events in order, recorded requests,
//! idempotency keys, and the failures a test asked for. Stripe is the only thing here that
//! keeps state in memory; chipin itself never does.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::objects::{self, ChargeSpec, InvoiceSpec, SessionSpec, SubscriptionSpec};

/// A failure a test asks the stand-in to answer its next API request with.
#[derive(Debug, Clone)]
pub enum Failure {
    /// Answer this HTTP status with Stripe's error JSON (and `Stripe-Should-Retry` if set).
    Status {
        status: u16,
        should_retry: Option<bool>,
    },
    /// Hold the request this long before answering normally.
    Delay(Duration),
}

/// One API request as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    pub params: Value,
}

pub struct Sim {
    pub inner: Mutex<Inner>,
    pub deliveries: mpsc::UnboundedSender<String>,
    pub fee_percent_bps: i64,
    pub fee_fixed: i64,
    pub api_version: String,
}

#[derive(Default)]
pub struct Inner {
    pub base_url: String,
    pub objects: HashMap<String, Value>,
    pub events: Vec<Value>,
    pub requests: Vec<Recorded>,
    pub idempotency: HashMap<String, (String, u16, Value)>,
    pub failures: VecDeque<Failure>,
    /// Event ids whose delivery Stripe has not yet seen answered 2xx.
    pub undelivered: std::collections::HashSet<String>,
    /// While set, events are created but not sent (a test's "missed webhooks").
    pub deliveries_paused: bool,
    pub clock_offset: i64,
}

pub fn new_id(prefix: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let tail: String = (0..24)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}_{tail}")
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("No such {0}: '{1}'")]
    NotFound(&'static str, String),
    #[error("{0}")]
    Invalid(String),
}

impl Sim {
    pub fn get(&self, id: &str) -> Option<Value> {
        self.inner.lock().unwrap().objects.get(id).cloned()
    }

    pub(super) fn emit(
        &self,
        inner: &mut Inner,
        kind: &str,
        object: Value,
        previous: Option<Value>,
        created: i64,
    ) {
        let id = new_id("evt");
        let event = objects::event(&id, kind, object, previous, created, &self.api_version);
        inner.events.push(event);
        inner.undelivered.insert(id.clone());
        if !inner.deliveries_paused {
            let _ = self.deliveries.send(id);
        }
    }

    /// `POST /v1/checkout/sessions`.
    pub fn create_session(&self, p: &Value) -> Result<Value, SimError> {
        let mode = p["mode"].as_str().unwrap_or("payment");
        if !matches!(mode, "payment" | "subscription") {
            return Err(SimError::Invalid(format!("Invalid mode: {mode}")));
        }
        let item = &p["line_items"][0];
        let price = &item["price_data"];
        let amount: i64 = price["unit_amount"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                SimError::Invalid(
                    "Missing required param: line_items[0][price_data][unit_amount].".into(),
                )
            })?;
        let quantity: i64 = item["quantity"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(1);
        let currency = price["currency"].as_str().ok_or_else(|| {
            SimError::Invalid("Missing required param: line_items[0][price_data][currency].".into())
        })?;
        if price["product_data"]["name"].as_str().is_none() {
            return Err(SimError::Invalid(
                "Missing required param: line_items[0][price_data][product_data][name].".into(),
            ));
        }
        if mode == "subscription" && price["recurring"]["interval"].as_str().is_none() {
            return Err(SimError::Invalid(
                "You must specify `recurring` for a price in subscription mode.".into(),
            ));
        }
        if mode == "payment" && !price["recurring"].is_null() {
            return Err(SimError::Invalid(
                "You specified `payment` mode but passed a recurring price.".into(),
            ));
        }
        let mut inner = self.inner.lock().unwrap();
        let id = new_id("cs_test");
        let url = format!("{}pay/{}", inner.base_url, id);
        let mut session = objects::checkout_session(&SessionSpec {
            id: &id,
            mode,
            amount: amount * quantity,
            currency,
            customer_email: p["customer_email"].as_str(),
            client_reference_id: p["client_reference_id"].as_str(),
            metadata: p.get("metadata").cloned().unwrap_or_else(|| json!({})),
            success_url: p["success_url"].as_str(),
            cancel_url: p["cancel_url"].as_str(),
            url: &url,
            submit_type: p["submit_type"].as_str(),
            created: now() + inner.clock_offset,
        });
        // Kept beside the session (not rendered): what the payment will create.
        session["_standin"] = json!({
            "interval": price["recurring"]["interval"],
            "payment_intent_metadata": p["payment_intent_data"]["metadata"],
            "subscription_metadata": p["subscription_data"]["metadata"],
        });
        inner.objects.insert(id, session.clone());
        Ok(public(session))
    }

    /// The donor pays on the hosted page: everything Stripe would create, and its events in
    /// Stripe's order.
    pub fn pay_session(&self, id: &str, email: &str, name: &str) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let mut session = inner
            .objects
            .get(id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("checkout.session", id.into()))?;
        if session["status"] != "open" {
            return Err(SimError::Invalid(
                "This Checkout Session is no longer active.".into(),
            ));
        }
        let t = now() + inner.clock_offset;
        let amount = session["amount_total"].as_i64().unwrap_or(0);
        let currency = session["currency"].as_str().unwrap_or("usd").to_string();
        let email = session["customer_email"]
            .as_str()
            .unwrap_or(email)
            .to_string();
        let hidden = session["_standin"].clone();
        let customer_id = new_id("cus");
        inner.objects.insert(
            customer_id.clone(),
            objects::customer(&customer_id, Some(&email), Some(name), t),
        );
        session["customer"] = json!(customer_id);
        session["customer_details"] = json!({"address": {"city": null, "country": "US", "line1": null, "line2": null, "postal_code": "10001", "state": null},
            "business_name": null, "email": email, "individual_name": null, "name": name, "phone": null, "tax_exempt": "none", "tax_ids": []});
        session["status"] = json!("complete");
        session["payment_status"] = json!("paid");
        session["url"] = Value::Null;

        if session["mode"] == "payment" {
            let metadata = nonnull(hidden["payment_intent_metadata"].clone());
            let (pi, charge) = self.make_payment(
                &mut inner,
                amount,
                &currency,
                &customer_id,
                &email,
                name,
                metadata,
                None,
                t,
            );
            session["payment_intent"] = json!(pi["id"]);
            self.emit(&mut inner, "charge.succeeded", charge, None, t);
            self.emit(&mut inner, "payment_intent.succeeded", pi, None, t);
        } else {
            let interval = hidden["interval"].as_str().unwrap_or("month").to_string();
            let metadata = nonnull(hidden["subscription_metadata"].clone());
            let sub_id = new_id("sub");
            let invoice_id = new_id("in");
            let end = t + if interval == "year" {
                365 * 86_400
            } else {
                30 * 86_400
            };
            let sub = objects::subscription(&SubscriptionSpec {
                id: &sub_id,
                customer: &customer_id,
                amount,
                currency: &currency,
                interval: &interval,
                metadata: metadata.clone(),
                latest_invoice: &invoice_id,
                period_start: t,
                period_end: end,
                created: t,
            });
            inner.objects.insert(sub_id.clone(), sub.clone());
            let invoice = self.make_invoice(
                &mut inner,
                &invoice_id,
                &sub,
                "subscription_create",
                true,
                t,
            );
            session["subscription"] = json!(sub_id);
            session["invoice"] = json!(invoice_id);
            self.emit(&mut inner, "customer.subscription.created", sub, None, t);
            self.emit(&mut inner, "invoice.paid", invoice.clone(), None, t);
            self.emit(&mut inner, "invoice.payment_succeeded", invoice, None, t);
        }
        inner.objects.insert(id.to_string(), session.clone());
        let session = public(session);
        self.emit(
            &mut inner,
            "checkout.session.completed",
            session.clone(),
            None,
            t,
        );
        Ok(session)
    }

    #[allow(clippy::too_many_arguments)]
    fn make_payment(
        &self,
        inner: &mut Inner,
        amount: i64,
        currency: &str,
        customer: &str,
        email: &str,
        name: &str,
        metadata: Value,
        description: Option<&str>,
        t: i64,
    ) -> (Value, Value) {
        let pi_id = new_id("pi");
        let ch_id = new_id("ch");
        let bt_id = new_id("txn");
        let fee = objects::fee_for(amount, self.fee_percent_bps, self.fee_fixed);
        let bt = objects::balance_transaction(
            &bt_id, amount, fee, currency, &ch_id, "charge", "charge", t,
        );
        let charge = objects::charge(&ChargeSpec {
            id: &ch_id,
            amount,
            currency,
            customer,
            payment_intent: &pi_id,
            balance_transaction: &bt_id,
            email: Some(email),
            name: Some(name),
            metadata: metadata.clone(),
            created: t,
        });
        let pi = objects::payment_intent(
            &pi_id,
            amount,
            currency,
            customer,
            &ch_id,
            metadata,
            description,
            t,
        );
        inner.objects.insert(bt_id, bt);
        inner.objects.insert(ch_id, charge.clone());
        inner.objects.insert(pi_id, pi.clone());
        (pi, charge)
    }

    fn make_invoice(
        &self,
        inner: &mut Inner,
        invoice_id: &str,
        sub: &Value,
        reason: &str,
        paid: bool,
        t: i64,
    ) -> Value {
        let item = &sub["items"]["data"][0];
        let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0);
        let currency = sub["currency"].as_str().unwrap_or("usd").to_string();
        let customer = sub["customer"].as_str().unwrap_or_default().to_string();
        let email = inner
            .objects
            .get(&customer)
            .and_then(|c| c["email"].as_str().map(str::to_string));
        let name = inner
            .objects
            .get(&customer)
            .and_then(|c| c["name"].as_str().map(str::to_string))
            .unwrap_or_default();
        let attempts = inner
            .objects
            .get(invoice_id)
            .and_then(|i| i["attempt_count"].as_i64())
            .unwrap_or(0)
            + 1;
        let invoice = objects::invoice(&InvoiceSpec {
            id: invoice_id,
            customer: &customer,
            customer_email: email.as_deref(),
            subscription: sub["id"].as_str().unwrap_or_default(),
            subscription_metadata: sub["metadata"].clone(),
            amount,
            currency: &currency,
            paid,
            billing_reason: reason,
            period_start: item["current_period_start"].as_i64().unwrap_or(t),
            period_end: item["current_period_end"].as_i64().unwrap_or(t),
            attempt_count: attempts,
            created: t,
        });
        if paid {
            let description = if reason == "subscription_create" {
                "Subscription creation"
            } else {
                "Subscription update"
            };
            let (pi, charge) = self.make_payment(
                inner,
                amount,
                &currency,
                &customer,
                email.as_deref().unwrap_or(""),
                &name,
                json!({}),
                Some(description),
                t,
            );
            let ip_id = new_id("inpay");
            let ip = objects::invoice_payment(
                &ip_id,
                invoice_id,
                pi["id"].as_str().unwrap_or_default(),
                amount,
                &currency,
                t,
            );
            inner.objects.insert(ip_id, ip);
            self.emit(inner, "charge.succeeded", charge, None, t);
            self.emit(inner, "payment_intent.succeeded", pi, None, t);
        }
        inner
            .objects
            .insert(invoice_id.to_string(), invoice.clone());
        invoice
    }

    /// The next billing period of a subscription: a new invoice, paid or failed.
    pub fn renew(&self, sub_id: &str, paid: bool) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let mut sub = inner
            .objects
            .get(sub_id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("subscription", sub_id.into()))?;
        if sub["status"] == "canceled" {
            return Err(SimError::Invalid("This subscription is canceled.".into()));
        }
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        let item = sub["items"]["data"][0].clone();
        let start = item["current_period_end"].as_i64().unwrap_or(t);
        let len = start - item["current_period_start"].as_i64().unwrap_or(start);
        sub["items"]["data"][0]["current_period_start"] = json!(start);
        sub["items"]["data"][0]["current_period_end"] = json!(start + len);
        let invoice_id = new_id("in");
        sub["latest_invoice"] = json!(invoice_id);
        let previous_status = sub["status"].clone();
        if !paid {
            sub["status"] = json!("past_due");
        } else {
            sub["status"] = json!("active");
        }
        inner.objects.insert(sub_id.to_string(), sub.clone());
        let invoice =
            self.make_invoice(&mut inner, &invoice_id, &sub, "subscription_cycle", paid, t);
        if paid {
            self.emit(&mut inner, "invoice.paid", invoice.clone(), None, t);
            self.emit(
                &mut inner,
                "invoice.payment_succeeded",
                invoice.clone(),
                None,
                t,
            );
        } else {
            self.emit(
                &mut inner,
                "invoice.payment_failed",
                invoice.clone(),
                None,
                t,
            );
        }
        if previous_status != sub["status"] {
            self.emit(
                &mut inner,
                "customer.subscription.updated",
                sub,
                Some(json!({"status": previous_status})),
                t,
            );
        }
        Ok(invoice)
    }

    /// `DELETE /v1/subscriptions/{id}`, or a cancellation from the portal.
    pub fn cancel_subscription(&self, sub_id: &str, reason: &str) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let mut sub = inner
            .objects
            .get(sub_id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("subscription", sub_id.into()))?;
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        sub["status"] = json!("canceled");
        sub["canceled_at"] = json!(t);
        sub["ended_at"] = json!(t);
        sub["cancellation_details"] = json!({"comment": null, "feedback": null, "reason": reason});
        inner.objects.insert(sub_id.to_string(), sub.clone());
        self.emit(
            &mut inner,
            "customer.subscription.deleted",
            sub.clone(),
            None,
            t,
        );
        Ok(sub)
    }

    /// A change of amount or interval (the portal's "update plan").
    pub fn update_subscription_amount(&self, sub_id: &str, amount: i64) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let mut sub = inner
            .objects
            .get(sub_id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("subscription", sub_id.into()))?;
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        let previous = sub["items"].clone();
        sub["items"]["data"][0]["price"]["unit_amount"] = json!(amount);
        sub["items"]["data"][0]["price"]["unit_amount_decimal"] = json!(amount.to_string());
        sub["items"]["data"][0]["plan"]["amount"] = json!(amount);
        sub["items"]["data"][0]["plan"]["amount_decimal"] = json!(amount.to_string());
        inner.objects.insert(sub_id.to_string(), sub.clone());
        self.emit(
            &mut inner,
            "customer.subscription.updated",
            sub.clone(),
            Some(json!({"items": previous})),
            t,
        );
        Ok(sub)
    }

    /// `POST /v1/refunds`.
    pub fn refund(&self, p: &Value) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let charge_id = match (p["charge"].as_str(), p["payment_intent"].as_str()) {
            (Some(c), _) => c.to_string(),
            (None, Some(pi)) => inner
                .objects
                .get(pi)
                .and_then(|pi| pi["latest_charge"].as_str().map(str::to_string))
                .ok_or_else(|| SimError::NotFound("payment_intent", pi.into()))?,
            _ => return Err(SimError::Invalid("One of the following params should be provided for this request: payment_intent or charge.".into())),
        };
        let mut charge = inner
            .objects
            .get(&charge_id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("charge", charge_id.clone()))?;
        let total = charge["amount"].as_i64().unwrap_or(0);
        let already = charge["amount_refunded"].as_i64().unwrap_or(0);
        let amount = match p["amount"].as_str() {
            Some(a) => a
                .parse::<i64>()
                .map_err(|_| SimError::Invalid("Invalid integer: amount".into()))?,
            None => total - already,
        };
        if amount <= 0 || already + amount > total {
            return Err(SimError::Invalid(format!(
                "Refund amount ({amount}) is greater than unrefunded amount on charge ({}).",
                total - already
            )));
        }
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        let currency = charge["currency"].as_str().unwrap_or("usd").to_string();
        let pi = charge["payment_intent"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let re_id = new_id("re");
        let bt_id = new_id("txn");
        inner.objects.insert(
            bt_id.clone(),
            objects::balance_transaction(
                &bt_id, -amount, 0, &currency, &re_id, "refund", "refund", t,
            ),
        );
        let refund = objects::refund(&re_id, &charge_id, &pi, amount, &currency, &bt_id, t);
        inner.objects.insert(re_id, refund.clone());
        let previous = json!({"amount_refunded": already, "refunded": false});
        charge["amount_refunded"] = json!(already + amount);
        charge["refunded"] = json!(already + amount == total);
        inner.objects.insert(charge_id, charge.clone());
        self.emit(&mut inner, "charge.refunded", charge, Some(previous), t);
        self.emit(&mut inner, "refund.created", refund.clone(), None, t);
        Ok(refund)
    }

    /// A cardholder disputes a charge.
    pub fn dispute(&self, charge_id: &str) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let mut charge = inner
            .objects
            .get(charge_id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("charge", charge_id.into()))?;
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        let amount = charge["amount"].as_i64().unwrap_or(0);
        let currency = charge["currency"].as_str().unwrap_or("usd").to_string();
        let dp_id = new_id("dp");
        let bt_id = new_id("txn");
        let bt = objects::balance_transaction(
            &bt_id,
            -amount,
            1500,
            &currency,
            &dp_id,
            "adjustment",
            "dispute",
            t,
        );
        inner.objects.insert(bt_id, bt.clone());
        let dispute = objects::dispute(
            &dp_id,
            charge_id,
            charge["payment_intent"].as_str().unwrap_or_default(),
            amount,
            &currency,
            "needs_response",
            json!([bt]),
            t,
        );
        charge["disputed"] = json!(true);
        inner.objects.insert(charge_id.to_string(), charge);
        inner.objects.insert(dp_id, dispute.clone());
        self.emit(
            &mut inner,
            "charge.dispute.created",
            dispute.clone(),
            None,
            t,
        );
        Ok(dispute)
    }

    /// The card network decides: `won` or `lost`.
    pub fn close_dispute(&self, dp_id: &str, status: &str) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        let mut dispute = inner
            .objects
            .get(dp_id)
            .cloned()
            .ok_or_else(|| SimError::NotFound("dispute", dp_id.into()))?;
        if !matches!(status, "won" | "lost") {
            return Err(SimError::Invalid("status must be won or lost".into()));
        }
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        if status == "won" {
            let amount = dispute["amount"].as_i64().unwrap_or(0);
            let currency = dispute["currency"].as_str().unwrap_or("usd").to_string();
            let bt_id = new_id("txn");
            let bt = objects::balance_transaction(
                &bt_id,
                amount,
                -1500,
                &currency,
                dp_id,
                "adjustment",
                "dispute_reversal",
                t,
            );
            inner.objects.insert(bt_id, bt.clone());
            if let Some(list) = dispute["balance_transactions"].as_array_mut() {
                list.push(bt);
            }
        }
        let previous = json!({"status": dispute["status"]});
        dispute["status"] = json!(status);
        inner.objects.insert(dp_id.to_string(), dispute.clone());
        self.emit(
            &mut inner,
            "charge.dispute.closed",
            dispute.clone(),
            Some(previous),
            t,
        );
        Ok(dispute)
    }

    /// Objects of one kind whose `field` equals `value` (list endpoints' filters).
    pub fn list(&self, object: &str, filter: impl Fn(&Value) -> bool) -> Vec<Value> {
        let inner = self.inner.lock().unwrap();
        let mut found: Vec<Value> = inner
            .objects
            .values()
            .filter(|o| o["object"] == object && filter(o))
            .cloned()
            .map(public)
            .collect();
        found.sort_by_key(|o| std::cmp::Reverse(o["created"].as_i64().unwrap_or(0)));
        found
    }
}

fn nonnull(v: Value) -> Value {
    if v.is_null() { json!({}) } else { v }
}

/// Strips the stand-in's private notes from an object before it is shown.
pub fn public(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("_standin");
    }
    v
}
