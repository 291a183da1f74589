//! Kept figures beside `aggregates`' totals that the summary reads instead of the ledger:
//! each donor's gaps between gift days (for the unique donors of any range).
//!
//! Donor gaps are not sums, so they are not kept by difference: the recording transaction,
//! which already holds the locks of the donors its event touches, replaces what changed in
//! those donors' gaps.

use sqlx::{Postgres, Transaction};

use super::aggregates::Touched;

/// Brings the gaps of the donors the event touches up to date: one statement, which writes
/// only the gaps that appeared or went away.
pub async fn keep_donor_gaps(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
    tz: &str,
) -> Result<(), sqlx::Error> {
    if t.is_empty() && t.customers.is_empty() && t.emails.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "with touched as (
             select array(select distinct d.donor_id from (
                        select donor_id from gifts
                        where donor_id is not null
                          and (payment_intent_id = any($2) or invoice_id = any($3)
                               or checkout_session_id = any($4) or id = any($5))
                        union all select donor_id from donor_customers where customer_id = any($6)
                        union all select id from donors where email = any($7)) d) as ids
         ),
         wanted as (select w.* from touched, donor_gaps_of($1, false, touched.ids) w),
         gone as (
             delete from donor_gaps g using touched
             where g.donor_id = any(touched.ids)
               and not exists (select 1 from wanted w
                               where (w.donor_id, w.currency, w.after_day, w.before_day)
                                   = (g.donor_id, g.currency, g.after_day, g.before_day))
         )
         insert into donor_gaps (donor_id, currency, after_day, before_day)
         select * from wanted w
         where not exists (select 1 from donor_gaps g
                           where (w.donor_id, w.currency, w.after_day, w.before_day)
                               = (g.donor_id, g.currency, g.after_day, g.before_day))",
        tz,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        &t.customers,
        &t.emails,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Rebuilds every figure kept here from the ledger (seeding, a change of time zone, tests).
pub async fn rebuild(tx: &mut Transaction<'_, Postgres>, tz: &str) -> Result<(), sqlx::Error> {
    sqlx::query!("lock table donor_gaps in exclusive mode")
        .execute(&mut **tx)
        .await?;
    sqlx::query!("delete from donor_gaps")
        .execute(&mut **tx)
        .await?;
    sqlx::query!(
        "insert into donor_gaps (donor_id, currency, after_day, before_day)
         select * from donor_gaps_of($1, true, '{}')",
        tz
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}
