//! Building and running the application: bind first (tests bind port 0 and ask `port()`),
//! then serve until SIGTERM / Ctrl-C, letting in-flight requests finish. Beside serving: the
//! fee settlement pass and the scheduled reconciliation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, Method, Request, StatusCode, header};
use axum::routing::get;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::{Config, StripeMode};
use crate::state::AppState;
use crate::stripe::StripeClient;
use crate::stripe::standin::{self, StandIn};
use crate::{checkout, db, reports, webhooks};

pub struct Application {
    listener: TcpListener,
    router: Router,
    /// The embedded stand-in, when no Stripe key is configured.
    pub standin: Option<StandIn>,
    pub state: AppState,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid setting REPORT_TIME_ZONE: {0:?} is not a time zone Postgres knows")]
    TimeZone(String),
}

/// Connects, migrates and checks the settings only the database can judge.
async fn open_database(config: &Config) -> Result<sqlx::PgPool, StartupError> {
    db::create_if_missing(config.database_url()).await?;
    let pool = db::connect(config.database_url()).await?;
    db::migrate(&pool).await?;
    let known: bool = sqlx::query_scalar!(
        r#"select exists (select 1 from pg_timezone_names where name = $1) as "known!""#,
        config.report_time_zone
    )
    .fetch_one(&pool)
    .await?;
    if !known {
        return Err(StartupError::TimeZone(config.report_time_zone.clone()));
    }
    Ok(pool)
}

impl Application {
    pub async fn build(mut config: Config) -> Result<Self, StartupError> {
        let pool = open_database(&config).await?;

        let listener = TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartupError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        let local = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.listen_addr,
            source,
        })?;
        if config.listen_addr.port() == 0 {
            // Bound to a random port (tests): the public URL follows it.
            config.listen_addr = local;
            config.public_url = format!("http://{local}");
            config.success_url = format!(
                "{}/thanks?session_id={{CHECKOUT_SESSION_ID}}",
                config.public_url
            );
            config.cancel_url = format!("{}/donate/cancelled", config.public_url);
            config.allowed_origins.push(config.public_url.clone());
        }

        let (stripe, standin) = match &config.stripe {
            StripeMode::Live {
                secret_key,
                api_base,
            } => (
                StripeClient::new(
                    api_base,
                    secret_key.clone(),
                    config.stripe_timeout,
                    config.stripe_max_attempts,
                ),
                None,
            ),
            StripeMode::StandIn { listen } => {
                let secret = config
                    .webhook_secrets
                    .first()
                    .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
                    .unwrap_or_else(standin::generate_secret);
                if config.webhook_secrets.is_empty() {
                    config
                        .webhook_secrets
                        .push(SecretString::from(secret.clone()));
                }
                let sim = StandIn::start(standin::Options {
                    listen: *listen,
                    webhook_url: Some(format!("{}/webhooks/stripe", config.public_url)),
                    secret,
                    ..standin::Options::default()
                })
                .await
                .map_err(|source| StartupError::Bind {
                    addr: *listen,
                    source,
                })?;
                tracing::warn!(
                    standin = %sim.base_url(),
                    "NO STRIPE KEY CONFIGURED: running against the Stripe stand-in. No real money moves."
                );
                (
                    StripeClient::new(
                        &sim.base_url(),
                        SecretString::from(standin::SECRET_KEY.to_string()),
                        config.stripe_timeout,
                        config.stripe_max_attempts,
                    ),
                    Some(sim),
                )
            }
        };

        let state = AppState {
            db: pool,
            stripe,
            config: Arc::new(config),
        };
        let router = router(state.clone());
        Ok(Self {
            listener,
            router,
            standin,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.state.config.listen_addr.port()
    }

    pub fn address(&self) -> String {
        self.state.config.public_url.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.state.config.public_url, "chipin listening");
        let background = tokio::spawn(crate::gifts::fees::run_periodically(
            self.state.clone(),
            Duration::from_secs(300),
        ));
        let reconcile = self.state.config.reconcile_every.map(|every| {
            tokio::spawn(crate::reconcile::run_periodically(
                self.state.clone(),
                every,
            ))
        });
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        background.abort();
        if let Some(r) = reconcile {
            r.abort();
        }
        served
    }
}

/// The state a one-off command needs: the database and a Stripe client, no listener. In
/// stand-in mode the client points at the stand-in a running `chipin serve` started.
pub async fn cli_state(config: Config) -> Result<AppState, StartupError> {
    let pool = open_database(&config).await?;
    let stripe = match &config.stripe {
        StripeMode::Live {
            secret_key,
            api_base,
        } => StripeClient::new(
            api_base,
            secret_key.clone(),
            config.stripe_timeout,
            config.stripe_max_attempts,
        ),
        StripeMode::StandIn { listen } => StripeClient::new(
            &format!("http://{listen}/"),
            SecretString::from(standin::SECRET_KEY.to_string()),
            config.stripe_timeout,
            config.stripe_max_attempts,
        ),
    };
    Ok(AppState {
        db: pool,
        stripe,
        config: Arc::new(config),
    })
}

pub fn router(state: AppState) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(
            state
                .config
                .allowed_origins
                .iter()
                .filter_map(|o| o.parse().ok()),
        ))
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .max_age(Duration::from_secs(3600));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(checkout::router().layer(cors))
        .merge(webhooks::router())
        .merge(crate::pages::router())
        .merge(reports::router())
        .with_state(state)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let matched = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_else(|| "unmatched".into());
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                tracing::info_span!("request", method = %req.method(), route = %matched, request_id = %id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match sqlx::query_scalar!("select 1 as \"one!\"")
        .fetch_one(&state.db)
        .await
    {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unreachable"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
