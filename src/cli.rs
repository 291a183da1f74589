//! The `chipin` command line: `serve`, `migrate`, `stripe-sim` (and `stripe-sim payout`),
//! `stripe sync`, `events replay`, `reconcile`, `donor export`, `donor erase`, and more.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;
use crate::reports::staff::{self, Role};
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
    #[command(args_conflicts_with_subcommands = true)]
    StripeSim {
        #[command(subcommand)]
        command: Option<SimCommand>,
        #[arg(long, default_value = "127.0.0.1:12111")]
        listen: std::net::SocketAddr,
        /// Where to deliver webhooks, e.g. http://127.0.0.1:8080/webhooks/stripe
        #[arg(long)]
        webhook_url: Option<String>,
    },
    /// Compare a day of our ledger with Stripe's balance transactions (the day is cut in
    /// REPORT_TIME_ZONE); `reconcile ack` explains a difference.
    #[command(args_conflicts_with_subcommands = true)]
    Reconcile {
        #[command(subcommand)]
        command: Option<ReconcileCommand>,
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: Option<String>,
        /// Apply what Stripe has and we lack from Stripe's events (the confirmation that a
        /// repair may happen). Differing amounts are never changed.
        #[arg(long)]
        repair: bool,
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
    /// Staff API tokens for the reports.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Reports for finance staff, at the terminal.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// Developer tools.
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
    /// Stripe fees.
    Fees {
        #[command(subcommand)]
        command: FeesCommand,
    },
    /// Donor privacy: what is held about a donor, and erasing it.
    Donor {
        #[command(subcommand)]
        command: DonorCommand,
    },
}

