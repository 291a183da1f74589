//! The kept aggregates behind the summary: one `daily_totals` row per day (in the reporting
//! time zone), currency, campaign and kind, kept current by the transaction that records
//! each gift, refund or dispute.
//!
//! How it stays exact: the transaction first locks the payments its event touches (advisory
//! locks on their Stripe ids, in sorted order), reads what those payments contribute to the
//! totals (`ledger_contributions`), applies the event, reads the contributions again, and
//! adds the difference. Two events about one payment therefore never count it twice, and the
//! kept rows equal a rebuild from scratch (tests check this after shuffled gift lives).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::{Postgres, Transaction};

/// The Stripe and ledger keys an event's facts touched.
#[derive(Debug, Default, Clone)]
pub struct Touched {
    pub payment_intents: Vec<String>,
    pub invoices: Vec<String>,
    pub sessions: Vec<String>,
    pub gift_ids: Vec<uuid::Uuid>,
    /// Stripe customers and emails the event tells about (donor links).
    pub customers: Vec<String>,
    pub emails: Vec<String>,
}

impl Touched {
    pub fn is_empty(&self) -> bool {
        self.payment_intents.is_empty()
            && self.invoices.is_empty()
            && self.sessions.is_empty()
            && self.gift_ids.is_empty()
    }
}

type Key = (NaiveDate, String, String, String);

/// gross, gifts, refunded, disputed, fees
type Sums = [i64; 5];

/// Serializes transactions about the same payments until they commit. A gift's figures
/// depend on rows joined through its payment intent (charge fee, refunds, disputes), so an
/// event that reaches a gift by another key also locks that gift's payment intent. (Taking
/// the second lock after the first can deadlock with a rival; Postgres then aborts one, and
/// the webhook path runs it again.)
pub async fn lock(tx: &mut Transaction<'_, Postgres>, t: &Touched) -> Result<(), sqlx::Error> {
    let mut keys: Vec<String> = t
        .payment_intents
        .iter()
        .chain(&t.invoices)
        .chain(&t.sessions)
        .cloned()
        .chain(t.gift_ids.iter().map(|g| g.to_string()))
        .collect();
    keys.sort();
    keys.dedup();
    lock_keys(tx, &keys).await?;
    let mut linked: Vec<String> = sqlx::query_scalar!(
        r#"select distinct payment_intent_id as "pi!" from gifts
           where payment_intent_id is not null
             and (invoice_id = any($1) or checkout_session_id = any($2) or id = any($3))"#,
        &t.invoices,
        &t.sessions,
        &t.gift_ids
    )
    .fetch_all(&mut **tx)
    .await?;
    linked.retain(|pi| !keys.contains(pi));
    linked.sort();
    lock_keys(tx, &linked).await
}

