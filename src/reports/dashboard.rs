//! `GET /reports`: the staff dashboard, served as it is (no build step). The page holds no
//! data and needs no token to load; `/static/reports.js` asks for the token once, keeps it
//! in `sessionStorage`, and calls the report APIs with it in the Authorization header. The
//! same headers and Content-Security-Policy as the reader pages (no inline script or style).
//! Finance staff also see payouts and the open reconciliation differences (acknowledged with
//! a reason from the page).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::pages::{Framing, esc, html_response, secure};
use crate::state::AppState;

const REPORTS_JS: &str = include_str!("dashboard.js");
const REPORTS_CSS: &str = include_str!("dashboard.css");

pub async fn page(State(state): State<AppState>) -> Response {
    let config = &state.config;
    let currencies: String = config
        .currencies
        .iter()
        .map(|c| {
            let c = esc(c.as_str());
            let selected = if c == config.default_currency.as_str() {
                " selected"
            } else {
                ""
            };
            format!(
                r#"<option value="{c}"{selected}>{}</option>"#,
                c.to_uppercase()
            )
        })
        .collect();
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Reports · {name}</title>
<link rel="stylesheet" href="/static/reports.css">
<script src="/static/reports.js" defer></script>
</head>
<body>
<header class="top"><h1>Reports</h1><p class="newsroom">{name}</p>
<p id="who" class="who" hidden><span id="who-text">Signed in</span> <button type="button" id="sign-out">Sign out</button></p>
</header>
<main>
<section id="sign-in" class="panel">
<form id="token-form">
<label for="token">Staff token</label>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
<button type="submit" id="save-token">Use this token</button>
<p class="hint">Kept in this tab only (session storage); it is never put in a URL.</p>
</form>
</section>
<section id="controls" class="panel" hidden>
<form id="range-form">
<label>From <input id="from" name="from" inputmode="numeric" placeholder="YYYY-MM-DD" pattern="\d{{4}}-\d{{2}}-\d{{2}}" required></label>
<label>To <input id="to" name="to" inputmode="numeric" placeholder="YYYY-MM-DD" pattern="\d{{4}}-\d{{2}}-\d{{2}}" required></label>
<label>Interval <select id="interval" name="interval">
<option value="day">Day</option><option value="week">Week</option><option value="month" selected>Month</option><option value="year">Year</option>
</select></label>
<label>Currency <select id="currency" name="currency">{currencies}</select></label>
<label>Campaign <input id="campaign" name="campaign" placeholder="all"></label>
<button type="submit" id="show">Show</button>
</form>
</section>
<p id="status" class="status" role="status" aria-live="polite"></p>
<section id="report" hidden>
<h2>Total <span id="range-label"></span></h2>
<table id="totals" class="figures"><tbody></tbody></table>
<h2>Net per period</h2>
<div id="chart" class="chart"></div>
<p class="legend"><span class="key one-time"></span> one-time <span class="key recurring"></span> recurring</p>
<div id="bands-block" hidden>
<h2>Donor bands</h2>
<div id="bands-chart" class="chart"></div>
<table id="bands" class="figures"><thead></thead><tbody></tbody></table>
</div>
<h2>Periods</h2>
<div class="scroll"><table id="periods" class="figures"><thead></thead><tbody></tbody></table></div>
<h2>Downloads (CSV)</h2>
<ul class="downloads">
<li><button type="button" id="dl-summary" data-kind="summary">Summary</button></li>
<li><button type="button" id="dl-gifts" data-kind="gifts">Every gift, refund and dispute</button></li>
<li><button type="button" id="dl-statements" data-kind="statements">Year-end statements (year of “to”)</button></li>
<li><button type="button" id="dl-lybunt" data-kind="lybunt">LYBUNT: gave last year, not this year</button></li>
</ul>
</section>
<section id="books" class="panel" hidden>
<h2>Payouts (arriving between “from” and “to”)</h2>
<p><button type="button" id="load-payouts">Show payouts</button></p>
<div class="scroll"><table id="payouts" class="figures"><thead></thead><tbody></tbody></table></div>
<h2>Reconciliation: open differences with Stripe</h2>
<p><button type="button" id="load-issues">Show open differences</button></p>
<div class="scroll"><table id="issues" class="figures"><thead></thead><tbody></tbody></table></div>
<p id="issues-empty" hidden>No open differences: the ledger matches Stripe on every day reconciled.</p>
</section>
</main>
</body>
</html>
"#,
        name = esc(&config.pages.newsroom_name),
    );
    secure(
        html_response(body, "no-store"),
        config,
        Framing::Deny,
        "no-referrer",
    )
}

fn asset(state: &AppState, body: &'static str, content_type: &'static str) -> Response {
    secure(
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        &state.config,
        Framing::Deny,
        "no-referrer",
    )
}

pub async fn js(State(state): State<AppState>) -> Response {
    asset(&state, REPORTS_JS, "text/javascript; charset=utf-8")
}

pub async fn css(State(state): State<AppState>) -> Response {
    asset(&state, REPORTS_CSS, "text/css; charset=utf-8")
}
