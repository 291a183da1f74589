//! The Stripe stand-in: plays Stripe's HTTP API, hosted Checkout page and signed webhook
//! deliveries on this machine, where the real Stripe is out of reach. `chipin serve` starts
//! it when no Stripe key is configured; tests start one each; `chipin stripe-sim` runs it alone.

mod api;
mod delivery;
pub mod form;
pub mod objects;
mod payouts;
mod portal;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use tokio::sync::mpsc;

pub use state::{Failure, Recorded};
use state::{Inner, Sim};

/// The secret key chipin uses against the stand-in.
pub const SECRET_KEY: &str = "sk_test_standin";

pub fn generate_secret() -> String {
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    format!("whsec_{}", hex::encode(bytes))
}

pub struct Options {
    pub listen: SocketAddr,
    /// Where to deliver webhooks; settable later with [`StandIn::set_webhook_url`].
    pub webhook_url: Option<String>,
    /// The endpoint's signing secret (`whsec_...`).
    pub secret: String,
    pub retry_delays: Vec<Duration>,
    /// Card pricing for balance transactions: 2.9% + 30 by default.
    pub fee_percent_bps: i64,
    pub fee_fixed: i64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".parse().unwrap(),
            webhook_url: None,
            secret: generate_secret(),
            retry_delays: vec![
                Duration::from_secs(1),
                Duration::from_secs(3),
                Duration::from_secs(10),
            ],
            fee_percent_bps: 290,
            fee_fixed: 30,
        }
    }
}

/// A running stand-in. Dropping it does not stop it; it lives as long as the runtime.
#[derive(Clone)]
pub struct StandIn {
    addr: SocketAddr,
    sim: Arc<Sim>,
    endpoint: Arc<RwLock<Option<String>>>,
    secret: String,
}

impl StandIn {
    pub async fn start(opts: Options) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(opts.listen).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let sim = Arc::new(Sim {
            inner: std::sync::Mutex::new(Inner {
                base_url: format!("http://{addr}/"),
                ..Inner::default()
            }),
            deliveries: tx,
            fee_percent_bps: opts.fee_percent_bps,
            fee_fixed: opts.fee_fixed,
            api_version: crate::stripe::api_version().to_string(),
        });
        let endpoint = Arc::new(RwLock::new(opts.webhook_url));
        tokio::spawn(
            delivery::Delivery {
                sim: sim.clone(),
                secret: opts.secret.clone(),
                endpoint: endpoint.clone(),
                retry_delays: opts.retry_delays,
            }
            .run(rx),
        );
        let app = api::router(sim.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            sim,
            endpoint,
            secret: opts.secret,
        })
    }

    /// The API base, ending in `/` as async-stripe expects.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    pub fn set_webhook_url(&self, url: &str) {
        *self.endpoint.write().unwrap() = Some(url.to_string());
    }

    /// Answer the next API requests with these failures, one each.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.sim.inner.lock().unwrap().failures.extend(failures);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.sim.inner.lock().unwrap().requests.clone()
    }

    pub fn events(&self) -> Vec<Value> {
        self.sim.inner.lock().unwrap().events.clone()
    }

    pub fn object(&self, id: &str) -> Option<Value> {
        self.sim.get(id).map(state::public)
    }

    /// Changes a stored object as Stripe would have it (a plan edited in the Dashboard, say):
    /// later reads of it see the change. No event is sent.
    pub fn edit_object(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        let mut inner = self.sim.inner.lock().unwrap();
        if let Some(o) = inner.objects.get_mut(id) {
            edit(o);
        }
    }

    /// While paused, events are recorded (and listed by `/v1/events`) but not delivered.
    pub fn pause_deliveries(&self, paused: bool) {
        self.sim.inner.lock().unwrap().deliveries_paused = paused;
    }

    /// Events Stripe has not yet had a 2xx for.
    pub fn undelivered(&self) -> usize {
        self.sim.inner.lock().unwrap().undelivered.len()
    }
}
