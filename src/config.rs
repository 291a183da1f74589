//! Typed configuration, read once from the environment (and `.env`), refused at start when
//! a setting is invalid, with the setting's name in the message. Every setting is listed and
//! explained in `.env.example`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::gifts::{Amount, Currency, Frequency};

/// A setting that could not be accepted.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        name,
        reason: reason.into(),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// A rate limit such as `10/10m`: at most `max` requests per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

impl RateLimit {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (max, window) = s
            .split_once('/')
            .ok_or_else(|| format!("expected COUNT/WINDOW such as 10/10m, got {s:?}"))?;
        let max: u32 = max
            .trim()
            .parse()
            .map_err(|_| format!("count {max:?} is not a whole number"))?;
        if max == 0 {
            return Err("count must be at least 1".into());
        }
        let window = parse_duration(window.trim())?;
        Ok(Self { max, window })
    }
}

/// `30s`, `10m`, `1h`, `1d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 10m, 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?} has an unknown unit (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err("duration must be above zero".into());
    }
    Ok(Duration::from_secs(secs))
}

/// The estimated processing fee added when a donor chooses to cover the fees:
/// `percent_bps` hundredths of a percent plus `fixed` minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeEstimate {
    pub percent_bps: u32,
    pub fixed: i64,
}

/// What the reader-facing pages (`/donate`, `/thanks`, `/embed.js`) show: the newsroom's
/// name, colours, logo, texts and preset amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PagesConfig {
    pub newsroom_name: String,
    /// `#rgb` or `#rrggbb`: buttons, focus rings and headings.
    pub brand_color: String,
    /// `#rgb` or `#rrggbb`: text on `brand_color`.
    pub brand_text_color: String,
    pub logo_url: Option<String>,
    pub donate_heading: String,
    pub donate_intro: String,
    /// How the receipt arrives, shown on the thank-you page.
    pub receipt_text: String,
    pub embed_button_text: String,
    /// Preset amounts in minor units, in the order shown.
    pub presets: Vec<Amount>,
    /// The preset marked as suggested and chosen by default.
    pub suggested: Option<Amount>,
    pub default_frequency: Frequency,
    pub offer_cover_fees: bool,
}

/// `25`, `25.5` or `25.50` (a `,` may stand for the `.`) in major units → minor units
/// (hundredths). `None` for anything else, including more than two decimals.
pub fn parse_major_units(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = match s.find(['.', ',']) {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 9
        || !digits(whole)
        || frac.len() > 2
        || !digits(frac)
        || (s.len() > whole.len() && frac.is_empty())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().ok()?
    };
    Some(whole * 100 + frac)
}

