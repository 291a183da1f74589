//! One small helper for every integration test: a fresh database (from `#[sqlx::test]`), a
//! Stripe stand-in on a random port, and the real app on a random port, all over real HTTP.

use std::time::Duration;

use chipin::config::Config;
use chipin::startup::Application;
use chipin::stripe::signature;
use chipin::stripe::standin::{self, StandIn};
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgConnectOptions;

pub struct TestApp {
    pub address: String,
    pub db: PgPool,
    pub standin: StandIn,
    pub http: reqwest::Client,
    pub config: std::sync::Arc<chipin::config::Config>,
    /// The first webhook secret the app verifies with (tests sign with it).
    pub webhook_secret: String,
}

/// The URL of the database `#[sqlx::test]` made for this test.
pub fn database_url(opts: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().expect("sqlx::test names the database")
    )
}

/// The URL of a new database for a second app in one test. (Postgres cuts names at 63 bytes,
/// and `#[sqlx::test]` names are already that long, so these get short names of their own;
/// `scripts/test` drops them before each run.)
pub fn receiver_url(opts: &PgConnectOptions, name: &str) -> String {
    let db = format!(
        "chipin_rcv_{}_{name}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    assert!(db.len() <= 63, "{db} is too long for Postgres");
    format!(
        "postgres://{}@{}:{}/{db}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port()
    )
}

/// A fresh app on a database of its own that reads Stripe from `source`'s stand-in and
/// verifies its signatures: it receives `source`'s events in whatever order a test chooses.
pub async fn receiver(
    opts: &PgConnectOptions,
    source: &TestApp,
    name: &str,
    extra: &[(&str, &str)],
) -> TestApp {
    let url = receiver_url(opts, name);
    let base = source.standin.base_url();
    let mut vars = vec![
        ("DATABASE_URL", url.as_str()),
        ("STRIPE_API_BASE", base.as_str()),
        ("STRIPE_WEBHOOK_SECRET", source.standin.secret()),
    ];
    vars.extend_from_slice(extra);
    spawn_app_with(opts.clone(), &vars).await
}

pub async fn spawn_app(opts: PgConnectOptions) -> TestApp {
    spawn_app_with(opts, &[]).await
}

/// `extra` overrides or adds environment settings for this app.
pub async fn spawn_app_with(opts: PgConnectOptions, extra: &[(&str, &str)]) -> TestApp {
    let standin = StandIn::start(standin::Options {
        retry_delays: vec![
            Duration::from_millis(200),
            Duration::from_millis(500),
            Duration::from_secs(1),
        ],
        ..standin::Options::default()
    })
    .await
    .expect("stand-in starts");
    let mut vars: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), database_url(&opts)),
        ("LISTEN_ADDR".into(), "127.0.0.1:0".into()),
        ("STRIPE_SECRET_KEY".into(), standin::SECRET_KEY.into()),
        ("STRIPE_API_BASE".into(), standin.base_url()),
        ("STRIPE_WEBHOOK_SECRET".into(), standin.secret().into()),
        ("STRIPE_TIMEOUT_SECS".into(), "2".into()),
        ("CHECKOUT_LIMIT_PER_IP".into(), "1000/10m".into()),
        ("CHECKOUT_LIMIT_PER_EMAIL".into(), "1000/10m".into()),
        // Scheduled reconciliation would call the stand-in at times no test chose.
        ("RECONCILE_EVERY".into(), "off".into()),
    ];
    for (k, v) in extra {
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }
    let webhook_secret = vars
        .iter()
        .find(|(k, _)| k == "STRIPE_WEBHOOK_SECRET")
        .map(|(_, v)| v.split(',').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let config = Config::from_vars(vars).expect("test configuration is valid");
    let app = Application::build(config).await.expect("app builds");
    let address = app.address();
    standin.set_webhook_url(&format!("{address}/webhooks/stripe"));
    let db = app.state.db.clone();
    let config = app.state.config.clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        db,
        standin,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        webhook_secret,
        config,
    }
}

impl TestApp {
    /// The state a one-off command gets (`chipin reconcile`, say): this app's database and
    /// configuration, and a Stripe client of its own pointed at the stand-in.
    pub fn cli_state(&self) -> chipin::state::AppState {
        chipin::state::AppState {
            db: self.db.clone(),
            stripe: chipin::stripe::StripeClient::new(
                &self.standin.base_url(),
                secrecy::SecretString::from(standin::SECRET_KEY.to_string()),
                Duration::from_secs(5),
                3,
            ),
            config: self.config.clone(),
        }
    }

    pub async fn checkout(&self, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}/api/checkout", self.address))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Pays a session on the stand-in's hosted page, as a donor would.
    pub async fn pay(&self, checkout_url: &str) -> reqwest::Response {
        self.http
            .post(checkout_url)
            .form(&[("email", "reader@example.org"), ("name", "Test Reader")])
            .send()
            .await
            .expect("payment posted")
    }

    /// Posts `event` to the webhook endpoint, signed with the endpoint's secret.
    pub async fn deliver(&self, event: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(event).unwrap();
        let header = signature::sign(
            &[&self.webhook_secret],
            chrono::Utc::now().timestamp(),
            &body,
        );
        self.deliver_raw(body, Some(&header)).await
    }

    /// Delivers `event` as a new event `id` with its times moved to `at` (RFC 3339).
    pub async fn deliver_at(&self, event: &Value, at: &str, id: &str) {
        let t = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .timestamp();
        let mut e = event.clone();
        e["id"] = serde_json::json!(id);
        e["created"] = serde_json::json!(t);
        if e["data"]["object"].get("created").is_some() {
            e["data"]["object"]["created"] = serde_json::json!(t);
        }
        let res = self.deliver(&e).await;
        assert_eq!(res.status(), 200, "{}", e["type"]);
    }

    pub async fn deliver_raw(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/webhooks/stripe", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = signature {
            req = req.header("stripe-signature", s);
        }
        req.send().await.expect("webhook posted")
    }

    /// Waits until the stand-in has had every event it sent answered 2xx, and the count of
    /// stored events reaches `events` (bounded; no fixed sleep).
    pub async fn settle(&self, events: i64) {
        for _ in 0..200 {
            let stored: i64 = sqlx::query_scalar("select count(*) from stripe_events")
                .fetch_one(&self.db)
                .await
                .unwrap();
            if stored >= events && self.standin.undelivered() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "events did not settle: stand-in has {} undelivered",
            self.standin.undelivered()
        );
    }
}

/// Runs the real binary with the given environment, returning its stdout.
pub async fn run_chipin(args: &[&str], env: &[(&str, String)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipin"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("chipin runs");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}
