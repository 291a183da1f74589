//! Webhooks: verification, exactly-once recording, any order, outages and recovery.
//!
//! Most tests use two apps: a *generator* whose stand-in plays whole gift lives with its
//! deliveries paused (so its events are collected, not sent), and fresh *receivers* that get
//! those events in chosen orders and read what they need from the generator's stand-in.

use std::time::Duration;

use chipin::stripe::signature;
use futures_util::future::join_all;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::helpers::{
    self, TestApp, database_url, receiver_url, run_chipin, spawn_app, spawn_app_with,
};

/// Calls the stand-in's API or controls as chipin's tests (or Stripe's dashboard) would.
async fn stripe_call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    form: &[(&str, &str)],
) -> Value {
    let res = app
        .http
        .request(
            method,
            format!("{}{}", app.standin.base_url(), path.trim_start_matches('/')),
        )
        .bearer_auth(chipin::stripe::standin::SECRET_KEY)
        .form(form)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

/// A checkout through our API, paid on the stand-in's page. Returns (gift id, session).
async fn paid_checkout(app: &TestApp, frequency: &str, amount: i64) -> (String, Value) {
    let res = app
        .checkout(json!({"amount": amount, "frequency": frequency, "email": "Reader@Example.org", "campaign": "spring"}))
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let paid = app.pay(created["checkout_url"].as_str().unwrap()).await;
    assert_eq!(paid.status(), 303);
    let session = app
        .standin
        .object(created["stripe_session_id"].as_str().unwrap())
        .unwrap();
    (created["id"].as_str().unwrap().to_string(), session)
}

/// A generator app with deliveries paused.
async fn generator(opts: PgConnectOptions) -> TestApp {
    let app = spawn_app(opts).await;
    app.standin.pause_deliveries(true);
    app
}

/// A fresh app on a database of its own, reading Stripe from `source`'s stand-in.
async fn receiver(opts: &PgConnectOptions, source: &TestApp, name: &str) -> TestApp {
    helpers::receiver(opts, source, name, &[]).await
}

async fn deliver_ok(app: &TestApp, event: &Value) {
    let res = app.deliver(event).await;
    assert_eq!(
        res.status(),
        200,
        "{} answered {}",
        event["type"],
        res.status()
    );
}

/// Everything a receiver's ledger says, keyed by Stripe ids (our uuids for installments
/// differ between databases), as one comparable string.
async fn snapshot(app: &TestApp) -> String {
    let q = format!(
        r#"
        select json_build_object(
          'gifts', (select coalesce(json_agg(t order by t.key), '[]') from (
              select coalesce(g.invoice_id, g.payment_intent_id, g.checkout_session_id) as key,
                     g.state, g.amount, g.currency, g.frequency, g.origin, g.campaign, g.checkout_session_id,
                     g.payment_intent_id, g.invoice_id, p.subscription_id, d.email, g.paid_at
              from gifts g left join plans p on p.id = g.plan_id left join donors d on d.id = g.donor_id) t),
          'plans', (select coalesce(json_agg(t order by t.subscription_id), '[]') from (
              select p.subscription_id, p.amount, p.currency, p.interval, p.status, p.canceled_at,
                     p.cancel_reason, p.campaign, p.origin, d.email
              from plans p left join donors d on d.id = p.donor_id) t),
          'refunds', (select coalesce(json_agg(t order by t.refund_id), '[]') from (
              select refund_id, charge_id, payment_intent_id, amount, currency, status, created from refunds) t),
          'disputes', (select coalesce(json_agg(t order by t.dispute_id), '[]') from (
              select dispute_id, payment_intent_id, amount, status from disputes) t),
          'charges', (select coalesce(json_agg(t order by t.charge_id), '[]') from (
              select charge_id, payment_intent_id, amount, fee, net from charges) t),
          'daily_totals', {DAILY_TOTALS},
          'donors', (select coalesce(json_agg(t order by t.email), '[]') from (
              select d.email, d.name, d.country, (select count(*) from donor_customers c where c.donor_id = d.id) as customers
              from donors d) t)
        )::text"#
    );
    sqlx::query_scalar(&q).fetch_one(&app.db).await.unwrap()
}

/// The kept daily totals summed over their slot rows, as JSON (rows that sum to nothing
/// left out, as a rebuild leaves them out).
const DAILY_TOTALS: &str = r#"(select coalesce(json_agg(t order by t.day, t.currency, t.campaign, t.kind), '[]') from (
    select day, currency, campaign, kind, sum(gross) as gross, sum(gifts) as gifts,
           sum(refunded) as refunded, sum(disputed) as disputed, sum(fees) as fees
    from daily_totals group by 1, 2, 3, 4
    having sum(gross) <> 0 or sum(gifts) <> 0 or sum(refunded) <> 0 or sum(disputed) <> 0
        or sum(fees) <> 0) t)"#;

/// The totals kept event by event (spread over slot rows) equal the totals rebuilt from
/// scratch from the ledger: the daily money and the donor figures.
pub async fn assert_kept_totals_equal_a_recomputation(app: &TestApp) {
    let q = format!(
        r#"
        select json_build_object(
          'daily', {DAILY_TOTALS},
          'donors', (select coalesce(json_agg(t order by t.currency, t.period_kind, t.period_start, t.band, t.small), '[]') from (
              select currency, period_kind, period_start, band, small, sum(donors) as donors,
                     sum(gifts) as gifts, sum(net) as net, sum(new_donors) as new_donors
              from period_donor_totals group by 1, 2, 3, 4, 5
              having sum(donors) <> 0 or sum(gifts) <> 0 or sum(net) <> 0 or sum(new_donors) <> 0) t),
          'amounts', (select coalesce(json_agg(t order by t.currency, t.period_kind, t.period_start, t.campaign, t.amount), '[]') from (
              select currency, period_kind, period_start, campaign, amount, sum(gifts) as gifts
              from gift_amounts group by 1, 2, 3, 4, 5 having sum(gifts) <> 0) t),
          'plans', (select coalesce(json_agg(t order by t.currency, t.day, t.campaign), '[]') from (
              select currency, day, campaign, sum(active) as active, sum(mrr) as mrr,
                     sum(cancellations) as cancellations
              from plan_days group by 1, 2, 3
              having sum(active) <> 0 or sum(mrr) <> 0 or sum(cancellations) <> 0) t),
          'gaps', (select coalesce(json_agg(t order by t.donor_id, t.currency, t.after_day, t.before_day), '[]')
              from donor_gaps t)
        )::text"#
    );
    let kept: String = sqlx::query_scalar(&q).fetch_one(&app.db).await.unwrap();
    let mut tx = app.db.begin().await.unwrap();
    let aggregates = chipin::reports::aggregates::rebuild_all(&mut tx, "UTC").await;
    aggregates.unwrap();
    let bands = chipin::reports::aggregates::Bands::from_config(&app.config);
    let donors = chipin::reports::aggregates::rebuild_donor_figures(&mut tx, &bands, "UTC").await;
    donors.unwrap();
    chipin::reports::kept::rebuild(&mut tx, "UTC")
        .await
        .unwrap();
    let rebuilt: String = sqlx::query_scalar(&q).fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(kept, rebuilt);
}

