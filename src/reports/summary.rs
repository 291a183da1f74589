//! The summary's figures per period and for the whole range, read from `daily_totals`.

use std::collections::{BTreeMap, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::config::Config;
use crate::gifts::{Campaign, Currency};

/// Longest range one request may ask for, in days.
pub const MAX_RANGE_DAYS: i64 = 3 * 366 + 1;

#[derive(Debug, Deserialize)]
pub struct SummaryQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub interval: Option<String>,
    pub currency: Option<String>,
    pub campaign: Option<String>,
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Day,
    Week,
    Month,
    Year,
}

impl Interval {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }

    /// The first day of the period holding `d` (weeks start on Monday).
    pub fn start_of(self, d: NaiveDate) -> NaiveDate {
        match self {
            Self::Day => d,
            Self::Week => d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday())),
            Self::Month => d.with_day(1).expect("day 1 exists"),
            Self::Year => NaiveDate::from_ymd_opt(d.year(), 1, 1).expect("1 January exists"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SummaryParams {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
    pub currency: Currency,
    pub campaign: Option<Campaign>,
}

impl SummaryParams {
    /// Checks every parameter, naming the one at fault.
    pub fn parse(q: &SummaryQuery, config: &Config) -> Result<Self, (&'static str, String)> {
        let date =
            |name: &'static str, v: &Option<String>| -> Result<NaiveDate, (&'static str, String)> {
                let v = v
                    .as_deref()
                    .ok_or((name, format!("{name} is required (YYYY-MM-DD)")))?;
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| (name, format!("{name} must be a date YYYY-MM-DD")))
            };
        let from = date("from", &q.from)?;
        let to = date("to", &q.to)?;
        if from > to {
            return Err(("from", "from must not be after to".into()));
        }
        if (to - from).num_days() + 1 > MAX_RANGE_DAYS {
            return Err((
                "to",
                format!("the range must be at most {MAX_RANGE_DAYS} days"),
            ));
        }
        let interval = match q.interval.as_deref() {
            None => Interval::Month,
            Some(s) => Interval::parse(s).ok_or((
                "interval",
                "interval must be day, week, month or year".into(),
            ))?,
        };
        let currency = match q.currency.as_deref() {
            None => config.default_currency.clone(),
            Some(c) => Currency::parse(c)
                .ok()
                .filter(|c| config.currencies.contains(c))
                .ok_or(("currency", format!("unknown currency {c:?}")))?,
        };
        let campaign = q
            .campaign
            .as_deref()
            .map(|c| {
                Campaign::parse(c).map_err(|_| ("campaign", "campaign must be a slug".to_string()))
            })
            .transpose()?;
        Ok(Self {
            from,
            to,
            interval,
            currency,
            campaign,
        })
    }
}

/// Money figures, all in minor units of the summary's one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Figures {
    pub gross: i64,
    pub refunded: i64,
    pub disputed: i64,
    pub net: i64,
    /// Stripe fees where known.
    pub fees: i64,
    pub gifts: i64,
    pub one_time_net: i64,
    pub recurring_net: i64,
}

impl Figures {
    fn add(&mut self, kind: &str, gross: i64, gifts: i64, refunded: i64, disputed: i64, fees: i64) {
        let net = gross - refunded - disputed;
        self.gross += gross;
        self.gifts += gifts;
        self.refunded += refunded;
        self.disputed += disputed;
        self.fees += fees;
        self.net += net;
        if kind == "one_time" {
            self.one_time_net += net;
        } else {
            self.recurring_net += net;
        }
    }
}

/// One donor band in one period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BandFigures {
    pub band: String,
    pub donors: i64,
    pub gifts: i64,
    pub net: i64,
    /// This band's share of the period's net across bands (0 to 1).
    pub share: f64,
}

