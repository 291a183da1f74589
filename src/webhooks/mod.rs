//! `POST /webhooks/stripe`: Stripe's word on what happened to money. Verified on the raw
//! bytes, stored once in `stripe_events` and applied in the same transaction; redeliveries,
//! duplicates and any order end in the same ledger. `stripe sync` and `events replay` use
//! the same path.

mod apply;
mod facts;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sqlx::types::Json;

use crate::error::{ApiError, is_unavailable};
use crate::reports::aggregates::{self, Bands};
use crate::state::AppState;
use crate::stripe::{StripeError, signature};

pub use facts::{ChargeFact, Fact};

/// Stripe's events are small; anything over this is not from Stripe.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/webhooks/stripe", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("bad signature: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("the body is not a Stripe event: {0}")]
    NotAnEvent(String),
    #[error("stripe unavailable while interpreting the event: {0}")]
    Stripe(#[from] StripeError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("no stored event {0}")]
    UnknownEvent(String),
}

impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Signature(e) => {
                tracing::warn!(reason = %e, "webhook refused: signature");
                ApiError::bad_request(
                    "invalid_signature",
                    "the Stripe-Signature header does not verify",
                )
            }
            WebhookError::NotAnEvent(m) => {
                tracing::warn!(reason = %m, "webhook refused: not an event");
                ApiError::bad_request("invalid_event", "the body is not a Stripe event")
            }
            // Stripe retries a 5xx: exactly what an outage on either side calls for.
            WebhookError::Stripe(e) => {
                tracing::warn!(error = %e, "webhook deferred: stripe unavailable");
                ApiError {
                    retry_after: Some(30),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "stripe_unavailable",
                        "please retry",
                    )
                }
            }
            WebhookError::Db(e) => e.into(),
            WebhookError::UnknownEvent(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such event")
            }
        }
    }
}

/// The envelope every Stripe event shares.
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub api_version: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    pub data: EnvelopeData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EnvelopeData {
    pub object: Value,
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    Applied,
    /// Stored, but not interpretable: flagged for review.
    Flagged,
    /// Seen before; nothing changed.
    Duplicate,
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            "the body is over 1 MiB",
        ),
        _ => ApiError::bad_request("unreadable_body", "the body could not be read"),
    })?;
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    signature::verify(
        header,
        &body,
        &state.config.webhook_secrets,
        state.config.webhook_tolerance.as_secs() as i64,
        chrono::Utc::now().timestamp(),
    )
    .map_err(WebhookError::from)?;
    let (envelope, payload) = parse(&body)?;
    let outcome = process(&state, &envelope, payload).await?;
    tracing::info!(stripe_event_id = %envelope.id, event_type = %envelope.kind, ?outcome, "webhook received");
    Ok(StatusCode::OK)
}

/// The event's envelope, and its body as received (stored as it came, not parsed again).
fn parse(body: &[u8]) -> Result<(Envelope, &RawValue), WebhookError> {
    let text =
        std::str::from_utf8(body).map_err(|_| WebhookError::NotAnEvent("not UTF-8".into()))?;
    let payload: &RawValue = serde_json::from_str(text)
        .map_err(|e| WebhookError::NotAnEvent(format!("not JSON: {e}")))?;
    let envelope: Envelope = serde_json::from_str(text)
        .map_err(|e| WebhookError::NotAnEvent(format!("no envelope: {e}")))?;
    if !envelope.id.starts_with("evt_") {
        return Err(WebhookError::NotAnEvent("id is not an event id".into()));
    }
    Ok((envelope, payload))
}

