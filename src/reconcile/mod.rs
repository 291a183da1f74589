//! Daily reconciliation: our ledger against Stripe's balance transactions for one day (cut in
//! `REPORT_TIME_ZONE`, like every report day). Every difference is stored with its kind in
//! `reconciliation_issues`, once per (day, kind, Stripe object), and stays open until a later
//! run no longer finds it or a person acknowledges it with a reason. With `repair`, what
//! Stripe has and we lack is applied from Stripe's events through the webhook path
//! (`repair.rs`); nothing else is ever changed here: a differing amount is reported, not fixed.
//!
//! One run per day at a time across every instance: a Postgres advisory lock decides.

mod compare;
mod repair;
mod store;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::state::AppState;
use crate::stripe::StripeError;
use crate::webhooks::WebhookError;

pub use compare::Kind;
pub use store::{IssueRow, acknowledge, list_issues};

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("stripe: {0}")]
    Stripe(#[from] StripeError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("applying stripe's events: {0}")]
    Webhook(#[from] WebhookError),
    #[error("no reconciliation issue {0}")]
    NoSuchIssue(Uuid),
    #[error("a reason is required to acknowledge an issue")]
    NoReason,
    #[error("issue {0} is already resolved")]
    AlreadyResolved(Uuid),
}

/// Who started a run (kept with the run, for the history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Cli,
    Schedule,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cli => "cli",
            Self::Schedule => "schedule",
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: Uuid,
    pub day: NaiveDate,
    pub time_zone: String,
    /// Stripe's balance transactions of the day that concern the ledger.
    pub stripe_items: usize,
    /// Our charges, refunds and disputes of the day.
    pub ledger_items: usize,
    /// Differences still open for the day after this run (acknowledged ones not counted).
    pub open: Vec<IssueRow>,
    /// Missing objects applied from Stripe's events by this run.
    pub repaired: usize,
    /// Issues of the day this run closed (repaired, or no longer found).
    pub resolved: usize,
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    Done(RunReport),
    /// Another run (on this or another instance) holds the day: nothing was done.
    Busy,
}

/// Advisory-lock namespace for reconciliation days (the second key is the day's number).
const LOCK_CLASS: i32 = 0x7265_636e; // "recn"

