//! The summary's figures per period and for the whole range, read from `daily_totals`.

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

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub currency: String,
    pub time_zone: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub interval: Interval,
    pub campaign: Option<String>,
    pub periods: Vec<Period>,
    pub total: Figures,
}

pub async fn summarize(db: &PgPool, p: &SummaryParams, tz: &str) -> Result<Summary, sqlx::Error> {
    let rows = sqlx::query!(
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
    .await?;

    // Every period of the range appears, empty ones included, so a chart has no gaps.
    let mut periods: Vec<Period> = Vec::new();
    let mut start = p.interval.start_of(p.from);
    while start <= p.to {
        periods.push(Period {
            start,
            figures: Figures::default(),
        });
        start = next(p.interval, start);
    }
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
    Ok(Summary {
        currency: p.currency.to_string(),
        time_zone: tz.to_string(),
        from: p.from,
        to: p.to,
        interval: p.interval,
        campaign: p.campaign.as_ref().map(|c| c.as_str().to_string()),
        periods,
        total,
    })
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