#[derive(Debug, Subcommand)]
enum SimCommand {
    /// Ask a running stand-in to pay out its balance (a bank deposit, with `payout.*` events).
    Payout {
        /// The stand-in's address.
        #[arg(long, default_value = "http://127.0.0.1:12111")]
        api: String,
        /// Make the bank refuse it (`payout.failed`; the money returns to the balance).
        #[arg(long)]
        fail: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ReconcileCommand {
    /// Acknowledge a difference with a reason: it leaves the open list for good.
    Ack {
        issue_id: uuid::Uuid,
        #[arg(long)]
        reason: String,
    },
    /// List differences (open ones unless --status says otherwise).
    List {
        #[arg(long, default_value = "open", value_parser = ["open", "acknowledged", "resolved"])]
        status: String,
    },
}

#[derive(Debug, Subcommand)]
enum StaffCommand {
    /// Create a staff member and print their token (shown once, stored only as a hash).
    Add {
        name: String,
        #[arg(long, value_parser = ["viewer", "finance", "admin"])]
        role: String,
    },
    /// List staff members.
    List,
    /// Revoke a staff member's token.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
enum ReportCommand {
    /// The summary's figures (the same as GET /api/reports/summary).
    Summary {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long, default_value = "month")]
        interval: String,
        #[arg(long)]
        currency: Option<String>,
        #[arg(long)]
        campaign: Option<String>,
        #[arg(long, default_value = "table", value_parser = ["table", "csv", "json"])]
        format: String,
    },
    /// Recompute the kept daily aggregates from the ledger (after changing REPORT_TIME_ZONE).
    Rebuild,
}

#[derive(Debug, Subcommand)]
enum DonorCommand {
    /// Print everything held about a donor as JSON (donor row, Stripe customer ids, gifts,
    /// plans).
    Export { email: String },
    /// Remove a donor's personal data, keeping the gifts' amounts and dates under a
    /// pseudonymous id, and ask Stripe to delete their customers.
    Erase { email: String },
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Fill the database with a realistic ledger (bulk SQL, then the kept totals rebuilt).
    Seed {
        #[arg(long)]
        gifts: i64,
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
                command: Some(SimCommand::Payout { api, fail }),
                ..
            } => {
                let url = format!(
                    "{}/_sim/payouts{}",
                    api.trim_end_matches('/'),
                    if fail { "?outcome=failed" } else { "" }
                );
                let res = reqwest::Client::new().post(&url).send().await?;
                let status = res.status();
                let body: serde_json::Value = res.json().await?;
                if !status.is_success() {
                    let message = body["error"]["message"].as_str().unwrap_or("refused");
                    return Err(format!("the stand-in refused ({status}): {message}").into());
                }
                println!(
                    "payout {} of {} {}: {}",
                    body["id"].as_str().unwrap_or("?"),
                    body["amount"],
                    body["currency"].as_str().unwrap_or("?"),
                    body["status"].as_str().unwrap_or("?")
                );
            }
            Command::StripeSim {
                command: None,
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
            Command::Reconcile {
                command: None,
                date,
                repair,
            } => {
                let date = date.ok_or("--date YYYY-MM-DD is required")?;
                let day = chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d")
                    .map_err(|_| format!("--date {date:?}: use YYYY-MM-DD"))?;
                let state = crate::startup::cli_state(config).await?;
                match crate::reconcile::run(&state, day, repair, crate::reconcile::Trigger::Cli)
                    .await?
                {
                    crate::reconcile::Outcome::Busy => {
                        return Err(format!(
                            "another run is reconciling {day} right now; try again when it ends"
                        )
                        .into());
                    }
                    crate::reconcile::Outcome::Done(r) => {
                        println!(
                            "{day} ({}): {} Stripe items, {} ledger items; {} repaired, {} resolved, {} open",
                            r.time_zone,
                            r.stripe_items,
                            r.ledger_items,
                            r.repaired,
                            r.resolved,
                            r.open.len()
                        );
                        print_issues(&r.open);
                    }
                }
            }
            Command::Reconcile {
                command: Some(ReconcileCommand::Ack { issue_id, reason }),
                ..
            } => {
                let state = crate::startup::cli_state(config).await?;
                let by = format!(
                    "cli:{}",
                    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
                );
                let issue =
                    crate::reconcile::acknowledge(&state.db, issue_id, &reason, &by).await?;
                println!("issue {} acknowledged", issue.id);
            }
            Command::Reconcile {
                command: Some(ReconcileCommand::List { status }),
                ..
            } => {
                let state = crate::startup::cli_state(config).await?;
                print_issues(&crate::reconcile::list_issues(&state.db, Some(&status)).await?);
            }
            Command::Events {
                command: EventsCommand::Replay { event_id },
            } => {
                let state = crate::startup::cli_state(config).await?;
                webhooks::replay(&state, &event_id).await?;
                println!("event {event_id} applied again");
            }
            Command::Staff { command } => {
                let state = crate::startup::cli_state(config).await?;
                match command {
                    StaffCommand::Add { name, role } => {
                        let role = Role::parse(&role).ok_or("unknown role")?;
                        let token = staff::add(&state.db, &name, role).await?;
                        println!("{token}");
                        eprintln!(
                            "token for {name} ({}): shown once, keep it safe",
                            role.as_str()
                        );
                    }
                    StaffCommand::List => {
                        for (name, role, created, revoked) in staff::list(&state.db).await? {
                            let status = revoked
                                .map(|r| format!("revoked {r}"))
                                .unwrap_or_else(|| "active".into());
                            println!("{name}\t{role}\tcreated {created}\t{status}");
                        }
                    }
                    StaffCommand::Revoke { name } => {
                        staff::revoke(&state.db, &name).await?;
                        println!("revoked {name}");
                    }
                }
            }
            Command::Report {
                command: ReportCommand::Rebuild,
            } => {
                let state = crate::startup::cli_state(config).await?;
                let mut tx = state.db.begin().await?;
                let tz = &state.config.report_time_zone;
                let days = crate::reports::aggregates::rebuild_all(&mut tx, tz).await?;
                // Donor figures and the other kept figures are cut by day in the zone too.
                let bands = crate::reports::aggregates::Bands::from_config(&state.config);
                crate::reports::aggregates::rebuild_donor_figures(&mut tx, &bands, tz).await?;
                crate::reports::kept::rebuild(&mut tx, tz).await?;
                tx.commit().await?;
                println!(
                    "rebuilt {days} days of totals in {}",
                    state.config.report_time_zone
                );
            }
            Command::Report {
                command:
                    ReportCommand::Summary {
                        from,
                        to,
                        interval,
                        currency,
                        campaign,
                        format,
                    },
            } => {
                let state = crate::startup::cli_state(config).await?;
                let query = crate::reports::SummaryQuery {
                    from: Some(from),
                    to: Some(to),
                    interval: Some(interval),
                    currency,
                    campaign,
                    format: None,
                };
                let params = crate::reports::SummaryParams::parse(&query, &state.config)
                    .map_err(|(param, message)| format!("--{param}: {message}"))?;
                let summary = crate::reports::summarize(&state.db, &params, &state.config).await?;
                match format.as_str() {
                    "json" => println!("{}", serde_json::to_string_pretty(&summary)?),
                    "csv" => print!("{}", summary.to_csv()),
                    _ => print_table(&summary),
                }
            }
            Command::Donor { command } => {
                let state = crate::startup::cli_state(config).await?;
                match command {
                    DonorCommand::Export { email } => {
                        let held = crate::manage::privacy::export(&state.db, &email).await?;
                        println!("{}", serde_json::to_string_pretty(&held)?);
                    }
                    DonorCommand::Erase { email } => {
                        let done =
                            crate::manage::privacy::erase(&state.db, &state.stripe, &email).await?;
                        println!("{}", serde_json::to_string_pretty(&done)?);
                        if !done.stripe_customers_not_deleted.is_empty() {
                            return Err("personal data erased here, but Stripe did not delete every customer: delete those listed in the Stripe dashboard".into());
                        }
                    }
                }
            }
            Command::Dev {
                command: DevCommand::Seed { gifts },
            } => {
                let state = crate::startup::cli_state(config).await?;
                let bands = crate::reports::aggregates::Bands::from_config(&state.config);
                let started = std::time::Instant::now();
                let s = crate::dev::seed(&state.db, gifts, &bands, &state.config.report_time_zone)
                    .await?;
                println!(
                    "seeded {} donors, {} gifts, {} refunds, {} disputes in {:.1} s",
                    s.donors,
                    s.gifts,
                    s.refunds,
                    s.disputes,
                    started.elapsed().as_secs_f64()
                );
                for (step, secs) in &s.steps {
                    println!("  {step}: {secs:.1} s");
                }
            }
            Command::Fees {
                command: FeesCommand::Settle,
            } => {
                let state = crate::startup::cli_state(config).await?;
                let n = crate::gifts::fees::settle_pending(
                    &state,
                    10_000,
                    std::time::Duration::ZERO,
                    None,
                )
                .await?;
                println!("fees filled in for {n} gifts");
            }
        }
        Ok(())
    }
}

