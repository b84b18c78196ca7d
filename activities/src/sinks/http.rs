//! The two HTTP sinks: the generic webhook (signed JSON with an
//! `Idempotency-Key`) and the Slack-compatible incoming webhook.

use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use sha2::Sha256;

use super::Outcome;

/// Longest part of a response body kept in the ledger.
const DETAIL_LIMIT: usize = 300;

/// An HTTP endpoint that receives JSON.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    url: reqwest::Url,
    secret: Option<String>,
}

/// Why an HTTP sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpSinkError {
    /// The URL does not parse or is not http(s).
    #[error("sink url {0:?} is not an http(s) URL")]
    Url(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client")]
    Client(#[source] reqwest::Error),
}

impl HttpSink {
    /// A sink posting to `url`, signing bodies with `secret` when given,
    /// giving up on a request after `timeout`.
    pub fn try_new(
        url: &str,
        secret: Option<String>,
        timeout: Duration,
    ) -> Result<Self, HttpSinkError> {
        let parsed = reqwest::Url::parse(url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| HttpSinkError::Url(url.to_owned()))?;
        super::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("handoff/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(HttpSinkError::Client)?;
        Ok(Self {
            client,
            url: parsed,
            secret,
        })
    }

    /// The URL without its path and query, for logs (Slack URLs carry a
    /// secret in the path).
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// Posts `body` with `key` as its `Idempotency-Key` and, when a secret is
    /// set, `X-Handoff-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    pub async fn post(&self, key: &str, body: &serde_json::Value) -> Outcome {
        let bytes = serde_json::to_vec(body).expect("a JSON value serialises");
        let mut request = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key);
        if let Some(secret) = &self.secret {
            request = request.header("X-Handoff-Signature", signature_of(secret, &bytes));
        }
        match request.body(bytes).send().await {
            Ok(response) => {
                let status = response.status();
                let retry_after = retry_after(response.headers());
                let text = response.text().await.unwrap_or_default();
                classify(status, retry_after, &text)
            }
            Err(error) => Outcome::Retry {
                detail: describe_error(&error),
                after: None,
            },
        }
    }
}

/// `sha256=<hex HMAC-SHA256 of body>` with `secret` as the key.
pub fn signature_of(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// SPEC §7: 2xx and 409 delivered; 408, 429 and 5xx retried; the rest final.
fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Outcome {
    let detail = || {
        let body = body.trim();
        let mut cut = body.len().min(DETAIL_LIMIT);
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        if body.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("HTTP {}: {}", status.as_u16(), &body[..cut])
        }
    };
    if status.is_success() || status == StatusCode::CONFLICT {
        return Outcome::Delivered;
    }
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        return Outcome::Retry {
            detail: detail(),
            after: retry_after,
        };
    }
    Outcome::Failed { detail: detail() }
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The error and its causes on one line, without the URL (which may carry a
/// secret, as Slack's do).
fn describe_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut detail = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_outcomes_of_the_contract() {
        let outcome = |code: u16| classify(StatusCode::from_u16(code).unwrap(), None, "why");
        assert_eq!(outcome(200), Outcome::Delivered);
        assert_eq!(outcome(204), Outcome::Delivered);
        assert_eq!(outcome(409), Outcome::Delivered);
        for retried in [408, 429, 500, 502, 503] {
            assert!(
                matches!(outcome(retried), Outcome::Retry { .. }),
                "{retried}"
            );
        }
        for failed in [400, 401, 403, 404, 410, 422] {
            assert_eq!(
                outcome(failed),
                Outcome::Failed {
                    detail: format!("HTTP {failed}: why")
                }
            );
        }
    }

    #[test]
    fn the_signature_is_the_hex_hmac_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature_of("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
    }
}
