//! Turning a JSON body or an HTML form into a [`CheckoutRequest`] that can only hold good
//! values, or into an error naming the field.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Config, parse_major_units};
use crate::gifts::{Amount, Campaign, Currency, Email, Frequency, InvalidAmount, cover_fee};

/// The form field that people never see and bots fill in.
pub const HONEYPOT: &str = "website";

const FIELDS: &[&str] = &[
    "amount",
    "amount_major",
    "currency",
    "frequency",
    "email",
    "name",
    "campaign",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "cover_fees",
    "dedication",
    HONEYPOT,
];

/// A validated gift request. `amount` includes the covered fee, if any.
#[derive(Debug, Clone, Serialize)]
pub struct CheckoutRequest {
    pub amount: Amount,
    /// The amount the donor chose, before any covered fee.
    pub chosen_amount: Amount,
    pub covered_fee: i64,
    pub currency: Currency,
    pub frequency: Frequency,
    #[serde(serialize_with = "ser_email")]
    pub email: Option<Email>,
    pub name: Option<String>,
    pub campaign: Option<Campaign>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub dedication: Option<String>,
}

fn ser_email<S: serde::Serializer>(e: &Option<Email>, s: S) -> Result<S::Ok, S::Error> {
    e.as_ref().map(|e| e.as_str()).serialize(s)
}

/// Why a body could not become a [`CheckoutRequest`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InputError {
    #[error("the body is not a JSON object")]
    Malformed,
    #[error("{field}: {message}")]
    Field { field: String, message: String },
    /// The honeypot was filled: a bot. Nothing is created.
    #[error("honeypot filled")]
    Honeypot,
}

fn field(field: &str, message: impl Into<String>) -> InputError {
    InputError::Field {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A body's fields, whichever encoding they came in. Forms carry only strings.
pub struct Fields {
    map: Map<String, Value>,
    from_form: bool,
}

impl Fields {
    pub fn from_json(body: &[u8]) -> Result<Self, InputError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Self {
                map,
                from_form: false,
            }),
            _ => Err(InputError::Malformed),
        }
    }

    pub fn from_form(body: &[u8]) -> Result<Self, InputError> {
        let mut map = Map::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            if map
                .insert(k.to_string(), Value::String(v.into_owned()))
                .is_some()
            {
                return Err(field(&k, "given more than once"));
            }
        }
        Ok(Self {
            map,
            from_form: true,
        })
    }

    fn text(&self, name: &str, max_chars: usize) -> Result<Option<String>, InputError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else if s.chars().count() > max_chars {
                    Err(field(
                        name,
                        format!("must be at most {max_chars} characters"),
                    ))
                } else if s.chars().any(|c| c.is_control()) {
                    Err(field(name, "must not contain control characters"))
                } else {
                    Ok(Some(s.to_string()))
                }
            }
            Some(_) => Err(field(name, "must be a string")),
        }
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, InputError> {
        let whole = || field(name, "must be a whole number of minor units (cents)");
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if !self.from_form => n.as_i64().map(Some).ok_or_else(whole),
            Some(Value::String(s)) if self.from_form => {
                let s = s.trim();
                if s.is_empty() {
                    Ok(None)
                } else {
                    s.parse::<i64>().map(Some).map_err(|_| whole())
                }
            }
            Some(_) => Err(whole()),
        }
    }

    /// A custom amount typed in major units (`25` or `25.50`), for pages that cannot
    /// convert: used when `amount` is absent or `"other"` (the custom choice of a radio
    /// group); ignored when `amount` holds a number. `Some(minor)` when it is used.
    fn amount_major(&self) -> Result<Option<i64>, InputError> {
        let explicit_other =
            matches!(self.map.get("amount"), Some(Value::String(s)) if s.trim() == "other");
        let amount_is_other = explicit_other
            || match self.map.get("amount") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => self.from_form && s.trim().is_empty(),
                Some(_) => false,
            };
        let typed = match self.map.get("amount_major") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(field("amount_major", "must be a string such as \"25.50\"")),
        };
        match (amount_is_other, typed) {
            (false, _) => Ok(None),
            (true, Some(s)) => parse_major_units(s)
                .map(Some)
                .ok_or_else(|| field("amount_major", "must be an amount such as 25 or 25.50")),
            (true, None) if explicit_other => {
                Err(field("amount_major", "is required: enter an amount"))
            }
            (true, None) => Ok(None),
        }
    }

    fn boolean(&self, name: &str) -> Result<bool, InputError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) if !self.from_form => Ok(*b),
            Some(Value::String(s)) if self.from_form => match s.as_str() {
                "" | "false" | "0" | "off" => Ok(false),
                "true" | "1" | "on" | "yes" => Ok(true),
                _ => Err(field(name, "must be true or false")),
            },
            Some(_) => Err(field(name, "must be true or false")),
        }
    }
}