/// Stores and applies one verified event, exactly once whatever else runs at the same time.
#[tracing::instrument(skip_all, fields(stripe_event_id = %envelope.id))]
pub async fn process(
    state: &AppState,
    envelope: &Envelope,
    payload: &RawValue,
) -> Result<Received, WebhookError> {
    // A redelivery is spotted early when interpreting it would read from Stripe (a call
    // saved); otherwise the claim below, which decides in any case, is the only query.
    if facts::may_read_stripe(envelope) {
        let seen: Option<i32> = sqlx::query_scalar!(
            "select 1 from stripe_events where event_id = $1",
            envelope.id
        )
        .fetch_optional(&state.db)
        .await?
        .flatten();
        if seen.is_some() {
            return Ok(Received::Duplicate);
        }
    }
    // Reading from Stripe happens before the transaction, so no lock waits on the network.
    let interpreted = facts::interpret(state, envelope).await;
    let facts = match interpreted {
        Ok(f) => Ok(f),
        Err(facts::Interpret::Stripe(e)) => return Err(e.into()),
        Err(facts::Interpret::Unreadable(msg)) => Err(msg),
    };
    // Two deliveries racing to create the same rows: the loser's unique insert fails, and
    // running its transaction again finds the winner's rows and merges into them.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match store_and_apply(state, envelope, payload, facts.clone()).await {
            Err(WebhookError::Db(e)) if is_race(&e) && attempt < 4 => continue,
            Err(WebhookError::Db(e)) if is_data_problem(&e) => {
                // A bug or a payload we cannot store, not an outage: keep the event for
                // review and answer 200 (Stripe would otherwise retry for days and then
                // disable the endpoint).
                tracing::error!(error = %e, "event could not be applied; flagged for review");
                return store_and_apply(
                    state,
                    envelope,
                    payload,
                    Err(format!("apply failed: {e}")),
                )
                .await;
            }
            other => return other,
        }
    }
}

