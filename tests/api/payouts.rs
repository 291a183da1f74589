//! Payouts: a month through the stand-in ends in two bank deposits, each recorded with every
//! balance transaction in it, linked to our gifts, refunds and disputes, and reported.

use std::time::Duration;

use chipin::reconcile::{self, Outcome, Trigger};
use chipin::reports::staff::{self, Role};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{TestApp, spawn_app};

pub(crate) async fn stripe_call(app: &TestApp, method: reqwest::Method, path: &str) -> Value {
    let res = app
        .http
        .request(
            method,
            format!("{}{}", app.standin.base_url(), path.trim_start_matches('/')),
        )
        .bearer_auth(chipin::stripe::standin::SECRET_KEY)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

async fn refund(app: &TestApp, pi: &str, amount: i64) -> Value {
    let res = app
        .http
        .post(format!("{}v1/refunds", app.standin.base_url()))
        .bearer_auth(chipin::stripe::standin::SECRET_KEY)
        .form(&[("payment_intent", pi), ("amount", &amount.to_string())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    res.json().await.unwrap()
}

/// A one-time or monthly checkout through our API, paid on the stand-in's page: the session.
pub(crate) async fn paid_checkout(app: &TestApp, frequency: &str, amount: i64) -> Value {
    let res = app
        .checkout(json!({"amount": amount, "frequency": frequency, "email": "reader@example.org"}))
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let paid = app.pay(created["checkout_url"].as_str().unwrap()).await;
    assert_eq!(paid.status(), 303);
    app.standin
        .object(created["stripe_session_id"].as_str().unwrap())
        .unwrap()
}

/// Waits until chipin has stored every event the stand-in sent (all but `dropped`).
pub(crate) async fn wait_for_events(app: &TestApp, dropped: usize) {
    let expected = (app.standin.events().len() - dropped) as i64;
    for _ in 0..400 {
        let stored: i64 = sqlx::query_scalar("select count(*) from stripe_events")
            .fetch_one(&app.db)
            .await
            .unwrap();
        let pending: i64 =
            sqlx::query_scalar("select count(*) from stripe_events where processed_at is null")
                .fetch_one(&app.db)
                .await
                .unwrap();
        if stored >= expected {
            assert_eq!(pending, 0, "every event is applied, none flagged");
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("chipin did not store {expected} events");
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.db).await.unwrap()
}

async fn report(app: &TestApp, token: &str, path: &str, accept: &str) -> reqwest::Response {
    app.http
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await
        .unwrap()
}

fn i(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[sqlx::test]
async fn a_month_of_gifts_pays_out_in_two_deposits_that_add_up(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    // The first part of the month: two gifts, a monthly plan and its renewal, a partial
    // refund and a dispute that is lost.
    let big = paid_checkout(&app, "once", 5000).await;
    let small = paid_checkout(&app, "once", 2000).await;
    let monthly = paid_checkout(&app, "monthly", 2500).await;
    let sub = monthly["subscription"].as_str().unwrap();
    stripe_call(
        &app,
        reqwest::Method::POST,
        &format!("_sim/subscriptions/{sub}/renew"),
    )
    .await;
    let re = refund(&app, big["payment_intent"].as_str().unwrap(), 1000).await;
    let small_pi = small["payment_intent"].as_str().unwrap();
    let small_charge = app.standin.object(small_pi).unwrap()["latest_charge"]
        .as_str()
        .unwrap()
        .to_string();
    let dispute = stripe_call(
        &app,
        reqwest::Method::POST,
        &format!("_sim/charges/{small_charge}/dispute"),
    )
    .await;
    let dp = dispute["id"].as_str().unwrap();
    stripe_call(
        &app,
        reqwest::Method::POST,
        &format!("_sim/disputes/{dp}/close?status=lost"),
    )
    .await;
    wait_for_events(&app, 0).await;
    let first = stripe_call(&app, reqwest::Method::POST, "_sim/payouts").await;
    // 5000-175 + 2000-88 + 2 x (2500-103) - 1000 - (2000+1500)
    assert_eq!(first["amount"], 7031);
    assert_eq!(first["status"], "paid");
    wait_for_events(&app, 0).await;

    // The second part: a gift, and one whose events never reach us, then the second payout.
    paid_checkout(&app, "once", 3000).await;
    wait_for_events(&app, 0).await;
    let before = app.standin.events().len();
    app.standin.pause_deliveries(true);
    let unseen = paid_checkout(&app, "once", 4000).await;
    app.standin.pause_deliveries(false);
    let dropped = app.standin.events().len() - before;
    let unseen_charge = app
        .standin
        .object(unseen["payment_intent"].as_str().unwrap())
        .unwrap()["latest_charge"]
        .as_str()
        .unwrap()
        .to_string();
    let second = stripe_call(&app, reqwest::Method::POST, "_sim/payouts").await;
    assert_eq!(second["amount"], 3000 - 117 + 4000 - 146);
    // Paid after the second payout: stays in the balance.
    paid_checkout(&app, "once", 1500).await;
    wait_for_events(&app, dropped).await;

    // Stripe's listing is paged: three at a time still finds all of the first payout's.
    let po1 = first["id"].as_str().unwrap();
    let page = stripe_call(
        &app,
        reqwest::Method::GET,
        &format!("v1/balance_transactions?payout={po1}&limit=3"),
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    assert_eq!(page["has_more"], true);
    let fetched = stripe_call(&app, reqwest::Method::GET, &format!("v1/payouts/{po1}")).await;
    assert_eq!(fetched["status"], "paid");

    let fin = staff::add(&app.db, "fin", Role::Finance).await.unwrap();
    let viewer = staff::add(&app.db, "vic", Role::Viewer).await.unwrap();
    assert_eq!(
        report(&app, &viewer, "/api/reports/payouts", "application/json")
            .await
            .status(),
        403
    );
    let res = report(&app, &fin, "/api/reports/payouts", "application/json").await;
    assert_eq!(res.status(), 200);
    let listed: Value = res.json().await.unwrap();
    let payouts = listed["payouts"].as_array().unwrap().clone();
    assert_eq!(payouts.len(), 2, "{listed}");
    let mut paid_out = 0;
    for p in &payouts {
        assert_eq!(p["status"], "paid");
        // gross - fees - refunds - disputes (+ nothing else here) is what went to the bank
        assert_eq!(p["other"], 0);
        assert_eq!(
            i(&p["gross"]) - i(&p["fees"]) - i(&p["refunds"]) - i(&p["disputes"]),
            i(&p["amount"]),
            "{p}"
        );
        assert_eq!(i(&p["net"]), i(&p["amount"]));
        let id = p["payout_id"].as_str().unwrap();
        let res = report(
            &app,
            &fin,
            &format!("/api/reports/payouts/{id}"),
            "application/json",
        )
        .await;
        assert_eq!(res.status(), 200);
        let detail: Value = res.json().await.unwrap();
        let items = detail["items"].as_array().unwrap();
        assert_eq!(items.len() as i64, i(&p["items"]));
        // Every payout's items sum to its amount.
        assert_eq!(
            items.iter().map(|it| i(&it["net"])).sum::<i64>(),
            i(&p["amount"])
        );
        paid_out += i(&p["amount"]);
    }
    let (p1, p2) = if payouts[0]["payout_id"] == first["id"] {
        (&payouts[0], &payouts[1])
    } else {
        (&payouts[1], &payouts[0])
    };
    assert_eq!(
        (
            i(&p1["gross"]),
            i(&p1["refunds"]),
            i(&p1["disputes"]),
            i(&p1["items"]),
            i(&p1["linked"]),
            i(&p1["unmatched"])
        ),
        (12000, 1000, 2000, 6, 6, 0)
    );
    assert_eq!(
        (i(&p2["items"]), i(&p2["linked"]), i(&p2["unmatched"])),
        (2, 1, 1)
    );

    // The first payout's items are our gifts, the refund and the dispute.
    let po1_items: Value = report(
        &app,
        &fin,
        &format!("/api/reports/payouts/{po1}"),
        "application/json",
    )
    .await
    .json()
    .await
    .unwrap();
    let links: Vec<(&str, &str)> = po1_items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|it| (it["type"].as_str().unwrap(), it["link"].as_str().unwrap()))
        .collect();
    assert_eq!(
        links.iter().filter(|l| *l == &("charge", "gift")).count(),
        4
    );
    assert!(links.contains(&("refund", "refund")));
    assert!(links.contains(&("adjustment", "dispute")));
    assert!(
        po1_items["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|it| it["refund_id"] == re["id"])
    );
    assert!(
        po1_items["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|it| it["dispute_id"] == dp)
    );

    // The gift whose webhooks never came is listed, unmatched, in the second payout (CSV).
    let po2 = second["id"].as_str().unwrap();
    let res = report(
        &app,
        &fin,
        &format!("/api/reports/payouts/{po2}"),
        "text/csv",
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with("balance_transaction_id,payout_id,type,"));
    let unmatched: Vec<&&str> = rows.iter().filter(|r| r.contains(",unmatched,")).collect();
    assert_eq!(unmatched.len(), 1, "{csv}");
    assert!(unmatched[0].contains(&unseen_charge), "{csv}");
    assert!(unmatched[0].contains(",charge,") && unmatched[0].contains(",4000,146,3854,"));

    // The books: our ledger's gross - fees - refunds - lost disputes (and the dispute fee
    // Stripe charged), plus what Stripe paid out that we never saw, equals the payouts plus
    // what remains in the balance.
    let gross = count(&app, "select sum(amount)::int8 from charges").await;
    let fees = count(&app, "select sum(fee)::int8 from charges").await;
    let refunds = count(
        &app,
        "select sum(amount)::int8 from refunds where status = 'succeeded'",
    )
    .await;
    let disputes = count(
        &app,
        "select sum(amount)::int8 from disputes where status = 'lost'",
    )
    .await;
    let dispute_fees = count(
        &app,
        "select coalesce(sum(fee), 0)::int8 from payout_items where link = 'dispute'",
    )
    .await;
    let unmatched_net = count(
        &app,
        "select coalesce(sum(net), 0)::int8 from payout_items where link = 'unmatched'",
    )
    .await;
    let balance = stripe_call(&app, reqwest::Method::GET, "v1/balance").await;
    let remaining = i(&balance["pending"][0]["amount"]) + i(&balance["available"][0]["amount"]);
    assert_eq!(remaining, 1500 - 74);
    assert_eq!(
        gross - fees - refunds - disputes - dispute_fees + unmatched_net,
        paid_out + remaining
    );
    // ...and what we know of that has not been paid out yet is exactly that remainder.
    assert_eq!(
        count(
            &app,
            "select coalesce(sum(net), 0)::int8 from charges c
             where not exists (select 1 from payout_items i where i.balance_transaction_id = c.balance_transaction_id)"
        )
        .await,
        remaining
    );

    // A redelivered payout event changes nothing; an older status never undoes a later one.
    let paid_event = app
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "payout.paid" && e["data"]["object"]["id"] == po1)
        .unwrap();
    let created_event = app
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "payout.created" && e["data"]["object"]["id"] == po1)
        .unwrap();
    let snapshot = "select json_agg(t order by t.balance_transaction_id)::text from
                    (select * from payout_items i join payouts p using (payout_id)) t";
    let before: String = sqlx::query_scalar(snapshot)
        .fetch_one(&app.db)
        .await
        .unwrap();
    for e in [&paid_event, &created_event] {
        let mut again = e.clone();
        again["id"] = json!(format!("evt_again{}", &e["id"].as_str().unwrap()[4..]));
        assert_eq!(app.deliver(&again).await.status(), 200);
        assert_eq!(app.deliver(e).await.status(), 200);
    }
    let after: String = sqlx::query_scalar(snapshot)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let strip = |s: &str| -> Value {
        let mut v: Value = serde_json::from_str(s).unwrap();
        for row in v.as_array_mut().unwrap() {
            row.as_object_mut().unwrap().remove("updated_at");
        }
        v
    };
    assert_eq!(strip(&before), strip(&after));

    // Reconciling the day finds exactly the gift whose webhooks never came; repaired from
    // Stripe's events, the ledger alone explains the bank.
    let day = chrono::DateTime::from_timestamp(second["created"].as_i64().unwrap(), 0)
        .unwrap()
        .date_naive();
    let state = app.cli_state();
    let Outcome::Done(found) = reconcile::run(&state, day, false, Trigger::Cli)
        .await
        .unwrap()
    else {
        panic!("nothing else reconciles this day");
    };
    let open: Vec<(&str, &str)> = found
        .open
        .iter()
        .map(|i| (i.kind.as_str(), i.object_id.as_str()))
        .collect();
    assert_eq!(open, [("missing_here", unseen_charge.as_str())]);
    // Seven charges (six checkouts and a renewal), the refund and the dispute withdrawal.
    assert_eq!(found.stripe_items, 9);
    let Outcome::Done(repaired) = reconcile::run(&state, day, true, Trigger::Cli)
        .await
        .unwrap()
    else {
        panic!("nothing else reconciles this day");
    };
    assert!(repaired.open.is_empty(), "{:?}", repaired.open);
    assert_eq!(repaired.repaired, 1);
    let gross = count(&app, "select sum(amount)::int8 from charges").await;
    let fees = count(&app, "select sum(fee)::int8 from charges").await;
    let gifts = count(
        &app,
        "select sum(amount)::int8 from gifts where state = 'paid'",
    )
    .await;
    assert_eq!(gifts, gross, "every charge is a paid gift of ours");
    assert_eq!(
        gross - fees - refunds - disputes - dispute_fees,
        paid_out + remaining
    );
}

#[sqlx::test]
async fn a_failed_payout_stays_failed_and_its_money_is_paid_out_again(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    paid_checkout(&app, "once", 2500).await;
    wait_for_events(&app, 0).await;
    let failed = stripe_call(&app, reqwest::Method::POST, "_sim/payouts?outcome=failed").await;
    assert_eq!(failed["status"], "failed");
    wait_for_events(&app, 0).await;
    let again = stripe_call(&app, reqwest::Method::POST, "_sim/payouts").await;
    assert_eq!(again["amount"], 2500 - 103);
    wait_for_events(&app, 0).await;
    let status: String = sqlx::query_scalar("select status from payouts where payout_id = $1")
        .bind(failed["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    // A late `payout.created` (in transit) does not bring a failed payout back.
    let created = app
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "payout.created" && e["data"]["object"]["id"] == failed["id"])
        .unwrap();
    let mut late = created.clone();
    late["id"] = json!("evt_latecreated0000000000000");
    late["created"] = json!(i(&created["created"]) + 100);
    assert_eq!(app.deliver(&late).await.status(), 200);
    let status: String = sqlx::query_scalar("select status from payouts where payout_id = $1")
        .bind(failed["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "failed");
    // The second payout carries the failure's return of funds as an unmatched item.
    let items: Vec<(String, String)> =
        sqlx::query_as("select type, link from payout_items where payout_id = $1 order by type")
            .bind(again["id"].as_str().unwrap())
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        items,
        vec![("payout_failure".to_string(), "unmatched".to_string())]
    );
}

#[sqlx::test]
async fn payout_events_and_objects_have_stripes_shape(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    paid_checkout(&app, "once", 2500).await;
    wait_for_events(&app, 0).await;
    stripe_call(&app, reqwest::Method::POST, "_sim/payouts").await;
    paid_checkout(&app, "once", 1000).await;
    wait_for_events(&app, 0).await;
    stripe_call(&app, reqwest::Method::POST, "_sim/payouts?outcome=failed").await;
    let fixtures: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/stripe/fixtures3.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let theirs = fixtures["resources"]["payout"].as_object().unwrap();
    let events: Vec<Value> = app
        .standin
        .events()
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with("payout."))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "payout.created",
            "payout.paid",
            "payout.created",
            "payout.failed"
        ]
    );
    for e in &events {
        let typed: stripe_webhook::Event = serde_json::from_value(e.clone())
            .unwrap_or_else(|err| panic!("{} does not parse: {err}", e["type"]));
        assert_eq!(typed.type_.as_str(), e["type"].as_str().unwrap());
        // Parsed as a typed payout, not left unknown.
        assert!(
            format!("{:?}", typed.data.object).starts_with("Payout"),
            "{} is not read as a payout",
            e["type"]
        );
        let ours = e["data"]["object"].as_object().unwrap();
        for (k, v) in theirs {
            let mine = ours.get(k).unwrap_or_else(|| panic!("payout lacks {k}"));
            if !v.is_null() && !mine.is_null() {
                assert_eq!(
                    std::mem::discriminant(v),
                    std::mem::discriminant(mine),
                    "payout.{k}: {mine} vs Stripe's {v}"
                );
            }
        }
    }
}
