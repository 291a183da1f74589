//! `POST /api/checkout`: a reader's choice becomes a pending gift and a Stripe Checkout
//! Session. JSON answers 201 with the session; an HTML form post answers 303 to Checkout.

mod input;
mod service;

use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Json, Router};

pub use input::{CheckoutRequest, Fields, HONEYPOT, InputError};
pub use service::{CheckoutCreated, CheckoutError, create_checkout, stripe_key};

use crate::error::ApiError;
use crate::state::AppState;
use crate::stripe::StripeError;

/// Largest body accepted: a gift needs far less, and a flood of large bodies costs us.
pub const MAX_BODY: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/checkout", post(create))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[derive(PartialEq, Eq)]
enum Encoding {
    Json,
    Form,
}

async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let encoding = match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .as_deref()
    {
        Some("application/json") => Encoding::Json,
        Some("application/x-www-form-urlencoded") => Encoding::Form,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send application/json or application/x-www-form-urlencoded",
            ));
        }
    };
    check_origin(&state, &headers)?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body must be at most {MAX_BODY} bytes"),
        ),
        _ => ApiError::bad_request("unreadable_body", "the body could not be read"),
    })?;
    let idempotency_key = idempotency_key(&headers)?;

    let fields = match encoding {
        Encoding::Json => Fields::from_json(&body),
        Encoding::Form => Fields::from_form(&body),
    };
    let request = match fields.and_then(|f| CheckoutRequest::parse(&f, &state.config)) {
        Ok(r) => r,
        Err(InputError::Honeypot) => {
            tracing::info!("honeypot filled; nothing created");
            return Ok(match encoding {
                Encoding::Form => Redirect::to(&state.config.cancel_url).into_response(),
                Encoding::Json => (
                    StatusCode::ACCEPTED,
                    Json(serde_json::json!({"status": "received"})),
                )
                    .into_response(),
            });
        }
        Err(e) => return Err(e.into()),
    };

    let ip = client_ip(&state, &headers, peer);
    let created = create_checkout(&state, &request, ip, idempotency_key.as_deref()).await?;
    Ok(match encoding {
        Encoding::Form => Redirect::to(&created.checkout_url).into_response(),
        Encoding::Json => (StatusCode::CREATED, Json(created)).into_response(),
    })
}

/// Browsers send `Origin` on cross-site posts; only the newsroom's own sites may start a
/// checkout from a page. Requests without `Origin` (servers, curl) are not browsers.
fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => Ok(()),
        Some(Ok(origin)) if state.config.allowed_origins.iter().any(|a| a == origin) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this site may not start a checkout",
        )),
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => {
            let key = v
                .to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 255);
            match key {
                Some(k) => Ok(Some(k.to_string())),
                None => Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                )),
            }
        }
    }
}

fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if state.config.trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        match e {
            InputError::Malformed => {
                ApiError::bad_request("malformed_body", "the body is not a JSON object")
            }
            InputError::Field { field, message } => {
                ApiError::invalid(&field, format!("{field} {message}"))
            }
            InputError::Honeypot => ApiError::bad_request("rejected", "the request was rejected"),
        }
    }
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::KeyReused => ApiError {
                field: Some("Idempotency-Key".into()),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
            },
            CheckoutError::RateLimited { field, retry_after } => ApiError {
                field: Some(field.into()),
                retry_after: Some(retry_after),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many checkouts started; please wait and try again",
                )
            },
            CheckoutError::Stripe(e) => {
                tracing::warn!(error = %e, "checkout session not created");
                let message = match e {
                    StripeError::Refused { .. } => {
                        "the payment provider refused this gift; please try another amount or later"
                    }
                    _ => "the payment provider is unavailable; please try again in a moment",
                };
                ApiError::new(StatusCode::BAD_GATEWAY, "payment_provider_error", message)
            }
            CheckoutError::Db(e) => e.into(),
        }
    }
}
