//! Reading an event into facts about money: "this payment is paid", "this plan is past due",
//! "this charge was refunded by these refunds". Where a payload cannot say enough, the current
//! object is fetched from Stripe here, before any transaction opens.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::Envelope;
use crate::state::AppState;
use crate::stripe::StripeError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiftState {
    Pending,
    Paid,
    Failed,
    Expired,
}

impl GiftState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DonorFact {
    pub email: Option<String>,
    pub name: Option<String>,
    pub country: Option<String>,
    pub customer_id: Option<String>,
}

/// A one-time payment (Checkout in payment mode, a Payment Link, the dashboard).
#[derive(Debug, Clone)]
pub struct PaymentFact {
    pub gift_id: Option<Uuid>,
    pub session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub state: GiftState,
    pub amount: i64,
    pub currency: String,
    pub customer_id: Option<String>,
    pub campaign: Option<String>,
    pub at: DateTime<Utc>,
}

/// One paid installment of a recurring plan: a gift of its own.
#[derive(Debug, Clone)]
pub struct InstallmentFact {
    /// Only for the first installment, which is the gift our checkout created.
    pub gift_id: Option<Uuid>,
    pub session_id: Option<String>,
    pub invoice_id: String,
    pub payment_intent_id: Option<String>,
    pub subscription_id: String,
    pub amount: i64,
    pub currency: String,
    pub customer_id: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct PlanFact {
    pub subscription_id: String,
    pub customer_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub interval: String,
    pub status: String,
    pub at: DateTime<Utc>,
    pub canceled_at: Option<DateTime<Utc>>,
    /// Stripe's `start_date`: when the plan began.
    pub started_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    pub campaign: Option<String>,
    /// The plan began at our checkout (its metadata carries a gift id).
    pub from_checkout: bool,
}

#[derive(Debug, Clone)]
pub struct ChargeFact {
    pub charge_id: String,
    pub payment_intent_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub balance_transaction_id: Option<String>,
    pub fee: Option<i64>,
    pub net: Option<i64>,
    /// The balance transaction's currency (the account's settlement currency), which `fee`
    /// and `net` are in.
    pub fee_currency: Option<String>,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct RefundFact {
    pub refund_id: String,
    pub charge_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub created: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct DisputeFact {
    pub dispute_id: String,
    pub charge_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub reason: Option<String>,
    pub created: DateTime<Utc>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub enum Fact {
    Donor(DonorFact),
    Plan(PlanFact),
    OneTime(PaymentFact),
    Installment(InstallmentFact),
    Charge(ChargeFact),
    Refund(RefundFact),
    Dispute(DisputeFact),
    Payout(PayoutFact),
}

/// One balance transaction a payout carries, as Stripe lists it.
#[derive(Debug, Clone)]
pub struct PayoutItemFact {
    pub balance_transaction_id: String,
    pub kind: String,
    pub reporting_category: Option<String>,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub currency: String,
    pub source_id: Option<String>,
    pub created: DateTime<Utc>,
}

/// A payout (a deposit to the bank) and every balance transaction in it.
#[derive(Debug, Clone)]
pub struct PayoutFact {
    pub payout_id: String,
    pub amount: i64,
    pub currency: String,
    pub arrival_date: DateTime<Utc>,
    pub status: String,
    pub failure_code: Option<String>,
    pub created: DateTime<Utc>,
    pub at: DateTime<Utc>,
    pub items: Vec<PayoutItemFact>,
}

pub enum Interpret {
    /// Stripe was needed and unreachable: answer 503 so the delivery comes again.
    Stripe(StripeError),
    /// The event cannot be read (unknown shape, other API version): store and flag it.
    Unreadable(String),
}

impl From<StripeError> for Interpret {
    fn from(e: StripeError) -> Self {
        match e {
            // The object is gone or refused: retrying will not help; flag for a person.
            StripeError::Refused {
                status, message, ..
            } => Interpret::Unreadable(format!("stripe refused a lookup ({status}): {message}")),
            other => Interpret::Stripe(other),
        }
    }
}

fn unreadable(msg: impl Into<String>) -> Interpret {
    Interpret::Unreadable(msg.into())
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

/// An id that may be expanded into an object.
fn id_of(v: &Value, key: &str) -> Option<String> {
    crate::stripe::expandable_id(v.get(key))
}

fn need_str(v: &Value, key: &str) -> Result<String, Interpret> {
    s(v, key).ok_or_else(|| unreadable(format!("missing {key}")))
}

fn need_i64(v: &Value, key: &str) -> Result<i64, Interpret> {
    v.get(key)
        .and_then(Value::as_i64)
        .ok_or_else(|| unreadable(format!("missing {key}")))
}

fn ts(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

fn gift_id_in(metadata: &Value) -> Option<Uuid> {
    metadata
        .get("gift_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn donor_from_details(
    details: &Value,
    name_fallback: Option<String>,
    customer_id: Option<String>,
) -> Option<Fact> {
    let email = s(details, "email");
    if email.is_none() && customer_id.is_none() {
        return None;
    }
    Some(Fact::Donor(DonorFact {
        email,
        name: s(details, "name").or(name_fallback),
        country: details.get("address").and_then(|a| s(a, "country")),
        customer_id,
    }))
}

/// Whether interpreting `e` may read from Stripe: every type but a session paid (or not) in
/// payment mode, the commonest, whose payload says all.
pub fn may_read_stripe(e: &Envelope) -> bool {
    !(e.kind.starts_with("checkout.session.")
        && e.data.object.get("mode").and_then(Value::as_str) == Some("payment"))
}

pub async fn interpret(state: &AppState, e: &Envelope) -> Result<Vec<Fact>, Interpret> {
    let mut facts = facts_of(state, e).await?;
    name_payment_intents(state, &mut facts).await?;
    Ok(facts)
}

/// A refund or dispute is counted, locked and read by its payment intent. One told by its
/// charge alone (a payload without `payment_intent`) gets it from the charge, read from
/// Stripe: otherwise it would be stored but never reach the gift it takes money from.
async fn name_payment_intents(state: &AppState, facts: &mut [Fact]) -> Result<(), Interpret> {
    for fact in facts.iter_mut() {
        let (pi, charge) = match fact {
            Fact::Refund(r) => (&mut r.payment_intent_id, &r.charge_id),
            Fact::Dispute(d) => (&mut d.payment_intent_id, &d.charge_id),
            _ => continue,
        };
        if let (None, Some(charge)) = (&pi, charge) {
            let charge: Value = state.stripe.get(&format!("/charges/{charge}"), &[]).await?;
            *pi = id_of(&charge, "payment_intent");
        }
    }
    Ok(())
}

async fn facts_of(state: &AppState, e: &Envelope) -> Result<Vec<Fact>, Interpret> {
    if let Some(v) = &e.api_version
        && v != crate::stripe::api_version()
    {
        return Err(unreadable(format!(
            "api version {v}; this endpoint expects {}",
            crate::stripe::api_version()
        )));
    }
    let o = &e.data.object;
    let at = ts(e.created);
    match e.kind.as_str() {
        "checkout.session.completed"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed"
        | "checkout.session.expired" => session(state, e, o, at).await,
        "invoice.paid" | "invoice.payment_succeeded" => invoice_paid(state, o).await,
        // The plan's state (past due, unpaid, canceled) is read from Stripe as it is now.
        "invoice.payment_failed" => {
            let sub = subscription_of_invoice(o)
                .ok_or_else(|| unreadable("invoice without a subscription"))?;
            Ok(vec![fetch_plan(state, &sub, at).await?])
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted" => Ok(vec![plan_from(o, at)?]),
        "payment_intent.succeeded" => payment_intent(state, o, at).await,
        "charge.succeeded" => charge(state, o).await,
        "charge.refunded" => {
            let charge_id = need_str(o, "id")?;
            let list: List = state
                .stripe
                .get(
                    "/refunds",
                    &[("charge", charge_id.as_str()), ("limit", "100")],
                )
                .await?;
            list.data
                .iter()
                .map(|r| refund_from(r).map(Fact::Refund))
                .collect()
        }
        "refund.created" | "refund.updated" | "charge.refund.updated" => {
            Ok(vec![Fact::Refund(refund_from(o)?)])
        }
        "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.closed"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated" => Ok(vec![Fact::Dispute(DisputeFact {
            dispute_id: need_str(o, "id")?,
            charge_id: id_of(o, "charge"),
            payment_intent_id: id_of(o, "payment_intent"),
            amount: need_i64(o, "amount")?,
            currency: need_str(o, "currency")?,
            status: need_str(o, "status")?,
            reason: s(o, "reason"),
            created: ts(need_i64(o, "created")?),
            at,
        })]),
        "payout.created" | "payout.updated" | "payout.paid" | "payout.failed"
        | "payout.canceled" => Ok(vec![payout(state, o, at).await?]),
        // Stored and answered 200, nothing else: an event type we do not act on.
        _ => Ok(Vec::new()),
    }
}

#[derive(Deserialize)]
struct List {
    data: Vec<Value>,
}

async fn session(
    state: &AppState,
    e: &Envelope,
    o: &Value,
    at: DateTime<Utc>,
) -> Result<Vec<Fact>, Interpret> {
    let id = need_str(o, "id")?;
    let mode = need_str(o, "mode")?;
    let metadata = o.get("metadata").cloned().unwrap_or(Value::Null);
    let gift_id = gift_id_in(&metadata)
        .or_else(|| s(o, "client_reference_id").and_then(|r| Uuid::parse_str(&r).ok()));
    let customer_id = id_of(o, "customer");
    let details = o.get("customer_details").cloned().unwrap_or(Value::Null);
    let mut facts = Vec::new();
    let mut donor_details = details.clone();
    if donor_details.get("email").is_none_or(Value::is_null)
        && let Some(email) = s(o, "customer_email")
    {
        donor_details["email"] = Value::String(email);
    }
    if let Some(d) = donor_from_details(
        &donor_details,
        s(&metadata, "donor_name"),
        customer_id.clone(),
    ) {
        facts.push(d);
    }
    let payment_status = s(o, "payment_status").unwrap_or_default();
    let state_now = match e.kind.as_str() {
        "checkout.session.async_payment_succeeded" => GiftState::Paid,
        "checkout.session.async_payment_failed" => GiftState::Failed,
        "checkout.session.expired" => GiftState::Expired,
        _ if payment_status == "paid" || payment_status == "no_payment_required" => GiftState::Paid,
        _ => GiftState::Pending,
    };
    let amount = o.get("amount_total").and_then(Value::as_i64).unwrap_or(0);
    let currency = s(o, "currency").unwrap_or_default();
    match mode.as_str() {
        "payment" => {
            // A session a coupon made free moved no money: no gift to record.
            if amount <= 0 && payment_status == "no_payment_required" {
                return Ok(facts);
            }
            if amount <= 0 {
                return Err(unreadable("payment session without amount_total"));
            }
            facts.push(Fact::OneTime(PaymentFact {
                gift_id,
                session_id: Some(id),
                payment_intent_id: id_of(o, "payment_intent"),
                state: state_now,
                amount,
                currency,
                customer_id,
                campaign: s(&metadata, "campaign"),
                at,
            }))
        }
        "subscription" => {
            // A session that expired, or whose first bank debit failed, ends its pending gift
            // (the plan's own events tell what became of the plan).
            if matches!(state_now, GiftState::Expired | GiftState::Failed) {
                facts.push(Fact::OneTime(PaymentFact {
                    gift_id,
                    session_id: Some(id),
                    payment_intent_id: None,
                    state: state_now,
                    amount: amount.max(1),
                    currency,
                    customer_id,
                    campaign: s(&metadata, "campaign"),
                    at,
                }));
                return Ok(facts);
            }
            let sub = id_of(o, "subscription")
                .ok_or_else(|| unreadable("subscription session without a subscription"))?;
            facts.push(fetch_plan(state, &sub, at).await?);
            // Nothing to pay now (a trial, a full coupon): the first installment is the first
            // invoice paid, as for the invoices (`invoice_paid`).
            if state_now == GiftState::Paid
                && amount > 0
                && let Some(invoice_id) = id_of(o, "invoice")
            {
                facts.push(Fact::Installment(InstallmentFact {
                    gift_id,
                    session_id: Some(id),
                    invoice_id,
                    payment_intent_id: None,
                    subscription_id: sub,
                    amount,
                    currency,
                    customer_id,
                    at,
                }));
            }
        }
        // setup mode moves no money
        _ => {}
    }
    Ok(facts)
}

fn subscription_of_invoice(o: &Value) -> Option<String> {
    o.get("parent")
        .and_then(|p| p.get("subscription_details"))
        .and_then(|d| id_of(d, "subscription"))
        .or_else(|| id_of(o, "subscription"))
}

async fn invoice_paid(state: &AppState, o: &Value) -> Result<Vec<Fact>, Interpret> {
    let invoice_id = need_str(o, "id")?;
    let Some(sub) = subscription_of_invoice(o) else {
        // An invoice outside any plan is not a donation we took.
        return Ok(Vec::new());
    };
    let amount = need_i64(o, "amount_paid")?;
    if amount <= 0 {
        return Ok(Vec::new());
    }
    let metadata = o
        .get("parent")
        .and_then(|p| p.get("subscription_details"))
        .and_then(|d| d.get("metadata"))
        .cloned()
        .unwrap_or(Value::Null);
    let first = s(o, "billing_reason").as_deref() == Some("subscription_create");
    let customer_id = id_of(o, "customer");
    let paid_at = o
        .get("status_transitions")
        .and_then(|t| t.get("paid_at"))
        .and_then(Value::as_i64)
        .or_else(|| o.get("created").and_then(Value::as_i64))
        .map(ts)
        .unwrap_or_default();
    // Since 2025-03-31 an invoice no longer names its payment intent; Stripe's invoice
    // payments do.
    let payments: List = state
        .stripe
        .get(
            "/invoice_payments",
            &[("invoice", invoice_id.as_str()), ("limit", "10")],
        )
        .await?;
    let payment_intent_id = payments
        .data
        .iter()
        .find(|p| p["status"] == "paid")
        .and_then(|p| p.get("payment"))
        .and_then(|p| id_of(p, "payment_intent"));
    let mut facts = Vec::new();
    let details =
        serde_json::json!({"email": o.get("customer_email"), "name": o.get("customer_name")});
    if let Some(d) = donor_from_details(&details, None, customer_id.clone()) {
        facts.push(d);
    }
    // The money came whatever the plan: a plan we do not keep (billed weekly, say) still has
    // each installment recorded, without it.
    match fetch_plan(state, &sub, paid_at).await {
        Ok(plan) => facts.push(plan),
        Err(Interpret::Unreadable(why)) => {
            tracing::warn!(subscription = %sub, %why, "installment recorded without its plan");
        }
        Err(e) => return Err(e),
    }
    facts.push(Fact::Installment(InstallmentFact {
        gift_id: if first { gift_id_in(&metadata) } else { None },
        session_id: None,
        invoice_id,
        payment_intent_id,
        subscription_id: sub,
        amount,
        currency: need_str(o, "currency")?,
        customer_id,
        at: paid_at,
    }));
    Ok(facts)
}

/// The plan as Stripe has it now. It is dated now (or the event's time if later): a fetched
/// object is the truth as of the fetch, so an older event delivered afterwards never undoes it.
async fn fetch_plan(
    state: &AppState,
    subscription_id: &str,
    at: DateTime<Utc>,
) -> Result<Fact, Interpret> {
    let sub: Value = state
        .stripe
        .get(&format!("/subscriptions/{subscription_id}"), &[])
        .await?;
    plan_from(&sub, at.max(Utc::now()))
}

fn plan_from(o: &Value, at: DateTime<Utc>) -> Result<Fact, Interpret> {
    let item = o
        .get("items")
        .and_then(|i| i.get("data"))
        .and_then(|d| d.get(0))
        .ok_or_else(|| unreadable("subscription without items"))?;
    let price = item
        .get("price")
        .or_else(|| item.get("plan"))
        .ok_or_else(|| unreadable("item without price"))?;
    let unit = price
        .get("unit_amount")
        .and_then(Value::as_i64)
        .or_else(|| price.get("amount").and_then(Value::as_i64))
        .ok_or_else(|| unreadable("price without unit_amount"))?;
    let quantity = item.get("quantity").and_then(Value::as_i64).unwrap_or(1);
    let recurring = price
        .get("recurring")
        .filter(|r| r.is_object())
        .unwrap_or(price);
    let interval = s(recurring, "interval").ok_or_else(|| unreadable("price without interval"))?;
    // Plans are kept as monthly or yearly (their monthly revenue is the amount, or a
    // twelfth of it): one billed every three months, or weekly, is refused here rather than
    // counted as monthly (its installments are still recorded, by `invoice_paid`).
    let every = recurring
        .get("interval_count")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if !matches!(interval.as_str(), "month" | "year") || every != 1 {
        return Err(unreadable(format!(
            "a plan billed every {every} {interval} is not one we keep"
        )));
    }
    let metadata = o.get("metadata").cloned().unwrap_or(Value::Null);
    let status = need_str(o, "status")?;
    // Stripe sets `canceled_at` as soon as a donor asks to cancel at the period's end, while
    // the plan is still active and paying (and clears it if they change their mind): a plan
    // has ended when its status says so, on `ended_at`.
    let ended = status == "canceled";
    let time = |field: &str| o.get(field).and_then(Value::as_i64).map(ts);
    Ok(Fact::Plan(PlanFact {
        subscription_id: need_str(o, "id")?,
        customer_id: id_of(o, "customer"),
        amount: unit * quantity,
        currency: need_str(o, "currency")?,
        interval,
        status,
        at,
        canceled_at: ended.then(|| time("ended_at").or(time("canceled_at")).unwrap_or(at)),
        started_at: time("start_date"),
        cancel_reason: o
            .get("cancellation_details")
            .and_then(|d| s(d, "reason"))
            .filter(|_| ended),
        campaign: s(&metadata, "campaign"),
        from_checkout: gift_id_in(&metadata).is_some(),
    }))
}

/// `at`: when it succeeded (the event's time; the intent's own `created` is when the payment
/// began, days earlier for a bank debit).
async fn payment_intent(
    state: &AppState,
    o: &Value,
    at: DateTime<Utc>,
) -> Result<Vec<Fact>, Interpret> {
    let id = need_str(o, "id")?;
    let metadata = o.get("metadata").cloned().unwrap_or(Value::Null);
    let gift_id = gift_id_in(&metadata);
    if gift_id.is_none() {
        // A payment intent of an invoice is an installment, recorded from the invoice.
        let payments: List = state
            .stripe
            .get(
                "/invoice_payments",
                &[
                    ("payment[type]", "payment_intent"),
                    ("payment[payment_intent]", id.as_str()),
                    ("limit", "1"),
                ],
            )
            .await?;
        if !payments.data.is_empty() {
            return Ok(Vec::new());
        }
    }
    let customer_id = id_of(o, "customer");
    let mut facts = Vec::new();
    if let Some(c) = &customer_id {
        facts.push(Fact::Donor(DonorFact {
            email: s(o, "receipt_email"),
            name: None,
            country: None,
            customer_id: Some(c.clone()),
        }));
    }
    facts.push(Fact::OneTime(PaymentFact {
        gift_id,
        session_id: None,
        payment_intent_id: Some(id),
        state: GiftState::Paid,
        amount: need_i64(o, "amount_received")?,
        currency: need_str(o, "currency")?,
        customer_id,
        campaign: s(&metadata, "campaign"),
        at,
    }));
    Ok(facts)
}

async fn charge(state: &AppState, o: &Value) -> Result<Vec<Fact>, Interpret> {
    let charge_id = need_str(o, "id")?;
    let bt_id = id_of(o, "balance_transaction");
    // The fee is on the balance transaction, in its currency: read it now (an expanded one
    // needs no call).
    let bt = match (o.get("balance_transaction"), &bt_id) {
        (Some(bt @ Value::Object(_)), _) => bt.clone(),
        (_, Some(id)) => {
            state
                .stripe
                .get(&format!("/balance_transactions/{id}"), &[])
                .await?
        }
        _ => Value::Null,
    };
    let (fee, net) = (
        bt.get("fee").and_then(Value::as_i64),
        bt.get("net").and_then(Value::as_i64),
    );
    let mut facts = Vec::new();
    let details = o.get("billing_details").cloned().unwrap_or(Value::Null);
    if let Some(d) = donor_from_details(&details, None, id_of(o, "customer")) {
        facts.push(d);
    }
    facts.push(Fact::Charge(ChargeFact {
        charge_id,
        payment_intent_id: id_of(o, "payment_intent"),
        amount: need_i64(o, "amount")?,
        currency: need_str(o, "currency")?,
        balance_transaction_id: bt_id,
        fee,
        net,
        fee_currency: s(&bt, "currency").map(|c| c.to_lowercase()),
        created: ts(need_i64(o, "created")?),
    }));
    Ok(facts)
}

fn refund_from(o: &Value) -> Result<RefundFact, Interpret> {
    Ok(RefundFact {
        refund_id: need_str(o, "id")?,
        charge_id: id_of(o, "charge"),
        payment_intent_id: id_of(o, "payment_intent"),
        amount: need_i64(o, "amount")?,
        currency: need_str(o, "currency")?,
        status: need_str(o, "status")?,
        created: ts(need_i64(o, "created")?),
    })
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Value>,
    has_more: bool,
}

/// A payout and its balance transactions, listed from Stripe page by page.
async fn payout(state: &AppState, o: &Value, at: DateTime<Utc>) -> Result<Fact, Interpret> {
    let payout_id = need_str(o, "id")?;
    let mut items = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("payout", payout_id.as_str()), ("limit", "100")];
        if let Some(a) = &after {
            query.push(("starting_after", a.as_str()));
        }
        let page: Page = state.stripe.get("/balance_transactions", &query).await?;
        let last = page.data.last().and_then(|b| s(b, "id"));
        for bt in &page.data {
            let kind = need_str(bt, "type")?;
            let source_id = id_of(bt, "source");
            // The payout's own withdrawal from the balance is not one of its items.
            if kind == "payout" && source_id.as_deref() == Some(payout_id.as_str()) {
                continue;
            }
            items.push(PayoutItemFact {
                balance_transaction_id: need_str(bt, "id")?,
                kind,
                reporting_category: s(bt, "reporting_category"),
                amount: need_i64(bt, "amount")?,
                fee: need_i64(bt, "fee")?,
                net: need_i64(bt, "net")?,
                currency: need_str(bt, "currency")?,
                source_id,
                created: ts(need_i64(bt, "created")?),
            });
        }
        // A page that does not move the cursor would loop forever.
        if !page.has_more || last.is_none() || last == after {
            break;
        }
        after = last;
    }
    Ok(Fact::Payout(PayoutFact {
        payout_id,
        amount: need_i64(o, "amount")?,
        currency: need_str(o, "currency")?,
        arrival_date: ts(need_i64(o, "arrival_date")?),
        status: need_str(o, "status")?,
        failure_code: s(o, "failure_code"),
        created: ts(need_i64(o, "created")?),
        at,
        items,
    }))
}
