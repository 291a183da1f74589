//! Our narrow client over async-stripe: requests are built by async-stripe's typed builders
//! (exactly the form encoding Stripe expects), then sent by this transport, which
//! - keeps one caller-chosen `Idempotency-Key` across every retry,
//! - retries network errors, timeouts, 409 (key in use), 429 and 5xx with backoff and jitter,
//! - honours `Stripe-Should-Retry` when Stripe sends it,
//! - points at any base URL: the real API, or the stand-in in tests and demos.
//!
//! Responses are read into the few fields we use, so an added field never breaks us.

use std::time::Duration;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use stripe_client_core::{RequestBuilder, StripeMethod};

/// What went wrong talking to Stripe.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered and refused (4xx other than 409/429): retrying will not help.
    #[error("stripe refused the request ({status}): {message}")]
    Refused {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Stripe could not be reached or kept failing after every attempt.
    #[error("stripe unavailable: {0}")]
    Unavailable(String),
    /// Stripe answered something we could not read.
    #[error("unexpected answer from stripe: {0}")]
    Decode(String),
}

impl StripeError {
    /// Stripe said this object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StripeError::Refused { status: 404, .. })
    }
}

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    secret: SecretString,
    max_attempts: u32,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(serde::Deserialize)]
struct ErrorInner {
    message: Option<String>,
    code: Option<String>,
}

impl StripeClient {
    /// `base` ends with `/`, as async-stripe expects (`{base}v1/...`).
    pub fn new(base: &str, secret: SecretString, timeout: Duration, max_attempts: u32) -> Self {
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("chipin/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a TLS backend is compiled in");
        Self {
            http,
            base,
            secret,
            max_attempts: max_attempts.max(1),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends one async-stripe request and reads the answer as `T`.
    pub async fn send<T: DeserializeOwned>(
        &self,
        req: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let bytes = self.send_raw(req, idempotency_key).await?;
        serde_json::from_slice(&bytes).map_err(|e| StripeError::Decode(e.to_string()))
    }

    /// `GET /v1{path}?{query}`; keys may use Stripe's brackets (`created[gte]`).
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, StripeError> {
        let mut req = RequestBuilder::new(StripeMethod::Get, path);
        if !query.is_empty() {
            req.query = Some(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        self.send(req, None).await
    }

    #[tracing::instrument(skip_all, fields(method = ?req.method, path = %req.path))]
    pub async fn send_raw(
        &self,
        req: RequestBuilder,
        idempotency_key: Option<&str>,
    ) -> Result<bytes::Bytes, StripeError> {
        let mut url = format!("{}v1{}", self.base, req.path);
        if let Some(q) = req.query.as_deref().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(q);
        }
        let method = match req.method {
            StripeMethod::Get => reqwest::Method::GET,
            StripeMethod::Post => reqwest::Method::POST,
            StripeMethod::Delete => reqwest::Method::DELETE,
        };
        let mut last_error = StripeError::Unavailable("no attempt made".into());
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(attempt)).await;
            }
            let mut builder = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.secret.expose_secret())
                .header("Stripe-Version", stripe_client_core::VERSION.as_str());
            if let Some(key) = idempotency_key {
                builder = builder.header("Idempotency-Key", key);
            }
            if let Some(body) = &req.body {
                builder = builder
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            let response = match builder.send().await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(attempt, error = %without_url(&e), "stripe request failed");
                    last_error = StripeError::Unavailable(without_url(&e));
                    continue;
                }
            };
            let status = response.status().as_u16();
            let should_retry = response
                .headers()
                .get("Stripe-Should-Retry")
                .and_then(|v| v.to_str().ok())
                .map(|v| v == "true");
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    last_error = StripeError::Unavailable(without_url(&e));
                    continue;
                }
            };
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&body) {
                Ok(b) => (b.error.code, b.error.message.unwrap_or_default()),
                Err(_) => (None, format!("HTTP {status}")),
            };
            let transient = matches!(status, 409 | 429 | 500..=599);
            tracing::warn!(attempt, status, transient, "stripe answered with an error");
            match should_retry.unwrap_or(transient) {
                true => last_error = StripeError::Unavailable(format!("HTTP {status}: {message}")),
                false if transient => {
                    return Err(StripeError::Unavailable(format!(
                        "HTTP {status}: {message}"
                    )));
                }
                false => {
                    return Err(StripeError::Refused {
                        status,
                        code,
                        message,
                    });
                }
            }
        }
        Err(last_error)
    }
}

/// Exponential backoff with full jitter: up to 100 ms, 200 ms, 400 ms ... capped at 2 s.
fn backoff(attempt: u32) -> Duration {
    let cap = 100u64.saturating_mul(1 << attempt.min(5)).min(2_000);
    Duration::from_millis(rand::thread_rng().gen_range(cap / 2..=cap))
}

// reqwest's errors print the URL, which may carry ids; keep logs to the kind of failure.
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        e.without_url_ref()
    }
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        let mut s = self.to_string();
        if let Some(url) = self.url() {
            s = s.replace(url.as_str(), "<url>");
        }
        s
    }
}
