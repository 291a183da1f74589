//! `POST /api/checkout` over real HTTP: what the app answers, what the Stripe stand-in
//! receives, and what lands in Postgres.

use std::time::Duration;

use chipin::checkout::{MAX_BODY, stripe_key};
use chipin::stripe::standin::{Failure, Recorded};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, ORIGIN, RETRY_AFTER};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use uuid::Uuid;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const SESSIONS: &str = "/v1/checkout/sessions";
const EMAIL: &str = "reader@example.org";

fn gift(amount: i64, frequency: &str) -> Value {
    json!({"amount": amount, "frequency": frequency, "email": EMAIL})
}

fn url(app: &TestApp) -> String {
    format!("{}/api/checkout", app.address)
}

async fn post(
    app: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.http
        .post(url(app))
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .expect("request sent")
}

async fn post_form(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(url(app))
        .form(fields)
        .send()
        .await
        .expect("request sent")
}

async fn checkout_with_key(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(url(app))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

async fn checkout_from(app: &TestApp, origin: &str, body: &Value) -> reqwest::Response {
    app.http
        .post(url(app))
        .header(ORIGIN, origin)
        .json(body)
        .send()
        .await
        .expect("request sent")
}

/// Reads a `201 Created` answer.
async fn created(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON body");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Reads an error answer: its status and its `error` object.
async fn error_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON error body");
    (status, body["error"].clone())
}

fn gift_id(body: &Value) -> Uuid {
    body["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id is a uuid")
}

/// Every Checkout Session creation the stand-in received, retries included.
fn session_posts(app: &TestApp) -> Vec<Recorded> {
    app.standin
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == SESSIONS)
        .collect()
}

async fn gift_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from gifts")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[derive(Debug, sqlx::FromRow)]
struct GiftRow {
    state: String,
    amount: i64,
    currency: String,
    covered_fee: i64,
    frequency: String,
    checkout_session_id: Option<String>,
    failure: Option<String>,
}