fn day_key(day: NaiveDate) -> i32 {
    (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// Where this run happens, for the run's row: host and process id.
fn instance() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("{host}:{}", std::process::id())
}

/// The day's start and end as instants, in `tz` (Postgres knows the zone rules).
async fn day_bounds(
    db: &PgPool,
    day: NaiveDate,
    tz: &str,
) -> Result<(DateTime<Utc>, DateTime<Utc>), sqlx::Error> {
    sqlx::query_as(
        "select ($1::date)::timestamp at time zone $2, ($1::date + 1)::timestamp at time zone $2",
    )
    .bind(day)
    .bind(tz)
    .fetch_one(db)
    .await
}

/// Reconciles one day, repairing what is missing here when `repair` is set. Returns
/// [`Outcome::Busy`] at once when another run holds the day.
pub async fn run(
    state: &AppState,
    day: NaiveDate,
    repair: bool,
    trigger: Trigger,
) -> Result<Outcome, ReconcileError> {
    // A session lock lives on one connection: this one is held for the whole run and
    // released on it; should the process die, Postgres drops the lock with the connection.
    let mut lock = state.db.acquire().await?;
    let got: bool = sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(day_key(day))
        .fetch_one(&mut *lock)
        .await?;
    if !got {
        return Ok(Outcome::Busy);
    }
    let result = run_locked(state, day, repair, trigger).await;
    let unlocked = sqlx::query_scalar::<_, bool>("select pg_advisory_unlock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(day_key(day))
        .fetch_one(&mut *lock)
        .await;
    if unlocked.is_err() {
        // Never hand a connection that may still hold the lock back to the pool.
        lock.detach();
    }
    result.map(Outcome::Done)
}

async fn run_locked(
    state: &AppState,
    day: NaiveDate,
    repair: bool,
    trigger: Trigger,
) -> Result<RunReport, ReconcileError> {
    let tz = state.config.report_time_zone.clone();
    let run_id = Uuid::new_v4();
    store::start_run(&state.db, run_id, day, &tz, repair, trigger, &instance()).await?;
    let result = reconcile_day(state, run_id, day, &tz, repair).await;
    match &result {
        Ok(r) => store::finish_run(&state.db, r).await?,
        Err(e) => {
            tracing::warn!(%day, error = %e, "reconciliation stopped early");
            store::fail_run(&state.db, run_id, &e.to_string()).await?;
        }
    }
    result
}

async fn reconcile_day(
    state: &AppState,
    run_id: Uuid,
    day: NaiveDate,
    tz: &str,
    repair: bool,
) -> Result<RunReport, ReconcileError> {
    let (start, end) = day_bounds(&state.db, day, tz).await?;
    let mut found = compare::compare(state, start, end).await?;
    let mut resolved = 0;
    let mut repaired = 0;
    let missing: Vec<_> = found
        .issues
        .iter()
        .filter(|i| i.kind == Kind::MissingHere)
        .cloned()
        .collect();
    if repair && !missing.is_empty() {
        // Kept first, so the history shows what was missing and that it was repaired.
        let (_, r, _) = store::record_issues(&state.db, run_id, day, &found.issues, &[]).await?;
        resolved += r;
        let mut repaired_ids = Vec::new();
        for issue in &missing {
            let applied = repair::apply_missing(state, issue).await?;
            tracing::info!(%day, object = %issue.object_id, applied, "repair: applied stripe events");
            repaired_ids.push(issue.object_id.clone());
        }
        // What the repair changed is judged by comparing again, not assumed.
        found = compare::compare(state, start, end).await?;
        let (open, r, by_repair) =
            store::record_issues(&state.db, run_id, day, &found.issues, &repaired_ids).await?;
        resolved += r;
        repaired = by_repair;
        return Ok(report(run_id, day, tz, &found, open, resolved, repaired));
    }
    let (open, r, _) = store::record_issues(&state.db, run_id, day, &found.issues, &[]).await?;
    resolved += r;
    Ok(report(run_id, day, tz, &found, open, resolved, repaired))
}

fn report(
    run_id: Uuid,
    day: NaiveDate,
    tz: &str,
    found: &compare::Comparison,
    open: Vec<IssueRow>,
    resolved: usize,
    repaired: usize,
) -> RunReport {
    RunReport {
        run_id,
        day,
        time_zone: tz.to_string(),
        stripe_items: found.stripe_items,
        ledger_items: found.ledger_items,
        open,
        repaired,
        resolved,
    }
}

/// Yesterday in `tz`.
pub async fn yesterday(db: &PgPool, tz: &str) -> Result<NaiveDate, sqlx::Error> {
    sqlx::query_scalar("select ((now() at time zone $1)::date - 1)")
        .bind(tz)
        .fetch_one(db)
        .await
}

/// The schedule inside `serve`: every `every`, reconcile yesterday without repair (repair
/// needs a person's confirmation). A day some instance finished within the last `every` is
/// not run again, so several instances and restarts add no runs.
pub async fn run_periodically(state: AppState, every: Duration) {
    // The first pass comes soon after start (a restart must not skip a day), not at once.
    tokio::time::sleep(every.min(Duration::from_secs(300))).await;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = scheduled_pass(&state, every).await {
            tracing::warn!(error = %e, "scheduled reconciliation failed; will retry");
        }
    }
}

async fn scheduled_pass(state: &AppState, every: Duration) -> Result<(), ReconcileError> {
    let day = yesterday(&state.db, &state.config.report_time_zone).await?;
    if store::finished_recently(&state.db, day, every).await? {
        return Ok(());
    }
    match run(state, day, false, Trigger::Schedule).await? {
        Outcome::Busy => {}
        Outcome::Done(r) => {
            tracing::info!(%day, open = r.open.len(), "scheduled reconciliation done")
        }
    }
    Ok(())
}
