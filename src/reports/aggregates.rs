//! The kept aggregates behind the summary: one `daily_totals` row per day (in the reporting
//! time zone), currency, campaign and kind, kept current by the transaction that records
//! each gift, refund or dispute.
//!
//! How it stays exact: the transaction first locks the payments its event touches (advisory
//! locks on their Stripe ids, in sorted order), reads what those payments contribute to the
//! totals (`contributions`), applies the event, reads the contributions again, and
//! adds the difference. Two events about one payment therefore never count it twice, and the
//! kept rows equal a rebuild from scratch (tests check this after shuffled gift lives).

use std::collections::BTreeMap;

use sqlx::{Postgres, Transaction};

use super::contributions::{Activity, PaidGift, Plan, Rows, Taken};
pub use super::contributions::{Bands, Contributions};
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

/// How much was known, once locked, about what an event touches (`lock_touched`'s answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Nothing the kept figures read: after the event they come only from the rows it writes.
    Nothing,
    /// No figures yet, but rows they would read (a charge, refund or dispute of a touched
    /// payment intent, a touched donor's kept gap).
    Rows,
    /// Figures: the "before" read finds something.
    Figures,
}

impl Known {
    /// `lock_touched`'s answer (migration 0021); none when nothing was locked.
    pub fn of(level: Option<i32>) -> Known {
        match level {
            Some(2) => Known::Figures,
            Some(1) => Known::Rows,
            _ => Known::Nothing,
        }
    }
}

/// Serializes transactions about the same payments, donor links, plans and donors until they
/// commit, and says how much was known about what they touch (if no figures, the "before"
/// read would find nothing and is skipped). A gift's figures depend on rows joined
/// through its payment intent (charge fee, refunds, disputes), so an event that reaches a gift
/// by another key also locks that gift's payment intent, and every event locks the donors it
/// touches (`touched_donors`), once the first locks are held (so that a rival's links are
/// visible). One call (`lock_touched`, migrations 0018 and 0021), which also makes the
/// transaction's contribution reads keep one generic plan per connection. A deadlock with a
/// rival is aborted by Postgres and the webhook path runs the transaction again. (A delivery
/// takes these locks in the statement that claims its event.)
pub async fn lock(tx: &mut Transaction<'_, Postgres>, t: &Touched) -> Result<Known, sqlx::Error> {
    let keys = lock_keys(t);
    if keys.is_empty() {
        return Ok(Known::Nothing);
    }
    let level = sqlx::query_scalar!(
        r#"select lock_touched($1, $2, $3, $4, $5, $6, $7, $8)"#,
        &keys,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        &t.customers,
        &t.emails,
        &t.subscriptions
    )
    .fetch_one(&mut **tx)
    .await?;
    Ok(Known::of(level))
}

/// The sorted keys `lock_touched` locks first (none: nothing to lock).
pub fn lock_keys(t: &Touched) -> Vec<String> {
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
    keys
}