/// Donors, plans and gift sizes of one period (absent when a campaign filter is set: donor
/// figures are kept for the whole newsroom).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct DonorFigures {
    pub donors: i64,
    /// Donors whose first gift ever falls in the period.
    pub new_donors: i64,
    pub bands: Vec<BandFigures>,
    /// Donors whose yearly net is at or under SMALL_DONOR_THRESHOLD.
    pub donors_at_or_under_threshold: i64,
    pub net_at_or_under_threshold: i64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PlanFigures {
    /// Recurring plans active at the period's end.
    pub active_plans: i64,
    /// Monthly recurring revenue at the period's end (yearly plans count as a twelfth).
    pub mrr: i64,
    pub cancellations: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Period {
    pub start: NaiveDate,
    #[serde(flatten)]
    pub figures: Figures,
    pub average_gift: Option<i64>,
    pub median_gift: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub donor_figures: Option<DonorFigures>,
    #[serde(flatten)]
    pub plans: PlanFigures,
}

/// Retention for one calendar year against the year before.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Retention {
    pub year: i32,
    pub retained: i64,
    pub new: i64,
    pub recovered: i64,
    pub lapsed: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub currency: String,
    pub time_zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
    pub campaign: Option<String>,
    pub small_donor_threshold: i64,
    pub periods: Vec<Period>,
    pub total: Figures,
    pub total_donors: Option<i64>,
    pub total_new_donors: Option<i64>,
    pub total_median_gift: Option<i64>,
    pub retention: Vec<Retention>,
}

pub async fn summarize(
    db: &PgPool,
    p: &SummaryParams,
    config: &Config,
) -> Result<Summary, sqlx::Error> {
    let tz = config.report_time_zone.as_str();
    // Every period of the range appears, empty ones included, so a chart has no gaps.
    let mut periods: Vec<Period> = Vec::new();
    let mut start = p.interval.start_of(p.from);
    while start <= p.to {
        periods.push(Period {
            start,
            figures: Figures::default(),
            average_gift: None,
            median_gift: None,
            donor_figures: None,
            plans: PlanFigures::default(),
        });
        start = next(p.interval, start);
    }
    let starts: Vec<NaiveDate> = periods.iter().map(|x| x.start).collect();
    // The reads are independent: each on a connection of its own, at once. Donor figures are
    // kept for the whole newsroom, so a campaign's summary has none.
    let whole = p.campaign.is_none();
    let (rows, medians, plans, donors, range, retention) = tokio::try_join!(
        daily_rows(db, p),
        medians(db, p),
        plans(db, p, &starts),
        async {
            if whole {
                donor_figures(db, p, config, &starts).await.map(Some)
            } else {
                Ok(None)
            }
        },
        async {
            if whole {
                range_donors(db, p).await.map(Some)
            } else {
                Ok(None)
            }
        },
        async {
            if whole {
                retention(db, p).await
            } else {
                Ok(Vec::new())
            }
        },
    )?;
    let mut donors = donors.map(Vec::into_iter);
    for (period, plan) in periods.iter_mut().zip(plans) {
        period.plans = plan;
        period.donor_figures = donors.as_mut().and_then(Iterator::next);
        period.median_gift = medians.get(&Some(period.start)).copied();
    }
    let (total_donors, total_new_donors) = range.unzip();
    let mut total = Figures::default();
    for r in rows {
        let at = p.interval.start_of(r.day);
        if let Some(period) = periods.iter_mut().find(|x| x.start == at) {
            period
                .figures
                .add(&r.kind, r.gross, r.gifts, r.refunded, r.disputed, r.fees);
        }
        total.add(&r.kind, r.gross, r.gifts, r.refunded, r.disputed, r.fees);
    }
    for period in &mut periods {
        period.average_gift =
            (period.figures.gifts > 0).then(|| period.figures.gross / period.figures.gifts);
    }
    Ok(Summary {
        currency: p.currency.to_string(),
        time_zone: tz.to_string(),
        from: p.from,
        to: p.to,
        interval: p.interval,
        campaign: p.campaign.as_ref().map(|c| c.as_str().to_string()),
        small_donor_threshold: config.small_donor_threshold,
        periods,
        total,
        total_donors,
        total_new_donors,
        total_median_gift: medians.get(&None).copied(),
        retention,
    })
}

