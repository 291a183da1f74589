//! Kept figures beside `aggregates`' totals that the summary reads instead of the ledger:
//! paid gifts counted by amount (for medians), plans' starts and cancellations per day, and
//! each donor's gaps between gift days (for the unique donors of any range).
//!
//! The first two are sums, kept by `aggregates`' difference: their before and after reads
//! come with the daily totals' (gift amounts from the same `ledger_contributions` rows).
//! Donor gaps are not sums, so they are not kept by difference: the recording transaction,
//! which already holds the locks of the donors its event touches, replaces what changed in
//! those donors' gaps.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use sqlx::{Postgres, Transaction};

use super::aggregates::Touched;

/// A paid gift's day, currency, campaign and amount.
pub type AmountKey = (NaiveDate, String, String, i64);

/// Day, currency, campaign of plan changes.
pub type PlanKey = (NaiveDate, String, String);

/// active, mrr, cancellations
pub type PlanSums = [i64; 3];

/// What the given subscriptions' plans add to `plan_days` (nothing read when there are none).
pub async fn plan_contributions(
    tx: &mut Transaction<'_, Postgres>,
    subscriptions: &[String],
    tz: &str,
) -> Result<BTreeMap<PlanKey, PlanSums>, sqlx::Error> {
    let mut out = BTreeMap::new();
    if subscriptions.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query!(
        r#"select day as "day!", currency as "currency!", campaign as "campaign!",
                  active as "active!", mrr as "mrr!", cancellations as "cancellations!"
           from plan_contributions($1, false, $2)"#,
        tz,
        subscriptions
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let sums: &mut PlanSums = out.entry((r.day, r.currency, r.campaign)).or_default();
        for (slot, v) in sums.iter_mut().zip([r.active, r.mrr, r.cancellations]) {
            *slot += v;
        }
    }
    Ok(out)
}

