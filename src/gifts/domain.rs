//! Parse, don't validate: each type here can only hold a good value.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A positive amount of money in a currency's minor units (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Amount(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidAmount {
    #[error("amount must be above zero")]
    NotPositive,
    #[error("amount must be at least {0} minor units")]
    TooSmall(i64),
    #[error("amount must be at most {0} minor units")]
    TooLarge(i64),
}

impl Amount {
    pub fn new(minor: i64) -> Result<Self, InvalidAmount> {
        if minor <= 0 {
            return Err(InvalidAmount::NotPositive);
        }
        Ok(Self(minor))
    }

    /// An amount within the configured bounds.
    pub fn within(minor: i64, min: Amount, max: Amount) -> Result<Self, InvalidAmount> {
        let a = Self::new(minor)?;
        if a < min {
            return Err(InvalidAmount::TooSmall(min.0));
        }
        if a > max {
            return Err(InvalidAmount::TooLarge(max.0));
        }
        Ok(a)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A lowercase ISO 4217 code such as `usd`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

#[derive(Debug, thiserror::Error)]
#[error("currency must be a lowercase three-letter ISO code, got {0:?}")]
pub struct InvalidCurrency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Self, InvalidCurrency> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidCurrency(s.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often a reader gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Once,
    Monthly,
    Yearly,
}

impl Frequency {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "once" => Some(Self::Once),
            "monthly" => Some(Self::Monthly),
            "yearly" => Some(Self::Yearly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Once => "once",
            Self::Monthly => "monthly",
            Self::Yearly => "yearly",
        }
    }

    /// Stripe's `recurring[interval]`, for recurring gifts.
    pub fn interval(self) -> Option<&'static str> {
        match self {
            Self::Once => None,
            Self::Monthly => Some("month"),
            Self::Yearly => Some("year"),
        }
    }

    pub fn from_interval(interval: &str) -> Option<Self> {
        match interval {
            "month" => Some(Self::Monthly),
            "year" => Some(Self::Yearly),
            _ => None,
        }
    }
}

/// A normalized email address: trimmed, lowercased, one `@` with text on both sides and a dot
/// in the domain. Deliberately loose; Stripe and the mail server are the real judges.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

#[derive(Debug, thiserror::Error)]
#[error("email address is malformed")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let s = s.trim().to_lowercase();
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(InvalidEmail);
        }
        let (local, domain) = s.split_once('@').ok_or(InvalidEmail)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(InvalidEmail);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    // Emails are personal data: debug output never shows them whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email(<redacted>)")
    }
}

/// A campaign slug: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Campaign(String);

#[derive(Debug, thiserror::Error)]
#[error("campaign must be a slug of 1 to 64 characters (a-z, 0-9, - and _)")]
pub struct InvalidCampaign;

impl Campaign {
    pub fn parse(s: &str) -> Result<Self, InvalidCampaign> {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            Ok(Self(s.to_string()))
        } else {
            Err(InvalidCampaign)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The fee a donor adds to cover processing, so that the newsroom nets the chosen amount:
/// `total = ceil((amount + fixed) / (1 - pct))`, the fee being `total - amount`.
pub fn cover_fee(amount: Amount, percent_bps: u32, fixed: i64) -> i64 {
    let denom = 10_000 - i64::from(percent_bps);
    let numer = (amount.get() + fixed) * 10_000;
    let total = (numer + denom - 1) / denom;
    total - amount.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_must_be_positive_and_within_bounds() {
        let (min, max) = (Amount::new(500).unwrap(), Amount::new(2_500_000).unwrap());
        assert_eq!(Amount::within(0, min, max), Err(InvalidAmount::NotPositive));
        assert_eq!(
            Amount::within(-5, min, max),
            Err(InvalidAmount::NotPositive)
        );
        assert_eq!(
            Amount::within(499, min, max),
            Err(InvalidAmount::TooSmall(500))
        );
        assert_eq!(
            Amount::within(2_500_001, min, max),
            Err(InvalidAmount::TooLarge(2_500_000))
        );
        assert_eq!(Amount::within(500, min, max).unwrap().get(), 500);
    }

    #[test]
    fn currencies_are_three_lowercase_letters() {
        assert!(Currency::parse("usd").is_ok());
        for bad in ["USD", "us", "usdd", "u$d", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_normalized() {
        assert_eq!(
            Email::parse("  Reader@Example.ORG ").unwrap().as_str(),
            "reader@example.org"
        );
        for bad in [
            "",
            "reader",
            "a@b",
            "a@@b.org",
            "@b.org",
            "a b@c.org",
            "a@b.org.",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert!(!format!("{:?}", Email::parse("x@y.org").unwrap()).contains("x@y"));
    }

    #[test]
    fn campaign_slugs_are_short_and_plain() {
        assert!(Campaign::parse("spring-2026_drive").is_ok());
        assert!(Campaign::parse(&"a".repeat(64)).is_ok());
        assert!(Campaign::parse(&"a".repeat(65)).is_err());
        assert!(Campaign::parse("Spring").is_err());
        assert!(Campaign::parse("").is_err());
    }

    #[test]
    fn covering_fees_nets_the_chosen_amount() {
        // $25 at 2.9% + 30c: (2500 + 30) / 0.971 = 2605.56 -> 2606, fee 106.
        assert_eq!(cover_fee(Amount::new(2500).unwrap(), 290, 30), 106);
        for amount in [500, 1000, 2500, 9999, 100_000, 2_500_000] {
            let fee = cover_fee(Amount::new(amount).unwrap(), 290, 30);
            let total = amount + fee;
            // What Stripe would keep, rounded as it rounds (half up).
            let stripe_fee = (total * 290 + 5_000) / 10_000 + 30;
            assert!(
                total - stripe_fee >= amount,
                "{amount}: net {}",
                total - stripe_fee
            );
            assert!(total - stripe_fee <= amount + 1, "{amount}: overshoot");
        }
    }

    #[test]
    fn frequencies_map_to_stripe_intervals() {
        assert_eq!(
            Frequency::parse("monthly").unwrap().interval(),
            Some("month")
        );
        assert_eq!(Frequency::parse("yearly").unwrap().interval(), Some("year"));
        assert_eq!(Frequency::parse("once").unwrap().interval(), None);
        assert!(Frequency::parse("weekly").is_none());
    }
}
