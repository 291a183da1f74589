//! Reconciliation for finance (role `finance`):
//!
//! - `GET /api/reports/reconciliation?status=open|acknowledged|resolved` lists the
//!   differences `chipin reconcile` found (all of them without `status`), newest day first;
//! - `POST /api/reports/reconciliation/issues/{id}/ack` with `{"reason": "..."}` acknowledges
//!   one: it leaves the open list, keeping who explained it and why.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use uuid::Uuid;

use super::Authenticated;
use super::staff::{Role, audit};
use crate::error::ApiError;
use crate::reconcile;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/reports/reconciliation", get(list))
        .route("/api/reports/reconciliation/issues/{id}/ack", post(ack))
}

async fn list(
    State(state): State<AppState>,
    who: Authenticated,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    who.require(Role::Finance)?;
    let status = q.get("status").map(|s| s.trim()).filter(|s| !s.is_empty());
    if let Some(s) = status
        && !matches!(s, "open" | "acknowledged" | "resolved")
    {
        return Err(ApiError {
            field: Some("status".into()),
            ..ApiError::bad_request(
                "invalid_parameter",
                "status must be open, acknowledged or resolved",
            )
        });
    }
    let issues = reconcile::list_issues(&state.db, status).await?;
    Ok(Json(json!({
        "time_zone": state.config.report_time_zone,
        "issues": issues,
    })))
}

async fn ack(
    State(state): State<AppState>,
    who: Authenticated,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let staff = who.require(Role::Finance)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::invalid("id", "not an issue id"))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("invalid_json", "the body is not JSON"))?;
    let reason = match body.get("reason") {
        Some(Value::String(r)) => r.as_str(),
        None | Some(Value::Null) => "",
        Some(_) => return Err(ApiError::invalid("reason", "reason must be text")),
    };
    let issue = reconcile::acknowledge(&state.db, id, reason, &staff.name).await?;
    audit(
        &state.db,
        staff,
        "reconciliation_ack",
        Some(&id.to_string()),
    )
    .await?;
    Ok(Json(json!({ "issue": issue })))
}
