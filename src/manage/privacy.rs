//! `chipin donor export <email>` and `chipin donor erase <email>`.
//!
//! An erasure keeps the ledger (gifts, their amounts and dates, plans, refunds) under the
//! donor's id, which is all that is left of them: email, name and country become null,
//! `erased_at` marks the row, their sign-in links and captured mail are deleted, personal
//! fields are blanked in the stored Stripe events about their customers, and Stripe is asked
//! to delete each of their customers (which also cancels their subscriptions there).

use serde_json::{Value, json};
use sqlx::PgPool;
use uuid::Uuid;

use crate::gifts::Email;
use crate::stripe::StripeClient;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("{0:?} is not an email address")]
    BadEmail(String),
    #[error("no donor has this email address")]
    NotFound,
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

async fn donor_id(db: &PgPool, email: &str) -> Result<Uuid, PrivacyError> {
    let email = Email::parse(email).map_err(|_| PrivacyError::BadEmail(email.to_string()))?;
    sqlx::query_scalar!("select id from donors where email = $1", email.as_str())
        .fetch_optional(db)
        .await?
        .ok_or(PrivacyError::NotFound)
}

async fn customers(db: &PgPool, donor: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "select customer_id from donor_customers where donor_id = $1
         union select customer_id from plans where donor_id = $1 and customer_id is not null
         union select customer_id from gifts where donor_id = $1 and customer_id is not null
         order by 1",
        donor
    )
    .fetch_all(db)
    .await
    .map(|ids| ids.into_iter().flatten().collect())
}

/// Everything held about a donor, as JSON.
pub async fn export(db: &PgPool, email: &str) -> Result<Value, PrivacyError> {
    let id = donor_id(db, email).await?;
    let donor: Value = sqlx::query_scalar!(
        r#"select to_jsonb(d) as "row!" from donors d where id = $1"#,
        id
    )
    .fetch_one(db)
    .await?;
    let gifts: Value = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(to_jsonb(g) order by g.created_at), '[]') as "rows!"
           from gifts g where donor_id = $1"#,
        id
    )
    .fetch_one(db)
    .await?;
    let plans: Value = sqlx::query_scalar!(
        r#"select coalesce(jsonb_agg(to_jsonb(p) order by p.created_at), '[]') as "rows!"
           from plans p where donor_id = $1"#,
        id
    )
    .fetch_one(db)
    .await?;
    Ok(json!({
        "donor": donor,
        "stripe_customer_ids": customers(db, id).await?,
        "gifts": gifts,
        "plans": plans,
    }))
}

/// What an erasure did.
#[derive(Debug, serde::Serialize)]
pub struct Erased {
    /// The pseudonymous id the ledger keeps.
    pub donor_id: Uuid,
    pub gifts_kept: i64,
    pub stripe_customers_deleted: Vec<String>,
    /// Customers Stripe did not delete, with why: delete them in the Stripe dashboard.
    pub stripe_customers_not_deleted: Vec<(String, String)>,
    pub events_scrubbed: u64,
}

/// Keys whose values are personal data wherever they appear in a stored Stripe event.
const PERSONAL_KEYS: &[&str] = &[
    "email",
    "customer_email",
    "receipt_email",
    "name",
    "customer_name",
    "phone",
    "customer_phone",
    "address",
    "customer_address",
    "shipping",
    "customer_shipping",
    "billing_details",
    "customer_details",
];

fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, value) in map.iter_mut() {
                if PERSONAL_KEYS.contains(&k.as_str()) && !value.is_null() {
                    *value = Value::Null;
                } else {
                    scrub(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Erases a donor's personal data, keeping the ledger; then asks Stripe to delete their
/// customers. The local erasure happens even when Stripe cannot be reached: the customers it
/// did not delete are listed in the answer.
pub async fn erase(
    db: &PgPool,
    stripe: &StripeClient,
    email: &str,
) -> Result<Erased, PrivacyError> {
    let normalized = Email::parse(email).map_err(|_| PrivacyError::BadEmail(email.to_string()))?;
    let id = donor_id(db, email).await?;
    let customers = customers(db, id).await?;

    let mut tx = db.begin().await?;
    sqlx::query!(
        "update donors set email = null, name = null, country = null, erased_at = now()
         where id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!("update gifts set dedication = null where donor_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!("delete from manage_links where donor_id = $1", id)
        .execute(&mut *tx)
        .await?;
    sqlx::query!(
        "delete from mail_outbox where lower(recipient) = $1",
        normalized.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let mut events_scrubbed = 0;
    if !customers.is_empty() {
        let rows = sqlx::query!(
            r#"select event_id, payload from stripe_events
               where payload #>> '{data,object,customer}' = any($1)
                  or payload #>> '{data,object,id}' = any($1)
                  or lower(payload #>> '{data,object,customer_email}') = $2
                  or lower(payload #>> '{data,object,receipt_email}') = $2
                  or lower(payload #>> '{data,object,customer_details,email}') = $2
               for update"#,
            &customers,
            normalized.as_str()
        )
        .fetch_all(&mut *tx)
        .await?;
        for row in rows {
            let mut payload = row.payload;
            scrub(&mut payload);
            sqlx::query!(
                "update stripe_events set payload = $2 where event_id = $1",
                row.event_id,
                payload
            )
            .execute(&mut *tx)
            .await?;
            events_scrubbed += 1;
        }
    }
    let gifts_kept: i64 = sqlx::query_scalar!(
        r#"select count(*) as "n!" from gifts where donor_id = $1"#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut deleted = Vec::new();
    let mut not_deleted = Vec::new();
    for customer in customers {
        let req = stripe_client_core::RequestBuilder::new(
            stripe_client_core::StripeMethod::Delete,
            format!("/customers/{customer}"),
        );
        match stripe.send::<Value>(req, None).await {
            Ok(_) => deleted.push(customer),
            // Already gone at Stripe: nothing left to delete there.
            Err(e) if e.is_not_found() => deleted.push(customer),
            Err(e) => not_deleted.push((customer, e.to_string())),
        }
    }
    Ok(Erased {
        donor_id: id,
        gifts_kept,
        stripe_customers_deleted: deleted,
        stripe_customers_not_deleted: not_deleted,
        events_scrubbed,
    })
}
