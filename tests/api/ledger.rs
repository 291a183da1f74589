//! The ledger reports (gifts export, donor history, statements, LYBUNT) and the staff
//! dashboard, on a ledger built through the real path: checkouts at our API, payments on the
//! stand-in's hosted page, and Stripe's events delivered to our webhook with chosen times.
//! Every expectation below is written out by hand from the ledger's story.

use std::collections::HashMap;

use chipin::reports::staff::{self, Role};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, spawn_app_with};

const CURRENCIES: &str = "usd,eur";

fn event<'a>(events: &'a [Value], kind: &str, object_id: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["type"] == kind && e["data"]["object"]["id"] == object_id)
        .unwrap_or_else(|| panic!("no {kind} for {object_id}"))
}

struct Paid {
    session: String,
    payment_intent: String,
    charge: String,
}

/// A one-time gift given at our checkout and paid on the stand-in's page by `email`.
async fn give(app: &TestApp, body: Value, email: &str, name: &str) -> Paid {
    let created: Value = app.checkout(body).await.json().await.unwrap();
    let res = app
        .http
        .post(created["checkout_url"].as_str().unwrap())
        .form(&[("email", email), ("name", name)])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());
    let session = created["stripe_session_id"].as_str().unwrap().to_string();
    let s = app.standin.object(&session).unwrap();
    let payment_intent = s["payment_intent"].as_str().unwrap().to_string();
    let pi = app.standin.object(&payment_intent).unwrap();
    let charge = pi["latest_charge"]
        .as_str()
        .or_else(|| pi["latest_charge"]["id"].as_str())
        .unwrap()
        .to_string();
    Paid {
        session,
        payment_intent,
        charge,
    }
}

/// Tells our webhook that the gift was paid (and its charge's fee) at `at`.
async fn paid_at(app: &TestApp, p: &Paid, at: &str, n: &str) {
    let events = app.standin.events();
    app.deliver_at(
        event(&events, "charge.succeeded", &p.charge),
        at,
        &format!("evt_ch_{n}"),
    )
    .await;
    app.deliver_at(
        event(&events, "checkout.session.completed", &p.session),
        at,
        &format!("evt_cs_{n}"),
    )
    .await;
}

async fn dispute(app: &TestApp, p: &Paid, outcome: &str, opened: &str, closed: &str, n: &str) {
    let base = app.standin.base_url();
    let d: Value = app
        .http
        .post(format!("{base}_sim/charges/{}/dispute", p.charge))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = d["id"].as_str().unwrap().to_string();
    let res = app
        .http
        .post(format!("{base}_sim/disputes/{id}/close?status={outcome}"))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let events = app.standin.events();
    app.deliver_at(
        event(&events, "charge.dispute.created", &id),
        opened,
        &format!("evt_dpc_{n}"),
    )
    .await;
    app.deliver_at(
        event(&events, "charge.dispute.closed", &id),
        closed,
        &format!("evt_dpx_{n}"),
    )
    .await;
}

struct Known {
    app: TestApp,
    fin: String,
    viewer: String,
    g1: Paid,
    g2: Paid,
    g4: Paid,
}