struct DailyRow {
    day: NaiveDate,
    kind: String,
    gross: i64,
    gifts: i64,
    refunded: i64,
    disputed: i64,
    fees: i64,
}

/// The kept daily money of the range, by day and kind.
async fn daily_rows(db: &PgPool, p: &SummaryParams) -> Result<Vec<DailyRow>, sqlx::Error> {
    sqlx::query_as!(
        DailyRow,
        r#"select day as "day!", kind as "kind!",
                  sum(gross)::int8 as "gross!", sum(gifts)::int8 as "gifts!", sum(refunded)::int8 as "refunded!",
                  sum(disputed)::int8 as "disputed!", sum(fees)::int8 as "fees!"
           from daily_totals
           where currency = $1 and day between $2 and $3 and ($4::text is null or campaign = $4)
           group by day, kind
           order by day"#,
        p.currency.as_str(),
        p.from,
        p.to,
        p.campaign.as_ref().map(|c| c.as_str()),
    )
    .fetch_all(db)
    .await
}

fn interval_name(i: Interval) -> &'static str {
    match i {
        Interval::Day => "day",
        Interval::Week => "week",
        Interval::Month => "month",
        Interval::Year => "year",
    }
}

/// The median paid gift per period (key `Some(start)`) and over the range (key `None`), with
/// `percentile_disc(0.5)`'s meaning: the smallest amount with at least half the gifts at or
/// under it. Read from the kept counts by amount: whole months where a month lies in one
/// period and inside the range, days elsewhere (the days before the first whole month and
/// after the last, as two ranges the index can seek, not a year of days filtered out).
async fn medians(
    db: &PgPool,
    p: &SummaryParams,
) -> Result<HashMap<Option<NaiveDate>, i64>, sqlx::Error> {
    let (months_from, months_to) = match p.interval {
        Interval::Month | Interval::Year => {
            let first = Interval::Month.start_of(p.from);
            let first = if first == p.from {
                first
            } else {
                next(Interval::Month, first)
            };
            (
                first,
                Interval::Month.start_of(p.to + chrono::Duration::days(1)),
            )
        }
        Interval::Day | Interval::Week => (p.from, p.from),
    };
    let rows = sqlx::query!(
        r#"select period_start as "start!", amount as "amount!", gifts as "gifts!"
           from gift_amounts
           where currency = $1 and ($6::text is null or campaign = $6)
             and ((period_kind = 'month' and period_start >= $4 and period_start < $5)
                  or (period_kind = 'day' and period_start >= $2 and period_start < least($4::date, $3::date + 1))
                  or (period_kind = 'day' and period_start >= greatest($5::date, $2::date) and period_start <= $3))"#,
        p.currency.as_str(),
        p.from,
        p.to,
        months_from,
        months_to,
        p.campaign.as_ref().map(|c| c.as_str()),
    )
    .fetch_all(db)
    .await?;
    // Summed here, not grouped in SQL: the sort a grouping needed took longer than the read.
    let mut counts: HashMap<Option<NaiveDate>, BTreeMap<i64, i64>> = HashMap::new();
    for r in rows {
        for key in [Some(p.interval.start_of(r.start)), None] {
            *counts.entry(key).or_default().entry(r.amount).or_default() += r.gifts;
        }
    }
    Ok(counts
        .into_iter()
        .filter_map(|(key, by_amount)| median(&by_amount).map(|m| (key, m)))
        .collect())
}

/// The smallest amount whose cumulative count reaches half the gifts.
fn median(by_amount: &BTreeMap<i64, i64>) -> Option<i64> {
    let n: i64 = by_amount.values().sum();
    let mut seen = 0;
    by_amount.iter().find_map(|(amount, gifts)| {
        seen += gifts;
        (n > 0 && *gifts != 0 && seen * 2 >= n).then_some(*amount)
    })
}

