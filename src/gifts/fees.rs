//! Filling in Stripe's fee and net for paid gifts whose charge we have not been told about
//! (its `charge.succeeded` was lost, or came before Stripe knew the fee). Runs on a schedule
//! inside `serve` and as `chipin fees settle`; safe on several instances at once, since each
//! charge is merged by its id.

use serde::Deserialize;
use serde_json::Value;

use crate::state::AppState;
use crate::stripe::{StripeError, expandable_id};
use crate::webhooks::{ChargeFact, Fact};

#[derive(Debug, thiserror::Error)]
pub enum FeeError {
    #[error("stripe: {0}")]
    Stripe(#[from] StripeError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

#[derive(Deserialize)]
struct PaymentIntent {
    latest_charge: Option<Value>,
}

#[derive(Deserialize)]
struct Charge {
    id: String,
    amount: i64,
    currency: String,
    created: i64,
    balance_transaction: Option<Value>,
}

#[derive(Deserialize)]
struct BalanceTransaction {
    id: String,
    fee: i64,
    net: i64,
    currency: String,
}

/// Settles up to `limit` gifts paid at least `min_age` ago (and, when given, after `since`)
/// that have no known fee, oldest first (the age leaves time for `charge.succeeded` to come on
/// its own). Returns how many got their fee.
pub async fn settle_pending(
    state: &AppState,
    limit: i64,
    min_age: std::time::Duration,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<usize, FeeError> {
    let missing: Vec<String> = sqlx::query_scalar!(
        r#"select g.payment_intent_id as "pi!"
           from gifts g
           where g.state = 'paid' and g.payment_intent_id is not null
             and g.paid_at <= now() - make_interval(secs => $2)
             and g.paid_at > coalesce($3, '-infinity'::timestamptz)
             and not exists (select 1 from charges c
                             where c.payment_intent_id = g.payment_intent_id and c.fee is not null)
           order by g.paid_at
           limit $1"#,
        limit,
        min_age.as_secs_f64(),
        since
    )
    .fetch_all(&state.db)
    .await?;
    let mut settled = 0;
    for pi in missing {
        match settle_one(state, &pi).await {
            Ok(true) => settled += 1,
            Ok(false) => {}
            // One payment Stripe will not show us must not hold up the others.
            Err(FeeError::Stripe(StripeError::Refused { status, .. })) => {
                tracing::warn!(payment_intent = %pi, status, "stripe refused a fee lookup");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(settled)
}

async fn settle_one(state: &AppState, payment_intent: &str) -> Result<bool, FeeError> {
    let pi: PaymentIntent = state
        .stripe
        .get(&format!("/payment_intents/{payment_intent}"), &[])
        .await?;
    let Some(charge_id) = expandable_id(pi.latest_charge.as_ref()) else {
        return Ok(false);
    };
    let charge: Charge = state
        .stripe
        .get(&format!("/charges/{charge_id}"), &[])
        .await?;
    // Not settled yet: the next pass tries again.
    let Some(bt_id) = expandable_id(charge.balance_transaction.as_ref()) else {
        return Ok(false);
    };
    let bt: BalanceTransaction = state
        .stripe
        .get(&format!("/balance_transactions/{bt_id}"), &[])
        .await?;
    // As a `charge.succeeded` would tell it: the kept fee totals move with it.
    let fact = Fact::Charge(ChargeFact {
        charge_id: charge.id,
        payment_intent_id: Some(payment_intent.to_string()),
        amount: charge.amount,
        currency: charge.currency,
        balance_transaction_id: Some(bt.id),
        fee: Some(bt.fee),
        net: Some(bt.net),
        fee_currency: Some(bt.currency.to_lowercase()),
        created: chrono::DateTime::from_timestamp(charge.created, 0).unwrap_or_default(),
    });
    crate::webhooks::apply_facts(state, &[fact]).await?;
    Ok(true)
}

/// How far back the periodic pass looks for gifts without a fee (a card's fee is known when
/// it is charged, a bank debit's when it succeeds; one still unknown after that is a case for
/// `chipin fees settle`).
const RECENT_DAYS: i64 = 3;

/// The pass `serve` runs every few minutes.
pub async fn run_periodically(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // The last days only: every gift of a large ledger checked each pass took a minute of
        // both cores at ten million gifts (a month's, two seconds). `chipin fees settle` looks
        // at all of them; `stripe sync` and reconciliation find a charge that never came.
        let since = chrono::Utc::now() - chrono::Duration::days(RECENT_DAYS);
        match settle_pending(&state, 200, std::time::Duration::from_secs(60), Some(since)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(settled = n, "filled in Stripe fees"),
            Err(e) => tracing::warn!(error = %e, "fee settlement pass failed; will retry"),
        }
    }
}
