//! The one place errors become HTTP answers.
//!
//! - Domain layers return their own `thiserror` enums (`CheckoutError`, `WebhookError`,
//!   `StripeError`); each converts into [`ApiError`] here.
//! - [`ApiError`] is what a handler returns: a status, a stable `code`, a safe `message`
//!   and, for client errors, the `field` at fault.
//! - A 5xx never carries internals: the cause is logged, the client sees a generic message.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// A 422 naming the field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// Something failed on our side; the cause goes to the log, never to the client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "something went wrong on our side; please try again",
        )
    }

    /// The database is unreachable: 503 so that callers (and Stripe) retry.
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "database unavailable");
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is briefly unavailable; please retry",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut res = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        // A query our code got wrong is a 500; everything else (the database gone, refusing
        // connections, shutting down) is an outage the caller should retry: 503.
        match &e {
            sqlx::Error::Database(db)
                if !is_unavailable(&e) && db.code().is_some_and(|c| c.starts_with("42")) =>
            {
                Self::internal(e)
            }
            sqlx::Error::RowNotFound
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_) => Self::internal(e),
            _ => Self::unavailable(e),
        }
    }
}

/// Errors that mean "the database is not there right now", as opposed to a bug.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
        sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
            // 53300 too_many_connections, 08xxx connection exceptions, 40001/40P01 retryable.
            db.code().is_some_and(|c| {
                c.starts_with("08")
                    || c.starts_with("57P")
                    || c == "53300"
                    || c == "40001"
                    || c == "40P01"
            })
        }
        _ => false,
    }
}

impl From<crate::reconcile::ReconcileError> for ApiError {
    fn from(e: crate::reconcile::ReconcileError) -> Self {
        use crate::reconcile::ReconcileError as E;
        match e {
            E::NoReason => Self::invalid("reason", "a reason is required"),
            E::NoSuchIssue(_) => Self::new(StatusCode::NOT_FOUND, "not_found", "no such issue"),
            E::AlreadyResolved(_) => Self::new(
                StatusCode::CONFLICT,
                "already_resolved",
                "this issue is already resolved",
            ),
            E::Db(e) => e.into(),
            E::Stripe(e) => Self::new(StatusCode::BAD_GATEWAY, "stripe_unavailable", {
                tracing::warn!(error = %e, "reconciliation: stripe failed");
                "Stripe could not be reached; please retry"
            }),
            E::Webhook(e) => Self::internal(e),
        }
    }
}