fn is_hex_color(s: &str) -> bool {
    s.strip_prefix('#')
        .is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Where Stripe is: the real API with a secret key, or the project's stand-in.
#[derive(Clone)]
pub enum StripeMode {
    /// A real Stripe account (or any Stripe-compatible API at `api_base`).
    Live {
        secret_key: SecretString,
        api_base: String,
    },
    /// No key configured: `serve` starts the stand-in itself and no real money moves.
    StandIn { listen: SocketAddr },
}

/// The whole configuration of the service.
#[derive(Clone)]
pub struct Config {
    /// Postgres connection string.
    pub database_url: SecretString,
    /// Address the HTTP server binds.
    pub listen_addr: SocketAddr,
    /// The URL readers and Stripe reach this service at (no trailing slash).
    pub public_url: String,
    pub stripe: StripeMode,
    /// Webhook signing secrets; several at once during a rotation.
    pub webhook_secrets: Vec<SecretString>,
    /// How far a webhook signature's timestamp may be from now.
    pub webhook_tolerance: Duration,
    /// Origins (scheme://host[:port]) allowed to post to the checkout API from a browser.
    pub allowed_origins: Vec<String>,
    pub checkout_limit_per_ip: RateLimit,
    pub checkout_limit_per_email: RateLimit,
    /// Use the first `X-Forwarded-For` address as the client's (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    pub currencies: Vec<Currency>,
    pub default_currency: Currency,
    pub min_amount: Amount,
    pub max_amount: Amount,
    pub fee_estimate: FeeEstimate,
    /// Checkout's success URL; carries `{CHECKOUT_SESSION_ID}`.
    pub success_url: String,
    pub cancel_url: String,
    /// Product name shown on Stripe Checkout.
    pub product_name: String,
    pub stripe_timeout: Duration,
    pub stripe_max_attempts: u32,
    pub log_format: LogFormat,
    pub pages: PagesConfig,
    /// IANA time zone that report days and periods are cut in (checked against Postgres'
    /// list at start-up).
    pub report_time_zone: String,
    /// Rate limits on sign-in links for managing a recurring gift.
    pub manage_limit_per_ip: RateLimit,
    pub manage_limit_per_email: RateLimit,
    /// `smtp://` or `smtps://` URL of the mail server (may carry credentials). Unset: mail is
    /// kept in the `mail_outbox` table instead of being sent.
    pub smtp_url: Option<SecretString>,
    /// The `From` of the mail we send, e.g. `Our newsroom <members@example.org>`.
    pub mail_from: String,
    /// Donor bands by yearly net giving, ascending floors in minor units (DONOR_BANDS).
    pub donor_bands: Vec<(String, i64)>,
    /// The second line some funders ask for: donors giving at most this in a year.
    pub small_donor_threshold: i64,
    /// How often `serve` reconciles yesterday against Stripe (RECONCILE_EVERY; `None`: off).
    pub reconcile_every: Option<Duration>,
}

impl std::fmt::Debug for Config {
    // Secrets never reach a log line, even through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen_addr", &self.listen_addr)
            .field("public_url", &self.public_url)
            .field(
                "stripe",
                &match &self.stripe {
                    StripeMode::Live { api_base, .. } => format!("live at {api_base}"),
                    StripeMode::StandIn { listen } => format!("stand-in on {listen}"),
                },
            )
            .field("webhook_secrets", &self.webhook_secrets.len())
            .field("allowed_origins", &self.allowed_origins)
            .finish_non_exhaustive()
    }
}

/// The raw environment: every value a string, validated by [`Config::from_vars`].
#[derive(Debug, Default, Deserialize)]
struct Raw {
    database_url: Option<String>,
    listen_addr: Option<String>,
    public_url: Option<String>,
    stripe_secret_key: Option<String>,
    stripe_api_base: Option<String>,
    stripe_webhook_secret: Option<String>,
    stripe_standin_addr: Option<String>,
    webhook_tolerance_secs: Option<String>,
    allowed_origins: Option<String>,
    checkout_limit_per_ip: Option<String>,
    checkout_limit_per_email: Option<String>,
    trust_forwarded_for: Option<String>,
    currencies: Option<String>,
    default_currency: Option<String>,
    min_amount: Option<String>,
    max_amount: Option<String>,
    cover_fees_percent: Option<String>,
    cover_fees_fixed: Option<String>,
    success_url: Option<String>,
    cancel_url: Option<String>,
    product_name: Option<String>,
    stripe_timeout_secs: Option<String>,
    stripe_max_attempts: Option<String>,
    log_format: Option<String>,
    report_time_zone: Option<String>,
    manage_limit_per_ip: Option<String>,
    manage_limit_per_email: Option<String>,
    smtp_url: Option<String>,
    mail_from: Option<String>,
    donor_bands: Option<String>,
    small_donor_threshold: Option<String>,
    reconcile_every: Option<String>,
    newsroom_name: Option<String>,
    brand_color: Option<String>,
    brand_text_color: Option<String>,
    logo_url: Option<String>,
    donate_heading: Option<String>,
    donate_intro: Option<String>,
    receipt_text: Option<String>,
    embed_button_text: Option<String>,
    preset_amounts: Option<String>,
    suggested_amount: Option<String>,
    default_frequency: Option<String>,
    offer_cover_fees: Option<String>,
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/chipin";

impl Config {
    /// Reads `.env` (if present) and the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(std::env::vars())
    }