/// Active plans and MRR at each period's end, and cancellations in it, from the kept
/// per-day starts and cancellations.
async fn plans(
    db: &PgPool,
    p: &SummaryParams,
    starts: &[NaiveDate],
) -> Result<Vec<PlanFigures>, sqlx::Error> {
    let finish = |start: NaiveDate| next(p.interval, start).min(p.to + chrono::Duration::days(1));
    let until = starts.last().map_or(p.to, |x| finish(*x));
    let days = sqlx::query!(
        r#"select day as "day!", sum(active)::int8 as "active!", sum(mrr)::int8 as "mrr!",
                  sum(cancellations)::int8 as "cancellations!"
           from plan_days
           where currency = $1 and ($2::text is null or campaign = $2) and day < $3
           group by day"#,
        p.currency.as_str(),
        p.campaign.as_ref().map(|c| c.as_str()),
        until,
    )
    .fetch_all(db)
    .await?;
    Ok(starts
        .iter()
        .map(|&start| {
            let end = finish(start);
            let mut f = PlanFigures::default();
            for d in days.iter().filter(|d| d.day < end) {
                f.active_plans += d.active;
                f.mrr += d.mrr;
                if d.day >= start {
                    f.cancellations += d.cancellations;
                }
            }
            f
        })
        .collect())
}

async fn donor_figures(
    db: &PgPool,
    p: &SummaryParams,
    config: &Config,
    starts: &[NaiveDate],
) -> Result<Vec<DonorFigures>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select period_start, band, small, donors, gifts, net, new_donors
           from period_donor_totals
           where currency = $1 and period_kind = $2 and period_start between $3 and $4"#,
        p.currency.as_str(),
        interval_name(p.interval),
        p.interval.start_of(p.from),
        p.to,
    )
    .fetch_all(db)
    .await?;
    let mut out = Vec::with_capacity(starts.len());
    for &start in starts {
        let mut f = DonorFigures {
            bands: config
                .donor_bands
                .iter()
                .map(|(name, _)| BandFigures {
                    band: name.clone(),
                    donors: 0,
                    gifts: 0,
                    net: 0,
                    share: 0.0,
                })
                .collect(),
            ..DonorFigures::default()
        };
        for r in rows.iter().filter(|r| r.period_start == start) {
            f.donors += r.donors;
            f.new_donors += r.new_donors;
            if r.small {
                f.donors_at_or_under_threshold += r.donors;
                f.net_at_or_under_threshold += r.net;
            }
            if let Some(b) = f.bands.iter_mut().find(|b| b.band == r.band) {
                b.donors += r.donors;
                b.gifts += r.gifts;
                b.net += r.net;
            }
        }
        let net: i64 = f.bands.iter().map(|b| b.net).sum();
        for b in &mut f.bands {
            b.share = if net > 0 {
                b.net as f64 / net as f64
            } else {
                0.0
            };
        }
        out.push(f);
    }
    Ok(out)
}

/// Unique donors with a paid gift in the range, and those whose first gift ever is in it.
/// Unique donors in [F, T]: those whose first gift is on or before T, less those whose last
/// gift is before F, less those who gave before F and next after T (one such gap at most).
async fn range_donors(db: &PgPool, p: &SummaryParams) -> Result<(i64, i64), sqlx::Error> {
    let r = sqlx::query!(
        r#"select (select coalesce(sum(donors), 0)::int8 from period_donor_totals
                   where currency = $1 and period_kind = 'first' and period_start <= $3)
                - (select coalesce(sum(donors), 0)::int8 from period_donor_totals
                   where currency = $1 and period_kind = 'last' and period_start < $2)
                - (select count(*) from donor_gaps
                   where currency = $1 and span @> daterange($2, $3, '[]'))
                  as "donors!",
                  (select coalesce(sum(new_donors), 0)::int8 from period_donor_totals
                   where currency = $1 and period_kind = 'day' and period_start between $2 and $3) as "new!""#,
        p.currency.as_str(),
        p.from,
        p.to,
    )
    .fetch_one(db)
    .await?;
    Ok((r.donors, r.new))
}