/// Reads, in one statement, the ledger rows behind what the event touches: the paid gifts its
/// keys reach (with their first charge's fee) and the refunds and lost disputes of those, the
/// giving of the donors it touches (their paid gifts and what was taken back from them) and
/// their kept gaps, and the touched subscriptions' plans; then computes what they contribute
/// to each kept figure (`contributions`). An event only ever adds donors to gifts and links,
/// so the donors found after it include those found before. Refunds and disputes are probed
/// by payment intent (`offset 0` keeps each a per-row index probe in the generic plan).
pub async fn contributions(
    tx: &mut Transaction<'_, Postgres>,
    t: &Touched,
    bands: &Bands,
    tz: &str,
) -> Result<Contributions, sqlx::Error> {
    let read = sqlx::query!(
        r#"with touched as materialized (
               select array(select distinct donor_id from touched_donors($2, $3, $4, $5, $6, $7)) as ids
           ),
           reached as materialized (
               select payment_intent_id, paid_at, currency, coalesce(campaign, '') as campaign,
                      frequency = 'once' as once, amount
               from gifts
               where state = 'paid'
                 and (payment_intent_id = any($2) or invoice_id = any($3)
                      or checkout_session_id = any($4) or id = any($5))
           ),
           given as materialized (
               select g.donor_id, g.payment_intent_id, g.paid_at, g.currency, g.amount
               from touched, gifts g
               where g.state = 'paid' and g.donor_id = any(touched.ids)
           )
           select 'gift' as "what!", (g.paid_at at time zone $1)::date as "day?", null::date as "until?",
                  g.currency as "currency!", g.campaign as "campaign!", g.once as "flag!", g.amount as "amount!",
                  coalesce(c.fee, 0) as "fee!", null::uuid as "donor?",
                  coalesce(c.fee_currency, g.currency) as "fee_currency?"
           from reached g
           left join lateral (select c.fee, c.fee_currency from charges c
                              where c.payment_intent_id = g.payment_intent_id
                              order by c.created, c.charge_id limit 1) c on true
           union all
           select 'refunded', (r.created at time zone $1)::date, null, r.currency, g.campaign, g.once, r.amount, 0, null, null
           from reached g
           cross join lateral (select * from refunds r
                               where r.payment_intent_id = g.payment_intent_id and r.status = 'succeeded'
                               offset 0) r
           union all
           select 'disputed', (d.status_at at time zone $1)::date, null, d.currency, g.campaign, g.once, d.amount, 0, null, null
           from reached g
           cross join lateral (select * from disputes d
                               where d.payment_intent_id = g.payment_intent_id and d.status = 'lost'
                               offset 0) d
           union all
           select 'given', (g.paid_at at time zone $1)::date, null, g.currency, '', true, g.amount, 0, g.donor_id, null
           from given g
           union all
           select 'taken', (r.created at time zone $1)::date, null, r.currency, '', false, -r.amount, 0, g.donor_id, null
           from given g
           cross join lateral (select * from refunds r
                               where r.payment_intent_id = g.payment_intent_id and r.status = 'succeeded'
                               offset 0) r
           union all
           select 'taken', (d.status_at at time zone $1)::date, null, d.currency, '', false, -d.amount, 0, g.donor_id, null
           from given g
           cross join lateral (select * from disputes d
                               where d.payment_intent_id = g.payment_intent_id and d.status = 'lost'
                               offset 0) d
           union all
           select 'plan', (started_at at time zone $1)::date, (canceled_at at time zone $1)::date, currency,
                  coalesce(campaign, ''), interval = 'year', amount, 0, null, null
           from plans where subscription_id = any($8)
           union all
           select 'gap', g.after_day, g.before_day, g.currency, '', false, 0, 0, g.donor_id, null
           from touched, donor_gaps g where g.donor_id = any(touched.ids)"#,
        tz,
        &t.payment_intents,
        &t.invoices,
        &t.sessions,
        &t.gift_ids,
        &t.customers,
        &t.emails,
        &t.subscriptions
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut rows = Rows::default();
    for r in read {
        if r.what == "plan" {
            // A plan not started yet has no start day: only its cancellation counts.
            rows.plans.push(Plan {
                started: r.day,
                canceled: r.until,
                currency: r.currency,
                campaign: r.campaign,
                yearly: r.flag,
                amount: r.amount,
            });
            continue;
        }
        // Paid gifts, refunds, disputes and gaps all have their days.
        let Some(day) = r.day else { continue };
        match (r.what.as_str(), r.donor, r.until) {
            ("gift", ..) => rows.gifts.push(PaidGift {
                day,
                currency: r.currency,
                campaign: r.campaign,
                once: r.flag,
                amount: r.amount,
                fee: r.fee,
                fee_currency: r.fee_currency.unwrap_or_default(),
            }),
            (what @ ("refunded" | "disputed"), ..) => rows.taken.push(Taken {
                day,
                currency: r.currency,
                campaign: r.campaign,
                once: r.flag,
                amount: r.amount,
                disputed: what == "disputed",
            }),
            ("gap", Some(donor), Some(until)) => {
                rows.kept_gaps.insert((donor, r.currency, day, until));
            }
            ("given" | "taken", Some(donor), _) => rows.activity.push(Activity {
                donor,
                currency: r.currency,
                day,
                gift: r.flag,
                net: r.amount,
            }),
            _ => {}
        }
    }
    Ok(Contributions::of(rows, bands))
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

/// Adds `after - before` to the kept totals in one statement (an upsert per kept table, each
/// from `unnest`ed columns in key order, so concurrent transactions lock rows in one order),
/// into this connection's slot (`my_slot`, migration 0019), so that concurrent deliveries
/// seldom wait on one another's rows. Rows that fall to nothing are then dropped (a second
/// statement, only then).
pub async fn add_difference(
    tx: &mut Transaction<'_, Postgres>,
    before: Contributions,
    after: Contributions,
) -> Result<(), sqlx::Error> {
    let daily = kept::DailyRows::of(difference(before.daily, after.daily));
    let donors = kept::DonorRows::of(difference(before.donors, after.donors));
    let amounts = kept::AmountRows::of(difference(before.amounts, after.amounts));
    let plans = kept::PlanRows::of(difference(before.plans, after.plans));
    // Gaps are not sums: the touched donors' gaps as kept now give way to those their gifts make.
    let gone = kept::GapRows::of(after.kept_gaps.difference(&after.gaps));
    let new = kept::GapRows::of(after.gaps.difference(&after.kept_gaps));
    if daily.is_empty()
        && donors.is_empty()
        && amounts.is_empty()
        && plans.is_empty()
        && gone.is_empty()
        && new.is_empty()
    {
        return Ok(());
    }
    let [gross, gifts, refunded, disputed, fees] = &daily.sums;
    let [d_donors, d_gifts, d_net, d_new] = &donors.sums;
    let [active, mrr, cancellations] = &plans.sums;
    let emptied = sqlx::query!(
        r#"with daily as (
               insert into daily_totals (day, currency, campaign, kind, slot, gross, gifts, refunded, disputed, fees)
               select day, currency, campaign, kind, my_slot($1), gross, gifts, refunded, disputed, fees
               from unnest($2::date[], $3::text[], $4::text[], $5::text[],
                           $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[])
                    as d(day, currency, campaign, kind, gross, gifts, refunded, disputed, fees)
               on conflict (day, currency, campaign, kind, slot) do update set
                   gross = daily_totals.gross + excluded.gross,
                   gifts = daily_totals.gifts + excluded.gifts,
                   refunded = daily_totals.refunded + excluded.refunded,
                   disputed = daily_totals.disputed + excluded.disputed,
                   fees = daily_totals.fees + excluded.fees
               returning (gross = 0 and gifts = 0 and refunded = 0 and disputed = 0 and fees = 0) as emptied
           ),
           amounts as (
               insert into gift_amounts (currency, period_kind, period_start, campaign, amount, slot, gifts)
               select currency, period_kind, period_start, campaign, amount, my_slot($1), gifts
               from unnest($11::text[], $12::text[], $13::date[], $14::text[], $15::int8[], $16::int8[])
                    as d(currency, period_kind, period_start, campaign, amount, gifts)
               on conflict (currency, period_kind, period_start, campaign, amount, slot) do update set
                   gifts = gift_amounts.gifts + excluded.gifts
               returning gifts = 0 as emptied
           ),
           plans as (
               insert into plan_days (day, currency, campaign, slot, active, mrr, cancellations)
               select day, currency, campaign, my_slot($1), active, mrr, cancellations
               from unnest($17::date[], $18::text[], $19::text[], $20::int8[], $21::int8[], $22::int8[])
                    as d(day, currency, campaign, active, mrr, cancellations)
               on conflict (currency, day, campaign, slot) do update set
                   active = plan_days.active + excluded.active,
                   mrr = plan_days.mrr + excluded.mrr,
                   cancellations = plan_days.cancellations + excluded.cancellations
               returning (active = 0 and mrr = 0 and cancellations = 0) as emptied
           ),
           donors as (
               insert into period_donor_totals (currency, period_kind, period_start, band, small, slot,
                                                donors, gifts, net, new_donors)
               select currency, period_kind, period_start, band, small, my_slot($1), donors, gifts, net, new_donors
               from unnest($23::text[], $24::text[], $25::date[], $26::text[], $27::bool[],
                           $28::int8[], $29::int8[], $30::int8[], $31::int8[])
                    as d(currency, period_kind, period_start, band, small, donors, gifts, net, new_donors)
               on conflict (currency, period_kind, period_start, band, small, slot) do update set
                   donors = period_donor_totals.donors + excluded.donors,
                   gifts = period_donor_totals.gifts + excluded.gifts,
                   net = period_donor_totals.net + excluded.net,
                   new_donors = period_donor_totals.new_donors + excluded.new_donors
               returning (donors = 0 and gifts = 0 and net = 0 and new_donors = 0) as emptied
           ),
           gaps_gone as (
               delete from donor_gaps g
               using unnest($32::uuid[], $33::text[], $34::date[], $35::date[]) as x(donor_id, currency, after_day, before_day)
               where (g.donor_id, g.currency, g.after_day, g.before_day) = (x.donor_id, x.currency, x.after_day, x.before_day)
           ),
           gaps_new as (
               insert into donor_gaps (donor_id, currency, after_day, before_day)
               select * from unnest($36::uuid[], $37::text[], $38::date[], $39::date[])
           )
           select (select coalesce(bool_or(emptied), false) from daily) as "daily!",
                  (select coalesce(bool_or(emptied), false) from amounts) as "amounts!",
                  (select coalesce(bool_or(emptied), false) from plans) as "plans!",
                  (select coalesce(bool_or(emptied), false) from donors) as "donors!""#,
        SLOTS,
        &daily.day,
        &daily.currency,
        &daily.campaign,
        &daily.kind,
        gross,
        gifts,
        refunded,
        disputed,
        fees,
        &amounts.currency,
        &amounts.kind,
        &amounts.start,
        &amounts.campaign,
        &amounts.amount,
        &amounts.gifts,
        &plans.day,
        &plans.currency,
        &plans.campaign,
        active,
        mrr,
        cancellations,
        &donors.currency,
        &donors.kind,
        &donors.start,
        &donors.band,
        &donors.small,
        d_donors,
        d_gifts,
        d_net,
        d_new,
        &gone.donor,
        &gone.currency,
        &gone.after,
        &gone.before,
        &new.donor,
        &new.currency,
        &new.after,
        &new.before
    )
    .fetch_one(&mut **tx)
    .await?;
    if emptied.daily || emptied.amounts || emptied.plans || emptied.donors {
        // Only the tables that had such a row, each by the keys this difference wrote.
        sqlx::query!(
            "with daily as (
                 delete from daily_totals
                 where $2 and slot = my_slot($1) and gross = 0 and gifts = 0 and refunded = 0 and disputed = 0 and fees = 0
                   and (day, currency, campaign, kind) in
                       (select * from unnest($6::date[], $7::text[], $8::text[], $9::text[]))
             ),
             amounts as (
                 delete from gift_amounts
                 where $3 and slot = my_slot($1) and gifts = 0
                   and (currency, period_kind, period_start, campaign, amount) in
                       (select * from unnest($10::text[], $11::text[], $12::date[], $13::text[], $14::int8[]))
             ),
             plans as (
                 delete from plan_days
                 where $4 and slot = my_slot($1) and active = 0 and mrr = 0 and cancellations = 0
                   and (day, currency, campaign) in (select * from unnest($15::date[], $16::text[], $17::text[]))
             )
             delete from period_donor_totals
             where $5 and slot = my_slot($1) and donors = 0 and gifts = 0 and net = 0 and new_donors = 0
               and (currency, period_kind, period_start, band, small) in
                   (select * from unnest($18::text[], $19::text[], $20::date[], $21::text[], $22::bool[]))",
            SLOTS,
            emptied.daily,
            emptied.amounts,
            emptied.plans,
            emptied.donors,
            &daily.day,
            &daily.currency,
            &daily.campaign,
            &daily.kind,
            &amounts.currency,
            &amounts.kind,
            &amounts.start,
            &amounts.campaign,
            &amounts.amount,
            &plans.day,
            &plans.currency,
            &plans.campaign,
            &donors.currency,
            &donors.kind,
            &donors.start,
            &donors.band,
            &donors.small
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