    /// Builds the configuration from explicit variables (tests use this).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .collect();
        let raw: Raw = envy::from_iter(vars).map_err(|e| invalid("environment", e.to_string()))?;
        Self::from_raw(raw)
    }

    fn from_raw(mut raw: Raw) -> Result<Self, ConfigError> {
        let raw_pages = RawPages {
            newsroom_name: raw.newsroom_name.take(),
            brand_color: raw.brand_color.take(),
            brand_text_color: raw.brand_text_color.take(),
            logo_url: raw.logo_url.take(),
            donate_heading: raw.donate_heading.take(),
            donate_intro: raw.donate_intro.take(),
            receipt_text: raw.receipt_text.take(),
            embed_button_text: raw.embed_button_text.take(),
            preset_amounts: raw.preset_amounts.take(),
            suggested_amount: raw.suggested_amount.take(),
            default_frequency: raw.default_frequency.take(),
            offer_cover_fees: raw.offer_cover_fees.take(),
        };
        let listen_addr: SocketAddr = raw
            .listen_addr
            .as_deref()
            .unwrap_or("127.0.0.1:8080")
            .parse()
            .map_err(|_| invalid("LISTEN_ADDR", "expected HOST:PORT such as 127.0.0.1:8080"))?;
        let public_url = match raw.public_url {
            Some(u) => {
                let parsed = url::Url::parse(&u)
                    .map_err(|e| invalid("PUBLIC_URL", format!("not a URL: {e}")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("PUBLIC_URL", "must be http or https"));
                }
                u.trim_end_matches('/').to_string()
            }
            None => format!("http://{listen_addr}"),
        };

        let stripe = match raw.stripe_secret_key {
            Some(key) => {
                if !(key.starts_with("sk_") || key.starts_with("rk_")) {
                    return Err(invalid(
                        "STRIPE_SECRET_KEY",
                        "must be a secret (sk_...) or restricted (rk_...) key",
                    ));
                }
                let mut api_base = raw
                    .stripe_api_base
                    .unwrap_or_else(|| "https://api.stripe.com/".into());
                url::Url::parse(&api_base)
                    .map_err(|e| invalid("STRIPE_API_BASE", format!("not a URL: {e}")))?;
                if !api_base.ends_with('/') {
                    api_base.push('/');
                }
                StripeMode::Live {
                    secret_key: SecretString::from(key),
                    api_base,
                }
            }
            None => StripeMode::StandIn {
                listen: raw
                    .stripe_standin_addr
                    .as_deref()
                    .unwrap_or("127.0.0.1:12111")
                    .parse()
                    .map_err(|_| invalid("STRIPE_STANDIN_ADDR", "expected HOST:PORT"))?,
            },
        };

        let webhook_secrets: Vec<SecretString> = raw
            .stripe_webhook_secret
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_string()))
            .collect();
        if webhook_secrets.is_empty() && matches!(stripe, StripeMode::Live { .. }) {
            return Err(invalid(
                "STRIPE_WEBHOOK_SECRET",
                "required with STRIPE_SECRET_KEY (the endpoint's whsec_... secret)",
            ));
        }

        let webhook_tolerance = Duration::from_secs(parse_num(
            "WEBHOOK_TOLERANCE_SECS",
            raw.webhook_tolerance_secs,
            300u64,
        )?);
        if webhook_tolerance.is_zero() {
            return Err(invalid("WEBHOOK_TOLERANCE_SECS", "must be above zero"));
        }

        let allowed_origins = match raw.allowed_origins {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|o| {
                    let u = url::Url::parse(o).map_err(|_| {
                        invalid("ALLOWED_ORIGINS", format!("{o:?} is not an origin"))
                    })?;
                    Ok(u.origin().ascii_serialization())
                })
                .collect::<Result<Vec<_>, ConfigError>>()?,
            None => vec![
                url::Url::parse(&public_url)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default(),
            ],
        };

        let rate = |name: &'static str, v: Option<String>, default: &str| {
            RateLimit::parse(v.as_deref().unwrap_or(default)).map_err(|e| invalid(name, e))
        };
        let checkout_limit_per_ip =
            rate("CHECKOUT_LIMIT_PER_IP", raw.checkout_limit_per_ip, "20/10m")?;
        let checkout_limit_per_email = rate(
            "CHECKOUT_LIMIT_PER_EMAIL",
            raw.checkout_limit_per_email,
            "5/10m",
        )?;

        let manage_limit_per_ip = rate("MANAGE_LIMIT_PER_IP", raw.manage_limit_per_ip, "10/1h")?;
        let manage_limit_per_email =
            rate("MANAGE_LIMIT_PER_EMAIL", raw.manage_limit_per_email, "3/1h")?;
        let smtp_url = match raw.smtp_url {
            Some(u) => {
                let parsed = url::Url::parse(&u)
                    .map_err(|_| invalid("SMTP_URL", "not a URL such as smtps://user:pass@host"))?;
                if !matches!(parsed.scheme(), "smtp" | "smtps") {
                    return Err(invalid("SMTP_URL", "must start with smtp:// or smtps://"));
                }
                Some(SecretString::from(u))
            }
            None => None,
        };
        let mail_from = raw.mail_from.unwrap_or_else(|| "no-reply@localhost".into());
        if mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "MAIL_FROM",
                "expected an address such as Newsroom <members@example.org>",
            ));
        }

        let trust_forwarded_for = parse_bool("TRUST_FORWARDED_FOR", raw.trust_forwarded_for)?;

        let currencies = raw
            .currencies
            .as_deref()
            .unwrap_or("usd,eur,gbp,cad")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|c| Currency::parse(c).map_err(|e| invalid("CURRENCIES", e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        if currencies.is_empty() {
            return Err(invalid("CURRENCIES", "list at least one currency"));
        }
        let default_currency = Currency::parse(
            raw.default_currency
                .as_deref()
                .unwrap_or(currencies[0].as_str()),
        )
        .map_err(|e| invalid("DEFAULT_CURRENCY", e.to_string()))?;
        if !currencies.contains(&default_currency) {
            return Err(invalid("DEFAULT_CURRENCY", "must be one of CURRENCIES"));
        }

        let min_amount = Amount::new(parse_num("MIN_AMOUNT", raw.min_amount, 500i64)?)
            .map_err(|e| invalid("MIN_AMOUNT", e.to_string()))?;
        let max_amount = Amount::new(parse_num("MAX_AMOUNT", raw.max_amount, 2_500_000i64)?)
            .map_err(|e| invalid("MAX_AMOUNT", e.to_string()))?;
        if min_amount > max_amount {
            return Err(invalid("MIN_AMOUNT", "must not exceed MAX_AMOUNT"));
        }

        let fee_estimate = FeeEstimate {
            percent_bps: parse_percent_bps(raw.cover_fees_percent.as_deref().unwrap_or("2.9"))?,
            fixed: parse_num("COVER_FEES_FIXED", raw.cover_fees_fixed, 30i64)?,
        };
        if fee_estimate.fixed < 0 {
            return Err(invalid("COVER_FEES_FIXED", "must not be negative"));
        }

        let success_url = raw
            .success_url
            .unwrap_or_else(|| format!("{public_url}/thanks?session_id={{CHECKOUT_SESSION_ID}}"));
        if !success_url.contains("{CHECKOUT_SESSION_ID}") {
            return Err(invalid("SUCCESS_URL", "must contain {CHECKOUT_SESSION_ID}"));
        }
        let cancel_url = raw
            .cancel_url
            .unwrap_or_else(|| format!("{public_url}/donate/cancelled"));
        for (name, u) in [("SUCCESS_URL", &success_url), ("CANCEL_URL", &cancel_url)] {
            url::Url::parse(&u.replace("{CHECKOUT_SESSION_ID}", "x"))
                .map_err(|e| invalid(name, format!("not a URL: {e}")))?;
        }

        let stripe_timeout = Duration::from_secs(parse_num(
            "STRIPE_TIMEOUT_SECS",
            raw.stripe_timeout_secs,
            10u64,
        )?);
        let stripe_max_attempts = parse_num("STRIPE_MAX_ATTEMPTS", raw.stripe_max_attempts, 3u32)?;
        if stripe_max_attempts == 0 || stripe_timeout.is_zero() {
            return Err(invalid(
                "STRIPE_MAX_ATTEMPTS",
                "attempts and timeout must be above zero",
            ));
        }

        let log_format = match raw.log_format.as_deref().unwrap_or("human") {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(invalid(
                    "LOG_FORMAT",
                    format!("{other:?}: use human or json"),
                ));
            }
        };

        let pages = pages_config(&raw_pages, min_amount, max_amount)?;

        Ok(Self {
            database_url: SecretString::from(
                raw.database_url
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            ),
            listen_addr,
            public_url,
            stripe,
            webhook_secrets,
            webhook_tolerance,
            allowed_origins,
            checkout_limit_per_ip,
            checkout_limit_per_email,
            trust_forwarded_for,
            currencies,
            default_currency,
            min_amount,
            max_amount,
            fee_estimate,
            success_url,
            cancel_url,
            product_name: raw
                .product_name
                .unwrap_or_else(|| "Support our newsroom".into()),
            stripe_timeout,
            stripe_max_attempts,
            log_format,
            pages,
            report_time_zone: raw.report_time_zone.unwrap_or_else(|| "UTC".into()),
            manage_limit_per_ip,
            manage_limit_per_email,
            smtp_url,
            mail_from,
            donor_bands: parse_bands(
                raw.donor_bands
                    .as_deref()
                    .unwrap_or("small:0,mid:1000,major:5000"),
            )?,
            small_donor_threshold: parse_major_units(
                raw.small_donor_threshold.as_deref().unwrap_or("200"),
            )
            .ok_or_else(|| {
                invalid(
                    "SMALL_DONOR_THRESHOLD",
                    "expected an amount in major units such as 200",
                )
            })?,
            reconcile_every: match raw.reconcile_every.as_deref().map(str::trim) {
                Some("off") => None,
                other => Some(
                    parse_duration(other.unwrap_or("1d"))
                        .map_err(|e| invalid("RECONCILE_EVERY", format!("{e}, or off")))?,
                ),
            },
        })
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn is_standin(&self) -> bool {
        matches!(self.stripe, StripeMode::StandIn { .. })
    }
}