fn sqlstate(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Unique violations, serialization failures and deadlocks: retry the transaction.
fn is_race(e: &sqlx::Error) -> bool {
    matches!(sqlstate(e).as_deref(), Some("23505" | "40001" | "40P01"))
}

/// Errors that a retry cannot cure: bad data (class 22), broken integrity (23) or a bug in
/// our SQL (42). Anything else is treated as an outage and answered 503.
fn is_data_problem(e: &sqlx::Error) -> bool {
    !is_unavailable(e)
        && sqlstate(e)
            .is_some_and(|c| c.starts_with("22") || c.starts_with("23") || c.starts_with("42"))
}

async fn store_and_apply(
    state: &AppState,
    envelope: &Envelope,
    payload: &RawValue,
    facts: Result<Vec<Fact>, String>,
) -> Result<Received, WebhookError> {
    let mut tx = state.db.begin().await?;
    let created = chrono::DateTime::from_timestamp(envelope.created, 0).unwrap_or_default();
    let touched = facts
        .as_ref()
        .map(|f| apply::touched(f))
        .unwrap_or_default();
    let keys = aggregates::lock_keys(&touched);
    // The claim also records how the event ends: it commits with its effects or not at all.
    // Once it holds, the same statement takes the locks its facts need (`aggregates::lock`).
    let review = facts.as_ref().err();
    let claim = sqlx::query!(
        r#"with claim as (
               insert into stripe_events (event_id, type, api_version, created, livemode, payload,
                                          processed_at, needs_review, error)
               values ($1, $2, $3, $4, $5, $6, case when $7 then null else now() end, $7, $8)
               on conflict (event_id) do nothing
               returning event_id
           )
           select exists (select 1 from claim) as "claimed!",
                  (select lock_touched($9, $10, $11, $12, $13, $14, $15, $16)
                   from claim where cardinality($9) > 0) as "known?""#,
        envelope.id,
        envelope.kind,
        envelope.api_version,
        created,
        envelope.livemode,
        Json(payload) as _,
        review.is_some(),
        review,
        &keys,
        &touched.payment_intents,
        &touched.invoices,
        &touched.sessions,
        &touched.gift_ids,
        &touched.customers,
        &touched.emails,
        &touched.subscriptions
    )
    .fetch_one(&mut *tx)
    .await?;
    if !claim.claimed {
        tx.rollback().await?;
        return Ok(Received::Duplicate);
    }
    let outcome = match &facts {
        Ok(facts) => {
            apply::apply_locked(
                &mut tx,
                facts,
                &touched,
                aggregates::Known::of(claim.known),
                &state.config.report_time_zone,
                &Bands::from_config(&state.config),
            )
            .await?;
            Received::Applied
        }
        Err(reason) => {
            tracing::warn!(event_type = %envelope.kind, %reason, "event stored for review");
            Received::Flagged
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Applies facts learned outside an event (a fee read from Stripe's balance transaction)
/// through the same locked transaction as a delivery, so the kept figures move with them.
pub async fn apply_facts(state: &AppState, facts: &[Fact]) -> Result<(), sqlx::Error> {
    let bands = Bands::from_config(&state.config);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut tx = state.db.begin().await?;
        let applied =
            apply::apply_all(&mut tx, facts, &state.config.report_time_zone, &bands).await;
        match applied {
            Ok(()) => return tx.commit().await,
            // A rival created the same rows first (or a deadlock): run it again.
            Err(e) if is_race(&e) && attempt < 4 => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What a sync found.
#[derive(Debug, Default)]
pub struct SyncReport {
    pub seen: usize,
    pub applied: usize,
    pub already: usize,
}

#[derive(Deserialize)]
struct EventList {
    data: Vec<Value>,
    has_more: bool,
}

/// Pages through `GET /v1/events` since `since` and applies each event not stored yet,
/// oldest first, through the same path as a delivery.
pub async fn sync(
    state: &AppState,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<SyncReport, WebhookError> {
    apply_listed_events(state, since.timestamp(), |_| true).await
}

/// Pages through `GET /v1/events` created since `since` (unix seconds) and applies those
/// `wanted` keeps, oldest first, through the same path as a delivery (each claimed once in
/// `stripe_events`). `stripe sync` keeps every event; a reconciliation repair keeps those
/// about one object.
pub async fn apply_listed_events(
    state: &AppState,
    since: i64,
    wanted: impl Fn(&Value) -> bool,
) -> Result<SyncReport, WebhookError> {
    let mut all: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    let gte = since.to_string();
    loop {
        let mut query = vec![("created[gte]", gte.as_str()), ("limit", "100")];
        if let Some(a) = &after {
            query.push(("starting_after", a.as_str()));
        }
        let page: EventList = state.stripe.get("/events", &query).await?;
        let last = page
            .data
            .last()
            .and_then(|e| e["id"].as_str().map(str::to_string));
        all.extend(page.data.into_iter().filter(|e| wanted(e)));
        // A page that does not move the cursor would loop forever.
        if !page.has_more || last.is_none() || last == after {
            break;
        }
        after = last;
    }
    let mut report = SyncReport::default();
    // Stripe lists newest first; applying oldest first keeps the end state closest to live.
    for payload in all.into_iter().rev() {
        report.seen += 1;
        let raw = serde_json::value::to_raw_value(&payload)
            .map_err(|e| WebhookError::NotAnEvent(e.to_string()))?;
        let envelope: Envelope =
            serde_json::from_value(payload).map_err(|e| WebhookError::NotAnEvent(e.to_string()))?;
        match process(state, &envelope, &raw).await? {
            Received::Duplicate => report.already += 1,
            _ => report.applied += 1,
        }
    }
    Ok(report)
}

/// Applies a stored event again. Every effect is an idempotent merge, so a replay can only
/// bring the ledger closer to Stripe's truth.
pub async fn replay(state: &AppState, event_id: &str) -> Result<Received, WebhookError> {
    let payload: Value = sqlx::query_scalar!(
        "select payload from stripe_events where event_id = $1",
        event_id
    )
    .fetch_optional(&state.db)
    .await?
    .ok_or_else(|| WebhookError::UnknownEvent(event_id.into()))?;
    let envelope: Envelope =
        serde_json::from_value(payload).map_err(|e| WebhookError::NotAnEvent(e.to_string()))?;
    let facts = match facts::interpret(state, &envelope).await {
        Ok(f) => f,
        Err(facts::Interpret::Stripe(e)) => return Err(e.into()),
        Err(facts::Interpret::Unreadable(msg)) => {
            sqlx::query!(
                "update stripe_events set needs_review = true, error = $2 where event_id = $1",
                event_id,
                msg
            )
            .execute(&state.db)
            .await?;
            return Ok(Received::Flagged);
        }
    };
    let mut tx = state.db.begin().await?;
    apply::apply_all(
        &mut tx,
        &facts,
        &state.config.report_time_zone,
        &Bands::from_config(&state.config),
    )
    .await?;
    sqlx::query!(
        "update stripe_events set processed_at = now(), needs_review = false, error = null where event_id = $1",
        event_id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Received::Applied)
}
