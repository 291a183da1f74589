//! The reader-facing pages: `GET /donate` (the form, also the iframe of the embed),
//! `GET /thanks` (Checkout's success page), `GET /donate/cancelled`, `GET /embed.js` and the
//! static assets. Server-rendered, no build step; the form works with JavaScript off and is
//! enhanced by `/static/donate.js`. Every answer carries a strict Content-Security-Policy
//! (no inline script or style) and the usual security headers.

mod html;
mod manage;

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::config::{Config, StripeMode, parse_major_units};
use crate::gifts::{Amount, Campaign, Frequency, ledger};
use crate::state::AppState;

pub use html::esc;
use html::{Attribution, Choice, Confirmed};

const DONATE_CSS: &str = include_str!("donate.css");
const DONATE_JS: &str = include_str!("donate.js");
const EMBED_JS: &str = include_str!("embed.js");

/// The longest wait for Stripe on the thank-you page before showing the neutral message.
const THANKS_STRIPE_WAIT: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/donate", get(donate))
        .route("/donate/cancelled", get(cancelled))
        .route("/thanks", get(thanks))
        .route("/embed.js", get(embed_js))
        .route("/static/donate.css", get(donate_css))
        .route("/static/donate.js", get(donate_js))
        .merge(manage::router())
}

type Params = Query<HashMap<String, String>>;

const CORP: HeaderName = HeaderName::from_static("cross-origin-resource-policy");

/// Who may frame a page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `frame-ancestors 'none'`, `X-Frame-Options: DENY`.
    Deny,
    /// The embed's iframe: only the newsroom's own sites (`ALLOWED_ORIGINS`).
    AllowedOrigins,
}

/// Where Stripe Checkout lives: the form's post is answered 303 to it, and browsers hold
/// that redirect to `form-action`.
fn checkout_origin(config: &Config) -> String {
    let base = match &config.stripe {
        StripeMode::Live { api_base, .. } => api_base.clone(),
        StripeMode::StandIn { listen } => format!("http://{listen}/"),
    };
    match url::Url::parse(&base) {
        Ok(u) if u.host_str() == Some("api.stripe.com") => "https://checkout.stripe.com".into(),
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "https://checkout.stripe.com".into(),
    }
}

fn origin_of(u: &str) -> Option<String> {
    url::Url::parse(u)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
}

fn frame_ancestors(config: &Config, framing: Framing) -> String {
    match framing {
        Framing::Deny => "'none'".into(),
        Framing::AllowedOrigins => {
            let mut list = vec!["'self'".to_string()];
            // Origins are validated at start; anything that could break the header is dropped.
            list.extend(
                config
                    .allowed_origins
                    .iter()
                    .filter(|o| {
                        o.bytes()
                            .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
                    })
                    .cloned(),
            );
            list.join(" ")
        }
    }
}

fn content_security_policy(config: &Config, framing: Framing) -> String {
    let mut img = "'self'".to_string();
    if let Some(o) = config.pages.logo_url.as_deref().and_then(origin_of) {
        img.push(' ');
        img.push_str(&o);
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img}; \
         connect-src 'self'; form-action 'self' {checkout}; base-uri 'none'; \
         frame-ancestors {ancestors}",
        checkout = checkout_origin(config),
        ancestors = frame_ancestors(config, framing),
    )
}

