//! The comparison itself: Stripe's balance transactions of a day (charges, refunds, dispute
//! withdrawals) matched by Stripe id against our gifts, charges, refunds and disputes, and
//! ours of the day against Stripe's. Reads only; storing is `store.rs`'s job.
//!
//! An item near midnight may be dated on one side of it by Stripe and on the other by us, so
//! Stripe is listed a day wider on each side: only Stripe's items inside the day are judged,
//! but ours are looked for among all of them.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ReconcileError;
use crate::state::AppState;
use crate::stripe::{StripeError, expandable_id};

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Stripe has it; our ledger does not.
    MissingHere,
    /// Our ledger has it; Stripe shows no such movement.
    MissingAtStripe,
    AmountMismatch,
    FeeMismatch,
    CurrencyMismatch,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingHere => "missing_here",
            Self::MissingAtStripe => "missing_at_stripe",
            Self::AmountMismatch => "amount_mismatch",
            Self::FeeMismatch => "fee_mismatch",
            Self::CurrencyMismatch => "currency_mismatch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Charge,
    Refund,
    Dispute,
}

impl ObjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
            Self::Dispute => "dispute",
        }
    }
}

/// One difference found (amounts in minor units; refunds and disputes as positive figures).
#[derive(Debug, Clone)]
pub struct Found {
    pub kind: Kind,
    pub object_type: ObjectType,
    pub object_id: String,
    pub balance_transaction_id: Option<String>,
    /// Stripe's `created` of the balance transaction (where to start looking for events).
    pub created: Option<i64>,
    pub ours_amount: Option<i64>,
    pub theirs_amount: Option<i64>,
    pub ours_fee: Option<i64>,
    pub theirs_fee: Option<i64>,
    pub ours_currency: Option<String>,
    pub theirs_currency: Option<String>,
}

pub struct Comparison {
    pub issues: Vec<Found>,
    pub stripe_items: usize,
    pub ledger_items: usize,
}

/// A balance transaction that concerns the ledger.
#[derive(Debug, Clone)]
struct Bt {
    id: String,
    object_type: ObjectType,
    source: String,
    /// Positive: what was charged, refunded or withdrawn.
    amount: i64,
    fee: i64,
    currency: String,
    created: i64,
    /// Settled in another currency (`exchange_rate` set): amounts are not comparable.
    converted: bool,
}

fn classify(bt: &Value) -> Option<Bt> {
    let kind = bt["type"].as_str()?;
    let category = bt["reporting_category"].as_str().unwrap_or_default();
    let object_type = match kind {
        "charge" | "payment" => ObjectType::Charge,
        "refund" | "payment_refund" => ObjectType::Refund,
        // The withdrawal when a dispute opens; its reversal (`dispute_reversal`) is not
        // compared (see the README's known limits).
        _ if category == "dispute" => ObjectType::Dispute,
        // Payouts, their failures, Stripe's own fees and adjustments: not ledger items.
        _ => return None,
    };
    let amount = bt["amount"].as_i64()?;
    Some(Bt {
        id: bt["id"].as_str()?.to_string(),
        object_type,
        source: expandable_id(bt.get("source"))?,
        amount: if object_type == ObjectType::Charge {
            amount
        } else {
            -amount
        },
        fee: bt["fee"].as_i64().unwrap_or(0),
        currency: bt["currency"].as_str()?.to_lowercase(),
        created: bt["created"].as_i64()?,
        converted: !bt["exchange_rate"].is_null(),
    })
}

#[derive(Deserialize)]
struct Page {
    data: Vec<Value>,
    has_more: bool,
}

/// `GET /v1/balance_transactions?created[gte]&created[lt]`, every page.
async fn balance_transactions(
    state: &AppState,
    from: i64,
    to: i64,
) -> Result<Vec<Value>, StripeError> {
    let (gte, lt) = (from.to_string(), to.to_string());
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![
            ("created[gte]", gte.as_str()),
            ("created[lt]", lt.as_str()),
            ("limit", "100"),
        ];
        if let Some(a) = &after {
            query.push(("starting_after", a.as_str()));
        }
        let page: Page = state.stripe.get("/balance_transactions", &query).await?;
        let last = page
            .data
            .last()
            .and_then(|b| b["id"].as_str())
            .map(str::to_string);
        all.extend(page.data);
        // A page that does not move the cursor would loop forever.
        if !page.has_more || last.is_none() || last == after {
            break;
        }
        after = last;
    }
    Ok(all)
}

/// Our record of a payment, a refund or a dispute.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Ours {
    id: String,
    amount: i64,
    currency: String,
}

