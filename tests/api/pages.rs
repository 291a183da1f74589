//! The reader-facing pages over real HTTP: the donate form (and its JavaScript-off post),
//! the embed, the thank-you page (from our records, or from Stripe before the webhook) and
//! the cancelled page. One real-browser test drives headless Chromium through the whole gift.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use crate::browser;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn get(app: &TestApp, path: &str) -> (StatusCode, HeaderMap, String) {
    let res = app
        .http
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.text().await.unwrap())
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} is missing"))
}

/// The headers every page of ours carries; `framing` is the expected frame-ancestors.
fn assert_secure(h: &HeaderMap, framing: &str) {
    let csp = header(h, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "base-uri 'none'",
        &format!("frame-ancestors {framing}"),
    ] {
        assert!(csp.contains(directive), "{directive:?} not in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(header(h, "x-content-type-options"), "nosniff");
    assert!(!header(h, "referrer-policy").is_empty());
    assert!(!header(h, "permissions-policy").is_empty());
    if framing == "'none'" {
        assert_eq!(header(h, "x-frame-options"), "DENY");
    } else {
        assert!(h.get("x-frame-options").is_none());
    }
}

/// No inline script or style anywhere in a page (the CSP would block it anyway).
fn assert_no_inline_code(html: &str) {
    assert!(!html.contains("<style"), "inline <style>");
    assert!(!html.contains(" style="), "inline style attribute");
    for (i, _) in html.match_indices(" on") {
        let rest = &html[i + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        assert!(
            name_len == 0 || rest.as_bytes().get(name_len) != Some(&b'='),
            "inline event handler at {}",
            &html[i..(i + 20).min(html.len())]
        );
    }
    for tag in html.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains("src="), "inline <script>: {open}");
    }
}

/// The `<input>` tag with this id.
fn input<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no element #{id}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

async fn wait_for_state(app: &TestApp, session_id: &str, state: &str) {
    for _ in 0..200 {
        let s: Option<String> =
            sqlx::query_scalar("select state from gifts where checkout_session_id = $1")
                .bind(session_id)
                .fetch_optional(&app.db)
                .await
                .unwrap();
        if s.as_deref() == Some(state) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the gift of {session_id} did not become {state}");
}

async fn start(app: &TestApp, body: Value) -> (String, String) {
    let res = app.checkout(body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    (
        body["stripe_session_id"].as_str().unwrap().to_string(),
        body["checkout_url"].as_str().unwrap().to_string(),
    )
}

#[sqlx::test]
async fn the_donate_page_offers_the_configured_choices_and_carries_attribution(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(
        opts,
        &[
            ("PRESET_AMOUNTS", "10,25,50,100"),
            ("SUGGESTED_AMOUNT", "50"),
            ("DEFAULT_FREQUENCY", "yearly"),
            ("NEWSROOM_NAME", "The Example <Ledger>"),
        ],
    )
    .await;
    let (status, h, html) = get(
        &app,
        "/donate?campaign=spring-drive&utm_source=newsletter&utm_medium=email&utm_campaign=april%22%3E",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(header(&h, "content-type").starts_with("text/html"));
    assert_secure(&h, "'none'");
    assert_no_inline_code(&html);

    // Presets in minor units, the suggested one marked and chosen; a custom amount.
    for minor in ["1000", "2500", "5000", "10000"] {
        assert!(input(&html, &format!("amount-{minor}")).contains(&format!(r#"value="{minor}""#)));
    }
    assert!(input(&html, "amount-5000").contains(" checked"));
    assert!(!input(&html, "amount-2500").contains(" checked"));
    let suggested = &html[html.find(r#"for="amount-5000""#).unwrap()..];
    assert!(suggested[..suggested.find("</label>").unwrap()].contains("Suggested"));
    assert!(input(&html, "amount-other").contains(r#"value="other""#));
    assert!(input(&html, "amount_major").contains(r#"name="amount_major""#));
    // The configured default frequency.
    assert!(input(&html, "frequency-yearly").contains(" checked"));
    assert!(!input(&html, "frequency-monthly").contains(" checked"));
    // Cover the fees shows the exact amount added to the chosen gift: cover_fee(5000) = 186.
    let fee = chipin::gifts::cover_fee(chipin::gifts::Amount::new(5000).unwrap(), 290, 30);
    assert!(html.contains(&format!(r#"data-fee="{fee}""#)));
    assert!(html.contains(&format!(
        ">${}.{:02}</span> to cover card fees",
        fee / 100,
        fee % 100
    )));
    // Labels for every visible input, fieldsets with legends.
    for id in ["amount_major", "email", "cover_fees", "frequency-once"] {
        assert!(
            html.contains(&format!(r#"for="{id}""#)),
            "no label for {id}"
        );
    }
    assert_eq!(
        html.matches("<fieldset").count(),
        html.matches("<legend>").count()
    );
    // Attribution from the URL travels as hidden fields, escaped.
    assert!(html.contains(r#"<input type="hidden" name="campaign" value="spring-drive">"#));
    assert!(html.contains(r#"<input type="hidden" name="utm_source" value="newsletter">"#));
    assert!(html.contains(r#"<input type="hidden" name="utm_medium" value="email">"#));
    assert!(html.contains(r#"name="utm_campaign" value="april&quot;&gt;""#));
    assert!(html.contains("The Example &lt;Ledger&gt;"));
    // A plain form to the API: it works with JavaScript off.
    assert!(html.contains(r#"<form id="donate" method="post" action="/api/checkout""#));
    assert!(!html.contains(r#"target="_top""#));
    assert!(html.contains(r#"<script src="/static/donate.js" defer></script>"#));
    assert!(html.contains(r#"<link rel="stylesheet" href="/static/donate.css">"#));

    // A campaign that is not a slug is not carried (the API would refuse the gift).
    let (_, _, html) = get(&app, "/donate?campaign=Not%20A%20Slug").await;
    assert!(!html.contains(r#"name="campaign""#));
}

#[sqlx::test]
async fn the_form_posted_without_javascript_goes_to_checkout(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    // What a browser sends for the form as rendered, the custom box left empty.
    let preset = app
        .http
        .post(format!("{}/api/checkout", app.address))
        .header("origin", &app.address)
        .form(&[
            ("frequency", "monthly"),
            ("amount", "2500"),
            ("amount_major", ""),
            ("cover_fees", "on"),
            ("email", ""),
            ("currency", "usd"),
            ("campaign", "spring-drive"),
            ("utm_source", "newsletter"),
            ("website", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(preset.status(), StatusCode::SEE_OTHER);
    assert!(header(preset.headers(), LOCATION.as_str()).contains("/pay/cs_"));
    let custom = app
        .http
        .post(format!("{}/api/checkout", app.address))
        .header("origin", &app.address)
        .form(&[
            ("frequency", "once"),
            ("amount", "other"),
            ("amount_major", "33.50"),
            ("currency", "usd"),
            ("website", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(custom.status(), StatusCode::SEE_OTHER);
    let rows: Vec<(i64, i64, String, Option<String>)> = sqlx::query_as(
        "select amount, covered_fee, frequency, campaign from gifts order by amount",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (2606, 106, "monthly".into(), Some("spring-drive".into())),
            (3350, 0, "once".into(), None),
        ]
    );
}

#[sqlx::test]
async fn the_embed_frames_the_form_only_for_allowed_origins(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(
        opts,
        &[
            ("ALLOWED_ORIGINS", "https://news.example.org"),
            ("EMBED_BUTTON_TEXT", "Support our work"),
        ],
    )
    .await;
    let (status, h, js) = get(&app, "/embed.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert_eq!(header(&h, "cross-origin-resource-policy"), "cross-origin");
    assert!(js.contains(&format!("var BASE = \"{}\";", app.address)));
    assert!(js.contains("\"Support our work\""));
    assert!(js.contains("data-campaign"));
    assert!(js.contains("'/donate?'") && js.contains("params.set('embed', '1')"));
    assert!(!js.contains("__CHIPIN_"));

    let (status, h, html) = get(&app, "/donate?embed=1&campaign=spring").await;
    assert_eq!(status, StatusCode::OK);
    assert_secure(&h, "'self' https://news.example.org");
    // Checkout opens in the top window, not inside the frame.
    assert!(html.contains(r#"action="/api/checkout" target="_top""#));
    assert!(html.contains(r#"name="campaign" value="spring""#));
    // Without embed=1 nobody may frame the form.
    let (_, h, _) = get(&app, "/donate?campaign=spring").await;
    assert_secure(&h, "'none'");
}

#[sqlx::test]
async fn the_assets_are_served_by_us_with_the_configured_colours(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(opts, &[("BRAND_COLOR", "#7a0019")]).await;
    let (status, h, css) = get(&app, "/static/donate.css").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/css; charset=utf-8");
    assert_eq!(header(&h, "x-content-type-options"), "nosniff");
    assert!(css.starts_with(":root { --brand: #7a0019; --on-brand: #ffffff; }"));
    assert!(css.contains(":focus-visible"));
    let (status, h, js) = get(&app, "/static/donate.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&h, "content-type"), "text/javascript; charset=utf-8");
    assert!(js.contains("Idempotency-Key"));
}

#[sqlx::test]
async fn thanks_confirms_a_paid_gift_from_our_records(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app_with(opts, &[("RECEIPT_TEXT", "Look for an email from Stripe.")]).await;
    let (session, checkout_url) = start(
        &app,
        json!({"amount": 2500, "frequency": "monthly", "cover_fees": true}),
    )
    .await;
    let paid = app.pay(&checkout_url).await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let back = header(paid.headers(), LOCATION.as_str()).to_string();
    assert_eq!(back, format!("{}/thanks?session_id={session}", app.address));
    wait_for_state(&app, &session, "paid").await;
    // Our records alone: Stripe is not asked again.
    let retrievals = || {
        app.standin
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == format!("/v1/checkout/sessions/{session}"))
            .count()
    };
    let asked_before = retrievals();
    let (status, h, html) = get(&app, &format!("/thanks?session_id={session}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_secure(&h, "'none'");
    assert_eq!(header(&h, "referrer-policy"), "no-referrer");
    assert_eq!(header(&h, "cache-control"), "no-store");
    assert_no_inline_code(&html);
    assert!(html.contains(r#"id="confirmed""#), "{html}");
    assert!(html.contains("<strong>monthly</strong>"));
    assert!(html.contains("<strong>$26.06</strong>"));
    assert!(html.contains("Look for an email from Stripe."));
    assert_eq!(retrievals(), asked_before);
}

#[sqlx::test]
async fn thanks_confirms_from_stripe_when_the_webhook_has_not_arrived(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    app.standin.pause_deliveries(true);
    let (session, checkout_url) = start(&app, json!({"amount": 5000, "frequency": "once"})).await;
    assert_eq!(app.pay(&checkout_url).await.status(), StatusCode::SEE_OTHER);
    let state: String =
        sqlx::query_scalar("select state from gifts where checkout_session_id = $1")
            .bind(&session)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(state, "pending", "no webhook has arrived");
    let (status, _, html) = get(&app, &format!("/thanks?session_id={session}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"id="confirmed""#), "{html}");
    assert!(html.contains("<strong>one-time</strong>"));
    assert!(html.contains("<strong>$50.00</strong>"));
    assert!(
        app.standin
            .requests()
            .iter()
            .any(|r| r.method == "GET" && r.path == format!("/v1/checkout/sessions/{session}"))
    );
    app.standin.pause_deliveries(false);
}

fn assert_neutral(html: &str) {
    assert!(html.contains(r#"id="neutral""#), "{html}");
    assert!(!html.contains(r#"id="confirmed""#));
    assert!(!html.contains('$'), "an amount is shown: {html}");
    assert!(!html.contains("monthly") && !html.contains("one-time"));
}

#[sqlx::test]
async fn thanks_shows_only_a_neutral_message_for_unknown_unpaid_or_foreign_sessions(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    for path in [
        "/thanks",
        "/thanks?session_id=cs_nope",
        "/thanks?session_id=%3Cscript%3E",
        "/thanks?session_id=cs_..%2F..%2Fv1%2Fcharges",
    ] {
        let (status, h, html) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_secure(&h, "'none'");
        assert_neutral(&html);
    }
    // Unknown sessions are not looked up at Stripe at all.
    assert!(
        !app.standin
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/v1/checkout/sessions/"))
    );

    // Ours, but not paid.
    let (unpaid, _) = start(&app, json!({"amount": 2500, "frequency": "once"})).await;
    let (_, _, html) = get(&app, &format!("/thanks?session_id={unpaid}")).await;
    assert_neutral(&html);

    // A paid session that names another gift than the one we recorded it for.
    app.standin.pause_deliveries(true);
    let (other, other_url) = start(&app, json!({"amount": 2500, "frequency": "once"})).await;
    assert_eq!(app.pay(&other_url).await.status(), StatusCode::SEE_OTHER);
    sqlx::query("update gifts set checkout_session_id = $1 where checkout_session_id = $2")
        .bind(format!("{other}_moved"))
        .bind(&other)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("update gifts set checkout_session_id = $1 where checkout_session_id = $2")
        .bind(&other)
        .bind(&unpaid)
        .execute(&app.db)
        .await
        .unwrap();
    let (_, _, html) = get(&app, &format!("/thanks?session_id={other}")).await;
    assert_neutral(&html);
    app.standin.pause_deliveries(false);
}

#[sqlx::test]
async fn the_cancelled_page_leads_back_to_the_form_with_the_choice(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    let app = spawn_app(opts).await;
    let (status, h, html) = get(&app, "/donate/cancelled").await;
    assert_eq!(status, StatusCode::OK);
    assert_secure(&h, "'none'");
    assert_no_inline_code(&html);
    assert!(html.contains(r#"id="back-to-form" href="/donate""#));

    let (_, _, html) = get(
        &app,
        "/donate/cancelled?amount=5000&frequency=yearly&cover_fees=1&campaign=spring",
    )
    .await;
    let back = "/donate?amount=5000&amp;frequency=yearly&amp;cover_fees=1&amp;campaign=spring";
    assert!(html.contains(&format!(r#"href="{back}""#)), "{html}");

    // The form keeps that choice.
    let (_, _, html) = get(&app, &back.replace("&amp;", "&")).await;
    assert!(input(&html, "amount-5000").contains(" checked"));
    assert!(!input(&html, "amount-2500").contains(" checked"));
    assert!(input(&html, "frequency-yearly").contains(" checked"));
    assert!(input(&html, "cover_fees").contains(" checked"));
    assert!(html.contains(r#"name="campaign" value="spring""#));
    // A custom amount comes back in the custom box.
    let (_, _, html) = get(&app, "/donate?amount=3350").await;
    assert!(input(&html, "amount-other").contains(" checked"));
    assert!(input(&html, "amount_major").contains(r#"value="33.50""#));
    // Nonsense is ignored, not an error.
    let (status, _, html) = get(&app, "/donate?amount=-1&frequency=weekly").await;
    assert_eq!(status, StatusCode::OK);
    assert!(input(&html, "amount-2500").contains(" checked"));
    assert!(input(&html, "frequency-monthly").contains(" checked"));
}

#[sqlx::test]
async fn a_reader_gives_monthly_in_a_real_browser(_pool: PgPoolOptions, opts: PgConnectOptions) {
    if !browser::available() {
        // In CI the browser is installed by scripts/test: its absence there is a failure.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have /usr/bin/chromium and /usr/bin/chromedriver"
        );
        eprintln!(
            "skipped: /usr/bin/chromium and /usr/bin/chromedriver are needed (scripts/test installs them)"
        );
        return;
    }
    let app = spawn_app(opts).await;
    let driver = browser::Driver::start().await;
    let b = driver.session().await;
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");

    b.goto(&format!("{}/donate?campaign=browser-test", app.address))
        .await;
    b.size(390, 844).await;
    b.screenshot(&shots.join("donate-phone-390x844.png")).await;
    b.size(1280, 800).await;
    b.screenshot(&shots.join("donate-desktop-1280x800.png"))
        .await;

    // A custom amount below the minimum: the API's message is shown next to the field.
    b.type_into("#amount_major", "2").await;
    assert!(b.selected("#amount-other").await);
    b.click("#give").await;
    let error = b.wait_for_text("#amount_major-error", "at least").await;
    assert_eq!(error, "Amount must be at least 5.00");

    b.click(r#"label[for="frequency-monthly"]"#).await;
    b.click(r#"label[for="amount-2500"]"#).await;
    b.click("#cover_fees").await;
    assert!(b.selected("#frequency-monthly").await);
    assert!(b.selected("#amount-2500").await);
    assert!(b.selected("#cover_fees").await);
    assert_eq!(b.text("#fee-amount").await, "$1.06");
    b.click("#give").await;

    // donate.js posted JSON and went to the stand-in's hosted page.
    b.wait_for_url("/pay/cs_").await;
    b.click("#pay").await;
    let thanks = b.wait_for_url("/thanks?session_id=").await;
    let text = b.text("main").await;
    assert!(
        text.contains("monthly") && text.contains("$26.06"),
        "{text}"
    );

    let session = thanks.split("session_id=").nth(1).unwrap().to_string();
    wait_for_state(&app, &session, "paid").await;
    let (amount, covered, frequency, campaign): (i64, i64, String, Option<String>) = sqlx::query_as(
        "select amount, covered_fee, frequency, campaign from gifts where checkout_session_id = $1",
    )
    .bind(&session)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (amount, covered, frequency.as_str(), campaign.as_deref()),
        (2606, 106, "monthly", Some("browser-test"))
    );
    // The JSON path carried an Idempotency-Key.
    let keys: i64 = sqlx::query_scalar("select count(*) from checkout_requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(keys, 1);
    b.quit().await;
}

/// The gift the browser tests make: monthly $25 with the fees covered.
async fn assert_monthly_25_with_fees(app: &TestApp, session: &str, campaign: Option<&str>) {
    wait_for_state(app, session, "paid").await;
    let (amount, covered, frequency, got): (i64, i64, String, Option<String>) = sqlx::query_as(
        "select amount, covered_fee, frequency, campaign from gifts where checkout_session_id = $1",
    )
    .bind(session)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (amount, covered, frequency.as_str(), got.as_deref()),
        (2606, 106, "monthly", campaign)
    );
}

#[sqlx::test]
async fn a_reader_gives_with_javascript_off_in_a_real_browser(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    if !browser::available_or_skip() {
        return;
    }
    let app = spawn_app(opts).await;
    let driver = browser::Driver::start().await;
    let b = driver
        .session_with(
            &["--blink-settings=scriptEnabled=false"],
            json!({"profile.managed_default_content_settings.javascript": 2}),
        )
        .await;
    b.goto(&format!("{}/donate?campaign=no-js", app.address))
        .await;
    b.click(r#"label[for="frequency-monthly"]"#).await;
    b.click(r#"label[for="amount-2500"]"#).await;
    b.click("#cover_fees").await;
    // Without donate.js the fee shown is the server's, and the form posts itself.
    assert_eq!(b.text("#fee-amount").await, "$1.06");
    b.click("#give").await;
    b.wait_for_url("/pay/cs_").await;
    b.click("#pay").await;
    let thanks = b.wait_for_url("/thanks?session_id=").await;
    let text = b.text("main").await;
    assert!(
        text.contains("monthly") && text.contains("$26.06"),
        "{text}"
    );
    let session = thanks.split("session_id=").nth(1).unwrap().to_string();
    assert_monthly_25_with_fees(&app, &session, Some("no-js")).await;
    // The plain form post carries no Idempotency-Key: proof that no script ran.
    let keys: i64 = sqlx::query_scalar("select count(*) from checkout_requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(keys, 0);
    b.quit().await;
}

#[sqlx::test]
async fn the_embed_opens_the_form_on_another_sites_page_in_a_real_browser(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    if !browser::available_or_skip() {
        return;
    }
    // The newsroom's page, on an origin of its own.
    let site = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site_origin = format!("http://localhost:{}", site.local_addr().unwrap().port());
    let app = spawn_app_with(opts, &[("ALLOWED_ORIGINS", site_origin.as_str())]).await;
    let page = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>News</title></head>
<body><h1>An article</h1><p>Some reporting.</p>
<script src="{}/embed.js" data-campaign="x"></script></body></html>"#,
        app.address
    );
    let host = axum::Router::new().route(
        "/article",
        axum::routing::get(move || async move { axum::response::Html(page) }),
    );
    tokio::spawn(async move { axum::serve(site, host).await });

    let driver = browser::Driver::start().await;
    let b = driver.session().await;
    b.goto(&format!("{site_origin}/article")).await;
    b.wait_for("button.chipin-embed-button").await;
    assert_eq!(
        b.text("button.chipin-embed-button").await,
        "Support our work"
    );
    b.click("button.chipin-embed-button").await;
    b.wait_for("iframe").await;
    b.enter_frame("iframe").await;
    b.wait_for("form#donate").await;
    assert_eq!(
        b.attribute(r#"input[name="campaign"]"#, "value")
            .await
            .as_deref(),
        Some("x")
    );
    b.click(r#"label[for="frequency-monthly"]"#).await;
    b.click(r#"label[for="amount-2500"]"#).await;
    b.click("#cover_fees").await;
    b.click("#give").await;
    // Checkout opens in the top window.
    b.wait_for_url("/pay/cs_").await;
    b.enter_top().await;
    b.click("#pay").await;
    let thanks = b.wait_for_url("/thanks?session_id=").await;
    let session = thanks.split("session_id=").nth(1).unwrap().to_string();
    assert_monthly_25_with_fees(&app, &session, Some("x")).await;
    b.quit().await;
}

#[sqlx::test]
async fn a_reader_completes_the_form_with_the_keyboard_only(
    _pool: PgPoolOptions,
    opts: PgConnectOptions,
) {
    use browser::{ENTER, SPACE};
    if !browser::available_or_skip() {
        return;
    }
    let app = spawn_app(opts).await;
    let driver = browser::Driver::start().await;
    let b = driver.session().await;
    b.goto(&format!("{}/donate?campaign=keys", app.address))
        .await;
    // Tab into the frequency group (monthly is the default), then the amounts ($25 is
    // suggested), on to the fee box (Space ticks it), the email field, and Enter submits.
    b.tab_to("frequency-monthly").await;
    assert!(b.selected("#frequency-monthly").await);
    b.tab_to("amount-2500").await;
    assert!(b.selected("#amount-2500").await);
    b.tab_to("cover_fees").await;
    b.press(&[SPACE]).await;
    assert!(b.selected("#cover_fees").await);
    assert_eq!(b.text("#fee-amount").await, "$1.06");
    b.tab_to("email").await;
    b.type_keys("keys@example.org").await;
    b.press(&[ENTER]).await;
    b.wait_for_url("/pay/cs_").await;
    b.tab_to("pay").await;
    b.press(&[ENTER]).await;
    let thanks = b.wait_for_url("/thanks?session_id=").await;
    let session = thanks.split("session_id=").nth(1).unwrap().to_string();
    assert_monthly_25_with_fees(&app, &session, Some("keys")).await;
    b.quit().await;
}
