//! Creating a gift and its Checkout Session: the pending row first, then Stripe, under an
//! idempotency key derived from the gift id so that no retry ever makes a second session.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::input::CheckoutRequest;
use crate::ratelimit::{self, Decision};
use crate::state::AppState;
use crate::stripe::StripeError;
use crate::stripe::sessions::NewSession;

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("idempotency key reused with another body")]
    KeyReused,
    #[error("rate limited on {field}")]
    RateLimited {
        field: &'static str,
        retry_after: u64,
    },
    #[error("stripe: {0}")]
    Stripe(#[from] StripeError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// What the client gets back; stored with the idempotency key to be replayed verbatim.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CheckoutCreated {
    pub id: Uuid,
    pub checkout_url: String,
    pub stripe_session_id: String,
}

/// The Stripe idempotency key of a gift's Checkout Session.
pub fn stripe_key(gift_id: Uuid) -> String {
    format!("chipin-checkout-{gift_id}")
}

pub async fn create_checkout(
    state: &AppState,
    req: &CheckoutRequest,
    client_ip: IpAddr,
    idempotency_key: Option<&str>,
) -> Result<CheckoutCreated, CheckoutError> {
    let fingerprint = req.fingerprint();
    let gift_id = match idempotency_key {
        Some(key) => match claim_key(state, key, &fingerprint).await? {
            Claim::Replay(done) => return Ok(done),
            // A crash or a Stripe failure left this key's gift without a session: try again
            // for the same gift; Stripe's idempotency returns the same session if one exists.
            Claim::Resume(gift_id) => Some(gift_id),
            Claim::New => None,
        },
        None => None,
    };

    let gift_id = match gift_id {
        Some(id) => id,
        None => {
            let id = Uuid::new_v4();
            if let Err(e) = start_gift(state, req, client_ip, id, idempotency_key).await {
                // Nothing was started under the key (rate limited, or the database failed):
                // free it, as Stripe does for a request refused before it ran, so that a retry
                // is judged afresh instead of waiting for a gift that will never come.
                if let Some(key) = idempotency_key {
                    release_key(state, key).await;
                }
                return Err(e);
            }
            id
        }
    };

    let mut metadata = HashMap::from([("gift_id".to_string(), gift_id.to_string())]);
    if let Some(c) = &req.campaign {
        metadata.insert("campaign".into(), c.as_str().into());
    }
    if let Some(n) = &req.name {
        metadata.insert("donor_name".into(), n.clone());
    }
    if let Some(d) = &req.dedication {
        metadata.insert("dedication".into(), d.clone());
    }
    let gift_ref = gift_id.to_string();
    let session = NewSession {
        frequency: req.frequency,
        amount: req.amount.get(),
        currency: req.currency.as_str(),
        product_name: &state.config.product_name,
        customer_email: req.email.as_ref().map(|e| e.as_str()),
        client_reference_id: &gift_ref,
        metadata,
        success_url: &state.config.success_url,
        cancel_url: &state.config.cancel_url,
    };
    let created = match state
        .stripe
        .create_checkout_session(&session, &stripe_key(gift_id))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let failure = match &e {
                StripeError::Refused { code, status, .. } => {
                    format!(
                        "stripe refused ({status}{})",
                        code.as_deref()
                            .map(|c| format!(", {c}"))
                            .unwrap_or_default()
                    )
                }
                StripeError::Unavailable(_) => "stripe unavailable".into(),
                StripeError::Decode(_) => "unreadable answer from stripe".into(),
            };
            sqlx::query!(
                "update gifts set state = 'checkout_failed', failure = $2, updated_at = now()
                 where id = $1 and state in ('pending', 'checkout_failed')",
                gift_id,
                failure
            )
            .execute(&state.db)
            .await?;
            return Err(e.into());
        }
    };
    let checkout_url = created
        .url
        .clone()
        .ok_or_else(|| StripeError::Decode("checkout session without a url".into()))?;
    let done = CheckoutCreated {
        id: gift_id,
        checkout_url,
        stripe_session_id: created.id,
    };

    let mut tx = state.db.begin().await?;
    // A webhook may already have moved the gift on; only a gift still waiting is touched.
    sqlx::query!(
        "update gifts set checkout_session_id = $2,
             state = case when state = 'checkout_failed' then 'pending' else state end,
             failure = null, updated_at = now()
         where id = $1",
        gift_id,
        done.stripe_session_id
    )
    .execute(&mut *tx)
    .await?;
    if let Some(key) = idempotency_key {
        sqlx::query!(
            "update checkout_requests set response = $2 where idempotency_key = $1",
            key,
            serde_json::to_value(&done).expect("serializable")
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(gift_id = %gift_id, frequency = req.frequency.as_str(), "checkout session created");
    Ok(done)
}

enum Claim {
    New,
    Replay(CheckoutCreated),
    Resume(Uuid),
}

/// The database decides who owns a key: the first insert wins; later requests see its row.
async fn claim_key(state: &AppState, key: &str, fingerprint: &str) -> Result<Claim, CheckoutError> {
    let inserted = sqlx::query!(
        "insert into checkout_requests (idempotency_key, body_hash) values ($1, $2)
         on conflict (idempotency_key) do nothing",
        key,
        fingerprint
    )
    .execute(&state.db)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let row = sqlx::query!(
        "select body_hash, gift_id, response from checkout_requests where idempotency_key = $1",
        key
    )
    .fetch_one(&state.db)
    .await?;
    if row.body_hash != fingerprint {
        return Err(CheckoutError::KeyReused);
    }
    if let Some(done) = row.response.and_then(|r| serde_json::from_value(r).ok()) {
        return Ok(Claim::Replay(done));
    }
    match row.gift_id {
        Some(id) => Ok(Claim::Resume(id)),
        // The first request is between its claim and its gift row: make this one wait for
        // the answer by retrying, rather than creating a second gift.
        None => Ok(Claim::Resume(wait_for_gift(state, key).await?)),
    }
}

async fn wait_for_gift(state: &AppState, key: &str) -> Result<Uuid, CheckoutError> {
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let gift: Option<Option<Uuid>> = sqlx::query_scalar!(
            "select gift_id from checkout_requests where idempotency_key = $1",
            key
        )
        .fetch_optional(&state.db)
        .await?;
        if let Some(Some(id)) = gift {
            return Ok(id);
        }
    }
    Err(CheckoutError::Stripe(StripeError::Unavailable(
        "an earlier request with this key is still starting".into(),
    )))
}

