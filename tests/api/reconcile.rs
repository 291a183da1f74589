//! Reconciliation: a day of our ledger against the stand-in's balance transactions. A dropped
//! webhook is found and repaired once however many runs race; a tampered amount is reported
//! and left alone until a person acknowledges it; the schedule inside `serve` runs by itself.

use std::time::Duration;

use chipin::reconcile::{self, Outcome, RunReport, Trigger};
use chipin::reports::staff::{self, Role};
use chrono::NaiveDate;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, database_url, run_chipin, spawn_app, spawn_app_with};
use crate::payouts::{paid_checkout, stripe_call, wait_for_events};

/// The day (UTC, the tests' REPORT_TIME_ZONE) a stand-in object was created on.
fn day_of(object: &Value) -> NaiveDate {
    chrono::DateTime::from_timestamp(object["created"].as_i64().unwrap(), 0)
        .unwrap()
        .date_naive()
}

async fn reconcile(app: &TestApp, day: NaiveDate, repair: bool) -> RunReport {
    match reconcile::run(&app.cli_state(), day, repair, Trigger::Cli)
        .await
        .expect("reconcile runs")
    {
        Outcome::Done(r) => r,
        Outcome::Busy => panic!("nothing else holds {day}"),
    }
}

fn kinds(r: &RunReport) -> Vec<(String, String)> {
    r.open
        .iter()
        .map(|i| (i.kind.clone(), i.object_id.clone()))
        .collect()
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.db).await.unwrap()
}

fn charge_of(app: &TestApp, session: &Value) -> (String, String) {
    let pi = session["payment_intent"].as_str().unwrap().to_string();
    let charge = app.standin.object(&pi).unwrap()["latest_charge"]
        .as_str()
        .unwrap()
        .to_string();
    (pi, charge)
}

async fn chipin(args: &[&str], app: &TestApp, opts: &PgConnectOptions) -> (bool, String) {
    let env = [
        ("DATABASE_URL", database_url(opts)),
        (
            "STRIPE_SECRET_KEY",
            chipin::stripe::standin::SECRET_KEY.to_string(),
        ),
        ("STRIPE_API_BASE", app.standin.base_url()),
        ("STRIPE_WEBHOOK_SECRET", app.standin.secret().to_string()),
    ];
    run_chipin(args, &env).await
}