async fn gift_row(app: &TestApp, id: Uuid) -> GiftRow {
    sqlx::query_as(
        "select state, amount, currency, covered_fee, frequency, checkout_session_id, failure
         from gifts where id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .expect("the gift row exists")
}

/// The only gift in the database.
async fn only_gift(app: &TestApp) -> (Uuid, GiftRow) {
    assert_eq!(gift_count(app).await, 1);
    let id: Uuid = sqlx::query_scalar("select id from gifts")
        .fetch_one(&app.db)
        .await
        .unwrap();
    (id, gift_row(app, id).await)
}

/// A 201 for a gift of `amount` `frequency`: the answer, the one session request the stand-in
/// got (field by field) and the pending gift row.
async fn assert_session_created(
    app: &TestApp,
    res: reqwest::Response,
    amount: i64,
    frequency: &str,
) {
    let body = created(res).await;
    let id = gift_id(&body);
    let session_id = body["stripe_session_id"]
        .as_str()
        .expect("stripe_session_id");
    assert!(session_id.starts_with("cs_test_"), "{session_id}");
    assert_eq!(
        body["checkout_url"],
        format!("{}pay/{session_id}", app.standin.base_url())
    );

    let posts = session_posts(app);
    assert_eq!(posts.len(), 1, "{posts:?}");
    let sent = &posts[0];
    assert_eq!(
        sent.idempotency_key.as_deref(),
        Some(stripe_key(id).as_str())
    );
    let p = &sent.params;
    let gift_ref = id.to_string();
    let price = &p["line_items"][0]["price_data"];
    assert_eq!(price["unit_amount"], amount.to_string());
    assert_eq!(price["currency"], "usd");
    assert_eq!(price["product_data"]["name"], "Support our newsroom");
    assert_eq!(p["line_items"][0]["quantity"], "1");
    assert_eq!(p["metadata"]["gift_id"], gift_ref);
    assert_eq!(p["client_reference_id"], gift_ref);
    assert_eq!(p["customer_email"], EMAIL);
    let success_url = p["success_url"].as_str().expect("success_url");
    assert!(success_url.starts_with(&app.address), "{success_url}");
    assert!(
        success_url.contains("{CHECKOUT_SESSION_ID}"),
        "{success_url}"
    );
    assert_eq!(p["cancel_url"], format!("{}/donate/cancelled", app.address));
    match frequency {
        "once" => {
            assert_eq!(p["mode"], "payment");
            assert_eq!(p["submit_type"], "donate");
            assert!(price.get("recurring").is_none(), "{price}");
            assert_eq!(p["payment_intent_data"]["metadata"]["gift_id"], gift_ref);
            assert!(p.get("subscription_data").is_none(), "{p}");
        }
        recurring => {
            let interval = if recurring == "monthly" {
                "month"
            } else {
                "year"
            };
            assert_eq!(p["mode"], "subscription");
            assert_eq!(price["recurring"]["interval"], interval);
            assert_eq!(p["subscription_data"]["metadata"]["gift_id"], gift_ref);
            assert!(p.get("payment_intent_data").is_none(), "{p}");
        }
    }

    let row = gift_row(app, id).await;
    assert_eq!(row.state, "pending");
    assert_eq!(row.amount, amount);
    assert_eq!(row.currency, "usd");
    assert_eq!(row.covered_fee, 0);
    assert_eq!(row.frequency, frequency);
    assert_eq!(row.checkout_session_id.as_deref(), Some(session_id));
    assert_eq!(row.failure, None);
}

/// Nothing was created anywhere: no gift row, no call to Stripe.
async fn assert_nothing_created(app: &TestApp) {
    assert_eq!(gift_count(app).await, 0);
    let posts = session_posts(app);
    assert!(posts.is_empty(), "{posts:?}");
}

// --- Gifts that start a checkout -----------------------------------------------------------

#[sqlx::test]
async fn a_one_time_gift_creates_a_payment_session_and_a_pending_gift(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = app.checkout(gift(2500, "once")).await;
    assert_session_created(&app, res, 2500, "once").await;
}

#[sqlx::test]
async fn a_monthly_gift_creates_a_monthly_subscription_session(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = app.checkout(gift(1000, "monthly")).await;
    assert_session_created(&app, res, 1000, "monthly").await;
}

#[sqlx::test]
async fn a_yearly_gift_creates_a_yearly_subscription_session(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = app.checkout(gift(12000, "yearly")).await;
    assert_session_created(&app, res, 12000, "yearly").await;
}

#[sqlx::test]
async fn covering_fees_adds_the_estimated_fee_to_what_stripe_charges(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let body = created(
        app.checkout(json!({"amount": 2500, "frequency": "once", "cover_fees": true}))
            .await,
    )
    .await;

    // (2500 + 30) / (1 - 0.029) = 2605.56..., rounded up: the donor's 2500 arrives whole.
    let posts = session_posts(&app);
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].params["line_items"][0]["price_data"]["unit_amount"],
        "2606"
    );
    let row = gift_row(&app, gift_id(&body)).await;
    assert_eq!(row.amount, 2606);
    assert_eq!(row.covered_fee, 106);
}

#[sqlx::test]
async fn an_html_form_post_redirects_to_checkout_with_303(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = post_form(
        &app,
        &[
            ("amount", "2500"),
            ("frequency", "monthly"),
            ("email", EMAIL),
        ],
    )
    .await;

    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[LOCATION].to_str().unwrap().to_string();
    let (_, row) = only_gift(&app).await;
    assert_eq!((row.amount, row.frequency.as_str()), (2500, "monthly"));
    let session_id = row.checkout_session_id.expect("session stored");
    let session = app
        .standin
        .object(&session_id)
        .expect("the stand-in has the session");
    assert_eq!(session["url"], location);
    assert_eq!(
        location,
        format!("{}pay/{session_id}", app.standin.base_url())
    );
}

// --- Bad requests -------------------------------------------------------------------------

