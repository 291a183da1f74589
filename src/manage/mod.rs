//! Managing a recurring gift without writing to anyone: a donor asks for a one-time sign-in
//! link by email (valid [`LINK_VALIDITY`], single use, only its hash stored), and the link
//! opens a Stripe Billing Portal session for their Stripe customer. The pages are in
//! `pages::manage`; mail in [`mail`]; the donor privacy commands in [`privacy`].

pub mod mail;
pub mod privacy;

use std::time::Duration;

use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use stripe_client_core::{RequestBuilder, StripeMethod};
use uuid::Uuid;

use crate::gifts::Email;
use crate::state::AppState;
use crate::stripe::StripeError;

/// How long a sign-in link works.
pub const LINK_VALIDITY: Duration = Duration::from_secs(30 * 60);

/// A fresh token: 32 random bytes, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}

/// What is stored of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// A token as we issue them (64 hex digits); anything else is not looked up.
pub fn looks_like_token(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Mail(#[from] mail::MailError),
}

/// Sends a sign-in link if `email` belongs to a donor (not erased) with a plan; otherwise
/// does nothing. Says whether a link was sent, for the caller's own use only: what the
/// reader sees must not depend on it.
pub async fn send_link(state: &AppState, email: &Email) -> Result<bool, LinkError> {
    let donor: Option<Uuid> = sqlx::query_scalar!(
        "select d.id from donors d
         where d.email = $1 and d.erased_at is null
           and exists (select 1 from plans p where p.donor_id = d.id)",
        email.as_str()
    )
    .fetch_optional(&state.db)
    .await?;
    let Some(donor) = donor else {
        return Ok(false);
    };
    let token = new_token();
    sqlx::query!(
        "insert into manage_links (token_hash, donor_id, expires_at)
         values ($1, $2, now() + make_interval(secs => $3))",
        token_hash(&token),
        donor,
        LINK_VALIDITY.as_secs() as f64
    )
    .execute(&state.db)
    .await?;
    let link = format!("{}/manage/link?token={token}", state.config.public_url);
    let p = &state.config.pages;
    let body = format!(
        "Hello,\n\nSomeone (we hope you) asked to manage a recurring gift to {name} from this address.\n\n\
         Open this link within 30 minutes to change the amount, update the card or cancel:\n\n{link}\n\n\
         The link works once. If you did not ask for it, you can ignore this message: nothing changes.\n\n\
         {name}\n",
        name = p.newsroom_name,
    );
    mail::send(
        &state.config,
        &state.db,
        &mail::Mail {
            to: email.as_str(),
            subject: &format!("Your link to manage your gift to {}", p.newsroom_name),
            body: &body,
        },
    )
    .await?;
    Ok(true)
}

/// Whether a token would open the portal now (the confirm page's GET; spends nothing).
pub async fn link_is_usable(db: &PgPool, token: &str) -> Result<bool, sqlx::Error> {
    if !looks_like_token(token) {
        return Ok(false);
    }
    sqlx::query_scalar!(
        r#"select exists (select 1 from manage_links
             where token_hash = $1 and used_at is null and expires_at > now()) as "usable!""#,
        token_hash(token)
    )
    .fetch_one(db)
    .await
}

/// Spends a token, once: the donor it was issued for, or `None` if it is unknown, used or
/// expired.
pub async fn spend(db: &PgPool, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    if !looks_like_token(token) {
        return Ok(None);
    }
    sqlx::query_scalar!(
        "update manage_links set used_at = now()
         where token_hash = $1 and used_at is null and expires_at > now()
         returning donor_id",
        token_hash(token)
    )
    .fetch_optional(db)
    .await
}

/// Gives a spent token back (Stripe failed before the donor got anywhere).
pub async fn unspend(db: &PgPool, token: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update manage_links set used_at = null where token_hash = $1",
        token_hash(token)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The Stripe customer whose plans the portal shows: the one of the donor's most recently
/// changed live plan, else of any plan.
pub async fn portal_customer(db: &PgPool, donor: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select customer_id as "customer_id!" from plans
           where donor_id = $1 and customer_id is not null
           order by (status <> 'canceled') desc, updated_at desc
           limit 1"#,
        donor
    )
    .fetch_optional(db)
    .await
}

#[derive(Serialize)]
struct PortalParams<'a> {
    customer: &'a str,
    return_url: &'a str,
}

#[derive(serde::Deserialize)]
struct PortalSession {
    url: String,
}

/// `POST /v1/billing_portal/sessions`: the portal's URL for this customer.
pub async fn open_portal(state: &AppState, customer: &str) -> Result<String, StripeError> {
    let return_url = format!("{}/manage", state.config.public_url);
    let req =
        RequestBuilder::new(StripeMethod::Post, "/billing_portal/sessions").form(&PortalParams {
            customer,
            return_url: &return_url,
        });
    let session: PortalSession = state.stripe.send(req, None).await?;
    Ok(session.url)
}
