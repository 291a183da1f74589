//! The ledger for finance (role `finance`, every access audited), streamed from the database:
//!
//! - `GET /api/reports/gifts?from&to[&campaign]`: every paid gift, succeeded refund and
//!   dispute as a row, as CSV or JSON lines, for the accounting system;
//! - `GET /api/reports/statements?year=YYYY`: one line per donor with the year's giving per
//!   currency, net of refunds and lost disputes (the year-end acknowledgement letter);
//! - `GET /api/reports/lybunt?year=YYYY`: donors who gave last year but not this year.
//!
//! Days and years are cut in the reporting time zone. Refunds count on the day they were
//! made and lost disputes on the day they were lost, as in the summary; a row's `amount` is
//! what it adds to the ledger's net (a refund is negative; a dispute not lost adds 0).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::Authenticated;
use super::export::{self, Format, Sink, Stop};
use super::staff::{Role, audit};
use crate::error::ApiError;
use crate::gifts::Campaign;
use crate::state::AppState;

/// One movement of money, as the accounting system gets it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LedgerRow {
    /// gift, refund or dispute
    pub kind: String,
    /// The day it happened in the reporting time zone (YYYY-MM-DD).
    pub date: String,
    /// The instant it happened (RFC 3339, UTC).
    pub at: DateTime<Utc>,
    /// paid (a gift); succeeded (a refund); the dispute's status
    pub status: String,
    pub gift_id: Uuid,
    pub donor_id: Option<Uuid>,
    pub donor_name: Option<String>,
    pub donor_email: Option<String>,
    /// What this row adds to the net, in minor units: a gift's amount, minus a refund,
    /// minus a lost dispute (0 for a dispute still open or won).
    pub amount: i64,
    pub currency: String,
    /// Stripe's processing fee, where known and in the gift's currency (gifts only; one taken
    /// in the account's currency for a converted gift counts in the summary, under that
    /// currency).
    pub fee: Option<i64>,
    /// `amount` less `fee`.
    pub net: i64,
    /// The part of a gift's amount the donor added to cover fees.
    pub covered_fee: i64,
    /// once, monthly or yearly (of the gift the row belongs to)
    pub frequency: String,
    pub campaign: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub payment_intent_id: Option<String>,
    pub charge_id: Option<String>,
    pub invoice_id: Option<String>,
    pub subscription_id: Option<String>,
    pub checkout_session_id: Option<String>,
    pub refund_id: Option<String>,
    pub dispute_id: Option<String>,
}

/// The CSV header: every field of [`LedgerRow`], in order.
pub const LEDGER_COLUMNS: &[&str] = &[
    "kind",
    "date",
    "at",
    "status",
    "gift_id",
    "donor_id",
    "donor_name",
    "donor_email",
    "amount",
    "currency",
    "fee",
    "net",
    "covered_fee",
    "frequency",
    "campaign",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "payment_intent_id",
    "charge_id",
    "invoice_id",
    "subscription_id",
    "checkout_session_id",
    "refund_id",
    "dispute_id",
];

/// Which rows: a range of days (and a campaign), or one donor's whole history. `$1` is
/// always the time zone.
pub enum Scope {
    /// `$2` from, `$3` to (days, inclusive), `$4` campaign or null.
    Range,
    /// `$2` the donor's id.
    Donor,
}