#[sqlx::test]
async fn each_invalid_field_is_a_422_naming_the_field(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let cases = [
        (json!({"amount": 499, "frequency": "once"}), "amount"),
        (json!({"amount": 2_500_001, "frequency": "once"}), "amount"),
        (json!({"amount": 25.5, "frequency": "once"}), "amount"),
        (json!({"amount": -500, "frequency": "once"}), "amount"),
        (json!({"amount": "2500", "frequency": "once"}), "amount"),
        (
            json!({"amount": 2500, "frequency": "once", "currency": "jpy"}),
            "currency",
        ),
        (json!({"amount": 2500, "frequency": "weekly"}), "frequency"),
        (
            json!({"amount": 2500, "frequency": "once", "email": "not-an-email"}),
            "email",
        ),
        (
            json!({"amount": 2500, "frequency": "once", "dedication": "d".repeat(201)}),
            "dedication",
        ),
        (
            json!({"amount": 2500, "frequency": "once", "campaign": "c".repeat(65)}),
            "campaign",
        ),
        (
            json!({"amount": 2500, "frequency": "once", "card_number": "4242424242424242"}),
            "card_number",
        ),
    ];
    for (body, field) in cases {
        let (status, error) = error_of(app.checkout(body.clone()).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["code"], "invalid_field", "{body}");
        assert_eq!(error["field"], field, "{body}: {error}");
        let message = error["message"].as_str().expect("a message");
        assert!(message.starts_with(field), "{body}: {message}");
    }
    assert_nothing_created(&app).await;
}