fn print_issues(issues: &[crate::reconcile::IssueRow]) {
    let figure = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let text = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for i in issues {
        println!(
            "{}\t{}\t{}\t{} {}\tours {} {} fee {}\tstripe {} {} fee {}\t{}",
            i.id,
            i.day,
            i.kind,
            i.object_type,
            i.object_id,
            figure(i.ours_amount),
            text(&i.ours_currency),
            figure(i.ours_fee),
            figure(i.theirs_amount),
            text(&i.theirs_currency),
            figure(i.theirs_fee),
            i.status
        );
    }
}

fn print_table(s: &crate::reports::Summary) {
    println!(
        "{} by {:?}, {} to {} ({}), minor units",
        s.currency, s.interval, s.from, s.to, s.time_zone
    );
    println!(
        "{:<12}{:>12}{:>12}{:>12}{:>12}{:>10}{:>8}",
        "period", "gross", "refunded", "disputed", "net", "fees", "gifts"
    );
    let rows = s
        .periods
        .iter()
        .map(|p| (p.start.to_string(), &p.figures))
        .chain(std::iter::once(("total".to_string(), &s.total)));
    for (label, f) in rows {
        println!(
            "{label:<12}{:>12}{:>12}{:>12}{:>12}{:>10}{:>8}",
            f.gross, f.refunded, f.disputed, f.net, f.fees, f.gifts
        );
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
