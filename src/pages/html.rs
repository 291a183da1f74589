//! Escaping, money formatting and the page templates. Every value that did not come from
//! this file goes through [`esc`] before it reaches the HTML.

use crate::config::{Config, PagesConfig};
use crate::gifts::{Amount, Frequency, cover_fee};

/// Escapes text for an HTML text node or a double-quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn symbol(currency: &str) -> Option<&'static str> {
    match currency {
        "usd" => Some("$"),
        "eur" => Some("€"),
        "gbp" => Some("£"),
        "cad" => Some("CA$"),
        "aud" => Some("A$"),
        _ => None,
    }
}

/// `2606, "usd"` → `$26.06`; whole amounts drop the cents when `short`.
pub fn money(minor: i64, currency: &str, short: bool) -> String {
    let number = if short && minor % 100 == 0 {
        format!("{}", minor / 100)
    } else {
        format!("{}.{:02}", minor / 100, minor % 100)
    };
    match symbol(currency) {
        Some(s) => format!("{s}{number}"),
        None => format!("{number} {}", currency.to_uppercase()),
    }
}

/// `2550` → `25.50`, as typed in the custom amount field.
pub fn major(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

pub fn frequency_label(f: Frequency) -> &'static str {
    match f {
        Frequency::Once => "Once",
        Frequency::Monthly => "Monthly",
        Frequency::Yearly => "Yearly",
    }
}