struct RawPages {
    newsroom_name: Option<String>,
    brand_color: Option<String>,
    brand_text_color: Option<String>,
    logo_url: Option<String>,
    donate_heading: Option<String>,
    donate_intro: Option<String>,
    receipt_text: Option<String>,
    embed_button_text: Option<String>,
    preset_amounts: Option<String>,
    suggested_amount: Option<String>,
    default_frequency: Option<String>,
    offer_cover_fees: Option<String>,
}

fn pages_config(raw: &RawPages, min: Amount, max: Amount) -> Result<PagesConfig, ConfigError> {
    let text = |v: &Option<String>, default: &str| {
        v.as_deref().map(str::trim).unwrap_or(default).to_string()
    };
    let color = |name: &'static str, v: &Option<String>, default: &str| {
        let c = text(v, default);
        if is_hex_color(&c) {
            Ok(c)
        } else {
            Err(invalid(
                name,
                format!("{c:?} is not a colour such as #1a4480"),
            ))
        }
    };
    let logo_url = match raw.logo_url.as_deref().map(str::trim) {
        None => None,
        Some(u) => {
            let parsed =
                url::Url::parse(u).map_err(|e| invalid("LOGO_URL", format!("not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(invalid("LOGO_URL", "must be http or https"));
            }
            Some(parsed.to_string())
        }
    };
    let amount = |name: &'static str, s: &str| {
        let minor = parse_major_units(s)
            .ok_or_else(|| invalid(name, format!("{s:?} is not an amount such as 25 or 7.50")))?;
        Amount::within(minor, min, max).map_err(|e| invalid(name, e.to_string()))
    };
    let presets = text(&raw.preset_amounts, "10,25,50,100")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| amount("PRESET_AMOUNTS", s))
        .collect::<Result<Vec<_>, _>>()?;
    if presets.len() > 8 {
        return Err(invalid("PRESET_AMOUNTS", "list at most 8 amounts"));
    }
    let suggested = match raw.suggested_amount.as_deref().map(str::trim) {
        Some("none") => None,
        Some(s) => {
            let a = amount("SUGGESTED_AMOUNT", s)?;
            if !presets.contains(&a) {
                return Err(invalid("SUGGESTED_AMOUNT", "must be one of PRESET_AMOUNTS"));
            }
            Some(a)
        }
        None => presets.get(1).or(presets.first()).copied(),
    };
    let default_frequency = match raw.default_frequency.as_deref().map(str::trim) {
        None => Frequency::Monthly,
        Some(f) => Frequency::parse(f).ok_or_else(|| {
            invalid(
                "DEFAULT_FREQUENCY",
                format!("{f:?}: use once, monthly or yearly"),
            )
        })?,
    };
    let offer_cover_fees = match raw.offer_cover_fees {
        None => true,
        Some(_) => parse_bool("OFFER_COVER_FEES", raw.offer_cover_fees.clone())?,
    };
    Ok(PagesConfig {
        newsroom_name: text(&raw.newsroom_name, "Our newsroom"),
        brand_color: color("BRAND_COLOR", &raw.brand_color, "#1a4480")?,
        brand_text_color: color("BRAND_TEXT_COLOR", &raw.brand_text_color, "#ffffff")?,
        logo_url,
        donate_heading: text(&raw.donate_heading, "Support independent journalism"),
        donate_intro: text(
            &raw.donate_intro,
            "Our reporting is free to read and funded by readers like you. Every gift helps.",
        ),
        receipt_text: text(
            &raw.receipt_text,
            "Your receipt is on its way by email from our payment provider, Stripe, to the address you gave at checkout.",
        ),
        embed_button_text: text(&raw.embed_button_text, "Support our work"),
        presets,
        suggested,
        default_frequency,
        offer_cover_fees,
    })
}