/// The ledger's rows for a scope, oldest first.
pub fn ledger_sql(scope: Scope) -> String {
    let when = |col: &str| match scope {
        Scope::Range => format!(
            "{col} >= ($2::date::timestamp at time zone $1) \
             and {col} < (($3::date + 1)::timestamp at time zone $1) \
             and ($4::text is null or g.campaign = $4)"
        ),
        Scope::Donor => "g.donor_id = $2".to_string(),
    };
    format!(
        r#"with moves as (
    select 'gift'::text as kind, g.paid_at as at, g.state as status, g.id as gift_id,
           g.amount as amount, g.currency as currency, c.fee as fee,
           g.amount - coalesce(c.fee, 0) as net, g.covered_fee as covered_fee,
           c.charge_id as charge_id, null::text as refund_id, null::text as dispute_id
    from gifts g
    left join lateral (select charge_id,
                              -- a fee Stripe took in another currency is not this row's money
                              case when coalesce(fee_currency, g.currency) = g.currency then fee end as fee
                       from charges where payment_intent_id = g.payment_intent_id
                       order by created, charge_id limit 1) c on true
    where g.state = 'paid' and g.paid_at is not null and {gifts}
    union all
    select 'refund', r.created, r.status, g.id, -r.amount, r.currency, null::int8, -r.amount, 0::int8,
           r.charge_id, r.refund_id, null
    from refunds r join gifts g on g.payment_intent_id = r.payment_intent_id and g.state = 'paid'
    where r.status = 'succeeded' and {refunds}
    union all
    select 'dispute', x.status_at, x.status, g.id,
           case when x.status = 'lost' then -x.amount else 0 end, x.currency, null::int8,
           case when x.status = 'lost' then -x.amount else 0 end, 0::int8,
           x.charge_id, null, x.dispute_id
    from disputes x join gifts g on g.payment_intent_id = x.payment_intent_id and g.state = 'paid'
    where {disputes}
)
select m.kind, to_char(m.at at time zone $1, 'YYYY-MM-DD') as date, m.at, m.status, m.gift_id,
       g.donor_id, d.name as donor_name, d.email as donor_email,
       m.amount, m.currency, m.fee, m.net, m.covered_fee, g.frequency, g.campaign,
       g.utm_source, g.utm_medium, g.utm_campaign, g.payment_intent_id, m.charge_id, g.invoice_id,
       p.subscription_id, g.checkout_session_id, m.refund_id, m.dispute_id
from moves m
join gifts g on g.id = m.gift_id
left join donors d on d.id = g.donor_id
left join plans p on p.id = g.plan_id
order by m.at, m.kind, coalesce(m.refund_id, m.dispute_id, m.gift_id::text)"#,
        gifts = when("g.paid_at"),
        refunds = when("r.created"),
        disputes = when("x.status_at"),
    )
}

type Params = Query<HashMap<String, String>>;

fn bad(param: &str, message: impl Into<String>) -> ApiError {
    ApiError {
        field: Some(param.into()),
        ..ApiError::bad_request("invalid_parameter", message)
    }
}

fn date_param(q: &HashMap<String, String>, name: &str) -> Result<NaiveDate, ApiError> {
    let v = q
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad(name, format!("{name} is required (YYYY-MM-DD)")))?;
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| bad(name, format!("{name} must be a date YYYY-MM-DD")))
}

/// `year=YYYY`, required.
pub fn year_param(q: &HashMap<String, String>) -> Result<i32, ApiError> {
    let v = q
        .get("year")
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| bad("year", "year is required (YYYY)"))?;
    v.parse::<i32>()
        .ok()
        .filter(|y| v.len() == 4 && (1970..=9998).contains(y))
        .ok_or_else(|| bad("year", "year must be four digits, such as 2026"))
}

pub async fn gifts(
    State(state): State<AppState>,
    who: Authenticated,
    headers: HeaderMap,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let staff = who.require(Role::Finance)?.clone();
    let format = Format::choose(
        &headers,
        q.get("format").map(String::as_str),
        Format::JsonLines,
    )?;
    let from = date_param(&q, "from")?;
    let to = date_param(&q, "to")?;
    if from > to {
        return Err(bad("from", "from must not be after to"));
    }
    let campaign = q
        .get("campaign")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
        .map(|c| Campaign::parse(c).map_err(|_| bad("campaign", "campaign must be a slug")))
        .transpose()?
        .map(|c| c.as_str().to_string());
    let subject = match &campaign {
        Some(c) => format!("{from}..{to} campaign={c}"),
        None => format!("{from}..{to}"),
    };
    audit(&state.db, &staff, "report.gifts", Some(&subject)).await?;

    let header: Vec<String> = LEDGER_COLUMNS.iter().map(|c| c.to_string()).collect();
    let cells = export::by_name(&header);
    let tz = state.config.report_time_zone.clone();
    let db = state.db.clone();
    Ok(export::stream(
        format,
        header,
        cells,
        &format!("gifts-{from}-{to}"),
        move |mut sink: Sink| async move {
            let sql = ledger_sql(Scope::Range);
            let mut rows = sqlx::query_as::<_, LedgerRow>(&sql)
                .bind(&tz)
                .bind(from)
                .bind(to)
                .bind(campaign.as_deref())
                .fetch(&db);
            while let Some(row) = rows.try_next().await? {
                sink.row(&row).await?;
            }
            Ok::<_, Stop>(sink)
        },
    ))
}

