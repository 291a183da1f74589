//! The stand-in's HTTP face: the slice of Stripe's form-encoded API chipin calls, the hosted
//! checkout page, and `/_sim/...` controls that make Stripe-side things happen in tests.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::form;
use super::state::{Failure, Recorded, Sim, SimError, public};

type S = State<Arc<Sim>>;

pub fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route("/v1/checkout/sessions", post(create_session))
        .route("/v1/refunds", post(create_refund).get(list_refunds))
        .route("/v1/invoice_payments", get(list_invoice_payments))
        .route("/v1/events", get(list_events))
        .route(
            "/v1/subscriptions/{id}",
            get(retrieve).delete(cancel_subscription),
        )
        .route(
            "/v1/customers/{id}",
            get(retrieve).delete(super::portal::delete_customer),
        )
        .route("/v1/{*path}", get(retrieve))
        .route("/pay/{id}", get(pay_page).post(pay))
        .route("/_sim/subscriptions/{id}/renew", post(sim_renew))
        .route("/_sim/subscriptions/{id}/amount", post(sim_amount))
        .route("/_sim/charges/{id}/dispute", post(sim_dispute))
        .route("/_sim/disputes/{id}/close", post(sim_close_dispute))
        .merge(super::portal::routes())
        .merge(super::payouts::routes())
        .with_state(sim)
}

pub fn stripe_error(
    status: StatusCode,
    kind: &str,
    message: &str,
    param: Option<&str>,
) -> Response {
    let mut err = json!({"error": {"type": kind, "message": message}});
    if let Some(p) = param {
        err["error"]["param"] = json!(p);
    }
    (status, axum::Json(err)).into_response()
}

pub(super) fn sim_error(e: SimError) -> Response {
    match e {
        SimError::NotFound(..) => stripe_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            &e.to_string(),
            None,
        ),
        SimError::Invalid(m) => {
            stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", &m, None)
        }
    }
}

/// What every `/v1` request goes through: authentication, recording, injected failures and
/// idempotency keys, the way Stripe treats them.
pub(super) async fn api(
    sim: &Sim,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    handle: impl FnOnce(&Value) -> Result<Value, SimError>,
) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer sk_") || v.starts_with("Bearer rk_"));
    if !authorized {
        return stripe_error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "Invalid API Key provided.",
            None,
        );
    }
    let raw = if method == Method::GET || method == Method::DELETE {
        uri.query().unwrap_or("").as_bytes().to_vec()
    } else {
        body.to_vec()
    };
    let params = match form::parse(&raw) {
        Ok(p) => form::normalize(p),
        Err(m) => return stripe_error(StatusCode::BAD_REQUEST, "invalid_request_error", &m, None),
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let failure = {
        let mut inner = sim.inner.lock().unwrap();
        inner.requests.push(Recorded {
            method: method.to_string(),
            path: uri.path().to_string(),
            idempotency_key: key.clone(),
            params: params.clone(),
        });
        inner.failures.pop_front()
    };
    match failure {
        Some(Failure::Status {
            status,
            should_retry,
        }) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let kind = if status == 429 {
                "rate_limit_error"
            } else if status >= 500 {
                "api_error"
            } else {
                "invalid_request_error"
            };
            let mut res = stripe_error(code, kind, "Injected failure from the stand-in.", None);
            if let Some(r) = should_retry {
                res.headers_mut()
                    .insert("stripe-should-retry", r.to_string().parse().unwrap());
            }
            return res;
        }
        Some(Failure::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }

    let fingerprint = hex::encode(Sha256::digest(
        [method.as_str().as_bytes(), uri.path().as_bytes(), &raw].concat(),
    ));
    if method == Method::POST
        && let Some(k) = &key
    {
        let stored = sim.inner.lock().unwrap().idempotency.get(k).cloned();
        if let Some((fp, status, body)) = stored {
            if fp != fingerprint {
                return stripe_error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                    None,
                );
            }
            let mut res = (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
            res.headers_mut()
                .insert("idempotent-replayed", "true".parse().unwrap());
            return res;
        }
    }
    let (status, body) = match handle(&params) {
        Ok(v) => (StatusCode::OK, v),
        Err(e) => return sim_error(e),
    };
    if method == Method::POST
        && let Some(k) = key
    {
        sim.inner
            .lock()
            .unwrap()
            .idempotency
            .insert(k, (fingerprint, status.as_u16(), body.clone()));
    }
    (status, axum::Json(body)).into_response()
}