async fn check_limits(
    state: &AppState,
    req: &CheckoutRequest,
    client_ip: IpAddr,
) -> Result<(), CheckoutError> {
    let cfg = &state.config;
    if let Decision::Limited { retry_after } = ratelimit::hit(
        &state.db,
        &format!("checkout-ip:{client_ip}"),
        cfg.checkout_limit_per_ip,
    )
    .await?
    {
        return Err(CheckoutError::RateLimited {
            field: "ip",
            retry_after,
        });
    }
    if let Some(email) = &req.email {
        let bucket = ratelimit::hashed("checkout-email", email.as_str());
        if let Decision::Limited { retry_after } =
            ratelimit::hit(&state.db, &bucket, cfg.checkout_limit_per_email).await?
        {
            return Err(CheckoutError::RateLimited {
                field: "email",
                retry_after,
            });
        }
    }
    Ok(())
}

/// The limits, then the pending gift and its tie to the key in one transaction: a key has a
/// gift, or no gift and may be released.
async fn start_gift(
    state: &AppState,
    req: &CheckoutRequest,
    client_ip: IpAddr,
    id: Uuid,
    idempotency_key: Option<&str>,
) -> Result<(), CheckoutError> {
    check_limits(state, req, client_ip).await?;
    let mut tx = state.db.begin().await?;
    insert_pending_gift(&mut tx, id, req).await?;
    if let Some(key) = idempotency_key {
        sqlx::query!(
            "update checkout_requests set gift_id = $2 where idempotency_key = $1",
            key,
            id
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Gives up a claim that never got a gift.
async fn release_key(state: &AppState, key: &str) {
    let released = sqlx::query!(
        "delete from checkout_requests where idempotency_key = $1 and gift_id is null",
        key
    )
    .execute(&state.db)
    .await;
    if let Err(e) = released {
        tracing::warn!(error = %e, "idempotency key not released");
    }
}

async fn insert_pending_gift(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    req: &CheckoutRequest,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into gifts (id, state, amount, currency, covered_fee, frequency, origin, campaign,
                            utm_source, utm_medium, utm_campaign, dedication)
         values ($1, 'pending', $2, $3, $4, $5, 'checkout', $6, $7, $8, $9, $10)",
        id,
        req.amount.get(),
        req.currency.as_str(),
        req.covered_fee,
        req.frequency.as_str(),
        req.campaign.as_ref().map(|c| c.as_str()),
        req.utm_source.as_deref(),
        req.utm_medium.as_deref(),
        req.utm_campaign.as_deref(),
        req.dedication.as_deref(),
    )
    .execute(conn)
    .await?;
    Ok(())
}