/// One donor's giving in one currency over a year.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct YearTotals {
    pub gifts: i64,
    pub gross: i64,
    pub refunded: i64,
    pub disputed: i64,
    pub net: i64,
}

/// A year-end statement line: a donor and their year's giving per currency.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StatementRow {
    pub year: i32,
    pub donor_id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub country: Option<String>,
    /// Currency → totals; only currencies the donor gave in.
    pub totals: sqlx::types::Json<Value>,
}

const STATEMENTS_SQL: &str = r#"
with bounds as (
    select (make_date($2, 1, 1)::timestamp at time zone $1) as lo,
           (make_date($2 + 1, 1, 1)::timestamp at time zone $1) as hi
),
activity as (
    select g.donor_id, g.currency, 1 as gifts, g.amount as gross, 0::int8 as refunded, 0::int8 as disputed
    from gifts g, bounds b
    where g.state = 'paid' and g.donor_id is not null and g.paid_at >= b.lo and g.paid_at < b.hi
    union all
    select g.donor_id, r.currency, 0, 0, r.amount, 0
    from refunds r join gifts g on g.payment_intent_id = r.payment_intent_id and g.state = 'paid', bounds b
    where r.status = 'succeeded' and g.donor_id is not null and r.created >= b.lo and r.created < b.hi
    union all
    select g.donor_id, x.currency, 0, 0, 0, x.amount
    from disputes x join gifts g on g.payment_intent_id = x.payment_intent_id and g.state = 'paid', bounds b
    where x.status = 'lost' and g.donor_id is not null and x.status_at >= b.lo and x.status_at < b.hi
),
per_currency as (
    select donor_id, currency, sum(gifts)::int8 as gifts, sum(gross)::int8 as gross,
           sum(refunded)::int8 as refunded, sum(disputed)::int8 as disputed
    from activity group by donor_id, currency
)
select $2 as year, d.id as donor_id, d.email, d.name, d.country,
       jsonb_object_agg(pc.currency, jsonb_build_object(
           'gifts', pc.gifts, 'gross', pc.gross, 'refunded', pc.refunded, 'disputed', pc.disputed,
           'net', pc.gross - pc.refunded - pc.disputed)) as totals
from per_currency pc join donors d on d.id = pc.donor_id
group by d.id
order by d.email nulls last, d.id
"#;

/// Header and cells of a per-donor CSV: the donor's columns, then `fields` for each
/// configured currency (`usd_net`, ...), 0 where the donor has nothing in it.
fn per_currency_csv(
    first: &[&str],
    currencies: &[String],
    fields: &[&str],
) -> (Vec<String>, export::Cells) {
    let mut header: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    for c in currencies {
        for f in fields {
            header.push(format!("{c}_{f}"));
        }
    }
    let first: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    let currencies = currencies.to_vec();
    let fields: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    let cells: export::Cells = Box::new(move |v| {
        let mut out: Vec<Value> = first
            .iter()
            .map(|n| v.get(n).cloned().unwrap_or(Value::Null))
            .collect();
        for c in &currencies {
            for f in &fields {
                out.push(v["totals"][c].get(f).cloned().unwrap_or(Value::from(0)));
            }
        }
        out
    });
    (header, cells)
}