async fn create_session(
    State(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &method, &uri, &headers, &body, |p| {
        sim.create_session(p)
    })
    .await
}

async fn create_refund(
    State(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &method, &uri, &headers, &body, |p| sim.refund(p)).await
}

async fn cancel_subscription(
    State(sim): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    api(&sim, &method, &uri, &headers, b"", |_| {
        sim.cancel_subscription(&id, "cancellation_requested")
    })
    .await
}

fn list_of(data: Vec<Value>, url: &str, limit: usize) -> Value {
    let has_more = data.len() > limit;
    json!({"object": "list", "data": data.into_iter().take(limit).collect::<Vec<_>>(), "has_more": has_more, "url": url})
}

fn limit_of(p: &Value) -> usize {
    p["limit"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or(10)
        .clamp(1, 100)
}

async fn list_refunds(State(sim): S, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    api(&sim, &method, &uri, &headers, b"", |p| {
        let charge = p["charge"].as_str();
        let pi = p["payment_intent"].as_str();
        let data = sim.list("refund", |r| {
            charge.is_none_or(|c| r["charge"] == c) && pi.is_none_or(|pi| r["payment_intent"] == pi)
        });
        Ok(list_of(data, "/v1/refunds", limit_of(p)))
    })
    .await
}

async fn list_invoice_payments(
    State(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    api(&sim, &method, &uri, &headers, b"", |p| {
        let invoice = p["invoice"].as_str();
        let pi = p["payment"]["payment_intent"].as_str();
        let data = sim.list("invoice_payment", |r| {
            invoice.is_none_or(|i| r["invoice"] == i)
                && pi.is_none_or(|pi| r["payment"]["payment_intent"] == pi)
        });
        Ok(list_of(data, "/v1/invoice_payments", limit_of(p)))
    })
    .await
}

/// `GET /v1/events`: newest first, `created[gte]`, `starting_after`, `limit`, `type`.
async fn list_events(State(sim): S, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    api(&sim, &method, &uri, &headers, b"", |p| {
        let gte = p["created"]["gte"]
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(i64::MIN);
        let kind = p["type"].as_str();
        let inner = sim.inner.lock().unwrap();
        let mut events: Vec<Value> = inner
            .events
            .iter()
            .rev()
            .filter(|e| {
                e["created"].as_i64().unwrap_or(0) >= gte && kind.is_none_or(|k| e["type"] == k)
            })
            .cloned()
            .collect();
        if let Some(after) = p["starting_after"].as_str() {
            match events.iter().position(|e| e["id"] == after) {
                Some(i) => events.drain(..=i).for_each(drop),
                None => return Err(SimError::NotFound("event", after.into())),
            }
        }
        Ok(list_of(events, "/v1/events", limit_of(p)))
    })
    .await
}

async fn retrieve(State(sim): S, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let id = uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let kind = uri
        .path()
        .trim_start_matches("/v1/")
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    api(&sim, &method, &uri, &headers, b"", |_| {
        let expected = match kind.as_str() {
            "checkout" => "checkout.session",
            "payment_intents" => "payment_intent",
            "charges" => "charge",
            "subscriptions" => "subscription",
            "invoices" => "invoice",
            "balance_transactions" => "balance_transaction",
            "customers" => "customer",
            "refunds" => "refund",
            "disputes" => "dispute",
            "events" => "event",
            _ => return Err(SimError::NotFound("resource", uri.path().to_string())),
        };
        if expected == "event" {
            let inner = sim.inner.lock().unwrap();
            return inner
                .events
                .iter()
                .find(|e| e["id"] == id)
                .cloned()
                .ok_or(SimError::NotFound("event", id.clone()));
        }
        sim.get(&id)
            .filter(|o| o["object"] == expected)
            .map(public)
            .ok_or_else(|| SimError::NotFound(expected_name(expected), id.clone()))
    })
    .await
}

fn expected_name(kind: &str) -> &'static str {
    match kind {
        "checkout.session" => "checkout session",
        "payment_intent" => "payment_intent",
        "charge" => "charge",
        "subscription" => "subscription",
        "invoice" => "invoice",
        _ => "object",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The hosted checkout page: a person (or a browser test) pays here.
async fn pay_page(State(sim): S, Path(id): Path<String>) -> Response {
    let Some(session) = sim.get(&id).filter(|s| s["object"] == "checkout.session") else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>Checkout session not found</h1>"),
        )
            .into_response();
    };
    let amount = session["amount_total"].as_i64().unwrap_or(0);
    let currency = session["currency"].as_str().unwrap_or("usd").to_uppercase();
    let every = match session["_standin"]["interval"].as_str() {
        Some("month") => " every month",
        Some("year") => " every year",
        _ => "",
    };
    let email = escape(
        session["customer_email"]
            .as_str()
            .unwrap_or("reader@example.org"),
    );
    let status = session["status"].as_str().unwrap_or("open");
    let cancel = escape(session["cancel_url"].as_str().unwrap_or("/"));
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stand-in Checkout</title></head><body>
<p><strong>Stripe stand-in: no real money moves.</strong></p>
<h1>Pay {major}.{minor:02} {currency}{every}</h1>
<p>Session {id} is {status}.</p>
<form method="post" action="/pay/{id}">
<label for="email">Email</label> <input id="email" name="email" type="email" value="{email}">
<label for="name">Name on card</label> <input id="name" name="name" value="Test Reader">
<p>Card 4242 4242 4242 4242</p>
<button id="pay" type="submit">Pay</button>
</form>
<p><a id="cancel" href="{cancel}">Cancel</a></p>
</body></html>"#,
        major = amount / 100,
        minor = amount % 100,
    );
    Html(page).into_response()
}