#[sqlx::test]
async fn a_dropped_webhook_is_found_and_repaired_exactly_once(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    paid_checkout(&app, "once", 2000).await;
    paid_checkout(&app, "monthly", 2500).await;
    wait_for_events(&app, 0).await;
    app.standin.pause_deliveries(true);
    let unseen = paid_checkout(&app, "once", 4000).await;
    let (pi, charge) = charge_of(&app, &unseen);
    let day = day_of(&app.standin.object(&charge).unwrap());

    // Found, and found again without a second row.
    let first = reconcile(&app, day, false).await;
    assert_eq!(kinds(&first), [("missing_here".into(), charge.clone())]);
    assert_eq!(first.open[0].theirs_amount, Some(4000));
    assert_eq!(first.open[0].theirs_fee, Some(146));
    assert_eq!(first.stripe_items, 3);
    let again = reconcile(&app, day, false).await;
    assert_eq!(again.open[0].id, first.open[0].id);
    assert_eq!(
        count(&app, "select count(*) from reconciliation_issues").await,
        1
    );
    assert!(again.open[0].last_seen > first.open[0].last_seen);
    // Without --repair nothing was applied.
    let gifts_paid = "select count(*) from gifts where state = 'paid'";
    assert_eq!(count(&app, gifts_paid).await, 2);

    // Two repairs at once, then a third: the events are applied once, the gift is one.
    let state = app.cli_state();
    let (a, b) = tokio::join!(
        reconcile::run(&state, day, true, Trigger::Cli),
        reconcile::run(&state, day, true, Trigger::Schedule)
    );
    let outcomes = [a.unwrap(), b.unwrap()];
    assert!(outcomes.iter().any(|o| matches!(o, Outcome::Done(_))));
    let third = reconcile(&app, day, true).await;
    assert!(third.open.is_empty(), "{:?}", kinds(&third));
    assert_eq!(third.repaired, 0, "nothing left to repair");
    let repaired: i64 = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Done(r) => r.repaired as i64,
            Outcome::Busy => 0,
        })
        .sum();
    assert_eq!(repaired, 1, "one run repaired it");
    assert_eq!(count(&app, gifts_paid).await, 3);
    let (gifts, amount): (i64, i64) = sqlx::query_as(
        "select count(*), max(amount) from gifts where payment_intent_id = $1 and state = 'paid'",
    )
    .bind(&pi)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((gifts, amount), (1, 4000));
    // Every event the stand-in made is stored once; none was flagged.
    assert_eq!(
        count(
            &app,
            "select count(*) from stripe_events where processed_at is not null"
        )
        .await,
        app.standin.events().len() as i64
    );
    let fee: Option<i64> = sqlx::query_scalar("select fee from charges where charge_id = $1")
        .bind(&charge)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(fee, Some(146));
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("select status, reason from reconciliation_issues")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "resolved");
    assert_eq!(reason.as_deref(), Some("repaired from Stripe's events"));
    // The kept daily totals took the repaired gift once, as a rebuild would.
    let kept = "select coalesce(sum(gross), 0)::int8 from daily_totals";
    let before_rebuild = count(&app, kept).await;
    assert_eq!(before_rebuild, 2000 + 2500 + 4000);
    let mut tx = app.db.begin().await.unwrap();
    chipin::reports::aggregates::rebuild_all(&mut tx, "UTC")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(count(&app, kept).await, before_rebuild);

    // The late delivery itself, when it comes, changes nothing.
    app.standin.pause_deliveries(false);
    let late = app
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "payment_intent.succeeded" && e["data"]["object"]["id"] == pi)
        .unwrap();
    assert_eq!(app.deliver(&late).await.status(), 200);
    assert_eq!(count(&app, gifts_paid).await, 3);
}

