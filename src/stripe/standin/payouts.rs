//! The stand-in's payouts: `POST /_sim/payouts` sweeps every balance transaction not yet paid
//! out into a new payout (`payout.created`, then `payout.paid`, or `payout.failed` with
//! `?outcome=failed`), `GET /v1/payouts/{id}` retrieves one, `GET /v1/balance_transactions`
//! lists them (`payout`, `created[gte|gt|lte|lt]`, `limit`, `starting_after`; newest first,
//! paged like Stripe) and
//! `GET /v1/balance` tells what is left to pay out.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::api::api;
use super::objects;
use super::state::{Sim, SimError, new_id, now, public};

type S = State<Arc<Sim>>;

pub fn routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v1/balance_transactions", get(list_balance_transactions))
        .route("/v1/payouts/{id}", get(retrieve_payout))
        .route("/v1/balance", get(balance))
        .route("/_sim/payouts", post(sim_payout))
}

/// The payout a balance transaction was paid out in (a private note, as Stripe does not show it).
fn payout_of(bt: &Value) -> Option<&str> {
    bt["_standin"]["payout"].as_str()
}

pub fn payout_object(
    id: &str,
    amount: i64,
    currency: &str,
    balance_transaction: &str,
    status: &str,
    created: i64,
) -> Value {
    // Stripe's arrival date is a midnight (UTC), the business day after next here.
    let arrival = (created / 86_400 + 2) * 86_400;
    json!({
        "id": id, "object": "payout", "amount": amount, "application_fee": null,
        "application_fee_amount": null, "arrival_date": arrival, "automatic": true,
        "balance_transaction": balance_transaction, "created": created, "currency": currency,
        "description": "STRIPE PAYOUT", "destination": "ba_standinbankaccount0000",
        "failure_balance_transaction": null, "failure_code": null, "failure_message": null,
        "livemode": false, "metadata": {}, "method": "standard", "original_payout": null,
        "reconciliation_status": "completed", "reversed_by": null, "source_type": "card",
        "statement_descriptor": null, "status": status, "type": "bank_account",
        "trace_id": {"status": "pending", "value": null}, "payout_method": null
    })
}

impl Sim {
    /// Pays out everything not yet paid out, in one payout.
    pub fn payout(&self, fail: bool) -> Result<Value, SimError> {
        let mut inner = self.inner.lock().unwrap();
        inner.clock_offset += 1;
        let t = now() + inner.clock_offset;
        let swept: Vec<String> = inner
            .objects
            .values()
            .filter(|o| o["object"] == "balance_transaction" && payout_of(o).is_none())
            .filter_map(|o| o["id"].as_str().map(str::to_string))
            .collect();
        if swept.is_empty() {
            return Err(SimError::Invalid("There is no balance to pay out.".into()));
        }
        let amount: i64 = swept
            .iter()
            .filter_map(|id| inner.objects.get(id))
            .map(|bt| bt["net"].as_i64().unwrap_or(0))
            .sum();
        if amount <= 0 {
            return Err(SimError::Invalid(format!(
                "The balance ({amount}) is not positive; nothing to pay out."
            )));
        }
        let po_id = new_id("po");
        let bt_id = new_id("txn");
        for id in &swept {
            if let Some(bt) = inner.objects.get_mut(id) {
                bt["status"] = json!("available");
                bt["_standin"] = json!({"payout": po_id});
            }
        }
        let mut own =
            objects::balance_transaction(&bt_id, -amount, 0, "usd", &po_id, "payout", "payout", t);
        own["status"] = json!("available");
        own["description"] = json!("STRIPE PAYOUT");
        own["_standin"] = json!({"payout": po_id});
        inner.objects.insert(bt_id.clone(), own);
        let mut payout = payout_object(&po_id, amount, "usd", &bt_id, "in_transit", t);
        inner.objects.insert(po_id.clone(), payout.clone());
        self.emit(&mut inner, "payout.created", payout.clone(), None, t);
        let previous = json!({"status": "in_transit"});
        if fail {
            // The bank refused it: the money comes back to the balance.
            let back_id = new_id("txn");
            let mut back = objects::balance_transaction(
                &back_id,
                amount,
                0,
                "usd",
                &po_id,
                "payout_failure",
                "payout_reversal",
                t,
            );
            back["status"] = json!("available");
            inner.objects.insert(back_id.clone(), back);
            payout["status"] = json!("failed");
            payout["failure_code"] = json!("account_closed");
            payout["failure_message"] = json!("The bank account has been closed.");
            payout["failure_balance_transaction"] = json!(back_id);
            inner.objects.insert(po_id.clone(), payout.clone());
            self.emit(
                &mut inner,
                "payout.failed",
                payout.clone(),
                Some(previous),
                t,
            );
        } else {
            payout["status"] = json!("paid");
            inner.objects.insert(po_id.clone(), payout.clone());
            self.emit(&mut inner, "payout.paid", payout.clone(), Some(previous), t);
        }
        Ok(payout)
    }