async fn lock_keys(tx: &mut Transaction<'_, Postgres>, keys: &[String]) -> Result<(), sqlx::Error> {
    for key in keys {
        sqlx::query!(
            "select pg_advisory_xact_lock(hashtextextended($1, 7))",
            format!("payment:{key}")
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// What the touched payments add to the totals now.
pub async fn contributions(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
    tz: &str,
) -> Result<BTreeMap<Key, Sums>, sqlx::Error> {
    let mut out = BTreeMap::new();
    if t.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query!(
        r#"select day as "day!", currency as "currency!", campaign as "campaign!", kind as "kind!",
                  gross as "gross!", gifts as "gifts!", refunded as "refunded!", disputed as "disputed!", fees as "fees!"
           from ledger_contributions($1, false, $2, $3, $4, $5)"#,
        tz,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let sums: &mut Sums = out
            .entry((r.day, r.currency, r.campaign, r.kind))
            .or_default();
        for (slot, v) in sums
            .iter_mut()
            .zip([r.gross, r.gifts, r.refunded, r.disputed, r.fees])
        {
            *slot += v;
        }
    }
    Ok(out)
}

/// Adds `after - before` to the kept totals, dropping rows that fall to nothing.
pub async fn add_difference(
    tx: &mut Transaction<'_, Postgres>,
    before: BTreeMap<Key, Sums>,
    after: BTreeMap<Key, Sums>,
) -> Result<(), sqlx::Error> {
    let mut delta: BTreeMap<Key, Sums> = after;
    for (key, sums) in before {
        let d = delta.entry(key).or_default();
        for (slot, v) in d.iter_mut().zip(sums) {
            *slot -= v;
        }
    }
    // In key order, so concurrent transactions lock day rows in one order.
    for ((day, currency, campaign, kind), d) in delta {
        if d.iter().all(|v| *v == 0) {
            continue;
        }
        sqlx::query!(
            "insert into daily_totals (day, currency, campaign, kind, gross, gifts, refunded, disputed, fees)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (day, currency, campaign, kind) do update set
                 gross = daily_totals.gross + excluded.gross,
                 gifts = daily_totals.gifts + excluded.gifts,
                 refunded = daily_totals.refunded + excluded.refunded,
                 disputed = daily_totals.disputed + excluded.disputed,
                 fees = daily_totals.fees + excluded.fees",
            day,
            currency,
            campaign,
            kind,
            d[0],
            d[1],
            d[2],
            d[3],
            d[4]
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query!(
            "delete from daily_totals
             where day = $1 and currency = $2 and campaign = $3 and kind = $4
               and gross = 0 and gifts = 0 and refunded = 0 and disputed = 0 and fees = 0",
            day,
            currency,
            campaign,
            kind
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Rebuilds every day from the ledger (after a change of reporting time zone, say).
pub async fn rebuild_all(tx: &mut Transaction<'_, Postgres>, tz: &str) -> Result<u64, sqlx::Error> {
    sqlx::query!("lock table daily_totals in exclusive mode")
        .execute(&mut **tx)
        .await?;
    sqlx::query!("delete from daily_totals")
        .execute(&mut **tx)
        .await?;
    let done = sqlx::query!(
        "insert into daily_totals (day, currency, campaign, kind, gross, gifts, refunded, disputed, fees)
         select day, currency, campaign, kind, sum(gross), sum(gifts), sum(refunded), sum(disputed), sum(fees)
         from ledger_contributions($1, true, '{}', '{}', '{}', '{}')
         group by day, currency, campaign, kind
         having sum(gross) <> 0 or sum(gifts) <> 0 or sum(refunded) <> 0 or sum(disputed) <> 0 or sum(fees) <> 0",
        tz
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Band and threshold settings the donor figures are cut by.
#[derive(Debug, Clone)]
pub struct Bands {
    pub floors: Vec<i64>,
    pub names: Vec<String>,
    pub threshold: i64,
}

impl Bands {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Self {
            floors: c.donor_bands.iter().map(|(_, f)| *f).collect(),
            names: c.donor_bands.iter().map(|(n, _)| n.clone()).collect(),
            threshold: c.small_donor_threshold,
        }
    }
}

/// Locks the customers and emails an event links, so that a gift and its donor link told
/// at the same moment cannot miss each other.
pub async fn lock_donor_links(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
) -> Result<(), sqlx::Error> {
    let mut keys: Vec<String> = t
        .customers
        .iter()
        .map(|c| format!("customer:{c}"))
        .chain(t.emails.iter().map(|e| format!("email:{e}")))
        .collect();
    keys.sort();
    keys.dedup();
    lock_keys(tx, &keys).await
}

/// The donors whose figures an event can change: those of the payments it touches and those
/// it links by customer or email.
pub async fn donors_of(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    let ids = sqlx::query_scalar!(
        r#"select distinct donor_id as "id!" from (
               select donor_id from gifts
               where donor_id is not null
                 and (payment_intent_id = any($1) or invoice_id = any($2) or checkout_session_id = any($3) or id = any($4))
               union all select donor_id from donor_customers where customer_id = any($5)
               union all select id from donors where email = any($6)
           ) d"#,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        &t.customers,
        &t.emails,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(ids)
}

type DonorKey = (String, String, NaiveDate, String, bool);

/// donors, gifts, net, new donors
type DonorSums = [i64; 4];

pub async fn donor_contributions(
    tx: &mut Transaction<'_, Postgres>,
    donors: &[uuid::Uuid],
    bands: &Bands,
    tz: &str,
) -> Result<BTreeMap<DonorKey, DonorSums>, sqlx::Error> {
    let mut out = BTreeMap::new();
    if donors.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query!(
        r#"select currency as "currency!", period_kind as "period_kind!", period_start as "period_start!",
                  band as "band!", small as "small!", donors as "donors!", gifts as "gifts!", net as "net!",
                  new_donors as "new_donors!"
           from donor_contributions($1, false, $2, $3, $4, $5)"#,
        tz,
        donors,
        &bands.floors,
        &bands.names,
        bands.threshold
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let sums: &mut DonorSums = out
            .entry((r.currency, r.period_kind, r.period_start, r.band, r.small))
            .or_default();
        for (slot, v) in sums
            .iter_mut()
            .zip([r.donors, r.gifts, r.net, r.new_donors])
        {
            *slot += v;
        }
    }
    Ok(out)
}

pub async fn add_donor_difference(
    tx: &mut Transaction<'_, Postgres>,
    before: BTreeMap<DonorKey, DonorSums>,
    after: BTreeMap<DonorKey, DonorSums>,
) -> Result<(), sqlx::Error> {
    let mut delta = after;
    for (key, sums) in before {
        let d = delta.entry(key).or_default();
        for (slot, v) in d.iter_mut().zip(sums) {
            *slot -= v;
        }
    }
    for ((currency, period_kind, period_start, band, small), d) in delta {
        if d.iter().all(|v| *v == 0) {
            continue;
        }
        sqlx::query!(
            "insert into period_donor_totals (currency, period_kind, period_start, band, small, donors, gifts, net, new_donors)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             on conflict (currency, period_kind, period_start, band, small) do update set
                 donors = period_donor_totals.donors + excluded.donors,
                 gifts = period_donor_totals.gifts + excluded.gifts,
                 net = period_donor_totals.net + excluded.net,
                 new_donors = period_donor_totals.new_donors + excluded.new_donors",
            currency,
            period_kind,
            period_start,
            band,
            small,
            d[0],
            d[1],
            d[2],
            d[3]
        )
        .execute(&mut **tx)
        .await?;
        sqlx::query!(
            "delete from period_donor_totals
             where currency = $1 and period_kind = $2 and period_start = $3 and band = $4 and small = $5
               and donors = 0 and gifts = 0 and net = 0 and new_donors = 0",
            currency,
            period_kind,
            period_start,
            band,
            small
        )
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Rebuilds the donor figures from the ledger.
pub async fn rebuild_donor_figures(
    tx: &mut Transaction<'_, Postgres>,
    bands: &Bands,
    tz: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query!("lock table period_donor_totals in exclusive mode")
        .execute(&mut **tx)
        .await?;
    sqlx::query!("delete from period_donor_totals")
        .execute(&mut **tx)
        .await?;
    let done = sqlx::query!(
        "insert into period_donor_totals (currency, period_kind, period_start, band, small, donors, gifts, net, new_donors)
         select currency, period_kind, period_start, band, small, donors, gifts, net, new_donors
         from donor_contributions($1, true, '{}', $2, $3, $4)
         where donors <> 0 or gifts <> 0 or net <> 0 or new_donors <> 0",
        tz,
        &bands.floors,
        &bands.names,
        bands.threshold
    )
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}
