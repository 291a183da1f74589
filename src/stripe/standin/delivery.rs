//! Webhook delivery the way Stripe does it: each event POSTed to the endpoint, signed with a
//! fresh timestamp on every attempt, retried with growing delays until answered 2xx (any
//! 3xx counts as a failure).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::state::Sim;
use crate::stripe::signature;

pub struct Delivery {
    pub sim: Arc<Sim>,
    pub secret: String,
    pub endpoint: Arc<std::sync::RwLock<Option<String>>>,
    /// Delays before each retry; Stripe's test mode retries a few times over hours, the
    /// stand-in over seconds.
    pub retry_delays: Vec<Duration>,
}

impl Delivery {
    pub async fn run(self, mut queue: mpsc::UnboundedReceiver<String>) {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let this = Arc::new(self);
        while let Some(event_id) = queue.recv().await {
            // In order, one at a time, as a single Stripe endpoint mostly sees them; a
            // failed event is retried in the background without holding up the rest.
            if !this.attempt(&http, &event_id).await {
                let this = this.clone();
                let http = http.clone();
                tokio::spawn(async move {
                    for delay in this.retry_delays.clone() {
                        tokio::time::sleep(delay).await;
                        if this.attempt(&http, &event_id).await {
                            break;
                        }
                    }
                });
            }
        }
    }

    async fn attempt(&self, http: &reqwest::Client, event_id: &str) -> bool {
        let Some(url) = self.endpoint.read().unwrap().clone() else {
            return false;
        };
        let body = {
            let inner = self.sim.inner.lock().unwrap();
            match inner.events.iter().find(|e| e["id"] == event_id) {
                Some(e) => serde_json::to_vec_pretty(e).expect("json"),
                None => return true,
            }
        };
        let header = signature::sign(&[&self.secret], chrono::Utc::now().timestamp(), &body);
        let ok = match http
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Stripe-Signature", header)
            .header(
                "User-Agent",
                "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            )
            .body(body)
            .send()
            .await
        {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        if ok {
            self.sim.inner.lock().unwrap().undelivered.remove(event_id);
        }
        ok
    }
}