/// The shared document around every page.
pub fn layout(p: &PagesConfig, title: &str, body_class: &str, main: &str) -> String {
    let logo = match &p.logo_url {
        Some(u) => format!(
            r#"<img class="logo" src="{}" alt="{}">"#,
            esc(u),
            esc(&p.newsroom_name)
        ),
        None => format!(r#"<p class="newsroom">{}</p>"#, esc(&p.newsroom_name)),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title} · {name}</title>
<link rel="stylesheet" href="/static/donate.css">
<script src="/static/donate.js" defer></script>
</head>
<body class="{body_class}">
<main id="main" class="card">
<header class="masthead">{logo}</header>
{main}
</main>
</body>
</html>
"#,
        title = esc(title),
        name = esc(&p.newsroom_name),
        body_class = esc(body_class),
    )
}

/// What the donate form starts with: from the configuration, or from the query string
/// (a cancelled checkout's way back, or a newsletter link).
#[derive(Debug, Clone, Default)]
pub struct Choice {
    /// A preset's amount, or a custom amount.
    pub amount: Option<Amount>,
    pub frequency: Option<Frequency>,
    pub cover_fees: bool,
    pub email: Option<String>,
}

/// Hidden attribution fields carried from the page's URL.
#[derive(Debug, Clone, Default)]
pub struct Attribution {
    pub campaign: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
}

impl Attribution {
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("campaign", &self.campaign),
            ("utm_source", &self.utm_source),
            ("utm_medium", &self.utm_medium),
            ("utm_campaign", &self.utm_campaign),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

pub fn donate_page(config: &Config, choice: &Choice, attr: &Attribution, embed: bool) -> String {
    let p = &config.pages;
    let currency = config.default_currency.as_str();
    let fee = |a: Amount| {
        cover_fee(
            a,
            config.fee_estimate.percent_bps,
            config.fee_estimate.fixed,
        )
    };

    let selected = choice.amount.or(p.suggested);
    let preset_selected = selected.filter(|a| p.presets.contains(a));
    let custom = selected.filter(|a| !p.presets.contains(a));

    let mut amounts = String::new();
    for a in &p.presets {
        let id = format!("amount-{}", a.get());
        let suggested = if Some(*a) == p.suggested {
            r#" <span class="badge">Suggested</span>"#
        } else {
            ""
        };
        amounts.push_str(&format!(
            r#"<div class="choice"><input type="radio" id="{id}" name="amount" value="{v}" data-fee="{fee}"{checked}><label for="{id}">{label}{suggested}</label></div>
"#,
            v = a.get(),
            fee = fee(*a),
            checked = if preset_selected == Some(*a) { " checked" } else { "" },
            label = esc(&money(a.get(), currency, true)),
        ));
    }
    amounts.push_str(&format!(
        r#"<div class="choice"><input type="radio" id="amount-other" name="amount" value="other"{checked}><label for="amount-other">Other</label></div>
"#,
        checked = if custom.is_some() { " checked" } else { "" },
    ));

    let frequency = choice.frequency.unwrap_or(p.default_frequency);
    let mut frequencies = String::new();
    for f in [Frequency::Once, Frequency::Monthly, Frequency::Yearly] {
        frequencies.push_str(&format!(
            r#"<div class="choice"><input type="radio" id="frequency-{v}" name="frequency" value="{v}"{checked}><label for="frequency-{v}">{label}</label></div>
"#,
            v = f.as_str(),
            checked = if f == frequency { " checked" } else { "" },
            label = frequency_label(f),
        ));
    }

    let mut hidden = format!(
        r#"<input type="hidden" name="currency" value="{}">
"#,
        esc(currency)
    );
    for (k, v) in attr.pairs() {
        hidden.push_str(&format!(
            r#"<input type="hidden" name="{k}" value="{}">
"#,
            esc(v)
        ));
    }

    let fee_rule = format!(
        "{}.{:02}% + {}",
        config.fee_estimate.percent_bps / 100,
        config.fee_estimate.percent_bps % 100,
        money(config.fee_estimate.fixed, currency, false)
    );
    let cover = if p.offer_cover_fees {
        let shown = selected.unwrap_or(config.min_amount);
        let per_preset: Vec<String> = p
            .presets
            .iter()
            .map(|a| {
                format!(
                    "{} on {}",
                    money(fee(*a), currency, false),
                    money(a.get(), currency, true)
                )
            })
            .collect();
        format!(
            r#"<div class="field check">
<input type="checkbox" id="cover_fees" name="cover_fees" value="on" aria-describedby="cover_fees-hint"{checked}>
<label for="cover_fees">Add <span id="fee-amount" data-rule="{rule}">{fee}</span> to cover card fees</label>
<p class="hint" id="cover_fees-hint">So that we receive all of your {gift} gift. <noscript>Fees added: {list}; other amounts: {rule}.</noscript></p>
<p class="error" id="cover_fees-error" aria-live="polite"></p>
</div>
"#,
            checked = if choice.cover_fees { " checked" } else { "" },
            rule = esc(&fee_rule),
            fee = esc(&money(fee(shown), currency, false)),
            gift = esc(&money(shown.get(), currency, false)),
            list = esc(&per_preset.join(", ")),
        )
    } else {
        String::new()
    };

    let main = format!(
        r#"<h1>{heading}</h1>
<p class="intro">{intro}</p>
<form id="donate" method="post" action="/api/checkout"{target} data-currency="{currency_attr}" data-fee-bps="{bps}" data-fee-fixed="{fixed}" data-embed="{embed_flag}">
<p class="error form-error" id="form-error" role="alert" aria-live="assertive"></p>
<fieldset class="choices" id="frequency">
<legend>How often?</legend>
<div class="options options-3">
{frequencies}</div>
<p class="error" id="frequency-error" aria-live="polite"></p>
</fieldset>
<fieldset class="choices" id="amount">
<legend>Amount <span class="currency">({currency_upper})</span></legend>
<div class="options">
{amounts}</div>
<div class="field custom">
<label for="amount_major">Other amount ({currency_upper})</label>
<input type="text" id="amount_major" name="amount_major" inputmode="decimal" autocomplete="off" value="{custom_value}" aria-describedby="amount-hint amount_major-error">
<p class="hint" id="amount-hint">Choose “Other” and enter any amount from {min} to {max}.</p>
<p class="error" id="amount_major-error" aria-live="polite"></p>
</div>
<p class="error" id="amount-error" aria-live="polite"></p>
</fieldset>
{cover}<div class="field">
<label for="email">Email <span class="optional">(optional)</span></label>
<input type="email" id="email" name="email" autocomplete="email" maxlength="254" value="{email}" aria-describedby="email-hint email-error">
<p class="hint" id="email-hint">For your receipt; you can also give it on the payment page.</p>
<p class="error" id="email-error" aria-live="polite"></p>
</div>
{hidden}<div class="hp" aria-hidden="true"><label for="website">Leave this field empty</label><input type="text" id="website" name="website" tabindex="-1" autocomplete="off"></div>
<button type="submit" id="give" class="give">Continue to secure payment</button>
<p class="fineprint">Payment is handled by Stripe. Monthly and yearly gifts can be cancelled at any time.</p>
<p class="continue" id="continue" hidden></p>
</form>
"#,
        heading = esc(&p.donate_heading),
        intro = esc(&p.donate_intro),
        target = if embed { r#" target="_top""# } else { "" },
        currency_attr = esc(currency),
        currency_upper = esc(&currency.to_uppercase()),
        bps = config.fee_estimate.percent_bps,
        fixed = config.fee_estimate.fixed,
        embed_flag = if embed { "1" } else { "0" },
        custom_value = custom.map(|a| major(a.get())).unwrap_or_default(),
        min = esc(&money(config.min_amount.get(), currency, false)),
        max = esc(&money(config.max_amount.get(), currency, false)),
        email = esc(choice.email.as_deref().unwrap_or("")),
    );
    let class = if embed { "donate embed" } else { "donate" };
    layout(p, &p.donate_heading, class, &main)
}

/// A gift confirmed from our records or from Stripe.
pub struct Confirmed {
    pub amount: i64,
    pub currency: String,
    pub frequency: Frequency,
}

pub fn thanks_page(p: &PagesConfig, confirmed: Option<&Confirmed>) -> String {
    let main = match confirmed {
        Some(c) => {
            let kind = match c.frequency {
                Frequency::Once => "one-time",
                Frequency::Monthly => "monthly",
                Frequency::Yearly => "yearly",
            };
            format!(
                r#"<h1>Thank you!</h1>
<p class="confirmed" id="confirmed">Your <strong>{kind}</strong> gift of <strong>{amount}</strong> to {name} is confirmed.</p>
<p>{receipt}</p>
"#,
                amount = esc(&money(c.amount, &c.currency, false)),
                name = esc(&p.newsroom_name),
                receipt = esc(&p.receipt_text),
            )
        }
        None => format!(
            r#"<h1>Thank you for your support</h1>
<p class="neutral" id="neutral">We cannot show the details of a gift from this link. If you have just given, it may take a moment to be recorded.</p>
<p>{receipt}</p>
<p><a class="button-link" href="/donate">Go to the donation form</a></p>
"#,
            receipt = esc(&p.receipt_text),
        ),
    };
    layout(p, "Thank you", "thanks", &main)
}

pub fn cancelled_page(p: &PagesConfig, back: &str) -> String {
    let main = format!(
        r#"<h1>No payment was made</h1>
<p>You left the payment page before finishing, so nothing was charged. Your choice is kept if you would like to try again.</p>
<p><a class="button-link" id="back-to-form" href="{back}">Back to the donation form</a></p>
"#,
        back = esc(back),
    );
    layout(p, "No payment was made", "cancelled", &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_attributes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn money_reads_as_people_write_it() {
        assert_eq!(money(2606, "usd", false), "$26.06");
        assert_eq!(money(2500, "usd", true), "$25");
        assert_eq!(money(2550, "eur", true), "€25.50");
        assert_eq!(money(1000, "chf", true), "10 CHF");
        assert_eq!(major(2505), "25.05");
    }

    #[test]
    fn configured_texts_are_escaped_in_the_page() {
        let mut c = Config::from_vars(Vec::new()).unwrap();
        c.pages.donate_heading = "<script>alert(1)</script>".into();
        let attr = Attribution {
            campaign: Some("x\"><script>".into()),
            ..Attribution::default()
        };
        let html = donate_page(&c, &Choice::default(), &attr, false);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("\"><script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
