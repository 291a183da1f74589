//! Payouts for finance (role `finance`, audited): what each bank deposit is made of.
//!
//! - `GET /api/reports/payouts?from&to`: every payout arriving between the two days (UTC,
//!   both optional, inclusive) with its gross, fees, refunds, disputes, other movements, net,
//!   and how many of its items are linked to our ledger or unmatched;
//! - `GET /api/reports/payouts/{id}`: the payout and its items, as JSON, or the items as CSV
//!   (`Accept: text/csv` or `format=csv`).
//!
//! Amounts are in minor units. `gross − fees − refunds − disputes + other = net = amount`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::export::csv_line;
use super::staff::{Role, audit};
use super::{Authenticated, wants_csv};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/reports/payouts", get(list))
        .route("/api/reports/payouts/{id}", get(detail))
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PayoutSummary {
    pub payout_id: String,
    /// What reached (or was meant to reach) the bank.
    pub amount: i64,
    pub currency: String,
    /// YYYY-MM-DD (UTC).
    pub arrival_date: String,
    pub status: String,
    pub status_at: DateTime<Utc>,
    pub failure_code: Option<String>,
    /// Charges paid out.
    pub gross: i64,
    /// Stripe's fees on every item (a dispute's fee included; returned fees count negative).
    pub fees: i64,
    /// Refunded (a positive figure that is taken off).
    pub refunds: i64,
    /// Disputes lost less disputes reversed (positive when taken off).
    pub disputes: i64,
    /// Any other movement (signed, as it adds to the net).
    pub other: i64,
    /// The sum of the items' net.
    pub net: i64,
    pub items: i64,
    pub linked: i64,
    pub unmatched: i64,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PayoutItem {
    pub balance_transaction_id: String,
    pub payout_id: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub reporting_category: Option<String>,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
    pub currency: String,
    pub source_id: Option<String>,
    pub created: DateTime<Utc>,
    /// gift, refund, dispute or unmatched
    pub link: String,
    pub gift_id: Option<Uuid>,
    pub charge_id: Option<String>,
    pub refund_id: Option<String>,
    pub dispute_id: Option<String>,
}

const ITEM_COLUMNS: &[&str] = &[
    "balance_transaction_id",
    "payout_id",
    "type",
    "reporting_category",
    "amount",
    "fee",
    "net",
    "currency",
    "source_id",
    "created",
    "link",
    "gift_id",
    "charge_id",
    "refund_id",
    "dispute_id",
];

const SUMMARY_SQL: &str = r#"
select p.payout_id, p.amount, p.currency,
       to_char(p.arrival_date at time zone 'UTC', 'YYYY-MM-DD') as arrival_date,
       p.status, p.status_at, p.failure_code,
       coalesce(sum(i.amount) filter (where i.type in ('charge', 'payment')), 0)::int8 as gross,
       coalesce(sum(i.fee), 0)::int8 as fees,
       coalesce(-sum(i.amount) filter (where i.type in ('refund', 'payment_refund')), 0)::int8 as refunds,
       coalesce(-sum(i.amount) filter (where i.type not in ('charge', 'payment', 'refund', 'payment_refund')
                                        and i.reporting_category like 'dispute%'), 0)::int8 as disputes,
       coalesce(sum(i.amount) filter (where i.type not in ('charge', 'payment', 'refund', 'payment_refund')
                                       and coalesce(i.reporting_category, '') not like 'dispute%'), 0)::int8 as other,
       coalesce(sum(i.net), 0)::int8 as net,
       count(i.balance_transaction_id) as items,
       count(i.balance_transaction_id) filter (where i.link <> 'unmatched') as linked,
       count(i.balance_transaction_id) filter (where i.link = 'unmatched') as unmatched
from payouts p
left join payout_items i on i.payout_id = p.payout_id
where ($1::date is null or (p.arrival_date at time zone 'UTC')::date >= $1)
  and ($2::date is null or (p.arrival_date at time zone 'UTC')::date <= $2)
  and ($3::text is null or p.payout_id = $3)
group by p.payout_id
order by p.arrival_date, p.created, p.payout_id"#;

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        field: Some(param.into()),
        ..ApiError::bad_request("invalid_parameter", message)
    }
}

fn optional_date(q: &HashMap<String, String>, name: &str) -> Result<Option<NaiveDate>, ApiError> {
    match q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| bad(name, format!("{name} must be a date YYYY-MM-DD"))),
    }
}

async fn list(
    State(state): State<AppState>,
    who: Authenticated,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let staff = who.require(Role::Finance)?;
    let from = optional_date(&q, "from")?;
    let to = optional_date(&q, "to")?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(bad("to", "to must not be before from"));
    }
    audit(&state.db, staff, "payouts", None).await?;
    let payouts: Vec<PayoutSummary> = sqlx::query_as(SUMMARY_SQL)
        .bind(from)
        .bind(to)
        .bind(None::<String>)
        .fetch_all(&state.db)
        .await?;
    Ok(Json(json!({ "payouts": payouts })))
}

async fn detail(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let staff = who.require(Role::Finance)?;
    audit(&state.db, staff, "payout", Some(&id)).await?;
    let payout: Option<PayoutSummary> = sqlx::query_as(SUMMARY_SQL)
        .bind(None::<NaiveDate>)
        .bind(None::<NaiveDate>)
        .bind(&id)
        .fetch_optional(&state.db)
        .await?;
    let Some(payout) = payout else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such payout",
        ));
    };
    let items: Vec<PayoutItem> = sqlx::query_as(
        "select balance_transaction_id, payout_id, type, reporting_category, amount, fee, net,
                currency, source_id, created, link, gift_id, charge_id, refund_id, dispute_id
         from payout_items where payout_id = $1
         order by created, balance_transaction_id",
    )
    .bind(&id)
    .fetch_all(&state.db)
    .await?;
    if wants_csv(&headers, q.get("format").map(String::as_str)) {
        let mut body = csv_line(&ITEM_COLUMNS.iter().map(|c| json!(c)).collect::<Vec<_>>());
        for item in &items {
            let v = serde_json::to_value(item).unwrap_or(Value::Null);
            body.push_str(&csv_line(
                &ITEM_COLUMNS
                    .iter()
                    .map(|c| v.get(*c).cloned().unwrap_or(Value::Null))
                    .collect::<Vec<_>>(),
            ));
        }
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"payout-{id}.csv\""),
                ),
            ],
            body,
        )
            .into_response());
    }
    Ok(Json(json!({ "payout": payout, "items": items })).into_response())
}
