//! The stand-in's Billing Portal: `POST /v1/billing_portal/sessions` (customer and
//! return_url, answered with the portal's URL), a simple hosted page at `/portal/{id}` where
//! the donor cancels a subscription or changes its amount (through the same `Sim` methods
//! as the `/_sim` controls, so the subscription events are sent to the webhook as Stripe
//! would), and `DELETE /v1/customers/{id}`. Updating the card is not played here.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::api::api;
use super::state::{Sim, SimError, new_id, now, public};

type S = State<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v1/billing_portal/sessions", post(create_portal_session))
        .route("/portal/{id}", get(portal_page))
        .route("/portal/{id}/cancel/{sub}", post(portal_cancel))
        .route("/portal/{id}/amount/{sub}", post(portal_amount))
}

impl Sim {
    /// `POST /v1/billing_portal/sessions`.
    pub fn create_portal_session(&self, p: &Value) -> Result<Value, SimError> {
        let customer = p["customer"]
            .as_str()
            .ok_or_else(|| SimError::Invalid("Missing required param: customer.".into()))?;
        let mut inner = self.inner.lock().unwrap();
        match inner.objects.get(customer) {
            Some(c) if c["object"] == "customer" && c["deleted"] != true => {}
            _ => return Err(SimError::NotFound("customer", customer.into())),
        }
        let id = new_id("bps");
        let session = json!({
            "id": id, "object": "billing_portal.session", "configuration": "bpc_standin",
            "created": now() + inner.clock_offset, "customer": customer, "flow": null,
            "livemode": false, "locale": null, "on_behalf_of": null,
            "return_url": p["return_url"], "url": format!("{}portal/{id}", inner.base_url),
        });
        inner.objects.insert(id, session.clone());
        Ok(session)
    }

    /// `DELETE /v1/customers/{id}`: the customer is gone and, as at Stripe, its
    /// subscriptions are canceled at once (each sending `customer.subscription.deleted`).
    pub fn delete_customer(&self, id: &str) -> Result<Value, SimError> {
        let subs: Vec<String> = {
            let mut inner = self.inner.lock().unwrap();
            match inner.objects.get(id) {
                Some(c) if c["object"] == "customer" && c["deleted"] != true => {}
                _ => return Err(SimError::NotFound("customer", id.into())),
            }
            inner.objects.insert(
                id.to_string(),
                json!({"id": id, "object": "customer", "deleted": true}),
            );
            inner
                .objects
                .values()
                .filter(|o| {
                    o["object"] == "subscription"
                        && o["customer"] == id
                        && o["status"] != "canceled"
                })
                .filter_map(|o| o["id"].as_str().map(str::to_string))
                .collect()
        };
        for sub in subs {
            self.cancel_subscription(&sub, "cancellation_requested")?;
        }
        Ok(json!({"id": id, "object": "customer", "deleted": true}))
    }

    /// The portal session and the subscription it may act on.
    fn portal_subscription(&self, session: &str, sub: &str) -> Option<Value> {
        let session = self
            .get(session)
            .filter(|s| s["object"] == "billing_portal.session")?;
        self.get(sub)
            .filter(|s| s["object"] == "subscription" && s["customer"] == session["customer"])
    }
}

async fn create_portal_session(
    State(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    api(&sim, &method, &uri, &headers, &body, |p| {
        sim.create_portal_session(p)
    })
    .await
}

pub(super) async fn delete_customer(
    State(sim): S,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    api(&sim, &method, &uri, &headers, b"", |_| {
        sim.delete_customer(&id)
    })
    .await
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn portal_page(State(sim): S, Path(id): Path<String>, RawQuery(q): RawQuery) -> Response {
    let Some(session) = sim
        .get(&id)
        .filter(|s| s["object"] == "billing_portal.session")
    else {
        return (
            StatusCode::NOT_FOUND,
            Html("<h1>Portal session not found</h1>"),
        )
            .into_response();
    };
    let customer = session["customer"].as_str().unwrap_or_default().to_string();
    let subs = sim.list("subscription", |s| s["customer"] == customer.as_str());
    let message = match q.as_deref() {
        Some("done=canceled") => {
            "<p id=\"portal-message\" role=\"status\">Your subscription is canceled.</p>"
        }
        Some("done=updated") => {
            "<p id=\"portal-message\" role=\"status\">Your subscription is updated.</p>"
        }
        Some("done=invalid") => {
            "<p id=\"portal-message\" role=\"alert\">Enter an amount such as 20 or 12.50.</p>"
        }
        _ => "",
    };
    let mut rows = String::new();
    for s in subs.iter().map(|s| public(s.clone())) {
        let sub_id = escape(s["id"].as_str().unwrap_or_default());
        let item = &s["items"]["data"][0];
        let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0);
        let currency = escape(&s["currency"].as_str().unwrap_or("usd").to_uppercase());
        let interval = escape(
            item["price"]["recurring"]["interval"]
                .as_str()
                .unwrap_or("month"),
        );
        let status = escape(s["status"].as_str().unwrap_or_default());
        let actions = if status == "canceled" {
            String::new()
        } else {
            format!(
                r#"<form method="post" action="/portal/{id}/amount/{sub_id}">
<label for="amount-{sub_id}">New amount ({currency})</label> <input id="amount-{sub_id}" class="new-amount" name="amount_major" inputmode="decimal">
<button type="submit" class="update">Update amount</button>
</form>
<form method="post" action="/portal/{id}/cancel/{sub_id}"><button type="submit" class="cancel">Cancel subscription</button></form>"#
            )
        };
        rows.push_str(&format!(
            r#"<section class="subscription" id="{sub_id}"><h2>{major}.{minor:02} {currency} every {interval}</h2>
<p>Status: <span class="status">{status}</span></p>
{actions}</section>
"#,
            major = amount / 100,
            minor = amount % 100,
        ));
    }
    let back = escape(session["return_url"].as_str().unwrap_or("/"));
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Stand-in Billing Portal</title></head><body>
<p><strong>Stripe stand-in: no real money moves.</strong> (Updating the card is not played here.)</p>
<h1>Your subscriptions</h1>
{message}
{rows}<p><a id="return" href="{back}">Return</a></p>
</body></html>"#
    ))
    .into_response()
}

async fn portal_cancel(State(sim): S, Path((id, sub)): Path<(String, String)>) -> Response {
    if sim.portal_subscription(&id, &sub).is_none() {
        return (StatusCode::NOT_FOUND, Html("<h1>Not found</h1>")).into_response();
    }
    match sim.cancel_subscription(&sub, "cancellation_requested") {
        Ok(_) => Redirect::to(&format!("/portal/{id}?done=canceled")).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Html(escape(&e.to_string()))).into_response(),
    }
}

async fn portal_amount(
    State(sim): S,
    Path((id, sub)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if sim.portal_subscription(&id, &sub).is_none() {
        return (StatusCode::NOT_FOUND, Html("<h1>Not found</h1>")).into_response();
    }
    let amount = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "amount_major")
        .and_then(|(_, v)| crate::config::parse_major_units(&v))
        .filter(|a| *a > 0);
    let Some(amount) = amount else {
        return Redirect::to(&format!("/portal/{id}?done=invalid")).into_response();
    };
    match sim.update_subscription_amount(&sub, amount) {
        Ok(_) => Redirect::to(&format!("/portal/{id}?done=updated")).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Html(escape(&e.to_string()))).into_response(),
    }
}
