//! Reports for finance staff: `GET /api/reports/summary` (bearer token, any role), computed
//! from the kept daily aggregates. One currency per answer: currencies are never added.

pub mod aggregates;
pub mod contributions;
mod dashboard;
pub mod donors;
pub mod export;
pub mod kept;
pub mod ledger;
pub mod payouts;
mod reconciliation;
pub mod staff;
mod summary;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

pub use summary::{Figures, Interval, Summary, SummaryParams, SummaryQuery, summarize};

use crate::error::ApiError;
use crate::state::AppState;
use staff::{Role, Staff};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/reports/summary", get(summary_route))
        // The ledger and donors' personal data: finance, audited (src/reports/ledger.rs, donors.rs).
        .route("/api/reports/gifts", get(ledger::gifts))
        .route("/api/reports/statements", get(ledger::statements))
        .route("/api/reports/lybunt", get(ledger::lybunt))
        .route("/api/reports/donors/{email}", get(donors::history))
        // The staff dashboard (src/reports/dashboard.rs).
        .route("/reports", get(dashboard::page))
        .route("/static/reports.js", get(dashboard::js))
        .route("/static/reports.css", get(dashboard::css))
        .merge(payouts::routes())
        .merge(reconciliation::routes())
}

/// The authenticated staff member; rejects with 401 before any handler runs.
pub struct Authenticated(pub Staff);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // A token in a URL ends up in logs and browser history: refuse it outright.
        if let Some(q) = parts.uri.query()
            && url::form_urlencoded::parse(q.as_bytes())
                .any(|(k, _)| k == "token" || k == "access_token")
        {
            return Err(ApiError::bad_request(
                "token_in_query",
                "send the token in the Authorization header, never in the URL",
            ));
        }
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid staff token is required (Authorization: Bearer ...)",
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        staff::authenticate(&state.db, token)
            .await?
            .map(Authenticated)
            .ok_or_else(unauthorized)
    }
}

impl Authenticated {
    pub fn require(&self, role: Role) -> Result<&Staff, ApiError> {
        if self.0.role >= role {
            Ok(&self.0)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this needs the {} role", role.as_str()),
            ))
        }
    }
}

fn wants_csv(headers: &HeaderMap, format: Option<&str>) -> bool {
    format == Some("csv")
        || headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv"))
}

async fn summary_route(
    State(state): State<AppState>,
    who: Authenticated,
    headers: HeaderMap,
    Query(query): Query<SummaryQuery>,
) -> Result<Response, ApiError> {
    who.require(Role::Viewer)?;
    let csv = wants_csv(&headers, query.format.as_deref());
    let params =
        SummaryParams::parse(&query, &state.config).map_err(|(param, message)| ApiError {
            field: Some(param.into()),
            ..ApiError::bad_request("invalid_parameter", message)
        })?;
    let summary = summarize(&state.db, &params, &state.config).await?;
    Ok(if csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            summary.to_csv(),
        )
            .into_response()
    } else {
        Json(summary).into_response()
    })
}