/// The headers every page and asset here carries.
pub(crate) fn secure(
    mut res: Response,
    config: &Config,
    framing: Framing,
    referrer: &'static str,
) -> Response {
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_security_policy(config, framing)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static(referrer));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    );
    if framing == Framing::Deny {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
    }
    if !h.contains_key(CORP) {
        h.insert(CORP, HeaderValue::from_static("same-origin"));
    }
    if config.public_url.starts_with("https://") {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

pub(crate) fn html_response(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// A query value as a hidden field may carry it: trimmed, non-empty, short, no control
/// characters (the checkout API would refuse anything else, failing the reader's gift).
fn clean(q: &HashMap<String, String>, name: &str, max_chars: usize) -> Option<String> {
    q.get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty() && !v.chars().any(char::is_control))
        .map(|v| v.chars().take(max_chars).collect())
}

fn attribution(q: &HashMap<String, String>) -> Attribution {
    Attribution {
        campaign: clean(q, "campaign", 64).filter(|c| Campaign::parse(c).is_ok()),
        utm_source: clean(q, "utm_source", 100),
        utm_medium: clean(q, "utm_medium", 100),
        utm_campaign: clean(q, "utm_campaign", 100),
    }
}

/// A choice carried in the query string: `amount` in minor units or `amount_major`,
/// `frequency`, `cover_fees`. Anything out of bounds is ignored, not an error.
fn choice(config: &Config, q: &HashMap<String, String>) -> Choice {
    let minor = q
        .get("amount")
        .and_then(|a| a.trim().parse::<i64>().ok())
        .or_else(|| q.get("amount_major").and_then(|a| parse_major_units(a)));
    Choice {
        amount: minor.and_then(|m| Amount::within(m, config.min_amount, config.max_amount).ok()),
        frequency: q.get("frequency").and_then(|f| Frequency::parse(f.trim())),
        cover_fees: q
            .get("cover_fees")
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "on" | "yes")),
        email: None,
    }
}

async fn donate(State(state): State<AppState>, Query(q): Params) -> Response {
    let config = &state.config;
    let embed = q.get("embed").is_some_and(|v| v == "1");
    let page = html::donate_page(config, &choice(config, &q), &attribution(&q), embed);
    let framing = if embed {
        Framing::AllowedOrigins
    } else {
        Framing::Deny
    };
    secure(
        html_response(page, "no-cache"),
        config,
        framing,
        "same-origin",
    )
}

async fn cancelled(State(state): State<AppState>, Query(q): Params) -> Response {
    let config = &state.config;
    let c = choice(config, &q);
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    if let Some(a) = c.amount {
        back.append_pair("amount", &a.get().to_string());
    }
    if let Some(f) = c.frequency {
        back.append_pair("frequency", f.as_str());
    }
    if c.cover_fees {
        back.append_pair("cover_fees", "1");
    }
    for (k, v) in attribution(&q).pairs() {
        back.append_pair(k, v);
    }
    let query = back.finish();
    let href = if query.is_empty() {
        "/donate".to_string()
    } else {
        format!("/donate?{query}")
    };
    secure(
        html_response(html::cancelled_page(&config.pages, &href), "no-store"),
        config,
        Framing::Deny,
        "same-origin",
    )
}

/// `cs_` and Stripe's id alphabet, bounded: anything else is not looked up at all.
fn looks_like_session_id(id: &str) -> bool {
    id.starts_with("cs_")
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

async fn thanks(State(state): State<AppState>, Query(q): Params) -> Response {
    let confirmed = match q.get("session_id").map(|s| s.trim()) {
        Some(id) if looks_like_session_id(id) => confirm(&state, id).await,
        _ => None,
    };
    secure(
        html_response(
            html::thanks_page(&state.config.pages, confirmed.as_ref()),
            "no-store",
        ),
        &state.config,
        Framing::Deny,
        // The session id is in this page's URL: it goes nowhere else.
        "no-referrer",
    )
}

/// The gift behind a Checkout Session, if it is ours and paid: from the ledger, or, when
/// the webhook has not arrived yet, from Stripe, and then only if the session names that
/// very gift (`metadata.gift_id` / `client_reference_id`) and is paid. Sessions we never
/// recorded are not looked up at Stripe, so this page cannot be used to probe it.
async fn confirm(state: &AppState, session_id: &str) -> Option<Confirmed> {
    let gift = match ledger::gift_by_session(&state.db, session_id).await {
        Ok(Some(g)) => g,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "thank-you page: gift lookup failed");
            return None;
        }
    };
    let confirmed = Confirmed {
        amount: gift.amount,
        currency: gift.currency.clone(),
        frequency: Frequency::parse(&gift.frequency)?,
    };
    match gift.state.as_str() {
        "paid" => return Some(confirmed),
        "pending" | "checkout_failed" => {}
        _ => return None,
    }
    let session = match tokio::time::timeout(
        THANKS_STRIPE_WAIT,
        state.stripe.retrieve_checkout_session(session_id),
    )
    .await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::info!(error = %e, "thank-you page: session not retrieved");
            return None;
        }
        Err(_) => {
            tracing::info!("thank-you page: Stripe did not answer in time");
            return None;
        }
    };
    let ours = gift.id.to_string();
    let named = [
        session.metadata.get("gift_id").map(String::as_str),
        session.client_reference_id.as_deref(),
    ];
    let names_this_gift = named.iter().any(Option::is_some)
        && named.iter().flatten().all(|id| *id == ours)
        && session.id == session_id;
    let paid = session.payment_status.as_deref() == Some("paid")
        && session.status.as_deref() == Some("complete");
    (names_this_gift && paid).then_some(confirmed)
}

