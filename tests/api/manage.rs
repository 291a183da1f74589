//! Managing a recurring gift (sign-in links by email, the Billing Portal) and the donor
//! privacy commands, over real HTTP against the stand-in; one real-browser test goes from
//! the emailed link to a cancelled plan.

use std::time::Duration;

use chipin::reports::staff::{self, Role};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::browser;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const DONOR: &str = "reader@example.org";

/// A monthly gift through our API, paid on the stand-in's page; waits for the webhook to
/// record the plan. Returns the subscription id.
async fn monthly_donor(app: &TestApp, email: &str, amount: i64) -> String {
    let res = app
        .checkout(
            json!({"amount": amount, "frequency": "monthly", "email": email, "campaign": "spring"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let paid = app
        .http
        .post(created["checkout_url"].as_str().unwrap())
        .form(&[("email", email), ("name", "Test Reader")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let session = app
        .standin
        .object(created["stripe_session_id"].as_str().unwrap())
        .unwrap();
    let sub = session["subscription"].as_str().unwrap().to_string();
    wait_for_plan(app, &sub, |status, _| status == "active").await;
    sub
}

/// Polls until the plan satisfies `ok(status, amount)`.
async fn wait_for_plan(app: &TestApp, sub: &str, ok: impl Fn(&str, i64) -> bool) {
    let mut last = None;
    for _ in 0..200 {
        last = sqlx::query_as::<_, (String, i64)>(
            "select p.status, p.amount from plans p join donors d on d.id = p.donor_id
             where p.subscription_id = $1",
        )
        .bind(sub)
        .fetch_optional(&app.db)
        .await
        .unwrap();
        if let Some((status, amount)) = &last
            && ok(status, *amount)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("plan {sub} never got there; last seen {last:?}");
}

async fn request_link(app: &TestApp, email: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/manage", app.address))
        .header("origin", &app.address)
        .form(&[("email", email)])
        .send()
        .await
        .unwrap()
}

/// Waits until the outbox holds `n` mails and returns them as (recipient, body).
async fn outbox(app: &TestApp, n: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        let mails: Vec<(String, String)> =
            sqlx::query_as("select recipient, body from mail_outbox order by id")
                .fetch_all(&app.db)
                .await
                .unwrap();
        if mails.len() >= n {
            return mails;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the outbox never held {n} mails");
}

/// The sign-in link in a mail.
fn link_in(body: &str) -> String {
    body.split_whitespace()
        .find(|w| w.contains("/manage/link?token="))
        .expect("a link in the mail")
        .to_string()
}

fn token_of(link: &str) -> String {
    link.split("token=").nth(1).unwrap().to_string()
}

async fn confirm(app: &TestApp, token: &str) -> reqwest::Response {
    app.http
        .post(format!("{}/manage/link", app.address))
        .header("origin", &app.address)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

#[sqlx::test]
async fn known_and_unknown_addresses_get_byte_identical_answers(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    monthly_donor(&app, DONOR, 2500).await;

    let page = app
        .http
        .get(format!("{}/manage", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<form id="manage" method="post" action="/manage""#));
    assert!(html.contains(r#"<label for="email">Email</label>"#));

    let mut answers = Vec::new();
    // Known (in another case) and unknown addresses give the same bytes.
    for email in [
        "Reader@Example.org",
        "nobody@example.org",
        "someone@example.net",
    ] {
        let res = request_link(&app, email).await;
        let status = res.status();
        let headers: Vec<(String, String)> = res
            .headers()
            .iter()
            .filter(|(k, _)| *k != "date" && *k != "x-request-id")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        answers.push((status, headers, res.bytes().await.unwrap()));
    }
    assert_eq!(answers[0].0, StatusCode::OK);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[1], answers[2]);
    assert!(String::from_utf8_lossy(&answers[0].2).contains("If this address belongs to a donor"));

    // Only the known donor got mail, and the token is stored only as a hash.
    let mails = outbox(&app, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mails_after: i64 = sqlx::query_scalar("select count(*) from mail_outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(mails_after, 1);
    assert_eq!(mails[0].0, DONOR);
    let token = token_of(&link_in(&mails[0].1));
    let stored: i64 = sqlx::query_scalar("select count(*) from manage_links where token_hash = $1")
        .bind(&token)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the token itself is never stored");

    // A malformed address is told so (that says nothing about anyone).
    let res = request_link(&app, "not-an-address").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[sqlx::test]
async fn a_link_works_once_and_its_get_spends_nothing(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    monthly_donor(&app, DONOR, 2500).await;
    assert_eq!(request_link(&app, DONOR).await.status(), StatusCode::OK);
    let link = link_in(&outbox(&app, 1).await[0].1);
    assert!(link.starts_with(&format!("{}/manage/link?token=", app.address)));
    let token = token_of(&link);

    // A mail scanner following the link twice changes nothing.
    for _ in 0..2 {
        let res = app.http.get(&link).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["cache-control"], "no-store");
        assert_eq!(res.headers()["referrer-policy"], "same-origin");
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"id="open-portal""#), "{html}");
    }
    let res = confirm(&app, &token).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let portal = res.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(
        portal.starts_with(&format!("{}portal/bps_", app.standin.base_url())),
        "{portal}"
    );
    let created = app
        .standin
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/billing_portal/sessions")
        .expect("a portal session was created");
    assert!(
        created.params["customer"]
            .as_str()
            .unwrap()
            .starts_with("cus_")
    );
    assert_eq!(
        created.params["return_url"],
        format!("{}/manage", app.address)
    );

    // Spent: the same link, GET or POST, no longer works.
    let again = confirm(&app, &token).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("This link no longer works")
    );
    let html = app
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("This link no longer works") && !html.contains("open-portal"));

    // Tokens that were never issued, and posts from elsewhere, open nothing.
    let forged = confirm(&app, &"ab".repeat(32)).await;
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("This link no longer works")
    );
    assert_eq!(request_link(&app, DONOR).await.status(), StatusCode::OK);
    let token = token_of(&link_in(&outbox(&app, 2).await[1].1));
    let foreign = app
        .http
        .post(format!("{}/manage/link", app.address))
        .header("origin", "https://evil.example")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert_eq!(confirm(&app, &token).await.status(), StatusCode::SEE_OTHER);
}

#[sqlx::test]
async fn a_link_expires_after_thirty_minutes(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    monthly_donor(&app, DONOR, 2500).await;
    request_link(&app, DONOR).await;
    let link = link_in(&outbox(&app, 1).await[0].1);
    let validity: f64 = sqlx::query_scalar(
        "select extract(epoch from expires_at - created_at)::float8 from manage_links",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(validity, 1800.0);
    // Thirty minutes and a second later:
    sqlx::query("update manage_links set created_at = created_at - interval '1801 seconds', expires_at = expires_at - interval '1801 seconds'")
        .execute(&app.db)
        .await
        .unwrap();
    let html = app
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("This link no longer works"));
    let res = confirm(&app, &token_of(&link)).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("This link no longer works")
    );
    assert!(
        !app.standin
            .requests()
            .iter()
            .any(|r| r.path == "/v1/billing_portal/sessions")
    );
}

#[sqlx::test]
async fn link_requests_are_rate_limited_per_address_and_per_ip(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(
        opts,
        &[
            ("MANAGE_LIMIT_PER_EMAIL", "2/1h"),
            ("MANAGE_LIMIT_PER_IP", "4/1h"),
        ],
    )
    .await;
    monthly_donor(&app, DONOR, 2500).await;
    assert_eq!(request_link(&app, DONOR).await.status(), StatusCode::OK);
    assert_eq!(
        request_link(&app, "READER@example.org ").await.status(),
        StatusCode::OK
    );
    let limited = request_link(&app, DONOR).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    // Another address from the same IP: its own count, until the IP's runs out.
    assert_eq!(
        request_link(&app, "other@example.org").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        request_link(&app, "third@example.org").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Two links went out, no more; the buckets hold no address in the clear.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(outbox(&app, 2).await.len(), 2);
    let clear: i64 =
        sqlx::query_scalar("select count(*) from rate_limit_hits where bucket like '%@%'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(clear, 0);
}

#[sqlx::test]
async fn posts_from_other_sites_are_refused(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    monthly_donor(&app, DONOR, 2500).await;
    let res = app
        .http
        .post(format!("{}/manage", app.address))
        .header("origin", "https://evil.example")
        .form(&[("email", DONOR)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mails: i64 = sqlx::query_scalar("select count(*) from mail_outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(mails, 0);
}

/// The stand-in's portal page and the form actions on it.
fn portal_actions(html: &str) -> Vec<String> {
    html.split(r#"action=""#)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_string())
        .collect()
}

#[sqlx::test]
async fn a_donor_changes_then_cancels_their_plan_from_the_emailed_link(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let sub = monthly_donor(&app, DONOR, 2500).await;
    request_link(&app, DONOR).await;
    let link = link_in(&outbox(&app, 1).await[0].1);
    let html = app
        .http
        .get(&link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"action="/manage/link""#));
    let res = confirm(&app, &token_of(&link)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let portal = res.headers()[LOCATION].to_str().unwrap().to_string();

    let html = app
        .http
        .get(&portal)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("25.00 USD every month"), "{html}");
    let actions = portal_actions(&html);
    let base = app.standin.base_url();
    let amount = actions.iter().find(|a| a.contains("/amount/")).unwrap();
    let cancel = actions.iter().find(|a| a.contains("/cancel/")).unwrap();
    assert!(amount.ends_with(&sub) && cancel.ends_with(&sub));

    let res = app
        .http
        .post(format!("{}{}", base.trim_end_matches('/'), amount))
        .form(&[("amount_major", "40")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    wait_for_plan(&app, &sub, |s, a| s == "active" && a == 4000).await;

    let res = app
        .http
        .post(format!("{}{}", base.trim_end_matches('/'), cancel))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    wait_for_plan(&app, &sub, |s, _| s == "canceled").await;
    let reason: Option<String> =
        sqlx::query_scalar("select cancel_reason from plans where subscription_id = $1")
            .bind(&sub)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("cancellation_requested"));
}

/// Runs the real `chipin` binary against this test's database and stand-in.
async fn chipin(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_chipin"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .env("DATABASE_URL", app.config.database_url())
        .env("STRIPE_SECRET_KEY", chipin::stripe::standin::SECRET_KEY)
        .env("STRIPE_API_BASE", app.standin.base_url())
        .env("STRIPE_WEBHOOK_SECRET", &app.webhook_secret)
        .env("LOG_FORMAT", "human")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("chipin runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn summary(app: &TestApp, token: &str) -> Value {
    let today = chrono::Utc::now().date_naive();
    let res = app
        .http
        .get(format!(
            "{}/api/reports/summary?from={today}&to={today}&interval=day&currency=usd",
            app.address
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

/// A summary's figures without the plan counts.
fn money(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "active_plans" | "mrr" | "cancellations"))
                .map(|(k, v)| (k.clone(), money(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(money).collect()),
        other => other.clone(),
    }
}

#[sqlx::test]
async fn export_shows_everything_and_erase_keeps_the_money_and_the_totals(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let sub = monthly_donor(&app, DONOR, 2500).await;
    // A one-time gift from the same donor, and another donor who is left alone.
    let res = app
        .checkout(json!({"amount": 1000, "frequency": "once", "email": DONOR}))
        .await;
    let created: Value = res.json().await.unwrap();
    app.pay(created["checkout_url"].as_str().unwrap()).await;
    monthly_donor(&app, "other@example.org", 5000).await;
    app.settle(0).await;
    request_link(&app, DONOR).await;
    outbox(&app, 1).await;
    let token = staff::add(&app.db, "ada", Role::Viewer).await.unwrap();
    let before = summary(&app, &token).await;
    assert_eq!(before["total"]["gifts"], 3, "{before}");

    let (ok, out, err) = chipin(&app, &["donor", "export", "Reader@Example.org"]).await;
    assert!(ok, "{err}");
    let held: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(held["donor"]["email"], DONOR);
    assert_eq!(held["donor"]["name"], "Test Reader");
    let customers = held["stripe_customer_ids"].as_array().unwrap().clone();
    assert_eq!(customers.len(), 2, "{held}");
    assert_eq!(held["gifts"].as_array().unwrap().len(), 2);
    assert_eq!(held["plans"][0]["subscription_id"], sub.as_str());

    let (ok, out, err) = chipin(&app, &["donor", "erase", DONOR]).await;
    assert!(ok, "{out}{err}");
    assert!(!err.contains(DONOR) && !out.contains(DONOR));
    let erased: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(erased["gifts_kept"], 2);
    assert_eq!(
        erased["stripe_customers_deleted"].as_array().unwrap().len(),
        2
    );

    // The donor row stays as a pseudonymous marker; the money stays with it.
    let (email, name, country, erased_at): (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as("select email, name, country, erased_at from donors where id = $1::uuid")
        .bind(erased["donor_id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!((email, name, country), (None, None, None));
    assert!(erased_at.is_some());
    let kept: Vec<(i64, Option<chrono::DateTime<chrono::Utc>>)> = sqlx::query_as(
        "select amount, paid_at from gifts where donor_id = $1::uuid order by amount",
    )
    .bind(erased["donor_id"].as_str().unwrap())
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        kept.iter().map(|k| k.0).collect::<Vec<_>>(),
        vec![1000, 2500]
    );
    assert!(kept.iter().all(|k| k.1.is_some()));
    // Nothing anywhere still holds the address: not the outbox, links, or stored events.
    for table in ["mail_outbox", "manage_links", "stripe_events", "donors"] {
        let n: i64 = sqlx::query_scalar(&format!(
            "select count(*) from {table} t where lower(t::text) like '%reader@example.org%'"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(n, 0, "{table} still holds the address");
    }
    // Stripe deleted the customers, which canceled the subscription (told by webhook).
    for c in &customers {
        assert_eq!(
            app.standin.object(c.as_str().unwrap()).unwrap()["deleted"],
            true
        );
    }
    wait_for_plan(&app, &sub, |s, _| s == "canceled").await;
    app.settle(0).await;

    // The money totals do not move. (Plan counts do: deleting the customer at Stripe
    // canceled the plan.)
    let after = summary(&app, &token).await;
    assert_eq!(money(&before["total"]), money(&after["total"]));
    assert_eq!(money(&before["periods"]), money(&after["periods"]));
    assert_eq!(before["total"]["net"], 8500);

    // A later event about the erased donor's customer does not bring the address back.
    let completed = app
        .standin
        .events()
        .into_iter()
        .find(|e| {
            e["type"] == "checkout.session.completed"
                && e["data"]["object"]["subscription"] == sub.as_str()
        })
        .unwrap();
    let mut again = completed.clone();
    again["id"] = json!("evt_after_erasure");
    assert_eq!(app.deliver(&again).await.status(), StatusCode::OK);
    let back: i64 = sqlx::query_scalar(
        "select count(*) from donors where email = $1 or name is not null and id = $2::uuid",
    )
    .bind(DONOR)
    .bind(erased["donor_id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(back, 0);
    assert_eq!(
        money(&summary(&app, &token).await["total"]),
        money(&before["total"])
    );
    // The other donor is untouched, and the erased address is no longer known.
    let (ok, out, _) = chipin(&app, &["donor", "export", "other@example.org"]).await;
    assert!(ok && out.contains("other@example.org"));
    let (ok, _, err) = chipin(&app, &["donor", "export", DONOR]).await;
    assert!(!ok && err.contains("no donor"), "{err}");
}

#[sqlx::test]
async fn a_donor_cancels_from_the_emailed_link_in_a_real_browser(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    if !browser::available_or_skip() {
        return;
    }
    let app = spawn_app(opts).await;
    let sub = monthly_donor(&app, DONOR, 2500).await;
    let driver = browser::Driver::start().await;
    let b = driver.session().await;

    b.goto(&format!("{}/manage", app.address)).await;
    b.type_into("#email", DONOR).await;
    b.click("#send-link").await;
    b.wait_for("#sent").await;
    assert!(b.text("#sent").await.contains("If this address belongs"));
    let link = link_in(&outbox(&app, 1).await[0].1);

    b.goto(&link).await;
    b.wait_for("#open-portal").await;
    b.click("#open-portal").await;
    b.wait_for_url("/portal/bps_").await;
    b.wait_for("button.cancel").await;
    assert!(b.text("main, body").await.contains("25.00 USD every month"));
    b.click("button.cancel").await;
    b.wait_for("#portal-message").await;
    assert!(b.text("#portal-message").await.contains("canceled"));
    wait_for_plan(&app, &sub, |s, _| s == "canceled").await;
    // Back on our side, the spent link opens nothing.
    b.goto(&link).await;
    b.wait_for("#ask-again").await;
    assert_eq!(b.text("h1").await, "This link no longer works");
    b.quit().await;
}
