//! The kept aggregates behind the summary: one `daily_totals` row per day (in the reporting
//! time zone), currency, campaign and kind. The transaction that records a gift, refund or
//! dispute recomputes each day it touched from the ledger, under a per-day advisory lock, so
//! the kept rows always equal a from-scratch recomputation and the summary never scans gifts.

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

/// The Stripe and ledger keys an event's facts touched.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    pub payment_intents: Vec<String>,
    pub invoices: Vec<String>,
    pub sessions: Vec<String>,
    pub gift_ids: Vec<uuid::Uuid>,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        self.payment_intents.is_empty()
            && self.invoices.is_empty()
            && self.sessions.is_empty()
            && self.gift_ids.is_empty()
    }
}

/// The (day, currency) pairs holding anything the touched keys reach: their gifts' paid
/// days, and the days of their refunds and lost disputes.
pub async fn days_of(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
    tz: &str,
) -> Result<Vec<(NaiveDate, String)>, sqlx::Error> {
    if t.is_empty() {
        return Ok(Vec::new());
    }
    let rows = sqlx::query!(
        r#"
        with g as (
            select payment_intent_id, paid_at, currency from gifts
            where state = 'paid'
              and (payment_intent_id = any($1) or invoice_id = any($2) or checkout_session_id = any($3) or id = any($4))
        ),
        pis as (
            select payment_intent_id from g where payment_intent_id is not null
            union select unnest($1::text[])
        )
        select distinct d as "day!", currency as "currency!" from (
            select (paid_at at time zone $5)::date as d, currency from g
            union all
            select (r.created at time zone $5)::date, r.currency from refunds r
             where r.payment_intent_id in (select payment_intent_id from pis)
            union all
            select (x.status_at at time zone $5)::date, x.currency from disputes x
             where x.payment_intent_id in (select payment_intent_id from pis) and x.status = 'lost'
        ) t
        "#,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        tz
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.currency)).collect())
}

/// Recomputes the given days from the ledger (sorted, so two transactions lock in one order).
pub async fn refresh(
    tx: &mut Transaction<'_, Postgres>,
    mut days: Vec<(NaiveDate, String)>,
    tz: &str,
) -> Result<(), sqlx::Error> {
    days.sort();
    days.dedup();
    for (day, currency) in days {
        let key = format!("daily_totals:{day}:{currency}");
        sqlx::query!("select pg_advisory_xact_lock(hashtextextended($1, 0))", key)
            .execute(&mut **tx)
            .await?;
        sqlx::query!(
            "delete from daily_totals where day = $1 and currency = $2",
            day,
            currency
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query!(
            r#"
            insert into daily_totals (day, currency, campaign, kind, gross, gifts, refunded, disputed, fees)
            select $1, $2, campaign, kind, sum(gross), sum(gifts), sum(refunded), sum(disputed), sum(fees)
            from (
                select coalesce(g.campaign, '') as campaign,
                       case when g.frequency = 'once' then 'one_time' else 'recurring' end as kind,
                       g.amount as gross, 1 as gifts, 0 as refunded, 0 as disputed,
                       coalesce((select c.fee from charges c where c.payment_intent_id = g.payment_intent_id
                                 order by c.created limit 1), 0) as fees
                from gifts g
                where g.state = 'paid' and g.currency = $2
                  and g.paid_at >= ($1::date)::timestamp at time zone $3
                  and g.paid_at < ($1::date + 1)::timestamp at time zone $3
                union all
                select coalesce(g.campaign, ''), case when g.frequency = 'once' then 'one_time' else 'recurring' end,
                       0, 0, r.amount, 0, 0
                from refunds r join gifts g on g.payment_intent_id = r.payment_intent_id and g.state = 'paid'
                where r.status = 'succeeded' and r.currency = $2
                  and r.created >= ($1::date)::timestamp at time zone $3
                  and r.created < ($1::date + 1)::timestamp at time zone $3
                union all
                select coalesce(g.campaign, ''), case when g.frequency = 'once' then 'one_time' else 'recurring' end,
                       0, 0, 0, x.amount, 0
                from disputes x join gifts g on g.payment_intent_id = x.payment_intent_id and g.state = 'paid'
                where x.status = 'lost' and x.currency = $2
                  and x.status_at >= ($1::date)::timestamp at time zone $3
                  and x.status_at < ($1::date + 1)::timestamp at time zone $3
            ) t
            group by campaign, kind
            "#,
            day,
            currency,
            tz
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Rebuilds every day (after a change of reporting time zone, say).
pub async fn rebuild_all(
    tx: &mut Transaction<'_, Postgres>,
    tz: &str,
) -> Result<usize, sqlx::Error> {
    sqlx::query!("delete from daily_totals")
        .execute(&mut **tx)
        .await?;
    let days = sqlx::query!(
        r#"select distinct d as "day!", currency as "currency!" from (
               select (paid_at at time zone $1)::date as d, currency from gifts where state = 'paid'
               union all select (created at time zone $1)::date, currency from refunds
               union all select (status_at at time zone $1)::date, currency from disputes where status = 'lost') t"#,
        tz
    )
    .fetch_all(&mut **tx)
    .await?;
    let n = days.len();
    refresh(
        tx,
        days.into_iter().map(|r| (r.day, r.currency)).collect(),
        tz,
    )
    .await?;
    Ok(n)
}