/// Retained, new, recovered and lapsed donors for each calendar year the range touches.
async fn retention(db: &PgPool, p: &SummaryParams) -> Result<Vec<Retention>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select extract(year from period_start)::int as "year!", band, sum(donors)::int8 as "donors!"
           from period_donor_totals
           where currency = $1 and period_kind = 'retention'
             and period_start between make_date($2, 1, 1) and make_date($3, 1, 1)
           group by 1, 2"#,
        p.currency.as_str(),
        p.from.year(),
        p.to.year(),
    )
    .fetch_all(db)
    .await?;
    Ok((p.from.year()..=p.to.year())
        .map(|year| {
            let count = |band: &str| {
                rows.iter()
                    .filter(|r| r.year == year && r.band == band)
                    .map(|r| r.donors)
                    .sum()
            };
            Retention {
                year,
                retained: count("retained"),
                new: count("new"),
                recovered: count("recovered"),
                lapsed: count("lapsed"),
            }
        })
        .collect())
}

fn next(interval: Interval, d: NaiveDate) -> NaiveDate {
    match interval {
        Interval::Day => d + chrono::Duration::days(1),
        Interval::Week => d + chrono::Duration::days(7),
        Interval::Month => d
            .checked_add_months(chrono::Months::new(1))
            .expect("in range"),
        Interval::Year => d
            .checked_add_months(chrono::Months::new(12))
            .expect("in range"),
    }
}

impl Summary {
    /// The same figures as CSV: one row per period, then the total.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "period,currency,gross,refunded,disputed,net,fees,gifts,one_time_net,recurring_net\n",
        );
        let rows = self
            .periods
            .iter()
            .map(|p| (p.start.to_string(), &p.figures))
            .chain(std::iter::once(("total".to_string(), &self.total)));
        for (label, f) in rows {
            out.push_str(&format!(
                "{label},{},{},{},{},{},{},{},{},{}\n",
                self.currency,
                f.gross,
                f.refunded,
                f.disputed,
                f.net,
                f.fees,
                f.gifts,
                f.one_time_net,
                f.recurring_net
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn periods_start_where_finance_expects() {
        assert_eq!(Interval::Week.start_of(d("2026-12-03")), d("2026-11-30"));
        assert_eq!(Interval::Month.start_of(d("2026-12-03")), d("2026-12-01"));
        assert_eq!(Interval::Year.start_of(d("2026-12-03")), d("2026-01-01"));
        assert_eq!(next(Interval::Month, d("2026-01-01")), d("2026-02-01"));
    }

    #[test]
    fn the_median_is_the_smallest_amount_reaching_half_the_gifts() {
        let counts = |pairs: &[(i64, i64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        assert_eq!(median(&counts(&[(1000, 1), (2000, 1)])), Some(1000));
        assert_eq!(median(&counts(&[(1000, 1), (2000, 2)])), Some(2000));
        assert_eq!(median(&counts(&[(500, 2), (900, 0), (1000, 1)])), Some(500));
        assert_eq!(median(&counts(&[(700, 0)])), None);
        assert_eq!(median(&BTreeMap::new()), None);
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let config = Config::from_vars(Vec::new()).unwrap();
        let q = |from: &str, to: &str, interval: &str, currency: &str| SummaryQuery {
            from: Some(from.into()),
            to: Some(to.into()),
            interval: Some(interval.into()),
            currency: Some(currency.into()),
            campaign: None,
            format: None,
        };
        let name = |q: SummaryQuery| SummaryParams::parse(&q, &config).unwrap_err().0;
        assert_eq!(name(q("2026-02-01", "2026-01-01", "month", "usd")), "from");
        assert_eq!(
            name(q("2026-01-01", "2026-02-01", "fortnight", "usd")),
            "interval"
        );
        assert_eq!(
            name(q("2026-01-01", "2026-02-01", "month", "jpy")),
            "currency"
        );
        assert_eq!(name(q("2010-01-01", "2026-02-01", "month", "usd")), "to");
        assert_eq!(name(q("yesterday", "2026-02-01", "month", "usd")), "from");
        assert!(
            SummaryParams::parse(&q("2026-01-01", "2026-12-31", "week", "usd"), &config).is_ok()
        );
    }
}