fn parse_num<T: std::str::FromStr>(
    name: &'static str,
    v: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .trim()
            .parse()
            .map_err(|_| invalid(name, format!("{s:?} is not a valid whole number"))),
    }
}

/// `small:0,mid:1000,major:5000`: band names with ascending floors in major units, the first
/// at 0.
fn parse_bands(s: &str) -> Result<Vec<(String, i64)>, ConfigError> {
    let err = |m: &str| {
        invalid(
            "DONOR_BANDS",
            format!("{m} (expected name:floor,... such as small:0,mid:1000,major:5000)"),
        )
    };
    let mut bands: Vec<(String, i64)> = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, floor) = part.split_once(':').ok_or_else(|| err(part))?;
        let floor = parse_major_units(floor).ok_or_else(|| err(part))?;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(err("band names are letters, digits, - and _"));
        }
        if bands.last().is_some_and(|(_, prev)| *prev >= floor) {
            return Err(err("floors must rise"));
        }
        bands.push((name.to_string(), floor));
    }
    match bands.first() {
        Some((_, 0)) => Ok(bands),
        Some(_) => Err(err("the first band must start at 0")),
        None => Err(err("list at least one band")),
    }
}

fn parse_bool(name: &'static str, v: Option<String>) -> Result<bool, ConfigError> {
    match v.as_deref().map(str::trim) {
        None | Some("false") | Some("0") | Some("no") => Ok(false),
        Some("true") | Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(invalid(name, format!("{other:?}: use true or false"))),
    }
}

