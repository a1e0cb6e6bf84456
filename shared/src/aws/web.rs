//! The one HTTPS client for the calls that are not an AWS SDK's: Slack's webhooks, the Slack
//! webhook's secret, SNS's signing certificate. Shared, and built on first use: building a
//! client reads and parses every root certificate on the machine, and each of the two users
//! building its own at start-up was two of a cold start's three passes over the system's
//! certificate store (the SDK's own is the third), for calls most invocations never make.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// No single call to Slack, Secrets Manager or SNS's certificate host waits longer.
const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub struct WebClient(Arc<OnceLock<reqwest::Client>>);

impl WebClient {
    /// The client, built by the first caller. A failure to build it (no usable root
    /// certificates) is the caller's error to report, and the next call tries again.
    pub fn get(&self) -> Result<&reqwest::Client, String> {
        if let Some(client) = self.0.get() {
            return Ok(client);
        }
        let built = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("no HTTPS client: {e}"))?;
        Ok(self.0.get_or_init(|| built))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_client_built_by_the_first_use() {
        let web = WebClient::default();
        let copy = web.clone();
        assert!(copy.0.get().is_none(), "nothing is built before it is used");
        let first: *const reqwest::Client = web.get().expect("builds");
        let second: *const reqwest::Client = copy.get().expect("built");
        assert_eq!(first, second);
    }
}
