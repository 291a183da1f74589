//! Stripe's webhook signature scheme, both ways: the stand-in signs with it and the webhook
//! endpoint verifies with it. `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, where each
//! `v1` is HMAC-SHA256 of `"{t}.{raw body}"` under one endpoint secret.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("no v1 signature in the header")]
    NoV1,
    #[error("timestamp outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

fn mac(secret: &str, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `Stripe-Signature` header value Stripe would send, one `v1` per secret.
pub fn sign(secrets: &[&str], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        let sig = hex::encode(mac(secret, timestamp, body).finalize().into_bytes());
        header.push_str(",v1=");
        header.push_str(&sig);
    }
    header
}

/// Checks `header` against `body` for any of `secrets`, with the timestamp within
/// `tolerance_secs` of `now` either way.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[SecretString],
    tolerance_secs: i64,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut candidates: Vec<[u8; 32]> = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(SignatureError::Malformed);
                }
                timestamp = Some(value.parse().map_err(|_| SignatureError::Malformed)?);
            }
            // A junk v1 beside a good one must not spoil the good one: skip what is not hex.
            "v1" => {
                let mut sig = [0u8; 32];
                if hex::decode_to_slice(value, &mut sig).is_ok() {
                    candidates.push(sig);
                }
            }
            // v0 and future schemes are ignored; they never pass on their own.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if candidates.is_empty() {
        return Err(SignatureError::NoV1);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    let mut matched = subtle::Choice::from(0);
    for secret in secrets {
        let expected = mac(secret.expose_secret(), timestamp, body)
            .finalize()
            .into_bytes();
        for candidate in &candidates {
            matched |= expected.as_slice().ct_eq(candidate);
        }
    }
    if bool::from(matched) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(s: &[&str]) -> Vec<SecretString> {
        s.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn a_signature_made_by_sign_verifies() {
        let h = sign(&["whsec_a"], NOW, b"{}");
        assert_eq!(
            verify(Some(&h), b"{}", &secrets(&["whsec_a"]), 300, NOW),
            Ok(())
        );
    }

    #[test]
    fn a_changed_byte_fails() {
        let h = sign(&["whsec_a"], NOW, b"{\"a\":1}");
        assert_eq!(
            verify(Some(&h), b"{\"a\":2}", &secrets(&["whsec_a"]), 300, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let s = secrets(&["whsec_a"]);
        let old = sign(&["whsec_a"], NOW - 301, b"x");
        let future = sign(&["whsec_a"], NOW + 301, b"x");
        assert_eq!(
            verify(Some(&old), b"x", &s, 300, NOW),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&future), b"x", &s, 300, NOW),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn v0_alone_never_passes() {
        let good = sign(&["whsec_a"], NOW, b"x");
        let v0 = good.replace("v1=", "v0=");
        assert_eq!(
            verify(Some(&v0), b"x", &secrets(&["whsec_a"]), 300, NOW),
            Err(SignatureError::NoV1)
        );
    }

    #[test]
    fn any_v1_may_match_any_secret() {
        let good = sign(&["whsec_b"], NOW, b"x");
        let sig = good.split_once(",v1=").unwrap().1;
        let before = format!("t={NOW},v1=deadbeef,v1={sig}");
        let after = format!("t={NOW},v1={sig},v1=zz");
        let s = secrets(&["whsec_a", "whsec_b"]);
        assert_eq!(verify(Some(&before), b"x", &s, 300, NOW), Ok(()));
        assert_eq!(verify(Some(&after), b"x", &s, 300, NOW), Ok(()));
    }

    #[test]
    fn malformed_headers_fail() {
        let s = secrets(&["whsec_a"]);
        for h in ["", "garbage", "t=abc,v1=00", "v1=00", "t=1,t=2,v1=00"] {
            assert!(verify(Some(h), b"x", &s, 300, NOW).is_err(), "{h}");
        }
        assert_eq!(
            verify(None, b"x", &s, 300, NOW),
            Err(SignatureError::Missing)
        );
    }
}