    /// Balance transactions, newest first (ties by id), optionally of one payout.
    fn balance_transactions(&self, payout: Option<&str>) -> Vec<Value> {
        let inner = self.inner.lock().unwrap();
        let mut found: Vec<Value> = inner
            .objects
            .values()
            .filter(|o| o["object"] == "balance_transaction")
            .filter(|o| payout.is_none_or(|p| payout_of(o) == Some(p)))
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            let key = |o: &Value| {
                (
                    o["created"].as_i64().unwrap_or(0),
                    o["id"].as_str().unwrap_or_default().to_string(),
                )
            };
            key(b).cmp(&key(a))
        });
        found
    }
}

async fn list_balance_transactions(
    State(sim): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    api(&sim, &method, &uri, &headers, b"", |p| {
        let payout = p["payout"].as_str();
        if let Some(po) = payout
            && sim.get(po).is_none_or(|o| o["object"] != "payout")
        {
            return Err(SimError::NotFound("payout", po.into()));
        }
        let created = |op: &str| p["created"][op].as_str().and_then(|s| s.parse::<i64>().ok());
        let (gte, gt, lte, lt) = (created("gte"), created("gt"), created("lte"), created("lt"));
        let mut data = sim.balance_transactions(payout);
        data.retain(|o| {
            let t = o["created"].as_i64().unwrap_or(0);
            gte.is_none_or(|x| t >= x)
                && gt.is_none_or(|x| t > x)
                && lte.is_none_or(|x| t <= x)
                && lt.is_none_or(|x| t < x)
        });
        if let Some(after) = p["starting_after"].as_str() {
            match data.iter().position(|o| o["id"] == after) {
                Some(i) => data.drain(..=i).for_each(drop),
                None => return Err(SimError::NotFound("balance_transaction", after.into())),
            }
        }
        let limit = p["limit"]
            .as_str()
            .and_then(|l| l.parse().ok())
            .unwrap_or(10usize)
            .clamp(1, 100);
        let has_more = data.len() > limit;
        let data: Vec<Value> = data.into_iter().take(limit).map(public).collect();
        Ok(json!({"object": "list", "data": data, "has_more": has_more, "url": "/v1/balance_transactions"}))
    })
    .await
}

async fn retrieve_payout(State(sim): S, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let id = uri
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    api(&sim, &method, &uri, &headers, b"", |_| {
        sim.get(&id)
            .filter(|o| o["object"] == "payout")
            .map(public)
            .ok_or_else(|| SimError::NotFound("payout", id.clone()))
    })
    .await
}

/// `GET /v1/balance`: what has not been paid out yet (pending) and nothing available.
async fn balance(State(sim): S, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    api(&sim, &method, &uri, &headers, b"", |_| {
        let pending: i64 = sim
            .balance_transactions(None)
            .iter()
            .filter(|o| payout_of(o).is_none())
            .map(|o| o["net"].as_i64().unwrap_or(0))
            .sum();
        Ok(json!({
            "object": "balance", "livemode": false,
            "available": [{"amount": 0, "currency": "usd", "source_types": {"card": 0}}],
            "pending": [{"amount": pending, "currency": "usd", "source_types": {"card": pending}}]
        }))
    })
    .await
}

async fn sim_payout(State(sim): S, RawQuery(q): RawQuery) -> Response {
    let fail = q.as_deref().is_some_and(|q| q.contains("outcome=failed"));
    match sim.payout(fail) {
        Ok(v) => axum::Json(public(v)).into_response(),
        Err(e) => super::api::sim_error(e),
    }
}
