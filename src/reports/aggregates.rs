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

use super::kept;

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
    /// Stripe subscriptions whose plans the event tells about.
    pub subscriptions: Vec<String>,
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

/// Serializes transactions about the same payments, donor links, plans and donors until they
/// commit. A gift's figures depend on rows joined through its payment intent (charge fee,
/// refunds, disputes), so an event that reaches a gift by another key also locks that gift's
/// payment intent, and every event locks the donors it touches (`touched_donors`), once the
/// first locks are held (so that a rival's links are visible). Two statements whatever the
/// event; a deadlock with a rival is aborted by Postgres and the webhook path runs the
/// transaction again.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, t: &Touched) -> Result<(), sqlx::Error> {
    let mut keys: Vec<String> = t
        .payment_intents
        .iter()
        .chain(&t.invoices)
        .chain(&t.sessions)
        .cloned()
        .chain(t.gift_ids.iter().map(|g| g.to_string()))
        .map(|k| format!("payment:{k}"))
        .chain(t.customers.iter().map(|c| format!("customer:{c}")))
        .chain(t.emails.iter().map(|e| format!("email:{e}")))
        .chain(t.subscriptions.iter().map(|s| format!("subscription:{s}")))
        .collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return Ok(());
    }
    // unnest yields the sorted keys in order, and each row's lock is taken as it is read.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended(k, 7)) from unnest($1::text[]) as k",
        &keys
    )
    .execute(&mut **tx)
    .await?;
    // Then the payment intents of gifts reached by another key, and the donors of everything
    // touched: two events about one donor reached by different keys (another payment, another
    // customer, the email) would otherwise both count the donor as new to a period.
    sqlx::query!(
        "select pg_advisory_xact_lock(hashtextextended(k, 7))
         from (select distinct k from (
                   select 'payment:' || payment_intent_id as k from gifts
                   where payment_intent_id is not null
                     and (invoice_id = any($1) or checkout_session_id = any($2) or id = any($3))
                   union all
                   select 'donor:' || donor_id from touched_donors($4, $1, $2, $3, $5, $6)) found
               where k is not null and not (k = any($7))
               order by 1) linked",
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        &t.payment_intents,
        &t.customers,
        &t.emails,
        &keys
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What the payments and donors an event touches add to the kept totals at one moment.
#[derive(Debug, Default)]
pub struct Contributions {
    daily: BTreeMap<Key, Sums>,
    donors: BTreeMap<DonorKey, DonorSums>,
    /// Paid gifts by day, currency, campaign and amount (the median's histogram).
    amounts: BTreeMap<kept::AmountKey, [i64; 1]>,
    plans: BTreeMap<kept::PlanKey, kept::PlanSums>,
}

/// Makes the statements of this transaction keep one plan each per connection. The
/// contribution functions are inlined into their callers, and their custom plans took ten
/// times longer to make than to run; with `everything` a literal `false` their generic plans
/// use the same indexes. Rebuilds (`everything` true) run in transactions of their own.
pub async fn plan_once(tx: &mut Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
    sqlx::query_scalar!("select set_config('plan_cache_mode', 'force_generic_plan', true)")
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

/// Reads what the touched payments add to the daily totals, and what their donors (and the
/// donors the event links by customer or email) add to the donor figures. An event only ever
/// adds donors to gifts and links, so the donors found after it include those found before.
/// (The donors are found in a lateral subquery: a subquery as a function argument would stop
/// Postgres from inlining the function, which then scans every gift.)
pub async fn contributions(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
    bands: &Bands,
    tz: &str,
) -> Result<Contributions, sqlx::Error> {
    let mut out = Contributions {
        plans: kept::plan_contributions(tx, &t.subscriptions, tz).await?,
        ..Contributions::default()
    };
    if !t.is_empty() {
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
            // A paid gift's own row: its amount goes into the histogram, read here for free.
            if r.gifts == 1 {
                let key = (r.day, r.currency.clone(), r.campaign.clone(), r.gross);
                out.amounts.entry(key).or_default()[0] += 1;
            }
            let sums: &mut Sums = out
                .daily
                .entry((r.day, r.currency, r.campaign, r.kind))
                .or_default();
            for (slot, v) in sums
                .iter_mut()
                .zip([r.gross, r.gifts, r.refunded, r.disputed, r.fees])
            {
                *slot += v;
            }
        }
    }
    if t.is_empty() && t.customers.is_empty() && t.emails.is_empty() {
        return Ok(out);
    }
    let rows = sqlx::query!(
        r#"select currency as "currency!", period_kind as "period_kind!", period_start as "period_start!",
                  band as "band!", small as "small!", donors as "donors!", gifts as "gifts!", net as "net!",
                  new_donors as "new_donors!"
           from (select array(select distinct donor_id
                              from touched_donors($2, $3, $4, $5, $6, $7)) as ids) touched,
                lateral donor_contributions($1, false, touched.ids, $8, $9, $10)"#,
        tz,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        &t.customers,
        &t.emails,
        &bands.floors,
        &bands.names,
        bands.threshold
    )
    .fetch_all(&mut **tx)
    .await?;
    for r in rows {
        let sums: &mut DonorSums = out
            .donors
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

/// `after - before`, key by key, leaving out keys that did not move.
fn difference<K: Ord, const N: usize>(
    before: BTreeMap<K, [i64; N]>,
    after: BTreeMap<K, [i64; N]>,
) -> BTreeMap<K, [i64; N]> {
    let mut delta = after;
    for (key, sums) in before {
        let d = delta.entry(key).or_insert([0; N]);
        for (slot, v) in d.iter_mut().zip(sums) {
            *slot -= v;
        }
    }
    delta.retain(|_, d| d.iter().any(|v| *v != 0));
    delta
}

/// How many rows each kept total is spread over (see migration 0011).
const SLOTS: i16 = 16;

/// Adds `after - before` to the kept totals: one statement for the daily totals and one for
/// the donor figures, into a slot picked for this transaction, so that concurrent deliveries
/// seldom wait on one another's rows. A row that falls to nothing is dropped.
pub async fn add_difference(
    tx: &mut Transaction<'_, Postgres>,
    before: Contributions,
    after: Contributions,
) -> Result<(), sqlx::Error> {
    let slot = (rand::random::<u16>() % SLOTS as u16) as i16;
    let daily = difference(before.daily, after.daily);
    if !daily.is_empty() {
        let mut cols = (vec![], vec![], vec![], vec![], [(); 5].map(|_| Vec::new()));
        // In key order, so concurrent transactions lock rows in one order.
        for ((day, currency, campaign, kind), d) in daily {
            cols.0.push(day);
            cols.1.push(currency);
            cols.2.push(campaign);
            cols.3.push(kind);
            for (col, v) in cols.4.iter_mut().zip(d) {
                col.push(v);
            }
        }
        let [gross, gifts, refunded, disputed, fees] = &cols.4;
        let emptied = sqlx::query_scalar!(
            r#"insert into daily_totals (day, currency, campaign, kind, slot, gross, gifts, refunded, disputed, fees)
               select day, currency, campaign, kind, $10, gross, gifts, refunded, disputed, fees
               from unnest($1::date[], $2::text[], $3::text[], $4::text[],
                           $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[])
                    as d(day, currency, campaign, kind, gross, gifts, refunded, disputed, fees)
               on conflict (day, currency, campaign, kind, slot) do update set
                   gross = daily_totals.gross + excluded.gross,
                   gifts = daily_totals.gifts + excluded.gifts,
                   refunded = daily_totals.refunded + excluded.refunded,
                   disputed = daily_totals.disputed + excluded.disputed,
                   fees = daily_totals.fees + excluded.fees
               returning (gross = 0 and gifts = 0 and refunded = 0 and disputed = 0 and fees = 0) as "emptied!""#,
            &cols.0,
            &cols.1,
            &cols.2,
            &cols.3,
            gross,
            gifts,
            refunded,
            disputed,
            fees,
            slot
        )
        .fetch_all(&mut **tx)
        .await?;
        if emptied.iter().any(|e| *e) {
            sqlx::query!(
                "delete from daily_totals
                 where slot = $1 and gross = 0 and gifts = 0 and refunded = 0 and disputed = 0 and fees = 0
                   and (day, currency, campaign, kind) in
                       (select * from unnest($2::date[], $3::text[], $4::text[], $5::text[]))",
                slot,
                &cols.0,
                &cols.1,
                &cols.2,
                &cols.3
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    kept::add_amounts(tx, slot, difference(before.amounts, after.amounts)).await?;
    kept::add_plan_days(tx, slot, difference(before.plans, after.plans)).await?;
    let donors = difference(before.donors, after.donors);
    if !donors.is_empty() {
        let mut keys = (vec![], vec![], vec![], vec![], vec![]);
        let mut sums = [(); 4].map(|_| Vec::new());
        for ((currency, period_kind, period_start, band, small), d) in donors {
            keys.0.push(currency);
            keys.1.push(period_kind);
            keys.2.push(period_start);
            keys.3.push(band);
            keys.4.push(small);
            for (col, v) in sums.iter_mut().zip(d) {
                col.push(v);
            }
        }
        let [donors, gifts, net, new_donors] = &sums;
        let emptied = sqlx::query_scalar!(
            r#"insert into period_donor_totals (currency, period_kind, period_start, band, small, slot,
                                                donors, gifts, net, new_donors)
               select currency, period_kind, period_start, band, small, $10, donors, gifts, net, new_donors
               from unnest($1::text[], $2::text[], $3::date[], $4::text[], $5::bool[],
                           $6::int8[], $7::int8[], $8::int8[], $9::int8[])
                    as d(currency, period_kind, period_start, band, small, donors, gifts, net, new_donors)
               on conflict (currency, period_kind, period_start, band, small, slot) do update set
                   donors = period_donor_totals.donors + excluded.donors,
                   gifts = period_donor_totals.gifts + excluded.gifts,
                   net = period_donor_totals.net + excluded.net,
                   new_donors = period_donor_totals.new_donors + excluded.new_donors
               returning (donors = 0 and gifts = 0 and net = 0 and new_donors = 0) as "emptied!""#,
            &keys.0,
            &keys.1,
            &keys.2,
            &keys.3,
            &keys.4,
            donors,
            gifts,
            net,
            new_donors,
            slot
        )
        .fetch_all(&mut **tx)
        .await?;
        if emptied.iter().any(|e| *e) {
            sqlx::query!(
                "delete from period_donor_totals
                 where slot = $1 and donors = 0 and gifts = 0 and net = 0 and new_donors = 0
                   and (currency, period_kind, period_start, band, small) in
                       (select * from unnest($2::text[], $3::text[], $4::date[], $5::text[], $6::bool[]))",
                slot,
                &keys.0,
                &keys.1,
                &keys.2,
                &keys.3,
                &keys.4
            )
            .execute(&mut **tx)
            .await?;
        }
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

type DonorKey = (String, String, NaiveDate, String, bool);

/// donors, gifts, net, new donors
type DonorSums = [i64; 4];

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