async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.db).await.unwrap()
}

/// A whole month of gift lives on the generator: a one-time gift refunded twice in part, a
/// monthly plan paid, failed, paid again, disputed and lost, its amount changed, cancelled.
async fn whole_lives(g: &TestApp) -> Vec<Value> {
    let (_, once) = paid_checkout(g, "once", 5000).await;
    let pi = once["payment_intent"].as_str().unwrap().to_string();
    let (_, monthly) = paid_checkout(g, "monthly", 2500).await;
    let sub = monthly["subscription"].as_str().unwrap().to_string();
    let renewed = stripe_call(
        g,
        reqwest::Method::POST,
        &format!("_sim/subscriptions/{sub}/renew"),
        &[],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::POST,
        &format!("_sim/subscriptions/{sub}/renew?outcome=failed"),
        &[],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::POST,
        &format!("_sim/subscriptions/{sub}/renew"),
        &[],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::POST,
        "v1/refunds",
        &[("payment_intent", &pi), ("amount", "500")],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::POST,
        "v1/refunds",
        &[("payment_intent", &pi), ("amount", "300")],
    )
    .await;
    // The renewal's charge is disputed, and the newsroom loses.
    let renewal_payments = stripe_call(
        g,
        reqwest::Method::GET,
        &format!(
            "v1/invoice_payments?invoice={}",
            renewed["id"].as_str().unwrap()
        ),
        &[],
    )
    .await;
    let renewal_pi = renewal_payments["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_string();
    let charge = g.standin.object(&renewal_pi).unwrap()["latest_charge"]
        .as_str()
        .unwrap()
        .to_string();
    let dispute = stripe_call(
        g,
        reqwest::Method::POST,
        &format!("_sim/charges/{charge}/dispute"),
        &[],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::POST,
        &format!(
            "_sim/disputes/{}/close?status=lost",
            dispute["id"].as_str().unwrap()
        ),
        &[],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::POST,
        &format!("_sim/subscriptions/{sub}/amount?amount=3000"),
        &[],
    )
    .await;
    stripe_call(
        g,
        reqwest::Method::DELETE,
        &format!("v1/subscriptions/{sub}"),
        &[],
    )
    .await;
    g.standin.events()
}

#[sqlx::test]
async fn a_paid_checkout_is_recorded_by_the_webhooks_stripe_sends(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let (gift_id, session) = paid_checkout(&app, "once", 2500).await;
    app.settle(3).await;
    let gift = chipin::gifts::ledger::gift_by_session(&app.db, session["id"].as_str().unwrap())
        .await
        .unwrap()
        .expect("the gift is recorded");
    assert_eq!(gift.id.to_string(), gift_id);
    assert_eq!(
        (gift.state.as_str(), gift.amount, gift.currency.as_str()),
        ("paid", 2500, "usd")
    );
    assert_eq!(
        gift.payment_intent_id.as_deref(),
        session["payment_intent"].as_str()
    );
    assert_eq!(gift.donor_email.as_deref(), Some("reader@example.org"));
    // 2.9% + 30 of 2500, from the charge's balance transaction
    assert_eq!((gift.fee, gift.net), (Some(103), Some(2397)));
}

#[sqlx::test]
async fn whole_gift_lives_end_the_same_in_any_order_and_with_redeliveries(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    let events = whole_lives(&g).await;
    let kinds: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    for kind in [
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "charge.refunded",
        "refund.created",
        "charge.dispute.created",
        "charge.dispute.closed",
    ] {
        assert!(kinds.contains(kind), "the life includes {kind}");
    }

    // In Stripe's order, each event delivered twice: the second changes nothing.
    let in_order = receiver(&opts, &g, "in_order").await;
    for e in &events {
        deliver_ok(&in_order, e).await;
        let before = snapshot(&in_order).await;
        deliver_ok(&in_order, e).await;
        assert_eq!(
            before,
            snapshot(&in_order).await,
            "redelivering {} changed the ledger",
            e["type"]
        );
    }
    let expected = snapshot(&in_order).await;
    assert_eq!(
        count(&in_order, "select count(*) from stripe_events").await,
        events.len() as i64
    );

    // What the in-order ledger holds, computed independently of it.
    assert_eq!(
        count(
            &in_order,
            "select count(*) from gifts where state = 'paid' and frequency = 'once'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &in_order,
            "select count(*) from gifts where state = 'paid' and frequency = 'monthly'"
        )
        .await,
        3
    );
    assert_eq!(
        count(
            &in_order,
            "select sum(amount)::int8 from gifts where state = 'paid'"
        )
        .await,
        5000 + 3 * 2500
    );
    assert_eq!(
        count(
            &in_order,
            "select sum(amount)::int8 from refunds where status = 'succeeded'"
        )
        .await,
        800
    );
    assert_eq!(
        count(
            &in_order,
            "select count(*) from disputes where status = 'lost' and amount = 2500"
        )
        .await,
        1
    );
    assert_eq!(
        count(&in_order, "select count(*) from plans where status = 'canceled' and amount = 3000 and cancel_reason = 'cancellation_requested'").await,
        1
    );
    assert_eq!(count(&in_order, "select count(*) from donors").await, 1);
    // The kept daily totals agree with the same ledger, figure by figure.
    assert_eq!(
        count(&in_order, "select sum(gross)::int8 from daily_totals").await,
        5000 + 3 * 2500
    );
    assert_eq!(
        count(&in_order, "select sum(gifts)::int8 from daily_totals").await,
        4
    );
    assert_eq!(
        count(&in_order, "select sum(refunded)::int8 from daily_totals").await,
        800
    );
    assert_eq!(
        count(&in_order, "select sum(disputed)::int8 from daily_totals").await,
        2500
    );
    assert_eq!(
        count(&in_order, "select sum(fees)::int8 from daily_totals").await,
        count(&in_order, "select sum(fee)::int8 from charges").await
    );
    assert_kept_totals_equal_a_recomputation(&in_order).await;

    for seed in 1..=5u64 {
        let mut shuffled: Vec<Value> = events.iter().chain(events.iter()).cloned().collect();
        shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let r = receiver(&opts, &g, &format!("shuffled_{seed}")).await;
        for e in &shuffled {
            deliver_ok(&r, e).await;
        }
        assert_eq!(
            snapshot(&r).await,
            expected,
            "order {seed} ended differently"
        );
    }
}

/// A one-time gift paid on the generator, and a receiver app that has seen none of its
/// events: (generator, receiver, its `checkout.session.completed`).
async fn one_paid_session(opts: &PgConnectOptions, name: &str) -> (TestApp, TestApp, Value) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    let completed = g
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .unwrap();
    let r = receiver(opts, &g, name).await;
    (g, r, completed)
}