pub async fn compare(
    state: &AppState,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Comparison, ReconcileError> {
    let day = 86_400;
    let listed =
        balance_transactions(state, start.timestamp() - day, end.timestamp() + day).await?;
    let all: Vec<Bt> = listed.iter().filter_map(classify).collect();
    let in_day = |b: &Bt| b.created >= start.timestamp() && b.created < end.timestamp();
    let db = &state.db;

    // Each Stripe charge's payment intent: from our charges row, else from Stripe.
    let charge_ids: Vec<String> = all
        .iter()
        .filter(|b| b.object_type == ObjectType::Charge)
        .map(|b| b.source.clone())
        .collect();
    let rows: Vec<(String, Option<String>, Option<i64>)> = sqlx::query_as(
        "select charge_id, payment_intent_id, fee from charges where charge_id = any($1)",
    )
    .bind(&charge_ids)
    .fetch_all(db)
    .await?;
    let mut intent_of: HashMap<String, Option<String>> = HashMap::new();
    let mut our_fee: HashMap<String, Option<i64>> = HashMap::new();
    for (charge, pi, fee) in rows {
        intent_of.insert(charge.clone(), pi);
        our_fee.insert(charge, fee);
    }
    for charge in &charge_ids {
        if intent_of.get(charge).is_none_or(Option::is_none) {
            let pi = match state
                .stripe
                .get::<Value>(&format!("/charges/{charge}"), &[])
                .await
            {
                Ok(c) => expandable_id(c.get("payment_intent")),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            intent_of.insert(charge.clone(), pi);
        }
    }
    let intents: Vec<String> = intent_of.values().flatten().cloned().collect();
    let gifts: HashMap<String, Ours> = sqlx::query_as::<_, Ours>(
        "select payment_intent_id as id, amount, currency from gifts
         where state = 'paid' and payment_intent_id = any($1)",
    )
    .bind(&intents)
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|o| (o.id.clone(), o))
    .collect();
    let ids_of = |t: ObjectType| -> Vec<String> {
        all.iter()
            .filter(|b| b.object_type == t)
            .map(|b| b.source.clone())
            .collect()
    };
    let refunds = by_id(
        sqlx::query_as(
            "select refund_id as id, amount, currency from refunds
             where refund_id = any($1) and status not in ('failed', 'canceled')",
        )
        .bind(ids_of(ObjectType::Refund))
        .fetch_all(db)
        .await?,
    );
    let disputes = by_id(
        sqlx::query_as(
            "select dispute_id as id, amount, currency from disputes where dispute_id = any($1)",
        )
        .bind(ids_of(ObjectType::Dispute))
        .fetch_all(db)
        .await?,
    );

    let mut issues = Vec::new();
    let stripe_in_day: Vec<&Bt> = all.iter().filter(|b| in_day(b)).collect();
    for bt in &stripe_in_day {
        let ours = match bt.object_type {
            ObjectType::Charge => intent_of
                .get(&bt.source)
                .cloned()
                .flatten()
                .and_then(|pi| gifts.get(&pi)),
            ObjectType::Refund => refunds.get(&bt.source),
            ObjectType::Dispute => disputes.get(&bt.source),
        };
        let fee = if bt.object_type == ObjectType::Charge {
            Some(our_fee.get(&bt.source).copied().flatten())
        } else {
            // We keep no fee for refunds and disputes: nothing to compare.
            None
        };
        issues.extend(judge(bt, ours, fee));
    }

    // Ours of the day that Stripe does not show, even a day either side.
    let seen_intents: HashSet<&String> = all
        .iter()
        .filter(|b| b.object_type == ObjectType::Charge)
        .filter_map(|b| intent_of.get(&b.source).and_then(Option::as_ref))
        .collect();
    let seen: HashSet<&str> = all.iter().map(|b| b.source.as_str()).collect();
    let our_gifts: Vec<Ours> = sqlx::query_as(
        "select coalesce(payment_intent_id, invoice_id, checkout_session_id, id::text) as id,
                amount, currency
         from gifts where state = 'paid' and paid_at >= $1 and paid_at < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(db)
    .await?;
    let our_refunds: Vec<Ours> = sqlx::query_as(
        "select refund_id as id, amount, currency from refunds
         where created >= $1 and created < $2 and status not in ('failed', 'canceled')",
    )
    .bind(start)
    .bind(end)
    .fetch_all(db)
    .await?;
    let our_disputes: Vec<Ours> = sqlx::query_as(
        "select dispute_id as id, amount, currency from disputes where created >= $1 and created < $2",
    )
    .bind(start)
    .bind(end)
    .fetch_all(db)
    .await?;
    let ledger_items = our_gifts.len() + our_refunds.len() + our_disputes.len();
    let missing_at_stripe = |t: ObjectType, o: &Ours| Found {
        kind: Kind::MissingAtStripe,
        object_type: t,
        object_id: o.id.clone(),
        balance_transaction_id: None,
        created: None,
        ours_amount: Some(o.amount),
        theirs_amount: None,
        ours_fee: None,
        theirs_fee: None,
        ours_currency: Some(o.currency.clone()),
        theirs_currency: None,
    };
    for g in &our_gifts {
        if !seen_intents.contains(&g.id) {
            issues.push(missing_at_stripe(ObjectType::Charge, g));
        }
    }
    for (t, list) in [
        (ObjectType::Refund, &our_refunds),
        (ObjectType::Dispute, &our_disputes),
    ] {
        for o in list.iter().filter(|o| !seen.contains(o.id.as_str())) {
            issues.push(missing_at_stripe(t, o));
        }
    }
    Ok(Comparison {
        issues,
        stripe_items: stripe_in_day.len(),
        ledger_items,
    })
}

fn by_id(rows: Vec<Ours>) -> HashMap<String, Ours> {
    rows.into_iter().map(|o| (o.id.clone(), o)).collect()
}

/// The differences between one of Stripe's items and ours. `our_fee` is `None` when fees
/// are not compared for this kind of item, `Some(None)` when ours is not known.
fn judge(bt: &Bt, ours: Option<&Ours>, our_fee: Option<Option<i64>>) -> Vec<Found> {
    let found = |kind: Kind, ours: Option<&Ours>| Found {
        kind,
        object_type: bt.object_type,
        object_id: bt.source.clone(),
        balance_transaction_id: Some(bt.id.clone()),
        created: Some(bt.created),
        ours_amount: ours.map(|o| o.amount),
        theirs_amount: Some(bt.amount),
        ours_fee: our_fee.flatten(),
        theirs_fee: our_fee.map(|_| bt.fee),
        ours_currency: ours.map(|o| o.currency.clone()),
        theirs_currency: Some(bt.currency.clone()),
    };
    let Some(o) = ours else {
        return vec![found(Kind::MissingHere, None)];
    };
    let mut issues = Vec::new();
    if !bt.converted {
        if !o.currency.eq_ignore_ascii_case(&bt.currency) {
            // Amounts in two currencies are not comparable: the currency is the difference.
            return vec![found(Kind::CurrencyMismatch, Some(o))];
        }
        if o.amount != bt.amount {
            issues.push(found(Kind::AmountMismatch, Some(o)));
        }
    }
    if let Some(fee) = our_fee
        && fee != Some(bt.fee)
    {
        issues.push(found(Kind::FeeMismatch, Some(o)));
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bt(amount: i64, fee: i64, currency: &str) -> Bt {
        classify(
            &json!({"id": "txn_1", "type": "charge", "reporting_category": "charge",
            "amount": amount, "fee": fee, "currency": currency, "source": "ch_1",
            "created": 1, "exchange_rate": null}),
        )
        .unwrap()
    }

    fn ours(amount: i64, currency: &str) -> Ours {
        Ours {
            id: "pi_1".into(),
            amount,
            currency: currency.into(),
        }
    }

    fn kinds(v: Vec<Found>) -> Vec<Kind> {
        v.into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_matching_charge_is_no_issue() {
        assert!(
            judge(
                &bt(2500, 103, "usd"),
                Some(&ours(2500, "usd")),
                Some(Some(103))
            )
            .is_empty()
        );
    }

    #[test]
    fn amount_and_fee_differences_are_told_apart() {
        let found = judge(
            &bt(2500, 103, "usd"),
            Some(&ours(2600, "usd")),
            Some(Some(100)),
        );
        assert_eq!(kinds(found), [Kind::AmountMismatch, Kind::FeeMismatch]);
    }

    #[test]
    fn an_unknown_fee_is_a_fee_mismatch() {
        let found = judge(&bt(2500, 103, "usd"), Some(&ours(2500, "usd")), Some(None));
        assert_eq!(kinds(found), [Kind::FeeMismatch]);
    }

    #[test]
    fn another_currency_is_reported_instead_of_an_amount() {
        let found = judge(
            &bt(2500, 103, "usd"),
            Some(&ours(2500, "eur")),
            Some(Some(103)),
        );
        assert_eq!(kinds(found), [Kind::CurrencyMismatch]);
    }

    #[test]
    fn nothing_of_ours_is_missing_here() {
        assert_eq!(
            kinds(judge(&bt(2500, 103, "usd"), None, Some(None))),
            [Kind::MissingHere]
        );
    }

    #[test]
    fn refunds_and_dispute_withdrawals_count_as_positive_and_payouts_are_skipped() {
        let re = classify(
            &json!({"id": "txn_2", "type": "refund", "reporting_category": "refund",
            "amount": -1000, "fee": 0, "currency": "usd", "source": "re_1", "created": 1,
            "exchange_rate": null}),
        )
        .unwrap();
        assert_eq!((re.object_type, re.amount), (ObjectType::Refund, 1000));
        let dp = classify(
            &json!({"id": "txn_3", "type": "adjustment", "reporting_category": "dispute",
            "amount": -2000, "fee": 1500, "currency": "usd", "source": "dp_1", "created": 1,
            "exchange_rate": null}),
        )
        .unwrap();
        assert_eq!((dp.object_type, dp.amount), (ObjectType::Dispute, 2000));
        assert!(
            classify(
                &json!({"id": "txn_4", "type": "payout", "reporting_category": "payout",
            "amount": -7000, "fee": 0, "currency": "usd", "source": "po_1", "created": 1,
            "exchange_rate": null})
            )
            .is_none()
        );
    }
}