#[sqlx::test]
async fn malformed_json_is_a_400(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    let (status, error) =
        error_of(post(&app, "application/json", r#"{"amount": 2500,"#).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "malformed_body");
    assert_nothing_created(&app).await;
}

#[sqlx::test]
async fn a_body_that_is_neither_json_nor_a_form_is_a_415(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let body = gift(2500, "once").to_string();
    let (status, error) = error_of(post(&app, "text/plain", body).await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error["code"], "unsupported_media_type");
    assert_nothing_created(&app).await;
}

#[sqlx::test]
async fn a_body_over_16_kib_is_a_413(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    // Valid JSON, so only its size can be refused.
    let mut body = gift(2500, "once");
    body["name"] = json!("n".repeat(MAX_BODY));
    assert_eq!(MAX_BODY, 16 * 1024);
    let (status, error) = error_of(post(&app, "application/json", body.to_string()).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "body_too_large");
    assert_nothing_created(&app).await;
}

#[sqlx::test]
async fn get_on_the_checkout_endpoint_is_a_405(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    let res = app.http.get(url(&app)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_nothing_created(&app).await;
}

// --- Idempotency --------------------------------------------------------------------------

#[sqlx::test]
async fn a_retry_with_the_same_idempotency_key_replays_the_first_answer(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let body = gift(2500, "monthly");
    let first = checkout_with_key(&app, "retry-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first = first.text().await.unwrap();
    let second = checkout_with_key(&app, "retry-1", &body).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.text().await.unwrap(), first);

    assert_eq!(session_posts(&app).len(), 1);
    let (id, _) = only_gift(&app).await;
    assert_eq!(gift_id(&serde_json::from_str(&first).unwrap()), id);
}

#[sqlx::test]
async fn an_idempotency_key_reused_with_another_body_is_a_409(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    created(checkout_with_key(&app, "reused-1", &gift(2500, "once")).await).await;
    let (status, error) =
        error_of(checkout_with_key(&app, "reused-1", &gift(5000, "once")).await).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error["code"], "idempotency_key_reused");
    assert_eq!(error["field"], "Idempotency-Key");
    assert_eq!(session_posts(&app).len(), 1);
    assert_eq!(only_gift(&app).await.1.amount, 2500);
}

#[sqlx::test]
async fn a_retry_after_stripe_failed_resumes_the_same_gift(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let body = gift(2500, "once");
    app.standin.fail_next(vec![
        Failure::Status {
            status: 500,
            should_retry: None
        };
        3
    ]);
    let (status, _) = error_of(checkout_with_key(&app, "resume-1", &body).await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);

    let done = created(checkout_with_key(&app, "resume-1", &body).await).await;
    let (id, row) = only_gift(&app).await;
    assert_eq!(gift_id(&done), id);
    assert_eq!(row.state, "pending");
    assert_eq!(row.failure, None);
    assert_eq!(
        row.checkout_session_id.as_deref(),
        done["stripe_session_id"].as_str()
    );
    let keys: Vec<_> = session_posts(&app)
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert_eq!(keys, vec![Some(stripe_key(id)); 4]);
}

// --- Stripe failing -----------------------------------------------------------------------

/// Stripe fails once with `failure`, then answers: the client retries under the same key.
async fn assert_retried_once_after(failure: Failure, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    app.standin.fail_next([failure]);
    let body = created(app.checkout(gift(2500, "once")).await).await;

    let keys: Vec<_> = session_posts(&app)
        .into_iter()
        .map(|r| r.idempotency_key)
        .collect();
    assert_eq!(keys, vec![Some(stripe_key(gift_id(&body))); 2]);
    let (_, row) = only_gift(&app).await;
    assert_eq!(row.state, "pending");
    assert_eq!(
        row.checkout_session_id.as_deref(),
        body["stripe_session_id"].as_str()
    );
}

#[sqlx::test]
async fn a_stripe_500_is_retried_under_the_same_idempotency_key(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    assert_retried_once_after(
        Failure::Status {
            status: 500,
            should_retry: None,
        },
        opts,
    )
    .await;
}

#[sqlx::test]
async fn a_stripe_429_is_retried_under_the_same_idempotency_key(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    assert_retried_once_after(
        Failure::Status {
            status: 429,
            should_retry: None,
        },
        opts,
    )
    .await;
}

#[sqlx::test]
async fn stripe_should_retry_false_stops_the_retries_with_a_502(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    app.standin.fail_next([Failure::Status {
        status: 500,
        should_retry: Some(false),
    }]);
    let (status, error) = error_of(app.checkout(gift(2500, "once")).await).await;

    assert_provider_error(status, &error);
    assert_eq!(session_posts(&app).len(), 1);
    assert_eq!(only_gift(&app).await.1.state, "checkout_failed");
}

/// A 502 that says the provider failed and nothing of how.
fn assert_provider_error(status: StatusCode, error: &Value) {
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(error["code"], "payment_provider_error");
    assert!(error.get("field").is_none(), "{error}");
    let message = error["message"].as_str().expect("a message").to_lowercase();
    assert!(message.contains("payment provider"), "{message}");
    for internal in [
        "http",
        "500",
        "timed out",
        "stand-in",
        "injected",
        "127.0.0.1",
        "stripe",
    ] {
        assert!(
            !message.contains(internal),
            "{message:?} leaks {internal:?}"
        );
    }
}

#[sqlx::test]
async fn stripe_failing_every_attempt_is_a_502_and_the_gift_checkout_failed(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    app.standin.fail_next(vec![
        Failure::Status {
            status: 500,
            should_retry: None
        };
        3
    ]);
    let (status, error) = error_of(app.checkout(gift(2500, "once")).await).await;

    assert_provider_error(status, &error);
    assert_eq!(
        session_posts(&app).len(),
        3,
        "STRIPE_MAX_ATTEMPTS is 3 by default"
    );
    let (_, row) = only_gift(&app).await;
    assert_eq!(row.state, "checkout_failed");
    assert_eq!(row.failure.as_deref(), Some("stripe unavailable"));
    assert_eq!(row.checkout_session_id, None);
}

#[sqlx::test]
async fn stripe_timing_out_every_attempt_is_a_502(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app_with(opts, &[("STRIPE_TIMEOUT_SECS", "1")]).await;
    app.standin
        .fail_next(vec![Failure::Delay(Duration::from_secs(3)); 3]);
    let (status, error) = error_of(app.checkout(gift(2500, "once")).await).await;

    assert_provider_error(status, &error);
    assert_eq!(session_posts(&app).len(), 3);
    let (_, row) = only_gift(&app).await;
    assert_eq!(row.state, "checkout_failed");
    assert_eq!(row.failure.as_deref(), Some("stripe unavailable"));
}

// --- Abuse --------------------------------------------------------------------------------

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

#[sqlx::test]
async fn a_third_checkout_from_one_ip_in_the_window_is_a_429(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(opts, &[("CHECKOUT_LIMIT_PER_IP", "2/10m")]).await;
    for n in 0..2 {
        created(
            app.checkout(
                json!({"amount": 2500, "frequency": "once", "email": format!("r{n}@example.org")}),
            )
            .await,
        )
        .await;
    }
    let res = app
        .checkout(json!({"amount": 2500, "frequency": "once", "email": "r3@example.org"}))
        .await;
    let wait = retry_after(&res);
    assert!((1..=600).contains(&wait), "{wait}");
    let (status, error) = error_of(res).await;

    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["code"], "rate_limited");
    assert_eq!(error["field"], "ip");
    assert_eq!(gift_count(&app).await, 2);
    assert_eq!(session_posts(&app).len(), 2);
}

#[sqlx::test]
async fn a_third_checkout_for_one_email_is_a_429_while_another_email_goes_through(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(
        opts,
        &[
            ("CHECKOUT_LIMIT_PER_EMAIL", "2/10m"),
            ("CHECKOUT_LIMIT_PER_IP", "1000/10m"),
        ],
    )
    .await;
    let with_email = |email: &str| json!({"amount": 2500, "frequency": "once", "email": email});
    created(app.checkout(with_email("Reader@Example.org")).await).await;
    created(app.checkout(with_email("  reader@example.org ")).await).await;

    let res = app.checkout(with_email("READER@EXAMPLE.ORG")).await;
    let wait = retry_after(&res);
    assert!((1..=600).contains(&wait), "{wait}");
    let (status, error) = error_of(res).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error["field"], "email");

    created(app.checkout(with_email("other@example.org")).await).await;
    assert_eq!(gift_count(&app).await, 3);
    assert_eq!(session_posts(&app).len(), 3);
}

