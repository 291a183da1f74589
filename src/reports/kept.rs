//! Kept figures beside `aggregates`' totals that the summary reads instead of the ledger:
//! paid gifts counted by amount (for medians), plans' starts and cancellations per day, and
//! each donor's gaps between gift days (for the unique donors of any range).
//!
//! The first two are sums, kept by `aggregates`' difference: they come with the daily totals'
//! before and after reads (`contributions`), and their differences are written by the same
//! statement. Donor gaps are not sums: the recording transaction, which already holds the
//! locks of the donors its event touches, replaces what changed in those donors' gaps (the
//! same statement again).

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use sqlx::{Postgres, Transaction};

use super::contributions::{
    AmountKey, DailyKey, DailySums, DonorKey, DonorSums, Gap, PlanKey, PlanSums,
};

/// A difference of daily totals as `daily_totals` columns, in key order.
#[derive(Debug, Default)]
pub struct DailyRows {
    pub day: Vec<NaiveDate>,
    pub currency: Vec<String>,
    pub campaign: Vec<String>,
    pub kind: Vec<String>,
    /// gross, gifts, refunded, disputed, fees
    pub sums: [Vec<i64>; 5],
}

impl DailyRows {
    pub fn of(delta: BTreeMap<DailyKey, DailySums>) -> Self {
        let mut out = Self::default();
        for ((day, currency, campaign, kind), d) in delta {
            out.day.push(day);
            out.currency.push(currency);
            out.campaign.push(campaign);
            out.kind.push(kind);
            push_sums(&mut out.sums, d);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.day.is_empty()
    }
}

/// A difference of donor figures as `period_donor_totals` columns, in key order.
#[derive(Debug, Default)]
pub struct DonorRows {
    pub currency: Vec<String>,
    pub kind: Vec<String>,
    pub start: Vec<NaiveDate>,
    pub band: Vec<String>,
    pub small: Vec<bool>,
    /// donors, gifts, net, new donors
    pub sums: [Vec<i64>; 4],
}

impl DonorRows {
    pub fn of(delta: BTreeMap<DonorKey, DonorSums>) -> Self {
        let mut out = Self::default();
        for ((currency, kind, start, band, small), d) in delta {
            out.currency.push(currency);
            out.kind.push(kind);
            out.start.push(start);
            out.band.push(band);
            out.small.push(small);
            push_sums(&mut out.sums, d);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.currency.is_empty()
    }
}

fn push_sums<const N: usize>(columns: &mut [Vec<i64>; N], sums: [i64; N]) {
    for (col, v) in columns.iter_mut().zip(sums) {
        col.push(v);
    }
}

/// A difference of paid gifts by amount as `gift_amounts` columns: on each day and its
/// month, in key order. `aggregates::add_difference` writes them.
#[derive(Debug, Default)]
pub struct AmountRows {
    pub currency: Vec<String>,
    pub kind: Vec<String>,
    pub start: Vec<NaiveDate>,
    pub campaign: Vec<String>,
    pub amount: Vec<i64>,
    pub gifts: Vec<i64>,
}

impl AmountRows {
    pub fn of(delta: BTreeMap<AmountKey, [i64; 1]>) -> Self {
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
        let mut out = Self::default();
        for ((currency, kind, start, campaign, amount), gifts) in rows {
            out.currency.push(currency);
            out.kind.push(kind.to_string());
            out.start.push(start);
            out.campaign.push(campaign);
            out.amount.push(amount);
            out.gifts.push(gifts);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.gifts.is_empty()
    }
}

/// A difference of plan figures as `plan_days` columns (only events about plans have one).
#[derive(Debug, Default)]
pub struct PlanRows {
    pub day: Vec<NaiveDate>,
    pub currency: Vec<String>,
    pub campaign: Vec<String>,
    /// active, mrr, cancellations
    pub sums: [Vec<i64>; 3],
}

impl PlanRows {
    pub fn of(delta: BTreeMap<PlanKey, PlanSums>) -> Self {
        let mut out = Self::default();
        for ((day, currency, campaign), d) in delta {
            out.day.push(day);
            out.currency.push(currency);
            out.campaign.push(campaign);
            push_sums(&mut out.sums, d);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.day.is_empty()
    }
}

/// Donor gaps as `donor_gaps` columns (to delete or to insert).
#[derive(Debug, Default)]
pub struct GapRows {
    pub donor: Vec<uuid::Uuid>,
    pub currency: Vec<String>,
    pub after: Vec<NaiveDate>,
    pub before: Vec<NaiveDate>,
}

impl GapRows {
    pub fn of<'a>(gaps: impl Iterator<Item = &'a Gap>) -> Self {
        let mut out = Self::default();
        for (donor, currency, after, before) in gaps {
            out.donor.push(*donor);
            out.currency.push(currency.clone());
            out.after.push(*after);
            out.before.push(*before);
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.donor.is_empty()
    }
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