pub async fn statements(
    State(state): State<AppState>,
    who: Authenticated,
    headers: HeaderMap,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let staff = who.require(Role::Finance)?.clone();
    let format = Format::choose(
        &headers,
        q.get("format").map(String::as_str),
        Format::JsonLines,
    )?;
    let year = year_param(&q)?;
    audit(
        &state.db,
        &staff,
        "report.statements",
        Some(&year.to_string()),
    )
    .await?;
    let currencies: Vec<String> = state
        .config
        .currencies
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let (header, cells) = per_currency_csv(
        &["year", "donor_id", "email", "name", "country"],
        &currencies,
        &["gifts", "gross", "refunded", "disputed", "net"],
    );
    let tz = state.config.report_time_zone.clone();
    let db = state.db.clone();
    Ok(export::stream(
        format,
        header,
        cells,
        &format!("statements-{year}"),
        move |mut sink: Sink| async move {
            let mut rows = sqlx::query_as::<_, StatementRow>(STATEMENTS_SQL)
                .bind(&tz)
                .bind(year)
                .fetch(&db);
            while let Some(row) = rows.try_next().await? {
                sink.row(&row).await?;
            }
            Ok::<_, Stop>(sink)
        },
    ))
}

/// A donor who gave last year but not this year, with last year's gifts per currency.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LybuntRow {
    pub year: i32,
    pub donor_id: Uuid,
    pub email: Option<String>,
    pub name: Option<String>,
    pub country: Option<String>,
    /// The day of their last gift (reporting time zone).
    pub last_gift_date: String,
    /// Currency → `{gifts, gross}` of last year.
    pub last_year: sqlx::types::Json<Value>,
}

const LYBUNT_SQL: &str = r#"
with bounds as (
    select (make_date($2 - 1, 1, 1)::timestamp at time zone $1) as last_lo,
           (make_date($2, 1, 1)::timestamp at time zone $1) as this_lo,
           (make_date($2 + 1, 1, 1)::timestamp at time zone $1) as this_hi
),
last_year as (
    select g.donor_id, g.currency, count(*)::int8 as gifts, sum(g.amount)::int8 as gross,
           max(g.paid_at) as last_at
    from gifts g, bounds b
    where g.state = 'paid' and g.donor_id is not null and g.paid_at >= b.last_lo and g.paid_at < b.this_lo
    group by g.donor_id, g.currency
)
select $2 as year, d.id as donor_id, d.email, d.name, d.country,
       to_char(max(l.last_at) at time zone $1, 'YYYY-MM-DD') as last_gift_date,
       jsonb_object_agg(l.currency, jsonb_build_object('gifts', l.gifts, 'gross', l.gross)) as last_year
from last_year l join donors d on d.id = l.donor_id
where not exists (
    select 1 from gifts g, bounds b
    where g.donor_id = l.donor_id and g.state = 'paid' and g.paid_at >= b.this_lo and g.paid_at < b.this_hi
)
group by d.id
order by d.email nulls last, d.id
"#;

pub async fn lybunt(
    State(state): State<AppState>,
    who: Authenticated,
    headers: HeaderMap,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let staff = who.require(Role::Finance)?.clone();
    let format = Format::choose(&headers, q.get("format").map(String::as_str), Format::Csv)?;
    let year = year_param(&q)?;
    audit(&state.db, &staff, "report.lybunt", Some(&year.to_string())).await?;
    let currencies: Vec<String> = state
        .config
        .currencies
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let (header, base_cells) = per_currency_csv(
        &[
            "year",
            "donor_id",
            "email",
            "name",
            "country",
            "last_gift_date",
        ],
        &currencies,
        &["gifts", "gross"],
    );
    // The per-currency figures sit under `last_year` here.
    let cells: export::Cells = Box::new(move |v| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            let last = o.remove("last_year").unwrap_or(Value::Null);
            o.insert("totals".into(), last);
        }
        base_cells(&v)
    });
    let header: Vec<String> = header
        .into_iter()
        .map(|h| {
            if currencies.iter().any(|c| h.starts_with(&format!("{c}_"))) {
                format!("last_year_{h}")
            } else {
                h
            }
        })
        .collect();
    let tz = state.config.report_time_zone.clone();
    let db = state.db.clone();
    Ok(export::stream(
        format,
        header,
        cells,
        &format!("lybunt-{year}"),
        move |mut sink: Sink| async move {
            let mut rows = sqlx::query_as::<_, LybuntRow>(LYBUNT_SQL)
                .bind(&tz)
                .bind(year)
                .fetch(&db);
            while let Some(row) = rows.try_next().await? {
                sink.row(&row).await?;
            }
            Ok::<_, Stop>(sink)
        },
    ))
}