fn asset(body: String, content_type: &'static str, cross_origin: bool) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response();
    if cross_origin {
        res.headers_mut()
            .insert(CORP, HeaderValue::from_static("cross-origin"));
    }
    res
}

async fn donate_css(State(state): State<AppState>) -> Response {
    let p = &state.config.pages;
    // The colours are validated as #rgb / #rrggbb at start.
    let css = format!(
        ":root {{ --brand: {}; --on-brand: {}; }}\n{DONATE_CSS}",
        p.brand_color, p.brand_text_color
    );
    secure(
        asset(css, "text/css; charset=utf-8", false),
        &state.config,
        Framing::Deny,
        "same-origin",
    )
}

async fn donate_js(State(state): State<AppState>) -> Response {
    secure(
        asset(
            DONATE_JS.to_string(),
            "text/javascript; charset=utf-8",
            false,
        ),
        &state.config,
        Framing::Deny,
        "same-origin",
    )
}

/// A JavaScript string literal (JSON is one; `<` is escaped for good measure).
fn js_string(s: &str) -> String {
    serde_json::to_string(s)
        .unwrap_or_else(|_| "\"\"".into())
        .replace('<', "\\u003c")
}

async fn embed_js(State(state): State<AppState>) -> Response {
    let config = &state.config;
    let js = EMBED_JS
        .replace("__CHIPIN_BASE__", &js_string(&config.public_url))
        .replace(
            "__CHIPIN_LABEL__",
            &js_string(&config.pages.embed_button_text),
        )
        .replace(
            "__CHIPIN_TITLE__",
            &js_string(&format!(
                "{} – {}",
                config.pages.donate_heading, config.pages.newsroom_name
            )),
        )
        .replace("__CHIPIN_BRAND__", &js_string(&config.pages.brand_color))
        .replace(
            "__CHIPIN_ON_BRAND__",
            &js_string(&config.pages.brand_text_color),
        );
    secure(
        asset(js, "text/javascript; charset=utf-8", true),
        config,
        Framing::Deny,
        "strict-origin-when-cross-origin",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_vars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn checkout_origin_follows_the_stripe_mode() {
        assert_eq!(
            checkout_origin(&config(&[
                ("STRIPE_SECRET_KEY", "sk_test_x"),
                ("STRIPE_WEBHOOK_SECRET", "whsec_x")
            ])),
            "https://checkout.stripe.com"
        );
        assert_eq!(
            checkout_origin(&config(&[("STRIPE_STANDIN_ADDR", "127.0.0.1:4242")])),
            "http://127.0.0.1:4242"
        );
    }

    #[test]
    fn only_the_embed_may_be_framed_and_only_by_allowed_origins() {
        let c = config(&[("ALLOWED_ORIGINS", "https://news.example.org")]);
        assert!(content_security_policy(&c, Framing::Deny).ends_with("frame-ancestors 'none'"));
        assert!(
            content_security_policy(&c, Framing::AllowedOrigins)
                .ends_with("frame-ancestors 'self' https://news.example.org")
        );
    }

    #[test]
    fn session_ids_are_checked_before_any_lookup() {
        assert!(looks_like_session_id("cs_test_a1B2"));
        assert!(!looks_like_session_id("pi_123"));
        assert!(!looks_like_session_id("cs_../../v1/charges"));
    }
}
