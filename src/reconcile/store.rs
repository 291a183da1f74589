//! Runs and issues in Postgres. An issue is one row per (day, kind, Stripe object): found
//! again, it is updated (`last_seen`, the latest figures); no longer found, it is resolved;
//! acknowledged, it stays acknowledged with its reason.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::compare::{Found, Kind};
use super::{ReconcileError, RunReport, Trigger};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct IssueRow {
    pub id: Uuid,
    pub day: NaiveDate,
    pub kind: String,
    pub object_type: String,
    pub object_id: String,
    pub balance_transaction_id: Option<String>,
    pub ours_amount: Option<i64>,
    pub theirs_amount: Option<i64>,
    pub ours_fee: Option<i64>,
    pub theirs_fee: Option<i64>,
    pub ours_currency: Option<String>,
    pub theirs_currency: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub acknowledged_by: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

const ISSUE_COLUMNS: &str = "id, day, kind, object_type, object_id, balance_transaction_id,
    ours_amount, theirs_amount, ours_fee, theirs_fee, ours_currency, theirs_currency, status,
    reason, acknowledged_by, first_seen, last_seen, resolved_at";

pub async fn start_run(
    db: &PgPool,
    id: Uuid,
    day: NaiveDate,
    tz: &str,
    repair: bool,
    trigger: Trigger,
    instance: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into reconciliation_runs (id, day, time_zone, repair, trigger, instance)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(day)
    .bind(tz)
    .bind(repair)
    .bind(trigger.as_str())
    .bind(instance)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish_run(db: &PgPool, r: &RunReport) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update reconciliation_runs set finished_at = now(), stripe_items = $2, ledger_items = $3,
             issues_open = $4, repaired = $5, resolved = $6
         where id = $1",
    )
    .bind(r.run_id)
    .bind(r.stripe_items as i32)
    .bind(r.ledger_items as i32)
    .bind(r.open.len() as i32)
    .bind(r.repaired as i32)
    .bind(r.resolved as i32)
    .execute(db)
    .await?;
    Ok(())
}

pub async fn fail_run(db: &PgPool, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update reconciliation_runs set finished_at = now(), error = $2 where id = $1")
        .bind(id)
        .bind(error)
        .execute(db)
        .await?;
    Ok(())
}

/// Whether a run for `day` finished without error within `within`.
pub async fn finished_recently(
    db: &PgPool,
    day: NaiveDate,
    within: Duration,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "select exists (select 1 from reconciliation_runs
                        where day = $1 and error is null
                          and finished_at > now() - make_interval(secs => $2))",
    )
    .bind(day)
    .bind(within.as_secs_f64())
    .fetch_one(db)
    .await
}

/// Stores what a comparison found, in one transaction: each difference inserted or brought
/// up to date (`last_seen` is the transaction's time), and the day's open issues not seen by
/// it resolved (`repaired` names the objects
/// this run applied from Stripe). Returns the day's open issues, how many were resolved, and
/// how many of those by repair.
pub async fn record_issues(
    db: &PgPool,
    run_id: Uuid,
    day: NaiveDate,
    found: &[Found],
    repaired: &[String],
) -> Result<(Vec<IssueRow>, usize, usize), sqlx::Error> {
    let mut tx = db.begin().await?;
    for f in found {
        sqlx::query(
            "insert into reconciliation_issues
                 (id, day, kind, object_type, object_id, balance_transaction_id, ours_amount,
                  theirs_amount, ours_fee, theirs_fee, ours_currency, theirs_currency,
                  first_run_id, last_run_id)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
             on conflict (day, kind, object_id) do update set
                 balance_transaction_id = excluded.balance_transaction_id,
                 ours_amount = excluded.ours_amount, theirs_amount = excluded.theirs_amount,
                 ours_fee = excluded.ours_fee, theirs_fee = excluded.theirs_fee,
                 ours_currency = excluded.ours_currency, theirs_currency = excluded.theirs_currency,
                 last_run_id = excluded.last_run_id, last_seen = now(),
                 -- found again after it was resolved: open again; acknowledged stays so
                 status = case when reconciliation_issues.status = 'resolved' then 'open'
                               else reconciliation_issues.status end,
                 resolved_at = case when reconciliation_issues.status = 'resolved' then null
                                    else reconciliation_issues.resolved_at end",
        )
        .bind(Uuid::new_v4())
        .bind(day)
        .bind(f.kind.as_str())
        .bind(f.object_type.as_str())
        .bind(&f.object_id)
        .bind(&f.balance_transaction_id)
        .bind(f.ours_amount)
        .bind(f.theirs_amount)
        .bind(f.ours_fee)
        .bind(f.theirs_fee)
        .bind(&f.ours_currency)
        .bind(&f.theirs_currency)
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
    }
    let resolved: Vec<(String, String)> = sqlx::query_as(
        "update reconciliation_issues set status = 'resolved', resolved_at = now(),
             reason = case when kind = $2 and object_id = any($3)
                           then 'repaired from Stripe''s events'
                           else 'no longer found' end
         where day = $1 and status = 'open' and last_seen < now()
         returning kind, object_id",
    )
    .bind(day)
    .bind(Kind::MissingHere.as_str())
    .bind(repaired)
    .fetch_all(&mut *tx)
    .await?;
    let by_repair = resolved
        .iter()
        .filter(|(kind, id)| kind == Kind::MissingHere.as_str() && repaired.contains(id))
        .count();
    let open: Vec<IssueRow> = sqlx::query_as(&format!(
        "select {ISSUE_COLUMNS} from reconciliation_issues
         where day = $1 and status = 'open' order by kind, object_id"
    ))
    .bind(day)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((open, resolved.len(), by_repair))
}

/// Issues, newest day first, optionally of one status.
pub async fn list_issues(db: &PgPool, status: Option<&str>) -> Result<Vec<IssueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "select {ISSUE_COLUMNS} from reconciliation_issues
         where ($1::text is null or status = $1)
         order by day desc, kind, object_id
         limit 1000"
    ))
    .bind(status)
    .fetch_all(db)
    .await
}

/// A person explains an issue: it leaves the open list and is not reopened by later runs.
pub async fn acknowledge(
    db: &PgPool,
    id: Uuid,
    reason: &str,
    by: &str,
) -> Result<IssueRow, ReconcileError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(ReconcileError::NoReason);
    }
    let row: Option<IssueRow> = sqlx::query_as(&format!(
        "update reconciliation_issues
         set status = 'acknowledged', reason = $2, acknowledged_by = $3, resolved_at = now()
         where id = $1 and status <> 'resolved'
         returning {ISSUE_COLUMNS}"
    ))
    .bind(id)
    .bind(reason)
    .bind(by)
    .fetch_optional(db)
    .await?;
    match row {
        Some(r) => Ok(r),
        None => {
            let exists: bool = sqlx::query_scalar(
                "select exists (select 1 from reconciliation_issues where id = $1)",
            )
            .bind(id)
            .fetch_one(db)
            .await?;
            Err(if exists {
                ReconcileError::AlreadyResolved(id)
            } else {
                ReconcileError::NoSuchIssue(id)
            })
        }
    }
}
