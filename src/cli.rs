//! The `chipin` command line: `serve`, `migrate`, `stripe-sim`, `stripe sync`, `events replay`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::startup::Application;
use crate::stripe::standin::{self, StandIn};
use crate::{db, telemetry, webhooks};

#[derive(Debug, Parser)]
#[command(
    name = "chipin",
    version,
    about = "Donation backend for a reader-funded newsroom"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service (applies migrations first). Without STRIPE_SECRET_KEY it starts
    /// the Stripe stand-in too: a full demo where no real money moves.
    Serve,
    /// Create the database if missing and apply migrations.
    Migrate,
    /// Run the Stripe stand-in alone (for pointing a separately run `chipin serve` at it).
    StripeSim {
        #[arg(long, default_value = "127.0.0.1:12111")]
        listen: std::net::SocketAddr,
        /// Where to deliver webhooks, e.g. http://127.0.0.1:8080/webhooks/stripe
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Talk to Stripe.
    Stripe {
        #[command(subcommand)]
        command: StripeCommand,
    },
    /// Stored Stripe events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Stripe fees.
    Fees {
        #[command(subcommand)]
        command: FeesCommand,
    },
}

#[derive(Debug, Subcommand)]
enum FeesCommand {
    /// Fill in fee and net for paid gifts whose charge event never came (serve does this
    /// every five minutes).
    Settle,
}

#[derive(Debug, Subcommand)]
enum StripeCommand {
    /// Page through Stripe's events since a time and apply each one not yet stored: the
    /// recovery for missed webhooks. Safe beside live traffic and any number of times.
    Sync {
        /// RFC 3339 time or YYYY-MM-DD (Stripe keeps 30 days of events).
        #[arg(long)]
        since: String,
    },
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Apply a stored event again (after a fix, say).
    Replay { event_id: String },
}

impl Cli {
    pub async fn run(self) -> ExitCode {
        let config = match Config::from_env() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("chipin: {e}");
                return ExitCode::from(2);
            }
        };
        telemetry::init(config.log_format);
        match self.execute(config).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chipin: {e}");
                ExitCode::FAILURE
            }
        }
    }

    async fn execute(self, config: Config) -> Result<(), Box<dyn std::error::Error>> {
        match self.command {
            Command::Serve => {
                let app = Application::build(config).await?;
                app.run_until_stopped().await?;
            }
            Command::Migrate => {
                db::create_if_missing(config.database_url()).await?;
                let pool = db::connect(config.database_url()).await?;
                db::migrate(&pool).await?;
                println!("migrations applied");
            }
            Command::StripeSim {
                listen,
                webhook_url,
            } => {
                let secret = config
                    .webhook_secrets
                    .first()
                    .map(|s| secrecy::ExposeSecret::expose_secret(s).to_string())
                    .unwrap_or_else(standin::generate_secret);
                let sim = StandIn::start(standin::Options {
                    listen,
                    webhook_url,
                    secret: secret.clone(),
                    ..standin::Options::default()
                })
                .await?;
                println!(
                    "Stripe stand-in at {} (no real money moves)",
                    sim.base_url()
                );
                println!(
                    "STRIPE_API_BASE={} STRIPE_SECRET_KEY={}",
                    sim.base_url(),
                    standin::SECRET_KEY
                );
                println!("STRIPE_WEBHOOK_SECRET={secret}");
                tokio::signal::ctrl_c().await?;
            }
            Command::Stripe {
                command: StripeCommand::Sync { since },
            } => {
                let since = parse_since(&since)?;
                let state = crate::startup::cli_state(config).await?;
                let report = webhooks::sync(&state, since).await?;
                println!(
                    "seen {} events since {since}: {} applied, {} already stored",
                    report.seen, report.applied, report.already
                );
            }
            Command::Events {
                command: EventsCommand::Replay { event_id },
            } => {
                let state = crate::startup::cli_state(config).await?;
                webhooks::replay(&state, &event_id).await?;
                println!("event {event_id} applied again");
            }
            Command::Fees {
                command: FeesCommand::Settle,
            } => {
                let state = crate::startup::cli_state(config).await?;
                let n =
                    crate::gifts::fees::settle_pending(&state, 10_000, std::time::Duration::ZERO)
                        .await?;
                println!("fees filled in for {n} gifts");
            }
        }
        Ok(())
    }
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc())
        .map_err(|_| format!("--since {s:?}: use YYYY-MM-DD or an RFC 3339 time"))
}
