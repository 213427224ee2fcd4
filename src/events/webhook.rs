//! Webhooks: each event is POSTed as JSON to every configured URL, with a timeout per attempt
//! and retries with doubling backoff for failures a retry can fix (no answer, 5xx, 429).

pub use crate::config::Delivery;
use bytes::Bytes;
use std::time::Duration;

/// The longest wait between two attempts, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Why a webhook was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The receiver answered with a status that retrying will not change (4xx other than 429).
    #[error("refused with HTTP {0}")]
    Refused(u16),
    /// Every attempt failed; the last failure is given.
    #[error("gave up after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },
}

/// The client deliveries share (connection reuse); `None` if it cannot be built.
pub fn client(delivery: &Delivery) -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(delivery.timeout)
        .user_agent(concat!("camrtc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| tracing::error!(%error, "cannot build the webhook HTTP client"))
        .ok()
}

/// The wait before retry number `retry` (1-based).
pub fn backoff(delivery: &Delivery, retry: u32) -> Duration {
    delivery.backoff.saturating_mul(1 << retry.saturating_sub(1).min(16)).min(MAX_BACKOFF)
}

/// POSTs `body` to `url` until it is accepted (2xx/3xx); returns the number of attempts made.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
    delivery: Delivery,
) -> Result<u32, WebhookError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await;
        let failure = match sent {
            Ok(answer) if answer.status().is_success() || answer.status().is_redirection() => {
                tracing::debug!(url, attempt, "webhook delivered");
                return Ok(attempt);
            }
            Ok(answer) => {
                let status = answer.status();
                if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                    return Err(WebhookError::Refused(status.as_u16()));
                }
                format!("HTTP {status}")
            }
            Err(error) => error.to_string(),
        };
        if attempt > delivery.retries {
            return Err(WebhookError::GaveUp { attempts: attempt, last: failure });
        }
        let wait = backoff(&delivery, attempt);
        tracing::debug!(url, attempt, %failure, retry_in = ?wait, "webhook attempt failed");
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let delivery = Delivery { backoff: Duration::from_millis(500), ..Delivery::default() };
        let waits: Vec<u64> = (1..=4).map(|r| backoff(&delivery, r).as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 4000]);
        assert_eq!(backoff(&delivery, 40), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn an_unreachable_receiver_is_retried_then_given_up() {
        // A port that was free a moment ago: connections are refused at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let delivery = Delivery {
            timeout: Duration::from_secs(1),
            retries: 2,
            backoff: Duration::from_millis(10),
        };
        let client = client(&delivery).expect("client");
        let url = format!("http://127.0.0.1:{port}/hook");
        match deliver(&client, &url, Bytes::from_static(b"{}"), delivery).await {
            Err(WebhookError::GaveUp { attempts, .. }) => assert_eq!(attempts, 3),
            other => panic!("expected to give up, got {other:?}"),
        }
    }
}