/// The ledger's story, reported in New York:
/// - Ada gives $50.00 (campaign spring, from the newsletter) on 2025-06-10, and $10.00 of it
///   is refunded on 2026-01-05;
/// - Bo gives $25.00 at 03:00 UTC on 1 January 2026, still 31 December 2025 in New York,
///   and loses a dispute over it on 2026-02-01;
/// - Cy gives €30.00 (campaign spring) on 2026-02-15 and $12.00 on 2026-03-01, disputes the
///   $12.00 and the newsroom wins on 2026-03-10.
///
/// Stripe's fee (2.9% + 30, half up): 5000 → 175, 2500 → 103, 3000 → 117, 1200 → 65.
async fn known_ledger(opts: PgConnectOptions) -> Known {
    let app = spawn_app_with(
        opts,
        &[
            ("REPORT_TIME_ZONE", "America/New_York"),
            ("CURRENCIES", CURRENCIES),
        ],
    )
    .await;
    app.standin.pause_deliveries(true);
    let g1 = give(
        &app,
        json!({"amount": 5000, "frequency": "once", "currency": "usd", "campaign": "spring",
               "utm_source": "newsletter", "utm_medium": "email", "utm_campaign": "s25"}),
        "ada@example.org",
        "Ada Lovelace",
    )
    .await;
    let g2 = give(
        &app,
        json!({"amount": 2500, "frequency": "once", "currency": "usd"}),
        "bo@example.org",
        "Bo \"the\" Builder, Jr.",
    )
    .await;
    let g3 = give(
        &app,
        json!({"amount": 3000, "frequency": "once", "currency": "eur", "campaign": "spring"}),
        "cy@example.org",
        "Cy",
    )
    .await;
    let g4 = give(
        &app,
        json!({"amount": 1200, "frequency": "once", "currency": "usd"}),
        "cy@example.org",
        "Cy",
    )
    .await;
    paid_at(&app, &g1, "2025-06-10T15:00:00Z", "1").await;
    paid_at(&app, &g2, "2026-01-01T03:00:00Z", "2").await;
    paid_at(&app, &g3, "2026-02-15T12:00:00Z", "3").await;
    paid_at(&app, &g4, "2026-03-01T12:00:00Z", "4").await;

    let refund: Value = app
        .http
        .post(format!("{}v1/refunds", app.standin.base_url()))
        .bearer_auth(chipin::stripe::standin::SECRET_KEY)
        .form(&[
            ("payment_intent", g1.payment_intent.as_str()),
            ("amount", "1000"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = app.standin.events();
    app.deliver_at(
        event(&events, "refund.created", refund["id"].as_str().unwrap()),
        "2026-01-05T12:00:00Z",
        "evt_refund",
    )
    .await;
    dispute(
        &app,
        &g2,
        "lost",
        "2026-01-20T12:00:00Z",
        "2026-02-01T12:00:00Z",
        "2",
    )
    .await;
    dispute(
        &app,
        &g4,
        "won",
        "2026-03-05T12:00:00Z",
        "2026-03-10T12:00:00Z",
        "4",
    )
    .await;

    let fin = staff::add(&app.db, "fin", Role::Finance).await.unwrap();
    let viewer = staff::add(&app.db, "vic", Role::Viewer).await.unwrap();
    Known {
        app,
        fin,
        viewer,
        g1,
        g2,
        g4,
    }
}

async fn get(app: &TestApp, token: Option<&str>, path: &str, accept: &str) -> reqwest::Response {
    let mut req = app
        .http
        .get(format!("{}{path}", app.address))
        .header("accept", accept);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

async fn lines(app: &TestApp, token: &str, path: &str) -> Vec<Value> {
    let res = get(app, Some(token), path, "application/x-ndjson").await;
    assert_eq!(res.status(), 200, "{path}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-ndjson")
    );
    res.text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A small RFC 4180 reader: quoted fields, doubled quotes, commas inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (c, quoted) {
                ('"', true) if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                ('"', true) => quoted = false,
                ('"', false) if field.is_empty() => quoted = true,
                (',', false) => row.push(std::mem::take(&mut field)),
                (c, _) => field.push(c),
            }
        }
        row.push(field);
        rows.push(row);
    }
    rows
}

async fn csv(app: &TestApp, token: &str, path: &str) -> Vec<HashMap<String, String>> {
    let res = get(app, Some(token), path, "text/csv").await;
    assert_eq!(res.status(), 200, "{path}");
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let rows = parse_csv(&res.text().await.unwrap());
    let header = rows[0].clone();
    rows[1..]
        .iter()
        .map(|r| {
            assert_eq!(r.len(), header.len(), "{r:?}");
            header.iter().cloned().zip(r.iter().cloned()).collect()
        })
        .collect()
}

/// (kind, date, status, amount, currency, fee, net, email)
type Brief = (
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    i64,
    Option<String>,
);

fn brief(r: &Value) -> Brief {
    (
        r["kind"].as_str().unwrap().into(),
        r["date"].as_str().unwrap().into(),
        r["status"].as_str().unwrap().into(),
        r["amount"].as_i64().unwrap(),
        r["currency"].as_str().unwrap().into(),
        r["fee"].as_i64(),
        r["net"].as_i64().unwrap(),
        r["donor_email"].as_str().map(str::to_string),
    )
}

fn b(
    kind: &str,
    date: &str,
    status: &str,
    amount: i64,
    currency: &str,
    fee: Option<i64>,
    email: &str,
) -> Brief {
    (
        kind.into(),
        date.into(),
        status.into(),
        amount,
        currency.into(),
        fee,
        amount - fee.unwrap_or(0),
        Some(email.into()),
    )
}

#[sqlx::test]
async fn the_gifts_export_has_every_gift_refund_and_dispute(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let k = known_ledger(opts).await;
    let app = &k.app;
    let all = lines(
        app,
        &k.fin,
        "/api/reports/gifts?from=2025-01-01&to=2026-12-31",
    )
    .await;
    let ada = "ada@example.org";
    let bo = "bo@example.org";
    let cy = "cy@example.org";
    assert_eq!(
        all.iter().map(brief).collect::<Vec<_>>(),
        vec![
            b("gift", "2025-06-10", "paid", 5000, "usd", Some(175), ada),
            // 03:00 UTC on 1 January is still 31 December in New York.
            b("gift", "2025-12-31", "paid", 2500, "usd", Some(103), bo),
            b("refund", "2026-01-05", "succeeded", -1000, "usd", None, ada),
            b("dispute", "2026-02-01", "lost", -2500, "usd", None, bo),
            b("gift", "2026-02-15", "paid", 3000, "eur", Some(117), cy),
            b("gift", "2026-03-01", "paid", 1200, "usd", Some(65), cy),
            // A won dispute is listed, and takes nothing away.
            b("dispute", "2026-03-10", "won", 0, "usd", None, cy),
        ]
    );
    // Every field of the first rows, by hand.
    let g1 = &all[0];
    assert_eq!(g1["at"], "2025-06-10T15:00:00Z");
    assert_eq!(g1["donor_name"], "Ada Lovelace");
    assert_eq!(g1["frequency"], "once");
    assert_eq!(g1["campaign"], "spring");
    assert_eq!(g1["utm_source"], "newsletter");
    assert_eq!(g1["utm_medium"], "email");
    assert_eq!(g1["utm_campaign"], "s25");
    assert_eq!(g1["covered_fee"], 0);
    assert_eq!(g1["payment_intent_id"], k.g1.payment_intent.as_str());
    assert_eq!(g1["charge_id"], k.g1.charge.as_str());
    assert_eq!(g1["checkout_session_id"], k.g1.session.as_str());
    assert_eq!(g1["refund_id"], Value::Null);
    assert_eq!(g1["invoice_id"], Value::Null);
    assert_eq!(g1["subscription_id"], Value::Null);
    let refund = &all[2];
    assert_eq!(refund["gift_id"], g1["gift_id"]);
    assert_eq!(refund["campaign"], "spring");
    assert!(refund["refund_id"].as_str().unwrap().starts_with("re_"));
    assert_eq!(refund["payment_intent_id"], k.g1.payment_intent.as_str());
    let lost = &all[3];
    assert_eq!(lost["charge_id"], k.g2.charge.as_str());
    assert!(lost["dispute_id"].as_str().unwrap().starts_with("dp_"));
    assert_eq!(lost["donor_name"], "Bo \"the\" Builder, Jr.");
    assert_eq!(all[6]["charge_id"], k.g4.charge.as_str());

    // Days are cut in New York: 2026 starts after Bo's gift.
    let this_year = lines(
        app,
        &k.fin,
        "/api/reports/gifts?from=2026-01-01&to=2026-12-31",
    )
    .await;
    assert_eq!(this_year.len(), 5);
    assert_eq!(this_year[0]["kind"], "refund");
    let day = lines(
        app,
        &k.fin,
        "/api/reports/gifts?from=2025-12-31&to=2025-12-31",
    )
    .await;
    assert_eq!(
        day.iter().map(brief).collect::<Vec<_>>(),
        vec![b("gift", "2025-12-31", "paid", 2500, "usd", Some(103), bo)]
    );
    // A campaign: its gifts and what befell them.
    let spring = lines(
        app,
        &k.fin,
        "/api/reports/gifts?from=2025-01-01&to=2026-12-31&campaign=spring",
    )
    .await;
    assert_eq!(
        spring
            .iter()
            .map(|r| (r["kind"].as_str().unwrap(), r["amount"].as_i64().unwrap()))
            .collect::<Vec<_>>(),
        vec![("gift", 5000), ("refund", -1000), ("gift", 3000)]
    );

    // The rows add up to the summary's net for the same range and currency.
    let usd_net: i64 = this_year
        .iter()
        .filter(|r| r["currency"] == "usd")
        .map(|r| r["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(usd_net, 1200 - 1000 - 2500);
    let summary: Value = get(
        app,
        Some(&k.fin),
        "/api/reports/summary?from=2026-01-01&to=2026-12-31&interval=year&currency=usd",
        "application/json",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(summary["total"]["net"], usd_net);
}

#[sqlx::test]
async fn csv_carries_exactly_the_json_lines(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let k = known_ledger(opts).await;
    let q = "/api/reports/gifts?from=2025-01-01&to=2026-12-31";
    let json = lines(&k.app, &k.fin, q).await;
    let rows = csv(&k.app, &k.fin, q).await;
    assert_eq!(rows.len(), json.len());
    for (r, j) in rows.iter().zip(&json) {
        let object = j.as_object().unwrap();
        assert_eq!(r.len(), object.len(), "the same columns");
        for (name, value) in object {
            let expected = match value {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(r[name], expected, "{name}");
        }
    }
    // Streamed as it is read: no length known up front.
    let res = get(&k.app, Some(&k.fin), q, "text/csv").await;
    assert!(res.headers().get("content-length").is_none());
    assert_eq!(res.headers()["transfer-encoding"], "chunked");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"gifts-2025-01-01-2026-12-31.csv\"")
    );
    // format=csv is the same as Accept: text/csv.
    let by_accept = get(&k.app, Some(&k.fin), q, "text/csv")
        .await
        .text()
        .await
        .unwrap();
    let by_format = get(&k.app, Some(&k.fin), &format!("{q}&format=csv"), "*/*")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(by_accept, by_format);
    assert!(by_accept.starts_with(
        "kind,date,at,status,gift_id,donor_id,donor_name,donor_email,amount,currency,fee,net,"
    ));
}

#[sqlx::test]
async fn a_donors_history_and_yearly_totals(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let k = known_ledger(opts).await;
    let res = get(
        &k.app,
        Some(&k.fin),
        "/api/reports/donors/ADA@Example.org",
        "application/json",
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["donor"]["email"], "ada@example.org");
    assert_eq!(body["donor"]["name"], "Ada Lovelace");
    assert_eq!(body["time_zone"], "America/New_York");
    let history: Vec<(&str, i64)> = body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["amount"].as_i64().unwrap()))
        .collect();
    assert_eq!(history, vec![("gift", 5000), ("refund", -1000)]);
    assert_eq!(
        body["years"],
        json!([
            {"year": 2025, "currency": "usd", "gifts": 1, "gross": 5000, "refunded": 0, "disputed": 0, "net": 5000},
            {"year": 2026, "currency": "usd", "gifts": 0, "gross": 0, "refunded": 1000, "disputed": 0, "net": -1000},
        ])
    );
    // Cy gave in two currencies: never added together.
    let cy: Value = get(
        &k.app,
        Some(&k.fin),
        "/api/reports/donors/cy@example.org",
        "application/json",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        cy["years"],
        json!([
            {"year": 2026, "currency": "eur", "gifts": 1, "gross": 3000, "refunded": 0, "disputed": 0, "net": 3000},
            {"year": 2026, "currency": "usd", "gifts": 1, "gross": 1200, "refunded": 0, "disputed": 0, "net": 1200},
        ])
    );
    let unknown = get(
        &k.app,
        Some(&k.fin),
        "/api/reports/donors/nobody@example.org",
        "application/json",
    )
    .await;
    assert_eq!(unknown.status(), 404);
}

#[sqlx::test]
async fn statements_and_lybunt_per_donor_and_year(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let k = known_ledger(opts).await;
    let app = &k.app;
    let totals = |gifts: i64, gross: i64, refunded: i64, disputed: i64| {
        json!({"gifts": gifts, "gross": gross, "refunded": refunded, "disputed": disputed,
               "net": gross - refunded - disputed})
    };
    let y2025 = lines(app, &k.fin, "/api/reports/statements?year=2025").await;
    let pick = |rows: &[Value]| -> Vec<(String, Value)> {
        rows.iter()
            .map(|r| {
                (
                    r["email"].as_str().unwrap().to_string(),
                    r["totals"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        pick(&y2025),
        vec![
            (
                "ada@example.org".into(),
                json!({"usd": totals(1, 5000, 0, 0)})
            ),
            // Bo's gift fell on 31 December in New York.
            (
                "bo@example.org".into(),
                json!({"usd": totals(1, 2500, 0, 0)})
            ),
        ]
    );
    let y2026 = lines(app, &k.fin, "/api/reports/statements?year=2026").await;
    assert_eq!(
        pick(&y2026),
        vec![
            // The refund and the lost dispute reduce the year they happen in.
            (
                "ada@example.org".into(),
                json!({"usd": totals(0, 0, 1000, 0)})
            ),
            (
                "bo@example.org".into(),
                json!({"usd": totals(0, 0, 0, 2500)})
            ),
            (
                "cy@example.org".into(),
                json!({"eur": totals(1, 3000, 0, 0), "usd": totals(1, 1200, 0, 0)})
            ),
        ]
    );
    assert_eq!(y2026[2]["name"], "Cy");
    assert_eq!(y2026[2]["year"], 2026);
    // The CSV: one line per donor, a column group per configured currency.
    let rows = csv(app, &k.fin, "/api/reports/statements?year=2026").await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2]["email"], "cy@example.org");
    assert_eq!(rows[2]["usd_net"], "1200");
    assert_eq!(rows[2]["eur_net"], "3000");
    assert_eq!(rows[0]["usd_refunded"], "1000");
    assert_eq!(rows[0]["usd_net"], "-1000");
    assert_eq!(rows[0]["eur_net"], "0");
    assert_eq!(rows[1]["name"], "Bo \"the\" Builder, Jr.");

    // LYBUNT 2026: Ada and Bo gave in 2025 and not in 2026; Cy gave in 2026.
    let lybunt = csv(app, &k.fin, "/api/reports/lybunt?year=2026").await;
    assert_eq!(
        lybunt
            .iter()
            .map(|r| (
                r["email"].as_str(),
                r["last_gift_date"].as_str(),
                r["last_year_usd_gifts"].as_str(),
                r["last_year_usd_gross"].as_str(),
                r["last_year_eur_gross"].as_str()
            ))
            .collect::<Vec<_>>(),
        vec![
            ("ada@example.org", "2025-06-10", "1", "5000", "0"),
            ("bo@example.org", "2025-12-31", "1", "2500", "0"),
        ]
    );
    let lybunt_2027 = csv(app, &k.fin, "/api/reports/lybunt?year=2027").await;
    assert_eq!(
        lybunt_2027
            .iter()
            .map(|r| (
                r["email"].as_str(),
                r["last_year_usd_gross"].as_str(),
                r["last_year_eur_gross"].as_str()
            ))
            .collect::<Vec<_>>(),
        vec![("cy@example.org", "1200", "3000")]
    );
    // The default answer of the LYBUNT list is CSV.
    let res = get(app, Some(&k.fin), "/api/reports/lybunt?year=2026", "*/*").await;
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
}

#[sqlx::test]
async fn finance_only_and_every_access_is_audited(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let k = known_ledger(opts).await;
    let app = &k.app;
    let paths = [
        "/api/reports/gifts?from=2026-01-01&to=2026-01-31",
        "/api/reports/donors/ada@example.org",
        "/api/reports/statements?year=2026",
        "/api/reports/lybunt?year=2026",
    ];
    for path in paths {
        assert_eq!(get(app, None, path, "*/*").await.status(), 401, "{path}");
        assert_eq!(
            get(app, Some("chipin_nope"), path, "*/*").await.status(),
            401,
            "{path}"
        );
        let res = get(app, Some(&k.viewer), path, "*/*").await;
        assert_eq!(res.status(), 403, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        // The token never travels in a URL.
        let sep = if path.contains('?') { '&' } else { '?' };
        assert_eq!(
            get(app, None, &format!("{path}{sep}token={}", k.fin), "*/*")
                .await
                .status(),
            400
        );
    }
    let audited: i64 = sqlx::query_scalar("select count(*) from audit_log")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        audited, 0,
        "refused requests see nothing and leave no access"
    );
    for path in paths {
        let res = get(app, Some(&k.fin), path, "*/*").await;
        assert_eq!(res.status(), 200, "{path}");
        res.bytes().await.unwrap();
    }
    // An admin may too.
    let admin = staff::add(&app.db, "root", Role::Admin).await.unwrap();
    assert_eq!(get(app, Some(&admin), paths[2], "*/*").await.status(), 200);
    let log: Vec<(String, String, Option<String>, bool)> = sqlx::query_as(
        "select staff_name, action, subject, at > now() - interval '1 minute' from audit_log order by id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        log,
        vec![
            (
                "fin".into(),
                "report.gifts".into(),
                s("2026-01-01..2026-01-31"),
                true
            ),
            (
                "fin".into(),
                "report.donor".into(),
                s("ada@example.org"),
                true
            ),
            ("fin".into(), "report.statements".into(), s("2026"), true),
            ("fin".into(), "report.lybunt".into(), s("2026"), true),
            ("root".into(), "report.statements".into(), s("2026"), true),
        ]
    );
    // After revocation the token opens nothing.
    staff::revoke(&app.db, "fin").await.unwrap();
    assert_eq!(get(app, Some(&k.fin), paths[0], "*/*").await.status(), 401);
}

#[sqlx::test]
async fn bad_ledger_parameters_are_400_naming_the_parameter(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(opts, &[]).await;
    let token = staff::add(&app.db, "fin", Role::Finance).await.unwrap();
    for (path, param) in [
        ("/api/reports/gifts?to=2026-01-31", "from"),
        ("/api/reports/gifts?from=2026-01-01&to=31.01.2026", "to"),
        ("/api/reports/gifts?from=2026-02-01&to=2026-01-31", "from"),
        (
            "/api/reports/gifts?from=2026-01-01&to=2026-01-31&campaign=Not%20a%20slug!",
            "campaign",
        ),
        (
            "/api/reports/gifts?from=2026-01-01&to=2026-01-31&format=xml",
            "format",
        ),
        ("/api/reports/statements", "year"),
        ("/api/reports/statements?year=26", "year"),
        ("/api/reports/lybunt?year=twenty", "year"),
    ] {
        let res = get(&app, Some(&token), path, "*/*").await;
        assert_eq!(res.status(), 400, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], param, "{path}");
    }
    // An empty ledger is a header and nothing else.
    let text = get(
        &app,
        Some(&token),
        "/api/reports/gifts?from=2026-01-01&to=2026-01-31",
        "text/csv",
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(text.lines().count(), 1);
}

#[sqlx::test]
async fn the_dashboard_shows_the_summary_in_a_real_browser(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let k = known_ledger(opts).await;
    let app = &k.app;
    // Served by us with the reader pages' headers: no inline script or style anywhere.
    let page = get(app, None, "/reports", "text/html").await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"));
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/static/reports.js" defer></script>"#));
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("style="));
    let js = get(app, None, "/static/reports.js", "*/*").await;
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );

    if !crate::browser::available_or_skip() {
        return;
    }
    let driver = crate::browser::Driver::start().await;
    let b = driver.session().await;
    b.goto(&format!(
        "{}/reports#from=2026-01-01&to=2026-03-31&interval=month&currency=usd",
        app.address
    ))
    .await;
    b.size(1280, 900).await;
    b.wait_for("#token").await;
    b.type_into("#token", &k.fin).await;
    b.click("#save-token").await;
    // January: Ada's refund; February: Bo's lost dispute; March: Cy's gift (the won dispute
    // takes nothing away).
    b.wait_for("#total-net td").await;
    b.wait_for_text("#total-net td", "-23.00").await;
    assert_eq!(b.text("#total-gross td").await, "12.00");
    assert_eq!(b.text("#total-refunded td").await, "10.00");
    assert_eq!(b.text("#total-disputed td").await, "25.00");
    assert_eq!(b.text("#total-gifts td").await, "1");
    let net = |m: &str| format!(r#"#periods tr[data-start="2026-{m}-01"] td[data-key="net"]"#);
    assert_eq!(b.text(&net("01")).await, "-10.00");
    assert_eq!(b.text(&net("02")).await, "-25.00");
    assert_eq!(b.text(&net("03")).await, "12.00");
    // The chart's bars carry the one-time / recurring split of each period's net.
    let bar = |m: &str| format!(r#"#chart g.bar[data-label="2026-{m}-01"]"#);
    assert_eq!(
        b.attribute(&bar("03"), "data-one-time").await.as_deref(),
        Some("1200")
    );
    assert_eq!(
        b.attribute(&bar("03"), "data-recurring").await.as_deref(),
        Some("0")
    );
    assert_eq!(
        b.attribute(&bar("02"), "data-one-time").await.as_deref(),
        Some("-2500")
    );
    assert!(b.exists("#chart svg rect.one-time").await);
    // The token stays in this tab's session storage, never in the URL: a reload needs no
    // token and shows the same figures.
    assert!(!b.url().await.contains(&k.fin));
    b.goto("about:blank").await;
    b.goto(&format!(
        "{}/reports#from=2026-02-01&to=2026-02-28&interval=month&currency=usd",
        app.address
    ))
    .await;
    b.wait_for("#total-net td").await;
    b.wait_for_text("#total-net td", "-25.00").await;
    // Euros on their own.
    b.goto(&format!(
        "{}/reports#from=2026-01-01&to=2026-03-31&interval=month&currency=eur",
        app.address
    ))
    .await;
    b.wait_for("#total-net td").await;
    b.wait_for_text("#total-net td", "30.00").await;
    assert_eq!(b.text(&net("02")).await, "30.00");
    b.screenshot(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target/screenshots/reports-dashboard-1280x900.png"),
    )
    .await;
    b.quit().await;
}