impl CheckoutRequest {
    pub fn parse(f: &Fields, config: &Config) -> Result<Self, InputError> {
        // Unknown fields are refused, so nothing else (card numbers above all) is ever accepted.
        if let Some(unknown) = f.map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(field(unknown, "is not a field of this API"));
        }
        // Any value at all in the hidden field, whatever its type or length, marks a bot.
        let honeypot = f.map.get(HONEYPOT);
        if honeypot.is_some_and(|v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()))
        {
            return Err(InputError::Honeypot);
        }

        let chosen = match f.amount_major()? {
            Some(minor) => {
                Amount::within(minor, config.min_amount, config.max_amount).map_err(|e| {
                    let major = |m: i64| format!("{}.{:02}", m / 100, m % 100);
                    field(
                        "amount_major",
                        match e {
                            InvalidAmount::NotPositive => "must be above zero".to_string(),
                            InvalidAmount::TooSmall(m) => format!("must be at least {}", major(m)),
                            InvalidAmount::TooLarge(m) => format!("must be at most {}", major(m)),
                        },
                    )
                })?
            }
            None => {
                let minor = f
                    .integer("amount")?
                    .ok_or_else(|| field("amount", "is required"))?;
                Amount::within(minor, config.min_amount, config.max_amount).map_err(|e| {
                    field(
                        "amount",
                        match e {
                            InvalidAmount::NotPositive => {
                                "must be a positive whole number of minor units".into()
                            }
                            other => other.to_string(),
                        },
                    )
                })?
            }
        };

        let currency = match f.text("currency", 3)? {
            None => config.default_currency.clone(),
            Some(c) => Currency::parse(&c)
                .ok()
                .filter(|c| config.currencies.contains(c))
                .ok_or_else(|| {
                    let allowed: Vec<&str> =
                        config.currencies.iter().map(Currency::as_str).collect();
                    field("currency", format!("must be one of {}", allowed.join(", ")))
                })?,
        };
        let frequency = match f.text("frequency", 16)? {
            None => return Err(field("frequency", "is required (once, monthly or yearly)")),
            Some(s) => Frequency::parse(&s)
                .ok_or_else(|| field("frequency", "must be once, monthly or yearly"))?,
        };
        let email = f
            .text("email", 254)?
            .map(|e| Email::parse(&e).map_err(|_| field("email", "is not a valid email address")))
            .transpose()?;
        let campaign = f
            .text("campaign", 64)
            .map_err(|_| field("campaign", "must be a slug of at most 64 characters"))?
            .map(|c| {
                Campaign::parse(&c).map_err(|_| {
                    field(
                        "campaign",
                        "must be a slug of at most 64 characters (a-z, 0-9, - and _)",
                    )
                })
            })
            .transpose()?;

        let covered_fee = if f.boolean("cover_fees")? {
            cover_fee(
                chosen,
                config.fee_estimate.percent_bps,
                config.fee_estimate.fixed,
            )
        } else {
            0
        };
        let amount =
            Amount::new(chosen.get() + covered_fee).map_err(|e| field("amount", e.to_string()))?;
        if amount > config.max_amount {
            return Err(field(
                "amount",
                "with the covered fee, exceeds the largest gift accepted",
            ));
        }

        Ok(Self {
            amount,
            chosen_amount: chosen,
            covered_fee,
            currency,
            frequency,
            email,
            name: f.text("name", 100)?,
            campaign,
            utm_source: f.text("utm_source", 100)?,
            utm_medium: f.text("utm_medium", 100)?,
            utm_campaign: f.text("utm_campaign", 100)?,
            dedication: f.text("dedication", 200)?,
        })
    }

    /// A fingerprint of the request's meaning: the same choice sent as JSON or as a form
    /// gives the same hash, so an `Idempotency-Key` can be checked against it.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let canonical = serde_json::to_vec(self).expect("serializable");
        hex::encode(Sha256::digest(canonical))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_vars(Vec::new()).unwrap()
    }

    fn parse_json(body: &str) -> Result<CheckoutRequest, InputError> {
        CheckoutRequest::parse(&Fields::from_json(body.as_bytes())?, &config())
    }

    fn field_of(r: Result<CheckoutRequest, InputError>) -> String {
        match r {
            Err(InputError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn a_form_and_the_same_json_mean_the_same_gift() {
        let json = parse_json(
            r#"{"amount":2500,"frequency":"monthly","email":"A@b.org","cover_fees":true}"#,
        )
        .unwrap();
        let form = CheckoutRequest::parse(
            &Fields::from_form(b"amount=2500&frequency=monthly&email=a%40b.org&cover_fees=on")
                .unwrap(),
            &config(),
        )
        .unwrap();
        assert_eq!(json.fingerprint(), form.fingerprint());
        assert_eq!(json.amount.get(), 2606);
        assert_eq!(json.covered_fee, 106);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(
            field_of(parse_json(r#"{"amount":25.5,"frequency":"once"}"#)),
            "amount"
        );
        assert_eq!(
            field_of(parse_json(r#"{"amount":-500,"frequency":"once"}"#)),
            "amount"
        );
        assert_eq!(
            field_of(parse_json(r#"{"amount":"500","frequency":"once"}"#)),
            "amount"
        );
        assert_eq!(
            field_of(parse_json(r#"{"amount":499,"frequency":"once"}"#)),
            "amount"
        );
        assert_eq!(
            field_of(parse_json(r#"{"amount":2500001,"frequency":"once"}"#)),
            "amount"
        );
        assert_eq!(
            field_of(parse_json(r#"{"amount":500,"frequency":"weekly"}"#)),
            "frequency"
        );
        assert_eq!(
            field_of(parse_json(
                r#"{"amount":500,"frequency":"once","currency":"jpy"}"#
            )),
            "currency"
        );
        assert_eq!(
            field_of(parse_json(
                r#"{"amount":500,"frequency":"once","email":"nope"}"#
            )),
            "email"
        );
        assert_eq!(
            field_of(parse_json(
                r#"{"amount":500,"frequency":"once","card_number":"4242"}"#
            )),
            "card_number"
        );
        let long = "x".repeat(201);
        assert_eq!(
            field_of(parse_json(&format!(
                r#"{{"amount":500,"frequency":"once","dedication":"{long}"}}"#
            ))),
            "dedication"
        );
        assert_eq!(
            field_of(parse_json(&format!(
                r#"{{"amount":500,"frequency":"once","campaign":"{}"}}"#,
                "a".repeat(65)
            ))),
            "campaign"
        );
    }

    fn parse_form(body: &str) -> Result<CheckoutRequest, InputError> {
        CheckoutRequest::parse(&Fields::from_form(body.as_bytes())?, &config())
    }

    #[test]
    fn a_custom_major_amount_becomes_minor_units() {
        let other = parse_form("amount=other&amount_major=25.50&frequency=once").unwrap();
        assert_eq!(other.amount.get(), 2550);
        let absent = parse_form("amount_major=25&frequency=monthly").unwrap();
        assert_eq!(absent.amount.get(), 2500);
        let json = parse_json(r#"{"amount_major":"25.5","frequency":"once"}"#).unwrap();
        assert_eq!(json.amount.get(), 2550);
        // The same choice, however it was typed, is the same gift.
        let minor = parse_form("amount=2550&frequency=once").unwrap();
        assert_eq!(other.fingerprint(), minor.fingerprint());
        assert_eq!(json.fingerprint(), minor.fingerprint());
    }

    #[test]
    fn a_preset_amount_wins_over_a_leftover_custom_amount() {
        let r = parse_form("amount=1000&amount_major=99&frequency=once").unwrap();
        assert_eq!(r.amount.get(), 1000);
    }

    #[test]
    fn bad_custom_amounts_name_amount_major() {
        for body in [
            "amount=other&frequency=once",
            "amount=other&amount_major=&frequency=once",
            "amount=&amount_major=x&frequency=once",
            "amount=other&amount_major=abc&frequency=once",
            "amount=other&amount_major=25.555&frequency=once",
            "amount=other&amount_major=4.99&frequency=once",
            "amount=other&amount_major=25001&frequency=once",
            "amount_major=-5&frequency=once",
        ] {
            assert_eq!(field_of(parse_form(body)), "amount_major", "{body}");
        }
        match parse_form("amount=other&amount_major=4.99&frequency=once") {
            Err(InputError::Field { message, .. }) => assert_eq!(message, "must be at least 5.00"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            field_of(parse_json(r#"{"amount_major":25,"frequency":"once"}"#)),
            "amount_major"
        );
        // Without either, the amount itself is missing; unknown fields are still refused.
        assert_eq!(field_of(parse_form("frequency=once")), "amount");
        assert_eq!(
            field_of(parse_form(
                "amount=other&amount_major=5&frequency=once&amount_minor=1"
            )),
            "amount_minor"
        );
        assert_eq!(field_of(parse_form("amount=abc&frequency=once")), "amount");
    }

    #[test]
    fn malformed_json_and_the_honeypot_are_their_own_errors() {
        assert_eq!(parse_json("{nope").unwrap_err(), InputError::Malformed);
        assert_eq!(parse_json("[1]").unwrap_err(), InputError::Malformed);
        assert_eq!(
            parse_json(r#"{"amount":500,"frequency":"once","website":"spam.example"}"#)
                .unwrap_err(),
            InputError::Honeypot
        );
    }
}
