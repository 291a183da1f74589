//! `GET /api/reports/donors/{email}` (role `finance`, audited): one donor's history (every
//! gift, refund and dispute, as the ledger export has them) and their totals per calendar
//! year (reporting time zone) and currency, for receipts and questions.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use uuid::Uuid;

use super::Authenticated;
use super::ledger::{LedgerRow, Scope, YearTotals, ledger_sql};
use super::staff::{Role, audit};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Donor {
    pub id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct YearLine {
    pub year: i32,
    pub currency: String,
    #[serde(flatten)]
    pub totals: YearTotals,
}

#[derive(Debug, Serialize)]
pub struct DonorHistory {
    pub donor: Donor,
    pub time_zone: String,
    pub history: Vec<LedgerRow>,
    /// Oldest year first, then by currency; currencies are never added together.
    pub years: Vec<YearLine>,
}

/// Yearly totals from a history: a gift adds to gifts and gross in the year it was paid,
/// a refund to refunded and a lost dispute to disputed in the year they happened.
pub fn yearly(history: &[LedgerRow]) -> Vec<YearLine> {
    let mut years: BTreeMap<(i32, String), YearTotals> = BTreeMap::new();
    for row in history {
        let Some(year) = row.date.get(..4).and_then(|y| y.parse::<i32>().ok()) else {
            continue;
        };
        let t = years.entry((year, row.currency.clone())).or_default();
        match row.kind.as_str() {
            "gift" => {
                t.gifts += 1;
                t.gross += row.amount;
            }
            "refund" => t.refunded -= row.amount,
            _ => t.disputed -= row.amount,
        }
        t.net += row.amount;
    }
    years
        .into_iter()
        .map(|((year, currency), totals)| YearLine {
            year,
            currency,
            totals,
        })
        .collect()
}

pub async fn history(
    State(state): State<AppState>,
    who: Authenticated,
    Path(email): Path<String>,
) -> Result<Json<DonorHistory>, ApiError> {
    let staff = who.require(Role::Finance)?;
    let email = email.trim().to_lowercase();
    if email.is_empty() || email.len() > 320 || !email.contains('@') {
        return Err(ApiError {
            field: Some("email".into()),
            ..ApiError::bad_request("invalid_parameter", "email must be an email address")
        });
    }
    audit(&state.db, staff, "report.donor", Some(&email)).await?;
    let donor = sqlx::query_as::<_, (Uuid, Option<String>, Option<String>, Option<String>)>(
        "select id, email, name, country from donors where email = $1",
    )
    .bind(&email)
    .fetch_optional(&state.db)
    .await?
    .map(|(id, email, name, country)| Donor {
        id,
        email,
        name,
        country,
    })
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no donor with that email",
        )
    })?;
    let tz = &state.config.report_time_zone;
    let history = sqlx::query_as::<_, LedgerRow>(&ledger_sql(Scope::Donor))
        .bind(tz)
        .bind(donor.id)
        .fetch_all(&state.db)
        .await?;
    Ok(Json(DonorHistory {
        years: yearly(&history),
        donor,
        time_zone: tz.clone(),
        history,
    }))
}