/// Adds a difference of paid gifts by amount to `gift_amounts`, on each day and its month, in
/// one statement (and a second only when a row falls to nothing).
pub async fn add_amounts(
    tx: &mut Transaction<'_, Postgres>,
    slot: i16,
    delta: BTreeMap<AmountKey, [i64; 1]>,
) -> Result<(), sqlx::Error> {
    let mut rows: BTreeMap<(String, &str, NaiveDate, String, i64), i64> = BTreeMap::new();
    for ((day, currency, campaign, amount), [gifts]) in delta {
        let month = day.with_day(1).expect("day 1 exists");
        *rows
            .entry((currency.clone(), "month", month, campaign.clone(), amount))
            .or_default() += gifts;
        *rows
            .entry((currency, "day", day, campaign, amount))
            .or_default() += gifts;
    }
    rows.retain(|_, g| *g != 0);
    if rows.is_empty() {
        return Ok(());
    }
    let mut cols = (vec![], vec![], vec![], vec![], vec![], vec![]);
    // In key order, so concurrent transactions lock rows in one order.
    for ((currency, kind, start, campaign, amount), gifts) in rows {
        cols.0.push(currency);
        cols.1.push(kind.to_string());
        cols.2.push(start);
        cols.3.push(campaign);
        cols.4.push(amount);
        cols.5.push(gifts);
    }
    let emptied = sqlx::query_scalar!(
        r#"insert into gift_amounts (currency, period_kind, period_start, campaign, amount, slot, gifts)
           select currency, period_kind, period_start, campaign, amount, $7, gifts
           from unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::int8[], $6::int8[])
                as d(currency, period_kind, period_start, campaign, amount, gifts)
           on conflict (currency, period_kind, period_start, campaign, amount, slot) do update set
               gifts = gift_amounts.gifts + excluded.gifts
           returning gifts = 0 as "emptied!""#,
        &cols.0,
        &cols.1,
        &cols.2,
        &cols.3,
        &cols.4,
        &cols.5,
        slot
    )
    .fetch_all(&mut **tx)
    .await?;
    if emptied.iter().any(|e| *e) {
        sqlx::query!(
            "delete from gift_amounts
             where slot = $1 and gifts = 0
               and (currency, period_kind, period_start, campaign, amount) in
                   (select * from unnest($2::text[], $3::text[], $4::date[], $5::text[], $6::int8[]))",
            slot,
            &cols.0,
            &cols.1,
            &cols.2,
            &cols.3,
            &cols.4
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Adds a difference of plan figures to `plan_days` (only events about plans have one).
pub async fn add_plan_days(
    tx: &mut Transaction<'_, Postgres>,
    slot: i16,
    delta: BTreeMap<PlanKey, PlanSums>,
) -> Result<(), sqlx::Error> {
    if delta.is_empty() {
        return Ok(());
    }
    let mut cols = (vec![], vec![], vec![], [(); 3].map(|_| Vec::new()));
    for ((day, currency, campaign), d) in delta {
        cols.0.push(day);
        cols.1.push(currency);
        cols.2.push(campaign);
        for (col, v) in cols.3.iter_mut().zip(d) {
            col.push(v);
        }
    }
    let [active, mrr, cancellations] = &cols.3;
    let emptied = sqlx::query_scalar!(
        r#"insert into plan_days (day, currency, campaign, slot, active, mrr, cancellations)
           select day, currency, campaign, $7, active, mrr, cancellations
           from unnest($1::date[], $2::text[], $3::text[], $4::int8[], $5::int8[], $6::int8[])
                as d(day, currency, campaign, active, mrr, cancellations)
           on conflict (currency, day, campaign, slot) do update set
               active = plan_days.active + excluded.active,
               mrr = plan_days.mrr + excluded.mrr,
               cancellations = plan_days.cancellations + excluded.cancellations
           returning (active = 0 and mrr = 0 and cancellations = 0) as "emptied!""#,
        &cols.0,
        &cols.1,
        &cols.2,
        active,
        mrr,
        cancellations,
        slot
    )
    .fetch_all(&mut **tx)
    .await?;
    if emptied.iter().any(|e| *e) {
        sqlx::query!(
            "delete from plan_days
             where slot = $1 and active = 0 and mrr = 0 and cancellations = 0
               and (day, currency, campaign) in (select * from unnest($2::date[], $3::text[], $4::text[]))",
            slot,
            &cols.0,
            &cols.1,
            &cols.2
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

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
             select array(select distinct donor_id
                          from touched_donors($2, $3, $4, $5, $6, $7)) as ids
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
         select w.donor_id, w.currency, w.after_day, w.before_day from wanted w
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
    sqlx::query!("lock table gift_amounts, plan_days, donor_gaps in exclusive mode")
        .execute(&mut **tx)
        .await?;
    sqlx::query!("delete from gift_amounts")
        .execute(&mut **tx)
        .await?;
    sqlx::query!("delete from plan_days")
        .execute(&mut **tx)
        .await?;
    sqlx::query!("delete from donor_gaps")
        .execute(&mut **tx)
        .await?;
    // Paid gifts as ledger_contributions reads them, without its per-gift fee lookup; written
    // in key order so that a month's rows sit in few pages, as a summary reads them.
    sqlx::query!(
        "insert into gift_amounts (currency, period_kind, period_start, campaign, amount, gifts)
         select currency, k.kind, case k.kind when 'day' then day else date_trunc('month', day)::date end,
                campaign, amount, sum(gifts)
         from (select currency, (paid_at at time zone $1)::date as day, coalesce(campaign, '') as campaign,
                      amount, count(*) as gifts
               from gifts where state = 'paid' group by 1, 2, 3, 4) g
         cross join (values ('day'), ('month')) as k(kind)
         group by 1, 2, 3, 4, 5
         order by 1, 2, 3, 4, 5",
        tz
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query!(
        "insert into plan_days (day, currency, campaign, active, mrr, cancellations)
         select day, currency, campaign, sum(active), sum(mrr), sum(cancellations)
         from plan_contributions($1, true, '{}')
         group by 1, 2, 3
         having sum(active) <> 0 or sum(mrr) <> 0 or sum(cancellations) <> 0",
        tz
    )
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
