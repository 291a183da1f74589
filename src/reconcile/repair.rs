//! Repairing what Stripe has and we lack: Stripe's events about the missing object (its
//! charge, payment intent and invoice, its refund or its dispute) are listed and applied,
//! oldest first, through `webhooks::process`, the path a delivery takes. Each event is
//! claimed in `stripe_events`, so a repair running twice, beside another instance's, or
//! beside the late delivery itself applies each event once.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::Value;

use super::ReconcileError;
use super::compare::{Found, ObjectType};
use crate::state::AppState;
use crate::stripe::expandable_id;
use crate::webhooks;

#[derive(Deserialize)]
struct Page {
    data: Vec<Value>,
}

/// Applies Stripe's events about `issue`'s object; returns how many were new to us.
pub async fn apply_missing(state: &AppState, issue: &Found) -> Result<usize, ReconcileError> {
    let related = related_ids(state, issue).await?;
    // Events come a little after the balance transaction they tell of; a day's margin
    // before it covers clocks and retries.
    let since = issue.created.unwrap_or_default() - 86_400;
    let report =
        webhooks::apply_listed_events(state, since, |e| mentions(&e["data"]["object"], &related))
            .await?;
    Ok(report.applied)
}

/// The ids whose events make up the missing object: a charge's payment intent and, for an
/// installment, its invoice.
async fn related_ids(state: &AppState, issue: &Found) -> Result<HashSet<String>, ReconcileError> {
    let mut ids = HashSet::from([issue.object_id.clone()]);
    if issue.object_type != ObjectType::Charge {
        return Ok(ids);
    }
    let charge: Value = state
        .stripe
        .get(&format!("/charges/{}", issue.object_id), &[])
        .await?;
    if let Some(pi) = expandable_id(charge.get("payment_intent")) {
        let payments: Page = state
            .stripe
            .get(
                "/invoice_payments",
                &[
                    ("payment[type]", "payment_intent"),
                    ("payment[payment_intent]", pi.as_str()),
                    ("limit", "10"),
                ],
            )
            .await?;
        ids.extend(
            payments
                .data
                .iter()
                .filter_map(|p| expandable_id(p.get("invoice"))),
        );
        ids.insert(pi);
    }
    Ok(ids)
}

/// Whether any id in `ids` appears as a value anywhere in `v`.
fn mentions(v: &Value, ids: &HashSet<String>) -> bool {
    match v {
        Value::String(s) => ids.contains(s),
        Value::Array(a) => a.iter().any(|x| mentions(x, ids)),
        Value::Object(o) => o.values().any(|x| mentions(x, ids)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_mentions_an_id_anywhere_in_its_object() {
        let ids = HashSet::from(["pi_1".to_string()]);
        assert!(mentions(
            &json!({"id": "cs_1", "payment_intent": "pi_1"}),
            &ids
        ));
        assert!(mentions(
            &json!({"lines": {"data": [{"pi": "pi_1"}]}}),
            &ids
        ));
        assert!(!mentions(&json!({"id": "pi_10", "amount": 1}), &ids));
    }
}
