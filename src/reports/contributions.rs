//! What a set of payments, donors and plans contributes to the kept figures, computed here
//! from their ledger rows (read by `aggregates::contributions` in one plain statement).
//!
//! The recording transaction reads these before and after each event and keeps the
//! difference. The same figures for the whole ledger come from the SQL functions
//! `ledger_contributions`, `donor_contributions`, `plan_contributions` and `donor_gaps_of`
//! (rebuilds and seeding); tests hold the two equal (`kept = recomputation` after shuffled
//! gift lives, racing events and a seeded history). Computing them here instead of running
//! those functions per event took the largest statement off the webhook path: its plan had
//! about a hundred nodes, started and torn down for a handful of rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate};
use uuid::Uuid;

/// A paid gift reached by the event's keys: its day (reporting time zone), currency,
/// campaign (`""` for none), whether one-time, amount and first charge's fee.
#[derive(Debug, Clone)]
pub struct PaidGift {
    pub day: NaiveDate,
    pub currency: String,
    pub campaign: String,
    pub once: bool,
    pub amount: i64,
    pub fee: i64,
    /// The fee's currency: the gift's, or the account's when Stripe converted the gift.
    pub fee_currency: String,
}

/// Money taken back from a reached paid gift: a succeeded refund or a lost dispute, on its
/// own day and in its own currency, counted under the gift's campaign and kind.
#[derive(Debug, Clone)]
pub struct Taken {
    pub day: NaiveDate,
    pub currency: String,
    pub campaign: String,
    pub once: bool,
    pub amount: i64,
    pub disputed: bool,
}

/// One line of a touched donor's giving: a paid gift (`gift`, +amount) or money taken back
/// from one (-amount).
#[derive(Debug, Clone)]
pub struct Activity {
    pub donor: Uuid,
    pub currency: String,
    pub day: NaiveDate,
    pub gift: bool,
    pub net: i64,
}

/// A touched subscription's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub started: Option<NaiveDate>,
    pub canceled: Option<NaiveDate>,
    pub currency: String,
    pub campaign: String,
    pub yearly: bool,
    pub amount: i64,
}

/// A donor's gap between two paid-gift days at least two days apart (`donor_gaps`).
pub type Gap = (Uuid, String, NaiveDate, NaiveDate);

/// Day, currency, campaign, kind (`one_time` or `recurring`).
pub type DailyKey = (NaiveDate, String, String, String);
/// gross, gifts, refunded, disputed, fees
pub type DailySums = [i64; 5];
/// A paid gift's day, currency, campaign and amount.
pub type AmountKey = (NaiveDate, String, String, i64);
/// Currency, period kind, period start, band, small.
pub type DonorKey = (String, String, NaiveDate, String, bool);
/// donors, gifts, net, new donors
pub type DonorSums = [i64; 4];
/// Day, currency, campaign of plan changes.
pub type PlanKey = (NaiveDate, String, String);
/// active, mrr, cancellations
pub type PlanSums = [i64; 3];

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

    /// The highest band whose floor the year's net reaches, else the first.
    fn of(&self, year_net: i64) -> &str {
        let i = self
            .floors
            .iter()
            .rposition(|f| year_net >= *f)
            .unwrap_or(0);
        self.names.get(i).map(String::as_str).unwrap_or("")
    }
}

/// The ledger rows of what an event touches, at one moment.
#[derive(Debug, Default)]
pub struct Rows {
    pub gifts: Vec<PaidGift>,
    pub taken: Vec<Taken>,
    pub activity: Vec<Activity>,
    pub plans: Vec<Plan>,
    /// The touched donors' gaps as `donor_gaps` holds them now.
    pub kept_gaps: BTreeSet<Gap>,
}

impl Rows {
    /// The rows of one paid gift with no fee, refund or dispute yet, given by `donor` (if
    /// known) who has given nothing else: a new reader's first gift.
    pub fn first_gift(gift: PaidGift, donor: Option<Uuid>) -> Rows {
        let activity = donor
            .map(|donor| Activity {
                donor,
                currency: gift.currency.clone(),
                day: gift.day,
                gift: true,
                net: gift.amount,
            })
            .into_iter()
            .collect();
        Rows {
            gifts: vec![gift],
            activity,
            ..Rows::default()
        }
    }
}

/// What those rows add to each kept figure.
#[derive(Debug, Default)]
pub struct Contributions {
    pub daily: BTreeMap<DailyKey, DailySums>,
    /// Paid gifts by day, currency, campaign and amount (the median's histogram).
    pub amounts: BTreeMap<AmountKey, [i64; 1]>,
    pub donors: BTreeMap<DonorKey, DonorSums>,
    pub plans: BTreeMap<PlanKey, PlanSums>,
    /// The touched donors' gaps as their gifts make them.
    pub gaps: BTreeSet<Gap>,
    pub kept_gaps: BTreeSet<Gap>,
}