#[sqlx::test]
async fn a_tampered_amount_is_reported_not_fixed_until_acknowledged(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts.clone()).await;
    let session = paid_checkout(&app, "once", 2500).await;
    wait_for_events(&app, 0).await;
    let (pi, charge) = charge_of(&app, &session);
    let day = day_of(&app.standin.object(&charge).unwrap());
    assert!(reconcile(&app, day, false).await.open.is_empty());
    sqlx::query("update gifts set amount = 2600 where payment_intent_id = $1")
        .bind(&pi)
        .execute(&app.db)
        .await
        .unwrap();

    // Through the real binary, with --repair: reported, and our row left as it is.
    let date = day.to_string();
    let (ok, out) = chipin(&["reconcile", "--date", &date, "--repair"], &app, &opts).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("0 repaired") && out.contains("1 open"),
        "{out}"
    );
    assert!(
        out.contains("amount_mismatch") && out.contains(&charge),
        "{out}"
    );
    let amount: i64 = sqlx::query_scalar("select amount from gifts where payment_intent_id = $1")
        .bind(&pi)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(amount, 2600);
    let (ok, out) = chipin(&["reconcile"], &app, &opts).await;
    assert!(!ok && out.contains("--date"), "{out}");

    // Finance sees it; others do not.
    let fin = staff::add(&app.db, "fin", Role::Finance).await.unwrap();
    let viewer = staff::add(&app.db, "vic", Role::Viewer).await.unwrap();
    let list = |token: Option<&str>, query: &str| {
        let mut req = app
            .http
            .get(format!("{}/api/reports/reconciliation{query}", app.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(list(None, "?status=open").await.unwrap().status(), 401);
    assert_eq!(
        list(Some(&viewer), "?status=open").await.unwrap().status(),
        403
    );
    let res = list(Some(&fin), "?status=nope").await.unwrap();
    assert_eq!(res.status(), 400);
    let open: Value = list(Some(&fin), "?status=open")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let issues = open["issues"].as_array().unwrap();
    assert_eq!(issues.len(), 1, "{open}");
    let issue = &issues[0];
    assert_eq!(
        (
            &issue["kind"],
            &issue["ours_amount"],
            &issue["theirs_amount"]
        ),
        (&json!("amount_mismatch"), &json!(2600), &json!(2500))
    );
    let id = issue["id"].as_str().unwrap();

    let ack = |token: Option<&str>, id: &str, body: Value| {
        let mut req = app.http.post(format!(
            "{}/api/reports/reconciliation/issues/{id}/ack",
            app.address
        ));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.json(&body).send()
    };
    let reason = json!({"reason": "corrected by hand after a phone call; Stripe is right"});
    assert_eq!(ack(None, id, reason.clone()).await.unwrap().status(), 401);
    assert_eq!(
        ack(Some(&viewer), id, reason.clone())
            .await
            .unwrap()
            .status(),
        403
    );
    let res = ack(Some(&fin), id, json!({"reason": "  "})).await.unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["field"], "reason");
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        ack(Some(&fin), &unknown, reason.clone())
            .await
            .unwrap()
            .status(),
        404
    );
    let res = ack(Some(&fin), id, reason.clone()).await.unwrap();
    assert_eq!(res.status(), 200);
    let acked: Value = res.json().await.unwrap();
    assert_eq!(acked["issue"]["status"], "acknowledged");
    assert_eq!(acked["issue"]["acknowledged_by"], "fin");

    // Hidden from the open list, and a later run does not bring it back.
    let open: Value = list(Some(&fin), "?status=open")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(open["issues"], json!([]));
    assert!(reconcile(&app, day, false).await.open.is_empty());
    let all: Value = list(Some(&fin), "").await.unwrap().json().await.unwrap();
    assert_eq!(all["issues"][0]["status"], "acknowledged");
    assert_eq!(
        count(&app, "select count(*) from reconciliation_issues").await,
        1
    );

    // The dashboard has both views, calling these routes (its behaviour in a browser is
    // not exercised here).
    let page = app
        .http
        .get(format!("{}/reports", app.address))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"id="payouts""#) && html.contains(r#"id="issues""#));
    let js = app
        .http
        .get(format!("{}/static/reports.js", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(js.contains("/api/reports/reconciliation?status=open") && js.contains("/ack"));

    // The CLI's ack wants a reason too; `stripe-sim payout` sweeps the stand-in's balance.
    let (ok, out) = chipin(&["reconcile", "ack", id, "--reason", ""], &app, &opts).await;
    assert!(!ok && out.contains("reason"), "{out}");
    let api = app.standin.base_url();
    let (ok, out) = chipin(&["stripe-sim", "payout", "--api", &api], &app, &opts).await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("of {} usd: paid", 2500 - 103)),
        "{out}"
    );
    let balance = stripe_call(&app, reqwest::Method::GET, "v1/balance").await;
    assert_eq!(balance["pending"][0]["amount"], 0);
}

#[sqlx::test]
async fn serve_reconciles_yesterday_on_its_own(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app_with(opts, &[("RECONCILE_EVERY", "1s")]).await;
    let yesterday = reconcile::yesterday(&app.db, "UTC").await.unwrap();
    for _ in 0..200 {
        let done: Option<(NaiveDate, bool, String)> = sqlx::query_as(
            "select day, repair, trigger from reconciliation_runs where finished_at is not null limit 1",
        )
        .fetch_optional(&app.db)
        .await
        .unwrap();
        if let Some(run) = done {
            assert_eq!(run, (yesterday, false, "schedule".to_string()));
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no scheduled reconciliation ran");
}
