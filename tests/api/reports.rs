//! Reports: staff access, and summary figures built through the webhook path and checked
//! against expectations computed by hand.

use chipin::reports::staff::{self, Role};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, receiver, spawn_app, spawn_app_with};

async fn summary(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.http
        .get(format!("{}/api/reports/summary?{query}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn only_valid_unrevoked_tokens_in_the_header_get_in(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let token = staff::add(&app.db, "ada", Role::Viewer).await.unwrap();
    let q = "from=2026-01-01&to=2026-01-31&interval=day&currency=usd";
    assert_eq!(summary(&app, &token, q).await.status(), 200);
    let no_token = app
        .http
        .get(format!("{}/api/reports/summary?{q}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(summary(&app, "chipin_not_a_token", q).await.status(), 401);
    let in_query = app
        .http
        .get(format!(
            "{}/api/reports/summary?{q}&token={token}",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 400);
    // The hash is stored, never the token.
    let stored: i64 = sqlx::query_scalar("select count(*) from staff where token_hash = $1")
        .bind(&token)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    staff::revoke(&app.db, "ada").await.unwrap();
    assert_eq!(summary(&app, &token, q).await.status(), 401);
}

#[sqlx::test]
async fn bad_summary_parameters_are_400_naming_the_parameter(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let token = staff::add(&app.db, "ada", Role::Viewer).await.unwrap();
    for (query, param) in [
        ("from=2026-02-01&to=2026-01-01", "from"),
        (
            "from=2026-01-01&to=2026-02-01&interval=fortnight",
            "interval",
        ),
        ("from=2020-01-01&to=2026-02-01", "to"),
        ("from=2026-01-01&to=2026-02-01&currency=jpy", "currency"),
        ("to=2026-02-01", "from"),
    ] {
        let res = summary(&app, &token, query).await;
        assert_eq!(res.status(), 400, "{query}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["field"], param, "{query}");
    }
}

/// A ledger with known dates: the generator's stand-in makes real payments, and their events
/// are delivered with chosen times to a receiver configured with `tz`.
async fn dated_ledger(opts: PgConnectOptions, tz: &str) -> (TestApp, String) {
    let g = spawn_app(opts.clone()).await;
    g.standin.pause_deliveries(true);
    let mut sessions = Vec::new();
    for (amount, currency) in [(5000, "usd"), (2500, "usd"), (1000, "usd"), (3000, "eur")] {
        let created: Value = g
            .checkout(json!({"amount": amount, "frequency": "once", "currency": currency}))
            .await
            .json()
            .await
            .unwrap();
        g.pay(created["checkout_url"].as_str().unwrap()).await;
        sessions.push(
            g.standin
                .object(created["stripe_session_id"].as_str().unwrap())
                .unwrap(),
        );
    }
    let pi_a = sessions[0]["payment_intent"].as_str().unwrap().to_string();
    let refund = g
        .http
        .post(format!("{}v1/refunds", g.standin.base_url()))
        .bearer_auth(chipin::stripe::standin::SECRET_KEY)
        .form(&[("payment_intent", pi_a.as_str()), ("amount", "1000")])
        .send()
        .await
        .unwrap();
    assert!(refund.status().is_success());
    let events = g.standin.events();
    let completed: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "checkout.session.completed")
        .collect();
    let refund_created = events
        .iter()
        .find(|e| e["type"] == "refund.created")
        .unwrap();

    let r = receiver(&opts, &g, "rep", &[("REPORT_TIME_ZONE", tz)]).await;
    r.deliver_at(completed[0], "2026-01-15T12:00:00Z", "evt_a")
        .await;
    r.deliver_at(completed[1], "2026-02-10T12:00:00Z", "evt_b")
        .await;
    // Late on 31 January in UTC: still January in New York, already February in Auckland.
    r.deliver_at(completed[2], "2026-01-31T23:30:00Z", "evt_c")
        .await;
    r.deliver_at(completed[3], "2026-01-20T12:00:00Z", "evt_eur")
        .await;
    // A refund of January's gift, made in March, counts in March.
    r.deliver_at(refund_created, "2026-03-05T12:00:00Z", "evt_refund")
        .await;
    let token = staff::add(&r.db, "fin", Role::Finance).await.unwrap();
    (r, token)
}

fn month(body: &Value, i: usize) -> (i64, i64, i64, i64) {
    let p = &body["periods"][i];
    (
        p["gross"].as_i64().unwrap(),
        p["refunded"].as_i64().unwrap(),
        p["net"].as_i64().unwrap(),
        p["gifts"].as_i64().unwrap(),
    )
}

#[sqlx::test]
async fn monthly_figures_match_the_ledger_in_new_york(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (app, token) = dated_ledger(opts, "America/New_York").await;
    let res = summary(
        &app,
        &token,
        "from=2026-01-01&to=2026-03-31&interval=month&currency=usd",
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["time_zone"], "America/New_York");
    assert_eq!(body["periods"].as_array().unwrap().len(), 3);
    assert_eq!(month(&body, 0), (5000 + 1000, 0, 6000, 2));
    assert_eq!(month(&body, 1), (2500, 0, 2500, 1));
    assert_eq!(month(&body, 2), (0, 1000, -1000, 0));
    assert_eq!(body["total"]["gross"], 8500);
    assert_eq!(body["total"]["net"], 7500);
    assert_eq!(body["total"]["one_time_net"], 7500);
    // Stripe's fees (2.9% + 30) of the three usd gifts, from their balance transactions
    // would need charge events; none were delivered, so no fee is known yet.
    assert_eq!(body["total"]["fees"], 0);

    // The euro gift is never added to dollars.
    let eur: Value = summary(
        &app,
        &token,
        "from=2026-01-01&to=2026-03-31&interval=year&currency=eur",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(eur["total"]["gross"], 3000);
    assert_eq!(eur["periods"].as_array().unwrap().len(), 1);
}

#[sqlx::test]
async fn the_same_instant_falls_in_february_in_auckland(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (app, token) = dated_ledger(opts, "Pacific/Auckland").await;
    let body: Value = summary(
        &app,
        &token,
        "from=2026-01-01&to=2026-03-31&interval=month&currency=usd",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(month(&body, 0), (5000, 0, 5000, 1));
    assert_eq!(month(&body, 1), (2500 + 1000, 0, 3500, 2));
}

#[sqlx::test]
async fn csv_carries_the_same_figures_as_json(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let (app, token) = dated_ledger(opts, "UTC").await;
    let q = "from=2026-01-01&to=2026-03-31&interval=month&currency=usd";
    let json: Value = summary(&app, &token, q).await.json().await.unwrap();
    let csv = app
        .http
        .get(format!("{}/api/reports/summary?{q}", app.address))
        .bearer_auth(&token)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4, "three months and the total");
    for (i, row) in rows.iter().enumerate() {
        let source = if i < 3 {
            &json["periods"][i]
        } else {
            &json["total"]
        };
        for (name, value) in header.iter().zip(row) {
            match *name {
                "period" => assert_eq!(
                    *value,
                    if i < 3 {
                        source["start"].as_str().unwrap()
                    } else {
                        "total"
                    }
                ),
                "currency" => assert_eq!(*value, "usd"),
                _ => assert_eq!(
                    value.parse::<i64>().unwrap(),
                    source[*name].as_i64().unwrap(),
                    "{name} row {i}"
                ),
            }
        }
    }
    let by_format = summary(&app, &token, &format!("{q}&format=csv"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(by_format, text);
}

#[sqlx::test]
async fn staff_commands_add_list_and_revoke(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts.clone()).await;
    let url = crate::helpers::database_url(&opts);
    let run = |args: Vec<&'static str>| {
        let url = url.clone();
        async move {
            let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipin"))
                .args(args)
                .env_clear()
                .env("DATABASE_URL", url)
                .output()
                .await
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        }
    };
    let (ok, token) = run(vec!["staff", "add", "grace", "--role", "finance"]).await;
    assert!(ok);
    let token = token.trim().to_string();
    assert!(token.starts_with("chipin_"));
    assert_eq!(
        summary(&app, &token, "from=2026-01-01&to=2026-01-02")
            .await
            .status(),
        200
    );
    let (ok, listed) = run(vec!["staff", "list"]).await;
    assert!(ok && listed.contains("grace\tfinance") && !listed.contains(&token));
    let (ok, _) = run(vec!["staff", "add", "grace", "--role", "viewer"]).await;
    assert!(!ok, "names are unique");
    let (ok, _) = run(vec!["staff", "revoke", "grace"]).await;
    assert!(ok);
    assert_eq!(
        summary(&app, &token, "from=2026-01-01&to=2026-01-02")
            .await
            .status(),
        401
    );
}

/// Pays a one-time gift from `email` on the generator; returns its checkout.session.completed.
async fn give(g: &TestApp, email: &str, amount: i64) -> Value {
    let created: Value = g
        .checkout(json!({"amount": amount, "frequency": "once", "email": email}))
        .await
        .json()
        .await
        .unwrap();
    g.pay(created["checkout_url"].as_str().unwrap()).await;
    let session = created["stripe_session_id"].as_str().unwrap().to_string();
    g.standin
        .events()
        .into_iter()
        .find(|e| {
            e["type"] == "checkout.session.completed"
                && e["data"]["object"]["id"] == session.as_str()
        })
        .unwrap()
}

#[sqlx::test]
async fn donor_bands_and_the_small_donor_line_follow_each_donors_year(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = spawn_app_with(opts.clone(), &[("MAX_AMOUNT", "10000000")]).await;
    g.standin.pause_deliveries(true);
    let at_threshold = give(&g, "exactly200@example.org", 20_000).await;
    let crosser_jan = give(&g, "crosser@example.org", 15_000).await;
    let crosser_mar = give(&g, "crosser@example.org", 10_000).await;
    let just_small = give(&g, "small@example.org", 99_999).await;
    let mid = give(&g, "mid@example.org", 100_000).await;
    let major = give(&g, "major@example.org", 500_000).await;
    let r = receiver(&opts, &g, "bands", &[]).await;
    r.deliver_at(&at_threshold, "2026-01-10T12:00:00Z", "evt_1")
        .await;
    r.deliver_at(&crosser_jan, "2026-01-20T12:00:00Z", "evt_2")
        .await;
    r.deliver_at(&just_small, "2026-01-25T12:00:00Z", "evt_3")
        .await;
    r.deliver_at(&mid, "2026-02-01T12:00:00Z", "evt_4").await;
    r.deliver_at(&major, "2026-02-02T12:00:00Z", "evt_5").await;
    let token = staff::add(&r.db, "fin", Role::Viewer).await.unwrap();
    let q = "from=2026-01-01&to=2026-03-31&interval=month&currency=usd";

    let body: Value = summary(&r, &token, q).await.json().await.unwrap();
    let jan = &body["periods"][0]["donor_figures"];
    assert_eq!(jan["donors"], 3);
    assert_eq!(jan["new_donors"], 3);
    // At the threshold counts; 150 so far this year counts too, before the March gift.
    assert_eq!(jan["donors_at_or_under_threshold"], 2);
    assert_eq!(jan["net_at_or_under_threshold"], 20_000 + 15_000);
    let band = |p: &Value, name: &str| {
        p["bands"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["band"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(band(jan, "small")["donors"], 3);
    let feb = &body["periods"][1]["donor_figures"];
    assert_eq!(band(feb, "mid")["donors"], 1);
    assert_eq!(band(feb, "major")["donors"], 1);
    assert_eq!(band(feb, "major")["net"], 500_000);
    assert_eq!(band(feb, "small")["donors"], 0);
    assert!((band(feb, "major")["share"].as_f64().unwrap() - 500_000.0 / 600_000.0).abs() < 1e-9);

    // The March gift takes the crosser over the line for the whole year: January changes.
    r.deliver_at(&crosser_mar, "2026-03-03T12:00:00Z", "evt_6")
        .await;
    let body: Value = summary(&r, &token, q).await.json().await.unwrap();
    let jan = &body["periods"][0]["donor_figures"];
    assert_eq!(jan["donors_at_or_under_threshold"], 1);
    assert_eq!(jan["net_at_or_under_threshold"], 20_000);
    let mar = &body["periods"][2]["donor_figures"];
    assert_eq!(
        (mar["donors"].as_i64(), mar["new_donors"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(body["total_donors"], 5);
    assert_eq!(body["total_new_donors"], 5);
    assert_eq!(
        body["periods"][0]["average_gift"],
        (20_000 + 15_000 + 99_999) / 3
    );
    assert_eq!(body["periods"][0]["median_gift"], 20_000);
    assert_eq!(body["retention"][0]["new"], 5);
}

#[sqlx::test]
async fn a_range_cut_inside_months_counts_its_own_donors_and_median(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = spawn_app(opts.clone()).await;
    g.standin.pause_deliveries(true);
    // (donor, amount, paid at): the range is 2026-01-15 to 2026-02-20 in UTC.
    let gifts = [
        ("before", 1000, "2026-01-05T12:00:00Z"),
        ("inside", 3000, "2026-01-20T12:00:00Z"),
        ("inside", 7000, "2026-02-01T12:00:00Z"),
        ("inside", 1200, "2026-02-15T12:00:00Z"),
        ("after", 9000, "2026-03-01T12:00:00Z"),
        // Gave the day before the range and the day after it: not in it.
        ("spanning", 1100, "2026-01-14T12:00:00Z"),
        ("spanning", 1300, "2026-02-21T00:30:00Z"),
        ("old", 2000, "2025-12-01T12:00:00Z"),
        ("old", 4000, "2026-02-20T23:30:00Z"),
        ("edge", 5000, "2026-01-15T00:30:00Z"),
        ("returning", 1500, "2026-01-14T12:00:00Z"),
        ("returning", 2500, "2026-01-15T12:00:00Z"),
    ];
    let mut events = Vec::new();
    for (donor, amount, _) in gifts {
        events.push(give(&g, &format!("{donor}@example.org"), amount).await);
    }
    let r = receiver(&opts, &g, "range", &[]).await;
    for (i, (e, (_, _, at))) in events.iter().zip(gifts).enumerate() {
        r.deliver_at(e, at, &format!("evt_{i}")).await;
    }
    let token = staff::add(&r.db, "fin", Role::Viewer).await.unwrap();
    let body: Value = summary(
        &r,
        &token,
        "from=2026-01-15&to=2026-02-20&interval=month&currency=usd",
    )
    .await
    .json()
    .await
    .unwrap();
    // In the range: inside, old, edge, returning. First gifts ever in it: inside, edge.
    assert_eq!(body["total_donors"], 4);
    assert_eq!(body["total_new_donors"], 2);
    // 1200, 2500, 3000, 4000, 5000, 7000: the smallest with half the gifts at or under it.
    assert_eq!(body["total_median_gift"], 3000);
    // January from the 15th: 2500, 3000, 5000; February to the 20th: 1200, 4000, 7000.
    assert_eq!(body["periods"][0]["median_gift"], 3000);
    assert_eq!(body["periods"][1]["median_gift"], 4000);
    // 2026: old gave in 2025 too; the six others are new.
    assert_eq!(
        body["retention"],
        json!([{"year": 2026, "retained": 1, "new": 6, "recovered": 0, "lapsed": 0}])
    );

    // A one-day range inside the spanning donor's gap, and one on its last day.
    let body: Value = summary(
        &r,
        &token,
        "from=2026-02-02&to=2026-02-14&interval=day&currency=usd",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["total_donors"], 0);
    assert_eq!(body["total_median_gift"], Value::Null);
    let body: Value = summary(
        &r,
        &token,
        "from=2026-02-21&to=2026-03-01&interval=week&currency=usd",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["total_donors"], 2);
    assert_eq!(body["total_new_donors"], 1);
    assert_eq!(body["total_median_gift"], 1300);
}

/// The ledger tables' indexes, as definitions, in name order.
async fn ledger_indexes(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "select indexdef from pg_indexes
         where tablename in ('gifts', 'charges', 'refunds', 'disputes') order by indexname",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// The bulk seed drops the ledger's secondary indexes for its load: they all come back, two
/// seeds add up instead of colliding, every seeded payment has its charge, and the kept
/// figures equal a recomputation (then still after a gift recorded by webhook on top).
#[sqlx::test]
async fn seeding_twice_adds_up_and_keeps_every_index(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    let indexes = ledger_indexes(&app).await;
    assert!(indexes.len() >= 12, "{indexes:?}");
    let bands = chipin::reports::aggregates::Bands::from_config(&app.config);
    let first = chipin::dev::seed(&app.db, 3000, &bands, "UTC")
        .await
        .unwrap();
    let second = chipin::dev::seed(&app.db, 3000, &bands, "UTC")
        .await
        .unwrap();
    assert_eq!(ledger_indexes(&app).await, indexes);
    let once: i64 = sqlx::query_scalar("select count(*) from gifts where frequency = 'once'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(once, 2 * 2100);
    assert!(
        second.gifts > first.gifts && second.gifts <= 6000,
        "{first:?} {second:?}"
    );
    assert_eq!(second.donors, 200);
    let without_charge: i64 = sqlx::query_scalar(
        "select count(*) from gifts g where not exists
           (select 1 from charges c where c.payment_intent_id = g.payment_intent_id)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(without_charge, 0);
    crate::webhooks::assert_kept_totals_equal_a_recomputation(&app).await;
    let session = crate::payouts::paid_checkout(&app, "once", 4200).await;
    assert_eq!(session["payment_status"], "paid");
    crate::payouts::wait_for_events(&app, 0).await;
    let recorded: i64 = sqlx::query_scalar(
        "select count(*) from gifts g join donors d on d.id = g.donor_id
         where d.email = 'reader@example.org' and g.state = 'paid' and g.amount = 4200",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(recorded, 1);
    crate::webhooks::assert_kept_totals_equal_a_recomputation(&app).await;
    // Seeded donors with years of history give again: their bands, retention and gaps move.
    let emails: Vec<String> = sqlx::query_scalar(
        "select email from donors where email like 'seed-%' order by email limit 4",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    for (i, email) in emails.iter().enumerate() {
        let frequency = if i % 2 == 0 { "once" } else { "monthly" };
        let res = app
            // Not whole dollars, unlike every seeded one-time gift: these are told apart.
            .checkout(json!({"amount": 30_001 + i as i64, "frequency": frequency, "email": email}))
            .await;
        assert_eq!(res.status(), 201);
        let created: Value = res.json().await.unwrap();
        let paid = app.pay(created["checkout_url"].as_str().unwrap()).await;
        assert_eq!(paid.status(), 303);
    }
    crate::payouts::wait_for_events(&app, 0).await;
    let regiven: i64 = sqlx::query_scalar(
        "select count(*) from gifts g join donors d on d.id = g.donor_id
         where d.email = any($1) and g.state = 'paid' and g.amount between 30001 and 30004",
    )
    .bind(&emails)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(regiven, 4);
    crate::webhooks::assert_kept_totals_equal_a_recomputation(&app).await;
}