fn add<K: Ord, const N: usize>(into: &mut BTreeMap<K, [i64; N]>, key: K, sums: [i64; N]) {
    let slot = into.entry(key).or_insert([0; N]);
    for (s, v) in slot.iter_mut().zip(sums) {
        *s += v;
    }
}

fn kind(once: bool) -> String {
    if once { "one_time" } else { "recurring" }.to_string()
}

impl Contributions {
    pub fn of(rows: Rows, bands: &Bands) -> Self {
        let mut out = Self {
            kept_gaps: rows.kept_gaps,
            ..Self::default()
        };
        for g in rows.gifts {
            add(
                &mut out.amounts,
                (g.day, g.currency.clone(), g.campaign.clone(), g.amount),
                [1],
            );
            // A fee in another currency counts there, on the gift's day: never subtracted
            // from money in the gift's currency.
            let same = g.fee_currency == g.currency;
            if !same && g.fee != 0 {
                add(
                    &mut out.daily,
                    (g.day, g.fee_currency, g.campaign.clone(), kind(g.once)),
                    [0, 0, 0, 0, g.fee],
                );
            }
            add(
                &mut out.daily,
                (g.day, g.currency, g.campaign, kind(g.once)),
                [g.amount, 1, 0, 0, if same { g.fee } else { 0 }],
            );
        }
        for t in rows.taken {
            let (refunded, disputed) = if t.disputed {
                (0, t.amount)
            } else {
                (t.amount, 0)
            };
            add(
                &mut out.daily,
                (t.day, t.currency, t.campaign, kind(t.once)),
                [0, 0, refunded, disputed, 0],
            );
        }
        for p in rows.plans {
            let mrr = if p.yearly { p.amount / 12 } else { p.amount };
            if let Some(started) = p.started {
                add(
                    &mut out.plans,
                    (started, p.currency.clone(), p.campaign.clone()),
                    [1, mrr, 0],
                );
                if let Some(canceled) = p.canceled {
                    add(
                        &mut out.plans,
                        (
                            started.max(canceled),
                            p.currency.clone(),
                            p.campaign.clone(),
                        ),
                        [-1, -mrr, 0],
                    );
                }
            }
            if let Some(canceled) = p.canceled {
                add(
                    &mut out.plans,
                    (canceled, p.currency, p.campaign),
                    [0, 0, 1],
                );
            }
        }
        let mut by_donor: BTreeMap<Uuid, Vec<Activity>> = BTreeMap::new();
        for a in rows.activity {
            by_donor.entry(a.donor).or_default().push(a);
        }
        for (donor, activity) in by_donor {
            donor_figures(&activity, bands, &mut out.donors);
            out.gaps.extend(gaps(donor, &activity));
        }
        out
    }
}

fn period_start(kind: &str, day: NaiveDate) -> NaiveDate {
    match kind {
        "week" => day - chrono::Days::new(day.weekday().num_days_from_monday().into()),
        "month" => day.with_day(1).expect("day 1 exists"),
        "year" => NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("1 January exists"),
        _ => day,
    }
}

fn new_year(year: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, 1, 1).expect("1 January exists")
}

