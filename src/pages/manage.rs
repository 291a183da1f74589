//! Managing a recurring gift: `GET /manage` (ask for a sign-in link), `POST /manage` (the
//! same neutral answer whether or not the address is known), `GET /manage/link?token=`
//! (a confirm button: mail scanners follow GETs, so the GET spends nothing) and
//! `POST /manage/link` (spends the token, opens a Billing Portal session, 303 to it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};

use super::html::{esc, layout};
use super::{Framing, checkout_origin, content_security_policy, html_response, secure};
use crate::config::{Config, PagesConfig};
use crate::gifts::Email;
use crate::manage;
use crate::ratelimit::{self, Decision};
use crate::state::AppState;

pub fn router() -> axum::Router<AppState> {
    Router::new()
        .route("/manage", get(ask).post(request_link))
        .route("/manage/link", get(confirm).post(open))
}

/// Where the Billing Portal lives: the confirm form's answer redirects there, and browsers
/// hold that redirect to `form-action`.
fn portal_origin(config: &Config) -> String {
    match checkout_origin(config).as_str() {
        "https://checkout.stripe.com" => "https://billing.stripe.com".into(),
        other => other.to_string(),
    }
}

fn page(state: &AppState, status: StatusCode, body: String) -> Response {
    let config = &state.config;
    let mut res = secure(
        html_response(body, "no-store"),
        config,
        Framing::Deny,
        // The token may be in the URL: it goes to no other site. (Not `no-referrer`: that
        // would make browsers send `Origin: null` with the forms' posts.)
        "same-origin",
    );
    *res.status_mut() = status;
    let csp = content_security_policy(config, Framing::Deny).replacen(
        "form-action 'self'",
        &format!("form-action 'self' {}", portal_origin(config)),
        1,
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

fn ask_page(p: &PagesConfig, error: Option<&str>) -> String {
    let (error_text, invalid) = match error {
        Some(e) => (esc(e), r#" aria-invalid="true""#),
        None => (String::new(), ""),
    };
    let main = format!(
        r#"<h1>Manage your gift</h1>
<p>Enter the email address you gave with your monthly or yearly gift. We will send you a link to change the amount, update the card or cancel.</p>
<form id="manage" method="post" action="/manage" novalidate>
<div class="field">
<label for="email">Email</label>
<input type="email" id="email" name="email" autocomplete="email" maxlength="254" required aria-describedby="email-error"{invalid}>
<p class="error" id="email-error" role="alert" aria-live="polite">{error_text}</p>
</div>
<button type="submit" id="send-link" class="give">Email me a link</button>
</form>
"#
    );
    layout(p, "Manage your gift", "manage", &main)
}

/// The one answer to every accepted request, known address or not.
fn sent_page(p: &PagesConfig) -> String {
    let main = r#"<h1>Check your email</h1>
<p class="neutral" id="sent">If this address belongs to a donor with a monthly or yearly gift, we have sent it a link to manage that gift. The link works once, for 30 minutes.</p>
<p>Nothing arrived? Check your spam folder, or <a href="/manage">ask again</a> in a few minutes.</p>
"#;
    layout(p, "Check your email", "manage", main)
}

fn message_page(p: &PagesConfig, title: &str, text: &str) -> String {
    let main = format!(
        r#"<h1>{title}</h1>
<p class="neutral" id="message">{text}</p>
<p><a class="button-link" id="ask-again" href="/manage">Ask for a new link</a></p>
"#,
        title = esc(title),
        text = esc(text),
    );
    layout(p, title, "manage", &main)
}

fn confirm_page(p: &PagesConfig, token: &str) -> String {
    let main = format!(
        r#"<h1>Manage your gift</h1>
<p>Continue to our payment provider’s page, where you can change the amount, update the card or cancel your gift.</p>
<form id="open-portal-form" method="post" action="/manage/link">
<input type="hidden" name="token" value="{token}">
<button type="submit" id="open-portal" class="give">Continue to manage my gift</button>
</form>
"#,
        token = esc(token),
    );
    layout(p, "Manage your gift", "manage", &main)
}

/// Only our own pages post here.
fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let ours = url::Url::parse(&state.config.public_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    match headers.get(header::ORIGIN).map(|o| o.to_str()) {
        None => true,
        Some(Ok(origin)) => origin == ours,
        Some(Err(_)) => false,
    }
}

fn client_ip(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    if state.config.trust_forwarded_for
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

fn forbidden(state: &AppState) -> Response {
    page(
        state,
        StatusCode::FORBIDDEN,
        message_page(
            &state.config.pages,
            "This form must be sent from our site",
            "Please use the form on this site.",
        ),
    )
}

async fn ask(State(state): State<AppState>) -> Response {
    page(&state, StatusCode::OK, ask_page(&state.config.pages, None))
}

async fn request_link(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&state, &headers) {
        return forbidden(&state);
    }
    let p = &state.config.pages;
    let Some(email) = form
        .get("email")
        .and_then(|e| Email::parse(e).ok())
        .filter(|e| e.as_str().contains('@'))
    else {
        return page(
            &state,
            StatusCode::BAD_REQUEST,
            ask_page(
                p,
                Some("Enter your email address, such as name@example.org."),
            ),
        );
    };
    let ip = client_ip(&state, &headers, peer);
    let buckets = [
        (
            ratelimit::hashed("manage-ip", &ip.to_string()),
            state.config.manage_limit_per_ip,
        ),
        (
            ratelimit::hashed("manage-email", email.as_str()),
            state.config.manage_limit_per_email,
        ),
    ];
    for (bucket, limit) in buckets {
        match ratelimit::hit(&state.db, &bucket, limit).await {
            Ok(Decision::Allowed) => {}
            Ok(Decision::Limited { retry_after }) => {
                let mut res = page(
                    &state,
                    StatusCode::TOO_MANY_REQUESTS,
                    message_page(
                        p,
                        "Too many requests",
                        "Too many links were asked for. Please try again later.",
                    ),
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    res.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return res;
            }
            Err(e) => {
                tracing::error!(error = %e, "manage: rate limit check failed");
                return page(
                    &state,
                    StatusCode::SERVICE_UNAVAILABLE,
                    message_page(p, "Please try again", "Something went wrong on our side."),
                );
            }
        }
    }
    // Looked up and sent off the request path, so that neither the answer nor its timing
    // says whether the address is known. Neither the address nor the link is logged.
    let background = state.clone();
    tokio::spawn(async move {
        if let Err(e) = manage::send_link(&background, &email).await {
            tracing::error!(error = %e, "manage: sign-in link not sent");
        }
    });
    page(&state, StatusCode::OK, sent_page(p))
}

fn unusable(state: &AppState) -> Response {
    page(
        state,
        StatusCode::OK,
        message_page(
            &state.config.pages,
            "This link no longer works",
            "Sign-in links work once, for 30 minutes. Ask for a new one and use it soon after it arrives.",
        ),
    )
}

async fn confirm(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let token = q.get("token").map(|t| t.trim()).unwrap_or_default();
    match manage::link_is_usable(&state.db, token).await {
        Ok(true) => page(
            &state,
            StatusCode::OK,
            confirm_page(&state.config.pages, token),
        ),
        Ok(false) => unusable(&state),
        Err(e) => {
            tracing::error!(error = %e, "manage: link lookup failed");
            unusable(&state)
        }
    }
}

async fn open(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&state, &headers) {
        return forbidden(&state);
    }
    let token = form.get("token").map(|t| t.trim()).unwrap_or_default();
    let donor = match manage::spend(&state.db, token).await {
        Ok(Some(d)) => d,
        Ok(None) => return unusable(&state),
        Err(e) => {
            tracing::error!(error = %e, "manage: link lookup failed");
            return unusable(&state);
        }
    };
    let failed = |state: &AppState| {
        page(
            state,
            StatusCode::BAD_GATEWAY,
            message_page(
                &state.config.pages,
                "Please try again",
                "We could not open the page to manage your gift just now. Your link still works: try it again in a moment.",
            ),
        )
    };
    let customer = match manage::portal_customer(&state.db, donor).await {
        Ok(Some(c)) => c,
        Ok(None) => return unusable(&state),
        Err(e) => {
            tracing::error!(error = %e, "manage: customer lookup failed");
            let _ = manage::unspend(&state.db, token).await;
            return failed(&state);
        }
    };
    match manage::open_portal(&state, &customer).await {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "manage: billing portal session not created");
            let _ = manage::unspend(&state.db, token).await;
            failed(&state)
        }
    }
}