async fn pay(State(sim): S, Path(id): Path<String>, body: Bytes) -> Response {
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    let email = fields
        .get("email")
        .map(String::as_str)
        .unwrap_or("reader@example.org");
    let name = fields
        .get("name")
        .map(String::as_str)
        .unwrap_or("Test Reader");
    match sim.pay_session(&id, email, name) {
        Ok(session) => match session["success_url"].as_str() {
            Some(url) => Redirect::to(&url.replace("{CHECKOUT_SESSION_ID}", &id)).into_response(),
            None => Html("<h1>Paid</h1>").into_response(),
        },
        Err(e) => sim_error(e),
    }
}

fn sim_result(r: Result<Value, SimError>) -> Response {
    match r {
        Ok(v) => axum::Json(public(v)).into_response(),
        Err(e) => sim_error(e),
    }
}

async fn sim_renew(State(sim): S, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let failed = q.as_deref().is_some_and(|q| q.contains("outcome=failed"));
    sim_result(sim.renew(&id, !failed))
}

async fn sim_amount(State(sim): S, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let amount = q
        .as_deref()
        .and_then(|q| q.strip_prefix("amount="))
        .and_then(|a| a.parse().ok());
    match amount {
        Some(a) => sim_result(sim.update_subscription_amount(&id, a)),
        None => sim_error(SimError::Invalid("amount=N is required".into())),
    }
}

async fn sim_dispute(State(sim): S, Path(id): Path<String>) -> Response {
    sim_result(sim.dispute(&id))
}

async fn sim_close_dispute(
    State(sim): S,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let status = if q.as_deref().is_some_and(|q| q.contains("status=won")) {
        "won"
    } else {
        "lost"
    };
    sim_result(sim.close_dispute(&id, status))
}