/// One donor's share of `period_donor_totals`, as `donor_contributions` defines it: each
/// line counted in its day, week, month and year, under the band and smallness of the
/// donor's net in that currency and year; the donor counted once per period where it gave,
/// and as new where its first gift falls; its retention bands per year; its first and last
/// gift days.
fn donor_figures(activity: &[Activity], bands: &Bands, out: &mut BTreeMap<DonorKey, DonorSums>) {
    let mut year_net: BTreeMap<(&str, i32), i64> = BTreeMap::new();
    for a in activity {
        *year_net.entry((&a.currency, a.day.year())).or_default() += a.net;
    }
    let first = activity
        .iter()
        .enumerate()
        .filter(|(_, a)| a.gift)
        .min_by(|(_, x), (_, y)| (x.day, &x.currency).cmp(&(y.day, &y.currency)))
        .map(|(i, _)| i);
    // [gave, gifts, net, first gift] per key: the donor counts once where it gave.
    let mut mine: BTreeMap<DonorKey, [i64; 4]> = BTreeMap::new();
    for (i, a) in activity.iter().enumerate() {
        let net = year_net[&(a.currency.as_str(), a.day.year())];
        let band = bands.of(net).to_string();
        let small = net <= bands.threshold;
        for kind in ["day", "week", "month", "year"] {
            let key = (
                a.currency.clone(),
                kind.to_string(),
                period_start(kind, a.day),
                band.clone(),
                small,
            );
            let s = mine.entry(key).or_default();
            s[0] |= i64::from(a.gift);
            s[1] += i64::from(a.gift);
            s[2] += a.net;
            s[3] |= i64::from(first == Some(i));
        }
    }
    for (key, sums) in mine {
        add(out, key, sums);
    }
    let mut given: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    let mut spans: BTreeMap<&str, (NaiveDate, NaiveDate)> = BTreeMap::new();
    for a in activity.iter().filter(|a| a.gift) {
        given.entry(&a.currency).or_default().insert(a.day.year());
        let span = spans.entry(&a.currency).or_insert((a.day, a.day));
        span.0 = span.0.min(a.day);
        span.1 = span.1.max(a.day);
    }
    let one = |currency: &str, kind: &str, start: NaiveDate, band: &str| {
        (
            (
                currency.to_string(),
                kind.to_string(),
                start,
                band.to_string(),
                false,
            ),
            [1, 0, 0, 0],
        )
    };
    for (currency, years) in given {
        let years: Vec<i32> = years.into_iter().collect();
        for (i, &year) in years.iter().enumerate() {
            let prev = i.checked_sub(1).map(|p| years[p]);
            let band = match prev {
                Some(p) if p == year - 1 => "retained",
                None => "new",
                Some(_) => "recovered",
            };
            let (key, sums) = one(currency, "retention", new_year(year), band);
            add(out, key, sums);
            if years.get(i + 1) != Some(&(year + 1)) {
                let (key, sums) = one(currency, "retention", new_year(year + 1), "lapsed");
                add(out, key, sums);
            }
        }
    }
    for (currency, (first_day, last_day)) in spans {
        let (key, sums) = one(currency, "first", first_day, "");
        add(out, key, sums);
        let (key, sums) = one(currency, "last", last_day, "");
        add(out, key, sums);
    }
}