/// `2.9` → 290 basis points; at most two decimals, at most 20%.
fn parse_percent_bps(s: &str) -> Result<u32, ConfigError> {
    let err = || {
        invalid(
            "COVER_FEES_PERCENT",
            format!("{s:?} is not a percentage such as 2.9"),
        )
    };
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if frac.len() > 2 || whole.is_empty() {
        return Err(err());
    }
    let whole: u32 = whole.parse().map_err(|_| err())?;
    let frac: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<2}").parse().map_err(|_| err())?
    };
    let bps = whole * 100 + frac;
    if bps > 2000 {
        return Err(invalid("COVER_FEES_PERCENT", "must be at most 20"));
    }
    Ok(bps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_start_in_standin_mode() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert!(c.is_standin());
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(c.public_url, "http://127.0.0.1:8080");
        assert_eq!(c.allowed_origins, vec!["http://127.0.0.1:8080"]);
        assert_eq!(c.min_amount.get(), 500);
        assert_eq!(
            c.fee_estimate,
            FeeEstimate {
                percent_bps: 290,
                fixed: 30
            }
        );
    }

    #[test]
    fn a_live_key_without_a_webhook_secret_is_refused_naming_the_setting() {
        let e = Config::from_vars(vars(&[("STRIPE_SECRET_KEY", "sk_test_x")])).unwrap_err();
        assert_eq!(e.name, "STRIPE_WEBHOOK_SECRET");
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (k, v) in [
            ("LISTEN_ADDR", "nowhere"),
            ("CHECKOUT_LIMIT_PER_IP", "ten"),
            ("CHECKOUT_LIMIT_PER_EMAIL", "5/0m"),
            ("MIN_AMOUNT", "-3"),
            ("CURRENCIES", "usd,dollars"),
            ("LOG_FORMAT", "xml"),
            ("COVER_FEES_PERCENT", "2.955"),
            ("WEBHOOK_TOLERANCE_SECS", "0"),
            ("MANAGE_LIMIT_PER_IP", "many"),
            ("MANAGE_LIMIT_PER_EMAIL", "3"),
            ("SMTP_URL", "http://mail.example.org"),
            ("MAIL_FROM", "not an address"),
            ("RECONCILE_EVERY", "daily"),
        ] {
            let e = Config::from_vars(vars(&[(k, v)])).unwrap_err();
            assert_eq!(e.name, k, "{k}={v} gave {e}");
        }
    }

    #[test]
    fn reconciliation_runs_daily_unless_turned_off() {
        let every = |v: &str| Config::from_vars(vars(&[("RECONCILE_EVERY", v)])).unwrap();
        assert_eq!(
            Config::from_vars(vars(&[])).unwrap().reconcile_every,
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            every("6h").reconcile_every,
            Some(Duration::from_secs(21_600))
        );
        assert_eq!(every("off").reconcile_every, None);
    }

    #[test]
    fn page_settings_have_defaults_and_name_their_errors() {
        let p = Config::from_vars(vars(&[])).unwrap().pages;
        assert_eq!(
            p.presets.iter().map(|a| a.get()).collect::<Vec<_>>(),
            vec![1000, 2500, 5000, 10000]
        );
        assert_eq!(p.suggested.map(Amount::get), Some(2500));
        assert_eq!(p.default_frequency, Frequency::Monthly);
        let p = Config::from_vars(vars(&[
            ("PRESET_AMOUNTS", "7.50, 15"),
            ("SUGGESTED_AMOUNT", "15"),
            ("DEFAULT_FREQUENCY", "yearly"),
        ]))
        .unwrap()
        .pages;
        assert_eq!(
            p.presets.iter().map(|a| a.get()).collect::<Vec<_>>(),
            vec![750, 1500]
        );
        assert_eq!(p.suggested.map(Amount::get), Some(1500));
        for (k, v) in [
            ("PRESET_AMOUNTS", "10,abc"),
            ("PRESET_AMOUNTS", "1"),
            ("SUGGESTED_AMOUNT", "33"),
            ("DEFAULT_FREQUENCY", "weekly"),
            ("BRAND_COLOR", "red;}"),
            ("LOGO_URL", "javascript:alert(1)"),
            ("OFFER_COVER_FEES", "maybe"),
        ] {
            let e = Config::from_vars(vars(&[(k, v)])).unwrap_err();
            assert_eq!(e.name, k, "{k}={v} gave {e}");
        }
    }

    #[test]
    fn major_units_become_minor_units() {
        assert_eq!(parse_major_units("25"), Some(2500));
        assert_eq!(parse_major_units(" 25.5 "), Some(2550));
        assert_eq!(parse_major_units("25,05"), Some(2505));
        for bad in [
            "",
            "25.",
            ".5",
            "25.555",
            "-3",
            "2 5",
            "1e3",
            "25.5.5",
            "$25",
            "1234567890",
        ] {
            assert_eq!(parse_major_units(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn donor_bands_default_to_the_inn_lines() {
        let c = Config::from_vars(vars(&[])).unwrap();
        let bands: Vec<(&str, i64)> = c
            .donor_bands
            .iter()
            .map(|(n, f)| (n.as_str(), *f))
            .collect();
        assert_eq!(
            bands,
            vec![("small", 0), ("mid", 100_000), ("major", 500_000)]
        );
        assert_eq!(c.small_donor_threshold, 20_000);
        for bad in ["small:10", "a:0,b:0", "a:0,b"] {
            assert_eq!(
                Config::from_vars(vars(&[("DONOR_BANDS", bad)]))
                    .map(|_| ())
                    .unwrap_err()
                    .name,
                "DONOR_BANDS",
                "{bad}"
            );
        }
    }

    #[test]
    fn rate_limits_read_count_and_window() {
        let r = RateLimit::parse("10/10m").unwrap();
        assert_eq!((r.max, r.window), (10, Duration::from_secs(600)));
        assert!(RateLimit::parse("10").is_err());
    }

    #[test]
    fn rotation_secrets_split_on_commas() {
        let c = Config::from_vars(vars(&[
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
        ]))
        .unwrap();
        assert_eq!(c.webhook_secrets.len(), 2);
        assert!(!format!("{c:?}").contains("whsec_a"));
    }
}