#[sqlx::test]
async fn concurrent_deliveries_of_one_event_record_one_gift(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (_g, r, completed) = one_paid_session(&opts, "concurrent").await;
    let answers = join_all((0..20).map(|_| r.deliver(&completed))).await;
    assert!(answers.iter().all(|a| a.status() == 200));
    assert_eq!(count(&r, "select count(*) from stripe_events").await, 1);
    assert_eq!(count(&r, "select count(*) from gifts").await, 1);
    assert_eq!(
        count(&r, "select sum(gross)::int8 from daily_totals").await,
        2500
    );
}

#[sqlx::test]
async fn distinct_events_for_one_payment_record_one_gift(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    paid_checkout(&g, "monthly", 1000).await;
    let mut events = g.standin.events();
    // Stripe sometimes sends two distinct events for one change.
    let mut twins: Vec<Value> = events
        .iter()
        .filter(|e| e["type"] == "checkout.session.completed" || e["type"] == "invoice.paid")
        .cloned()
        .collect();
    for twin in &mut twins {
        twin["id"] = json!(format!("{}twin", twin["id"].as_str().unwrap()));
    }
    events.extend(twins);
    let r = receiver(&opts, &g, "distinct").await;
    let answers = join_all(events.iter().map(|e| r.deliver(e))).await;
    assert!(
        answers.iter().all(|a| a.status() == 200),
        "{:?}",
        answers.iter().map(|a| a.status()).collect::<Vec<_>>()
    );
    assert_eq!(
        count(
            &r,
            "select count(*) from gifts where frequency = 'once' and state = 'paid'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &r,
            "select count(*) from gifts where frequency = 'monthly' and state = 'paid'"
        )
        .await,
        1
    );
    assert_eq!(count(&r, "select count(*) from gifts").await, 2);
    assert_eq!(count(&r, "select count(*) from plans").await, 1);
    // Racing events about one payment never count it twice in the kept totals either.
    assert_eq!(
        count(&r, "select sum(gifts)::int8 from daily_totals").await,
        2
    );
    assert_eq!(
        count(&r, "select sum(gross)::int8 from daily_totals").await,
        2500 + 1000
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

#[sqlx::test]
async fn bank_debits_stay_pending_until_stripe_says_how_they_ended(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    paid_checkout(&g, "once", 4000).await;
    let completed: Vec<Value> = g
        .standin
        .events()
        .into_iter()
        .filter(|e| e["type"] == "checkout.session.completed")
        .collect();
    let r = receiver(&opts, &g, "async").await;
    for (i, (e, outcome)) in completed.iter().zip(["succeeded", "failed"]).enumerate() {
        let mut unpaid = e.clone();
        unpaid["data"]["object"]["payment_status"] = json!("unpaid");
        deliver_ok(&r, &unpaid).await;
        let session = e["data"]["object"]["id"].as_str().unwrap();
        let state = |r: &TestApp| {
            let session = session.to_string();
            let db = r.db.clone();
            async move {
                sqlx::query_scalar::<_, String>(
                    "select state from gifts where checkout_session_id = $1",
                )
                .bind(session)
                .fetch_one(&db)
                .await
                .unwrap()
            }
        };
        assert_eq!(state(&r).await, "pending");
        let mut later = e.clone();
        later["id"] = json!(format!("evt_async_{i}"));
        later["type"] = json!(format!("checkout.session.async_payment_{outcome}"));
        deliver_ok(&r, &later).await;
        assert_eq!(
            state(&r).await,
            if outcome == "succeeded" {
                "paid"
            } else {
                "failed"
            }
        );
    }
}

#[sqlx::test]
async fn an_expired_session_expires_its_pending_gift(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    let created: Value = app
        .checkout(json!({"amount": 1500, "frequency": "once"}))
        .await
        .json()
        .await
        .unwrap();
    let mut session = app
        .standin
        .object(created["stripe_session_id"].as_str().unwrap())
        .unwrap();
    session["status"] = json!("expired");
    let event = chipin::stripe::standin::objects::event(
        "evt_expired_1",
        "checkout.session.expired",
        session,
        None,
        chrono::Utc::now().timestamp(),
        chipin::stripe::api_version(),
    );
    deliver_ok(&app, &event).await;
    let state: String = sqlx::query_scalar("select state from gifts where id = $1::uuid")
        .bind(created["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(state, "expired");
}

#[sqlx::test]
async fn a_payment_made_outside_our_checkout_is_still_recorded(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    let mut pi_event = g
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "payment_intent.succeeded")
        .unwrap();
    // As if made in the Stripe dashboard: no metadata of ours, its own ids.
    pi_event["id"] = json!("evt_dashboard_1");
    pi_event["data"]["object"]["id"] = json!("pi_dashboard_1");
    pi_event["data"]["object"]["metadata"] = json!({});
    let r = receiver(&opts, &g, "external").await;
    deliver_ok(&r, &pi_event).await;
    assert_eq!(
        count(&r, "select count(*) from gifts where payment_intent_id = 'pi_dashboard_1' and origin = 'stripe' and state = 'paid' and amount = 2500").await,
        1
    );
}

/// Checkout creates a Stripe customer for a one-time payment only when asked to
/// (`customer_creation=if_required`): such a gift still belongs to the donor the session
/// names by email, and counts in the donor figures.
#[sqlx::test]
async fn a_one_time_gift_without_a_stripe_customer_joins_its_donor_by_email(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let (_g, r, completed) = one_paid_session(&opts, "no_customer").await;
    let mut first = completed.clone();
    first["data"]["object"]["customer"] = Value::Null;
    first["data"]["object"]["customer_details"]["email"] = json!(" Reader@Example.org ");
    deliver_ok(&r, &first).await;
    // A second gift from the same reader, by another session and payment.
    let mut second = first.clone();
    second["id"] = json!("evt_no_customer_2");
    second["data"]["object"]["id"] = json!("cs_no_customer_2");
    second["data"]["object"]["payment_intent"] = json!("pi_no_customer_2");
    second["data"]["object"]["metadata"] = json!({});
    second["data"]["object"]["client_reference_id"] = Value::Null;
    deliver_ok(&r, &second).await;
    assert_eq!(
        count(
            &r,
            "select count(*) from gifts g join donors d on d.id = g.donor_id
             where d.email = 'reader@example.org' and g.state = 'paid'"
        )
        .await,
        2
    );
    assert_eq!(count(&r, "select count(*) from donors").await, 1);
    assert_eq!(
        count(
            &r,
            "select sum(donors)::int8 from period_donor_totals where period_kind = 'year'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &r,
            "select sum(gifts)::int8 from period_donor_totals where period_kind = 'year'"
        )
        .await,
        2
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

/// A first gift about which nothing was known (the commonest event) has its figures taken from
/// the row its own statement wrote instead of read back: they must be the same figures, for
/// a gift started at our checkout (its pending row updated) and for one that was not (a new
/// row, under a campaign), each from a new reader.
#[sqlx::test]
async fn a_new_readers_first_gift_counts_as_a_recomputation_does(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    let completed = g
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .unwrap();
    // The generator holds the pending gift its checkout made.
    deliver_ok(&g, &completed).await;
    let mut outside = completed.clone();
    outside["id"] = json!("evt_first_gift_2");
    outside["data"]["object"]["id"] = json!("cs_first_gift_2");
    outside["data"]["object"]["payment_intent"] = json!("pi_first_gift_2");
    outside["data"]["object"]["customer"] = Value::Null;
    outside["data"]["object"]["client_reference_id"] = Value::Null;
    outside["data"]["object"]["metadata"] = json!({"campaign": "autumn-drive"});
    outside["data"]["object"]["amount_total"] = json!(4200);
    outside["data"]["object"]["customer_details"]["email"] = json!("new.reader@example.org");
    deliver_ok(&g, &outside).await;
    assert_eq!(
        count(
            &g,
            "select count(*) from gifts where state = 'paid' and donor_id is not null"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &g,
            "select sum(gross)::int8 from daily_totals where campaign = 'autumn-drive'"
        )
        .await,
        4200
    );
    assert_eq!(
        count(
            &g,
            "select sum(donors)::int8 from period_donor_totals where period_kind = 'year'"
        )
        .await,
        2
    );
    assert_kept_totals_equal_a_recomputation(&g).await;
}

/// A donor who asks to cancel at the period's end still has an active, paying plan: Stripe
/// sets `canceled_at` at once, but the plan ends (and counts as cancelled) when Stripe ends
/// it; one who changes their mind before then never counted as a cancellation.
#[sqlx::test]
async fn a_plan_cancelled_at_the_period_end_stays_active_until_it_ends(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "monthly", 1000).await;
    let events = g.standin.events();
    let r = receiver(&opts, &g, "period_end").await;
    for e in &events {
        deliver_ok(&r, e).await;
    }
    let created = events
        .iter()
        .find(|e| e["type"] == "customer.subscription.created")
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    let mut asked = created.clone();
    asked["id"] = json!("evt_period_end_asked");
    asked["type"] = json!("customer.subscription.updated");
    asked["created"] = json!(now + 10);
    let sub = &mut asked["data"]["object"];
    sub["status"] = json!("active");
    sub["cancel_at_period_end"] = json!(true);
    sub["cancel_at"] = json!(now + 30 * 86400);
    sub["canceled_at"] = json!(now + 10);
    sub["cancellation_details"] =
        json!({"comment": null, "feedback": null, "reason": "cancellation_requested"});
    deliver_ok(&r, &asked).await;
    let plan = "select count(*) from plans where status = 'active' and canceled_at is null and cancel_reason is null";
    assert_eq!(count(&r, plan).await, 1);
    assert_eq!(
        count(
            &r,
            "select coalesce(sum(cancellations), 0)::int8 from plan_days"
        )
        .await,
        0
    );
    // They change their mind; later the plan is ended after all.
    let mut kept = asked.clone();
    kept["id"] = json!("evt_period_end_kept");
    kept["created"] = json!(now + 20);
    let sub = &mut kept["data"]["object"];
    sub["cancel_at_period_end"] = json!(false);
    sub["cancel_at"] = Value::Null;
    sub["canceled_at"] = Value::Null;
    sub["cancellation_details"] = json!({"comment": null, "feedback": null, "reason": null});
    deliver_ok(&r, &kept).await;
    assert_eq!(count(&r, plan).await, 1);
    let mut ended = asked.clone();
    ended["id"] = json!("evt_period_end_ended");
    ended["type"] = json!("customer.subscription.deleted");
    ended["created"] = json!(now + 40);
    let sub = &mut ended["data"]["object"];
    sub["status"] = json!("canceled");
    sub["ended_at"] = json!(now + 40);
    deliver_ok(&r, &ended).await;
    assert_eq!(
        count(
            &r,
            "select count(*) from plans where status = 'canceled' and cancel_reason = 'cancellation_requested'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &r,
            "select extract(epoch from canceled_at)::int8 from plans"
        )
        .await,
        now + 40
    );
    assert_eq!(
        count(
            &r,
            "select coalesce(sum(cancellations), 0)::int8 from plan_days"
        )
        .await,
        1
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

/// Sessions that end without money moving: a subscription started on a trial (nothing to pay
/// now) records its plan but no gift of 0, and is not flagged; a subscription whose first bank
/// debit failed ends its pending gift as failed.
#[sqlx::test]
async fn sessions_without_money_record_no_gift_and_failed_debits_fail_the_gift(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "monthly", 1000).await;
    let completed = g
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "checkout.session.completed")
        .unwrap();
    // The generator holds the pending gift its checkout made.
    let mut failed = completed.clone();
    failed["id"] = json!("evt_sub_debit_failed");
    failed["type"] = json!("checkout.session.async_payment_failed");
    failed["data"]["object"]["payment_status"] = json!("unpaid");
    deliver_ok(&g, &failed).await;
    assert_eq!(
        count(&g, "select count(*) from gifts where state = 'failed'").await,
        1
    );
    let mut trial = completed.clone();
    trial["id"] = json!("evt_sub_trial");
    trial["data"]["object"]["id"] = json!("cs_sub_trial");
    trial["data"]["object"]["payment_status"] = json!("no_payment_required");
    trial["data"]["object"]["amount_total"] = json!(0);
    trial["data"]["object"]["amount_subtotal"] = json!(0);
    trial["data"]["object"]["metadata"] = json!({});
    trial["data"]["object"]["client_reference_id"] = Value::Null;
    let r = receiver(&opts, &g, "trial").await;
    deliver_ok(&r, &trial).await;
    assert_eq!(
        count(&r, "select count(*) from stripe_events where needs_review").await,
        0
    );
    assert_eq!(count(&r, "select count(*) from plans").await, 1);
    assert_eq!(count(&r, "select count(*) from gifts").await, 0);
}

/// A payment is dated when it succeeded (the event), not when its payment intent was created
/// (days earlier for a bank debit).
#[sqlx::test]
async fn a_payment_is_dated_when_it_succeeded(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    let mut pi_event = g
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "payment_intent.succeeded")
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    pi_event["id"] = json!("evt_debit_1");
    pi_event["created"] = json!(now);
    pi_event["data"]["object"]["id"] = json!("pi_debit_1");
    pi_event["data"]["object"]["metadata"] = json!({});
    pi_event["data"]["object"]["created"] = json!(now - 5 * 86400);
    let r = receiver(&opts, &g, "dated").await;
    deliver_ok(&r, &pi_event).await;
    assert_eq!(
        count(&r, "select extract(epoch from paid_at)::int8 from gifts").await,
        now
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

/// A lost dispute takes the money back on the day it was lost: an update Stripe sends about
/// the closed dispute later does not move it to another day, in either order.
#[sqlx::test]
async fn a_lost_dispute_stays_on_the_day_it_was_lost(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let g = generator(opts.clone()).await;
    let (_, once) = paid_checkout(&g, "once", 5000).await;
    let pi = once["payment_intent"].as_str().unwrap().to_string();
    let payment: Value = g.standin.object(&pi).unwrap();
    let charge = payment["latest_charge"].as_str().unwrap().to_string();
    let dispute = stripe_call(
        &g,
        reqwest::Method::POST,
        &format!("_sim/charges/{charge}/dispute"),
        &[],
    )
    .await;
    stripe_call(
        &g,
        reqwest::Method::POST,
        &format!(
            "_sim/disputes/{}/close?status=lost",
            dispute["id"].as_str().unwrap()
        ),
        &[],
    )
    .await;
    let events = g.standin.events();
    let closed = events
        .iter()
        .find(|e| e["type"] == "charge.dispute.closed")
        .unwrap();
    let mut later = closed.clone();
    later["id"] = json!("evt_dispute_updated_later");
    later["type"] = json!("charge.dispute.updated");
    later["created"] = json!(closed["created"].as_i64().unwrap() + 3 * 86400);
    let lost_at = "select extract(epoch from status_at)::int8 from disputes";
    for (name, order) in [
        ("in_order", [closed, &later]),
        ("reversed", [&later, closed]),
    ] {
        let r = receiver(&opts, &g, name).await;
        for e in events
            .iter()
            .filter(|e| !e["type"].as_str().unwrap().starts_with("charge.dispute"))
        {
            deliver_ok(&r, e).await;
        }
        for e in order {
            deliver_ok(&r, e).await;
        }
        assert_eq!(
            count(&r, lost_at).await,
            closed["created"].as_i64().unwrap(),
            "{name}"
        );
        assert_kept_totals_equal_a_recomputation(&r).await;
    }
}

/// Plans are kept as monthly or yearly. One billed otherwise (every three months, weekly:
/// made in the Dashboard) is flagged for review rather than counted as monthly, and every
/// installment of it is still recorded: the money came.
#[sqlx::test]
async fn installments_of_a_plan_we_do_not_keep_are_still_recorded(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "monthly", 3000).await;
    let events = g.standin.events();
    let created = events
        .iter()
        .find(|e| e["type"] == "customer.subscription.created")
        .unwrap();
    let sub = created["data"]["object"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Billed every three months.
    let quarterly = |o: &mut Value| {
        o["items"]["data"][0]["price"]["recurring"]["interval_count"] = json!(3);
        o["items"]["data"][0]["plan"]["interval_count"] = json!(3);
    };
    g.standin.edit_object(&sub, quarterly);
    let mut told = created.clone();
    quarterly(&mut told["data"]["object"]);
    let r = receiver(&opts, &g, "quarterly").await;
    for e in events
        .iter()
        .filter(|e| e["type"] != "customer.subscription.created")
    {
        deliver_ok(&r, e).await;
    }
    deliver_ok(&r, &told).await;
    assert_eq!(count(&r, "select count(*) from plans").await, 0);
    assert_eq!(
        count(
            &r,
            "select count(*) from gifts where state = 'paid' and amount = 3000"
        )
        .await,
        1
    );
    assert!(
        count(
            &r,
            "select count(*) from stripe_events where needs_review and error like '%every 3 month%'"
        )
        .await
            >= 1
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

/// Stripe takes its fee in the account's currency: for a gift it converted, not the gift's.
/// That fee counts under its own currency, never subtracted from the gift's money.
#[sqlx::test]
async fn a_fee_taken_in_another_currency_counts_in_that_currency(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    let mut events = g.standin.events();
    let charge = events
        .iter_mut()
        .find(|e| e["type"] == "charge.succeeded")
        .unwrap();
    // As if the account settled in euros.
    let bt = &mut charge["data"]["object"]["balance_transaction"];
    if bt.is_object() {
        bt["currency"] = json!("eur");
    } else {
        g.standin
            .edit_object(bt.as_str().unwrap(), |o| o["currency"] = json!("eur"));
    }
    let r = receiver(&opts, &g, "fee_currency").await;
    for e in &events {
        deliver_ok(&r, e).await;
    }
    assert_eq!(
        count(
            &r,
            "select count(*) from charges where fee_currency = 'eur' and fee = 103"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &r,
            "select sum(fees)::int8 from daily_totals where currency = 'usd'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &r,
            "select sum(fees)::int8 from daily_totals where currency = 'eur'"
        )
        .await,
        103
    );
    assert_eq!(
        count(
            &r,
            "select sum(gross)::int8 from daily_totals where currency = 'usd'"
        )
        .await,
        2500
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

/// A refund told by its charge alone (a payload without `payment_intent`) still takes its
/// money back from the gift: the payment intent is read from the charge at Stripe.
#[sqlx::test]
async fn a_refund_named_by_its_charge_alone_still_counts(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    let (_, once) = paid_checkout(&g, "once", 5000).await;
    let pi = once["payment_intent"].as_str().unwrap().to_string();
    stripe_call(
        &g,
        reqwest::Method::POST,
        "v1/refunds",
        &[("payment_intent", &pi), ("amount", "1200")],
    )
    .await;
    let mut events = g.standin.events();
    for e in events
        .iter_mut()
        .filter(|e| e["type"].as_str().unwrap().starts_with("refund."))
    {
        e["data"]["object"]["payment_intent"] = Value::Null;
    }
    let r = receiver(&opts, &g, "refund_by_charge").await;
    for e in events.iter().filter(|e| e["type"] != "charge.refunded") {
        deliver_ok(&r, e).await;
    }
    assert_eq!(
        count(
            &r,
            "select count(*) from refunds where payment_intent_id is not null"
        )
        .await,
        1
    );
    assert_eq!(
        count(&r, "select sum(refunded)::int8 from daily_totals").await,
        1200
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

#[sqlx::test]
async fn installment_payment_intents_are_not_counted_as_one_time_gifts(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "monthly", 2500).await;
    let r = receiver(&opts, &g, "installment_pi").await;
    for e in g
        .standin
        .events()
        .iter()
        .filter(|e| e["type"] == "payment_intent.succeeded" || e["type"] == "charge.succeeded")
    {
        deliver_ok(&r, e).await;
    }
    assert_eq!(count(&r, "select count(*) from gifts").await, 0);
    assert_eq!(count(&r, "select count(*) from charges").await, 1);
}

#[sqlx::test]
async fn unknown_types_and_other_api_versions_are_stored_and_answered_200(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let unknown = json!({"id": "evt_unknown_1", "object": "event", "type": "customer.created", "created": 1_700_000_000,
        "api_version": chipin::stripe::api_version(), "livemode": false, "data": {"object": {"id": "cus_1", "object": "customer"}}});
    deliver_ok(&app, &unknown).await;
    assert_eq!(count(&app, "select count(*) from stripe_events where event_id = 'evt_unknown_1' and not needs_review").await, 1);

    // Real 2020-era events written by others: another API version, kept for review.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/stripe/events");
    for (i, name) in [
        "srm__charge.succeeded.json",
        "srm__invoice.paid.json",
        "srm__checkout.session.completed.json",
    ]
    .iter()
    .enumerate()
    {
        let mut e: Value =
            serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap())
                .unwrap();
        e["id"] = json!(format!("evt_old_version_{i}"));
        deliver_ok(&app, &e).await;
    }
    assert_eq!(
        count(
            &app,
            "select count(*) from stripe_events where needs_review and error like 'api version%'"
        )
        .await,
        3
    );
    assert_eq!(count(&app, "select count(*) from gifts").await, 0);

    // Our version but a shape we cannot read: flagged too, never a 4xx.
    let broken = json!({"id": "evt_broken_1", "object": "event", "type": "invoice.paid", "created": 1_700_000_000,
        "api_version": chipin::stripe::api_version(), "livemode": false, "data": {"object": {"object": "invoice"}}});
    deliver_ok(&app, &broken).await;
    assert_eq!(
        count(
            &app,
            "select count(*) from stripe_events where event_id = 'evt_broken_1' and needs_review"
        )
        .await,
        1
    );
}

#[sqlx::test]
async fn every_bad_signature_is_refused_and_nothing_is_stored(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let body = serde_json::to_vec(
        &json!({"id": "evt_sig_1", "object": "event", "type": "customer.created", "created": 1,
        "api_version": chipin::stripe::api_version(), "livemode": false, "data": {"object": {}}}),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let secret = app.webhook_secret.clone();
    let good = signature::sign(&[&secret], now, &body);
    let good_v1 = good.split_once(",v1=").unwrap().1.to_string();
    let mut altered = body.clone();
    altered[10] ^= 1;
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        ("empty header", body.clone(), Some(String::new())),
        ("malformed header", body.clone(), Some("garbage".into())),
        (
            "wrong secret",
            body.clone(),
            Some(signature::sign(&["whsec_wrong"], now, &body)),
        ),
        (
            "stale timestamp",
            body.clone(),
            Some(signature::sign(&[&secret], now - 301, &body)),
        ),
        (
            "future timestamp",
            body.clone(),
            Some(signature::sign(&[&secret], now + 301, &body)),
        ),
        ("altered body", altered, Some(good.clone())),
        ("v0 only", body.clone(), Some(good.replace("v1=", "v0="))),
        (
            "not UTF-8",
            vec![0xff, 0xfe, 0x00],
            Some(signature::sign(&[&secret], now, &[0xff, 0xfe, 0x00])),
        ),
        (
            "not JSON",
            b"hello".to_vec(),
            Some(signature::sign(&[&secret], now, b"hello")),
        ),
        (
            "not an event",
            b"{\"a\":1}".to_vec(),
            Some(signature::sign(&[&secret], now, b"{\"a\":1}")),
        ),
    ];
    for (name, body, header) in cases {
        let res = app.deliver_raw(body, header.as_deref()).await;
        assert_eq!(res.status(), 400, "{name}");
    }
    assert_eq!(count(&app, "select count(*) from stripe_events").await, 0);

    for header in [
        format!("t={now},v1=deadbeef,v1={good_v1}"),
        format!("t={now},v1={good_v1},v1=00zz"),
    ] {
        assert_eq!(
            app.deliver_raw(body.clone(), Some(&header)).await.status(),
            200,
            "{header}"
        );
    }
    let big = vec![b' '; chipin::webhooks::MAX_BODY + 1];
    let header = signature::sign(&[&secret], now, &big);
    assert_eq!(app.deliver_raw(big, Some(&header)).await.status(), 413);
    let get = app
        .http
        .get(format!("{}/webhooks/stripe", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
}

#[sqlx::test]
async fn both_secrets_pass_during_a_rotation(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app_with(
        opts,
        &[("STRIPE_WEBHOOK_SECRET", "whsec_old_one,whsec_new_one")],
    )
    .await;
    for (i, secrets) in [
        vec!["whsec_old_one"],
        vec!["whsec_new_one"],
        vec!["whsec_new_one", "whsec_old_one"],
    ]
    .iter()
    .enumerate()
    {
        let body = serde_json::to_vec(&json!({"id": format!("evt_rot_{i}"), "object": "event", "type": "customer.created",
            "created": 1, "api_version": chipin::stripe::api_version(), "livemode": false, "data": {"object": {}}})).unwrap();
        let header = signature::sign(secrets, chrono::Utc::now().timestamp(), &body);
        assert_eq!(
            app.deliver_raw(body, Some(&header)).await.status(),
            200,
            "{secrets:?}"
        );
    }
    let body = b"{}".to_vec();
    let header = signature::sign(&["whsec_retired"], chrono::Utc::now().timestamp(), &body);
    assert_eq!(app.deliver_raw(body, Some(&header)).await.status(), 400);
}

#[sqlx::test]
async fn a_database_outage_answers_503_and_the_redelivery_records_everything(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "monthly", 2500).await;
    let events = g.standin.events();
    let r = receiver(&opts, &g, "outage").await;
    let (first, rest) = events.split_at(2);
    for e in first {
        deliver_ok(&r, e).await;
    }
    let db_name: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&r.db)
        .await
        .unwrap();
    let admin = sqlx::PgPool::connect_with(opts.clone().database("postgres"))
        .await
        .unwrap();
    let block = |allow: bool| {
        let admin = admin.clone();
        let db_name = db_name.clone();
        async move {
            sqlx::query(&format!(
                "alter database \"{db_name}\" allow_connections {allow}"
            ))
            .execute(&admin)
            .await
            .unwrap();
            if !allow {
                sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()")
                    .bind(&db_name)
                    .execute(&admin)
                    .await
                    .unwrap();
                // Termination is asynchronous: wait until the last backend has gone.
                for _ in 0..200 {
                    let left: i64 = sqlx::query_scalar(
                        "select count(*) from pg_stat_activity where datname = $1",
                    )
                    .bind(&db_name)
                    .fetch_one(&admin)
                    .await
                    .unwrap();
                    if left == 0 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    };
    block(false).await;
    for e in rest {
        let res = r.deliver(e).await;
        let status = res.status();
        assert!(
            res.headers().contains_key("retry-after"),
            "{} during the outage: {status}",
            e["type"]
        );
        assert_eq!(
            status,
            503,
            "{} during the outage: {}",
            e["type"],
            res.text().await.unwrap()
        );
    }
    block(true).await;
    assert_eq!(
        count(&r, "select count(*) from stripe_events").await,
        2,
        "nothing half-written"
    );
    for e in rest {
        deliver_ok(&r, e).await;
    }
    assert_eq!(
        count(&r, "select count(*) from stripe_events").await,
        events.len() as i64
    );
    assert_eq!(
        count(&r, "select count(*) from gifts where state = 'paid'").await,
        1
    );
    assert_eq!(
        count(&r, "select count(*) from plans where status = 'active'").await,
        1
    );
}

#[sqlx::test]
async fn stripe_being_unreachable_while_reading_an_event_answers_503(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "monthly", 2500).await;
    let invoice_paid = g
        .standin
        .events()
        .into_iter()
        .find(|e| e["type"] == "invoice.paid")
        .unwrap();
    let r = receiver(&opts, &g, "stripe_down").await;
    let down = chipin::stripe::standin::Failure::Status {
        status: 500,
        should_retry: None,
    };
    g.standin.fail_next(vec![down; 3]);
    assert_eq!(r.deliver(&invoice_paid).await.status(), 503);
    assert_eq!(count(&r, "select count(*) from stripe_events").await, 0);
    deliver_ok(&r, &invoice_paid).await;
    assert_eq!(
        count(&r, "select count(*) from gifts where state = 'paid'").await,
        1
    );
}

#[sqlx::test]
async fn stripe_sync_fills_the_gap_left_by_undelivered_events(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    let events = whole_lives(&g).await;
    let in_order = receiver(&opts, &g, "sync_reference").await;
    for e in &events {
        deliver_ok(&in_order, e).await;
    }
    // This receiver got only every other event; the rest were never delivered.
    let r = receiver(&opts, &g, "sync_gap").await;
    for e in events.iter().step_by(2) {
        deliver_ok(&r, e).await;
    }
    let gap_db: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&r.db)
        .await
        .unwrap();
    let env = [
        (
            "DATABASE_URL",
            format!(
                "postgres://{}@{}:{}/{gap_db}",
                opts.get_username(),
                opts.get_host(),
                opts.get_port()
            ),
        ),
        (
            "STRIPE_SECRET_KEY",
            chipin::stripe::standin::SECRET_KEY.to_string(),
        ),
        ("STRIPE_API_BASE", g.standin.base_url()),
        ("STRIPE_WEBHOOK_SECRET", g.standin.secret().to_string()),
    ];
    let (ok, out) = run_chipin(&["stripe", "sync", "--since", "2020-01-01"], &env).await;
    assert!(ok, "{out}");
    let skipped = events.len() / 2;
    assert!(
        out.contains(&format!(
            "{} applied, {} already stored",
            skipped,
            events.len() - skipped
        )),
        "{out}"
    );
    assert_eq!(snapshot(&r).await, snapshot(&in_order).await);
    let (ok, out) = run_chipin(&["stripe", "sync", "--since", "2020-01-01"], &env).await;
    assert!(
        ok && out.contains(&format!("0 applied, {} already stored", events.len())),
        "{out}"
    );
}

#[sqlx::test]
async fn replaying_a_stored_event_changes_nothing_more(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts.clone()).await;
    paid_checkout(&app, "once", 2500).await;
    app.settle(3).await;
    let before = snapshot(&app).await;
    let event_id: String = sqlx::query_scalar(
        "select event_id from stripe_events where type = 'checkout.session.completed'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let env = [
        ("DATABASE_URL", database_url(&opts)),
        (
            "STRIPE_SECRET_KEY",
            chipin::stripe::standin::SECRET_KEY.to_string(),
        ),
        ("STRIPE_API_BASE", app.standin.base_url()),
        ("STRIPE_WEBHOOK_SECRET", app.standin.secret().to_string()),
    ];
    let (ok, out) = run_chipin(&["events", "replay", &event_id], &env).await;
    assert!(ok, "{out}");
    assert_eq!(snapshot(&app).await, before);
    let (ok, _) = run_chipin(&["events", "replay", "evt_never_seen"], &env).await;
    assert!(!ok);
}

#[sqlx::test]
async fn logs_carry_no_email_signature_secret_or_payload(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use tokio::io::AsyncBufReadExt;
    let g = spawn_app(opts.clone()).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipin"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", receiver_url(&opts, "logs"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("STRIPE_SECRET_KEY", chipin::stripe::standin::SECRET_KEY)
        .env("STRIPE_API_BASE", g.standin.base_url())
        .env("STRIPE_WEBHOOK_SECRET", g.standin.secret())
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut captured = Vec::new();
    let address = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("serve logs");
        captured.push(line.clone());
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["message"] == "chipin listening" {
            break v["address"].as_str().unwrap().to_string();
        }
    };
    g.standin
        .set_webhook_url(&format!("{address}/webhooks/stripe"));
    let created: Value = g
        .http
        .post(format!("{address}/api/checkout"))
        .json(
            &json!({"amount": 2500, "frequency": "monthly", "email": "private.reader@example.org"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    g.http
        .post(created["checkout_url"].as_str().unwrap())
        .form(&[
            ("email", "private.reader@example.org"),
            ("name", "Private Reader"),
        ])
        .send()
        .await
        .unwrap();
    let before = g.standin.events().len();
    for _ in 0..400 {
        if g.standin.undelivered() == 0 && before > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(g.standin.undelivered(), 0, "every event was answered 2xx");
    let _ = child.start_kill();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await
    {
        captured.push(line);
    }
    let log = captured.join("\n");
    assert!(
        log.contains("webhook received"),
        "the deliveries were logged:\n{log}"
    );
    for secret in [
        "private.reader@example.org",
        "Private Reader",
        g.standin.secret(),
        "v1=",
        "\"object\": \"event\"",
        "sk_test_standin",
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}");
    }
}

#[sqlx::test]
async fn fees_missing_because_no_charge_event_came_are_filled_in_by_settle(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let g = generator(opts.clone()).await;
    paid_checkout(&g, "once", 2500).await;
    paid_checkout(&g, "monthly", 1000).await;
    let r = receiver(&opts, &g, "fees").await;
    for e in g
        .standin
        .events()
        .iter()
        .filter(|e| e["type"] != "charge.succeeded")
    {
        deliver_ok(&r, e).await;
    }
    assert_eq!(count(&r, "select count(*) from charges").await, 0);
    let db: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&r.db)
        .await
        .unwrap();
    let env = [
        (
            "DATABASE_URL",
            format!(
                "postgres://{}@{}:{}/{db}",
                opts.get_username(),
                opts.get_host(),
                opts.get_port()
            ),
        ),
        (
            "STRIPE_SECRET_KEY",
            chipin::stripe::standin::SECRET_KEY.to_string(),
        ),
        ("STRIPE_API_BASE", g.standin.base_url()),
        ("STRIPE_WEBHOOK_SECRET", g.standin.secret().to_string()),
    ];
    // The pass `serve` runs every five minutes looks at the last days only (a full ledger's
    // worth took a minute at ten million gifts): a gift paid 40 days ago waits for the command.
    sqlx::query(
        "update gifts set paid_at = now() - interval '40 days' where frequency = 'monthly'",
    )
    .execute(&r.db)
    .await
    .unwrap();
    // An edit of the ledger by hand: the kept figures are rebuilt, as an operator would.
    let (ok, out) = run_chipin(&["report", "rebuild"], &env).await;
    assert!(ok, "{out}");
    let state = chipin::state::AppState {
        db: r.db.clone(),
        stripe: chipin::stripe::StripeClient::new(
            &g.standin.base_url(),
            secrecy::SecretString::from(chipin::stripe::standin::SECRET_KEY.to_string()),
            std::time::Duration::from_secs(5),
            3,
        ),
        config: r.config.clone(),
    };
    let month_ago = chrono::Utc::now() - chrono::Duration::days(30);
    let settled = chipin::gifts::fees::settle_pending(
        &state,
        200,
        std::time::Duration::ZERO,
        Some(month_ago),
    )
    .await
    .unwrap();
    assert_eq!(settled, 1);
    assert_eq!(count(&r, "select sum(fee)::int8 from charges").await, 103);
    let (ok, out) = run_chipin(&["fees", "settle"], &env).await;
    assert!(ok && out.contains("fees filled in for 1 gifts"), "{out}");
    // 2.9% + 30: 2500 -> 103, 1000 -> 59
    assert_eq!(
        count(&r, "select sum(fee)::int8 from charges").await,
        103 + 59
    );
    assert_eq!(
        count(&r, "select sum(net)::int8 from charges").await,
        2500 - 103 + 1000 - 59
    );
    let (ok, out) = run_chipin(&["fees", "settle"], &env).await;
    assert!(ok && out.contains("fees filled in for 0 gifts"), "{out}");
    // The fees filled in count in the kept totals the reports read, as a rebuild counts them.
    assert_eq!(
        count(&r, "select sum(fees)::int8 from daily_totals").await,
        103 + 59
    );
    assert_kept_totals_equal_a_recomputation(&r).await;
}

#[sqlx::test]
async fn the_demo_with_no_configuration_ends_with_a_paid_gift(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use tokio::io::AsyncBufReadExt;
    let url = receiver_url(&opts, "demo");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipin"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &url)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("STRIPE_STANDIN_ADDR", "127.0.0.1:0")
        .env("LOG_FORMAT", "json")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut warned = false;
    let address = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .expect("serve logs");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        warned |= v["message"]
            .as_str()
            .is_some_and(|m| m.contains("No real money moves"));
        if v["message"] == "chipin listening" {
            break v["address"].as_str().unwrap().to_string();
        }
    };
    assert!(warned, "serve says loudly that no real money moves");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let created: Value = http
        .post(format!("{address}/api/checkout"))
        .json(&json!({"amount": 2500, "frequency": "once"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let checkout_url = created["checkout_url"].as_str().unwrap();
    let page = http
        .get(checkout_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Pay 25.00 USD"), "{page}");
    let paid = http
        .post(checkout_url)
        .form(&[("email", "demo@example.org"), ("name", "Demo Reader")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), 303);
    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let mut state = String::new();
    for _ in 0..200 {
        state = sqlx::query_scalar("select state from gifts where id = $1::uuid")
            .bind(created["id"].as_str().unwrap())
            .fetch_one(&db)
            .await
            .unwrap();
        if state == "paid" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        state, "paid",
        "the stand-in's signed webhook recorded the gift"
    );
}