/// The donor's gaps between consecutive paid-gift days, per currency, at least two days
/// apart (`donor_gaps_of`).
fn gaps(donor: Uuid, activity: &[Activity]) -> Vec<Gap> {
    let mut days: BTreeSet<(&str, NaiveDate)> = BTreeSet::new();
    for a in activity.iter().filter(|a| a.gift) {
        days.insert((&a.currency, a.day));
    }
    let days: Vec<_> = days.into_iter().collect();
    days.windows(2)
        .filter(|w| w[0].0 == w[1].0 && w[1].1 > w[0].1 + chrono::Days::new(1))
        .map(|w| (donor, w[0].0.to_string(), w[0].1, w[1].1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn bands() -> Bands {
        Bands {
            floors: vec![0, 10_000, 100_000],
            names: vec!["small".into(), "mid".into(), "major".into()],
            threshold: 20_000,
        }
    }

    fn gift(donor: Uuid, d: &str, net: i64) -> Activity {
        Activity {
            donor,
            currency: "usd".into(),
            day: day(d),
            gift: true,
            net,
        }
    }

    fn get(c: &Contributions, kind: &str, start: &str, band: &str, small: bool) -> DonorSums {
        c.donors
            .get(&(
                "usd".to_string(),
                kind.to_string(),
                day(start),
                band.to_string(),
                small,
            ))
            .copied()
            .unwrap_or_default()
    }

    #[test]
    fn a_donor_counts_once_per_period_under_the_band_of_its_year() {
        let d = Uuid::new_v4();
        let rows = Rows {
            activity: vec![
                gift(d, "2025-12-30", 5_000),
                gift(d, "2026-01-02", 8_000),
                gift(d, "2026-01-03", 4_000),
                Activity {
                    net: -2_000,
                    gift: false,
                    ..gift(d, "2026-01-05", 0)
                },
            ],
            ..Rows::default()
        };
        let c = Contributions::of(rows, &bands());
        // 2026 nets 10,000: mid, and small (at most the 20,000 threshold).
        assert_eq!(
            get(&c, "year", "2026-01-01", "mid", true),
            [1, 2, 10_000, 0]
        );
        assert_eq!(
            get(&c, "year", "2025-01-01", "small", true),
            [1, 1, 5_000, 1]
        );
        // One ISO week (from Monday 29 December) holds gifts of both years, in two bands.
        assert_eq!(
            get(&c, "week", "2025-12-29", "small", true),
            [1, 1, 5_000, 1]
        );
        assert_eq!(
            get(&c, "week", "2025-12-29", "mid", true),
            [1, 2, 12_000, 0]
        );
        // The refund's week has no gift: money, no donor.
        assert_eq!(
            get(&c, "week", "2026-01-05", "mid", true),
            [0, 0, -2_000, 0]
        );
        assert_eq!(
            get(&c, "retention", "2025-01-01", "new", false),
            [1, 0, 0, 0]
        );
        assert_eq!(
            get(&c, "retention", "2026-01-01", "retained", false),
            [1, 0, 0, 0]
        );
        assert_eq!(
            get(&c, "retention", "2027-01-01", "lapsed", false),
            [1, 0, 0, 0]
        );
        assert_eq!(get(&c, "retention", "2026-01-01", "lapsed", false), [0; 4]);
        assert_eq!(get(&c, "first", "2025-12-30", "", false), [1, 0, 0, 0]);
        assert_eq!(get(&c, "last", "2026-01-03", "", false), [1, 0, 0, 0]);
        assert_eq!(
            c.gaps.iter().map(|g| (g.2, g.3)).collect::<Vec<_>>(),
            vec![(day("2025-12-30"), day("2026-01-02"))]
        );
    }

    #[test]
    fn a_year_missed_is_lapsed_then_recovered() {
        let d = Uuid::new_v4();
        let rows = Rows {
            activity: vec![gift(d, "2023-05-01", 100), gift(d, "2025-05-01", 100)],
            ..Rows::default()
        };
        let c = Contributions::of(rows, &bands());
        assert_eq!(
            get(&c, "retention", "2024-01-01", "lapsed", false),
            [1, 0, 0, 0]
        );
        assert_eq!(
            get(&c, "retention", "2025-01-01", "recovered", false),
            [1, 0, 0, 0]
        );
        assert_eq!(
            get(&c, "retention", "2026-01-01", "lapsed", false),
            [1, 0, 0, 0]
        );
    }

    #[test]
    fn a_fee_in_another_currency_counts_there_and_never_against_the_gift() {
        let gift = |fee_currency: &str| PaidGift {
            day: day("2026-03-01"),
            currency: "eur".into(),
            campaign: "".into(),
            once: true,
            amount: 2_000,
            fee: 88,
            fee_currency: fee_currency.into(),
        };
        let converted = Contributions::of(Rows::first_gift(gift("usd"), None), &bands());
        let eur = (
            day("2026-03-01"),
            "eur".to_string(),
            String::new(),
            "one_time".to_string(),
        );
        let usd = (
            day("2026-03-01"),
            "usd".to_string(),
            String::new(),
            "one_time".to_string(),
        );
        assert_eq!(converted.daily[&eur], [2_000, 1, 0, 0, 0]);
        assert_eq!(converted.daily[&usd], [0, 0, 0, 0, 88]);
        let same = Contributions::of(Rows::first_gift(gift("eur"), None), &bands());
        assert_eq!(same.daily[&eur], [2_000, 1, 0, 0, 88]);
        assert!(!same.daily.contains_key(&usd));
    }

    #[test]
    fn ledger_rows_add_up_by_day_and_kind_and_plans_by_day() {
        let rows = Rows {
            gifts: vec![PaidGift {
                day: day("2026-03-01"),
                currency: "usd".into(),
                campaign: "".into(),
                once: true,
                amount: 2_500,
                fee: 103,
                fee_currency: "usd".into(),
            }],
            taken: vec![Taken {
                day: day("2026-03-04"),
                currency: "usd".into(),
                campaign: "".into(),
                once: true,
                amount: 500,
                disputed: false,
            }],
            plans: vec![Plan {
                started: Some(day("2026-03-01")),
                canceled: Some(day("2026-02-27")),
                currency: "usd".into(),
                campaign: "spring".into(),
                yearly: true,
                amount: 12_005,
            }],
            ..Rows::default()
        };
        let c = Contributions::of(rows, &bands());
        let k = |d: &str| (day(d), "usd".to_string(), String::new(), kind(true));
        assert_eq!(c.daily[&k("2026-03-01")], [2_500, 1, 0, 0, 103]);
        assert_eq!(c.daily[&k("2026-03-04")], [0, 0, 500, 0, 0]);
        assert_eq!(
            c.amounts[&(day("2026-03-01"), "usd".into(), "".into(), 2_500)],
            [1]
        );
        // Cancelled "before" it started (clocks): it ends on its start day, net nothing.
        let p = |d: &str| (day(d), "usd".to_string(), "spring".to_string());
        assert_eq!(c.plans[&p("2026-03-01")], [0, 0, 0]);
        assert_eq!(c.plans[&p("2026-02-27")], [0, 0, 1]);
    }
}