#[sqlx::test]
async fn a_rate_limited_request_does_not_use_up_its_idempotency_key(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(opts, &[("CHECKOUT_LIMIT_PER_EMAIL", "1/10m")]).await;
    created(app.checkout(gift(2500, "once")).await).await;
    let body = gift(5000, "once");
    let (status, error) = error_of(checkout_with_key(&app, "limited-1", &body).await).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("email"))
    );

    // Nothing was started under the key: a retry is limited again, not stuck on a gift that
    // never came; and the key may still carry another request.
    let (status, error) = error_of(checkout_with_key(&app, "limited-1", &body).await).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("email")),
        "{error}"
    );
    let other = json!({"amount": 5000, "frequency": "once", "email": "other@example.org"});
    created(checkout_with_key(&app, "limited-1", &other).await).await;
    assert_eq!(gift_count(&app).await, 2);
    assert_eq!(session_posts(&app).len(), 2);
}

#[sqlx::test]
async fn a_form_with_the_honeypot_filled_creates_nothing(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = post_form(
        &app,
        &[
            ("amount", "2500"),
            ("frequency", "once"),
            ("email", EMAIL),
            ("website", "spam"),
        ],
    )
    .await;

    // The bot sees what a donor who gave up sees.
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[LOCATION],
        format!("{}/donate/cancelled", app.address).as_str()
    );
    assert_nothing_created(&app).await;
    assert!(app.standin.requests().is_empty());
}

// --- Origins and CORS ---------------------------------------------------------------------

#[sqlx::test]
async fn a_post_from_a_foreign_origin_is_a_403(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    let (status, error) =
        error_of(checkout_from(&app, "https://evil.example", &gift(2500, "once")).await).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["code"], "origin_not_allowed");
    assert_nothing_created(&app).await;
}

#[sqlx::test]
async fn a_post_from_the_apps_own_origin_is_accepted(_pool: PgPoolOptions, opts: PgConnectOptions) {
    let app = spawn_app(opts).await;
    let res = checkout_from(&app, &app.address, &gift(2500, "once")).await;
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        app.address.as_str()
    );
    assert_session_created(&app, res, 2500, "once").await;
}

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(reqwest::Method::OPTIONS, url(app))
        .header(ORIGIN, origin)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,idempotency-key",
        )
        .send()
        .await
        .expect("preflight sent")
}

#[sqlx::test]
async fn a_cors_preflight_from_the_apps_own_origin_is_allowed(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = preflight(&app, &app.address).await;

    assert!(res.status().is_success(), "{}", res.status());
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], app.address.as_str());
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed.contains("content-type") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
}

#[sqlx::test]
async fn a_cors_preflight_from_a_foreign_origin_is_not_allowed(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let res = preflight(&app, "https://evil.example").await;
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        res.headers()
    );
}
