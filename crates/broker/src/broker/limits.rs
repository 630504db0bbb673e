//! A client's own limits, whatever its scopes allow: calls started in any minute, live
//! deployments sent in any day, calls at once. A limit that is hit refuses the call with an error
//! that names it and says how to change it; the refusal is in the call's audit record. Calls
//! at once are this broker's own; calls a minute and deployments a day are counted by the
//! [`RateCounter`] the host chose, for each caller of an identity provider apart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keybridge_broker_proto::{ClientLimits, ClientLimitsUpdate};

use crate::BrokerError;
use crate::clients::Client;
use crate::primitives::lock;
use crate::seams::RateCounter;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The most each limit may be set to: past these, a limit would no longer protect anything.
/// Automation (a benchmark, a batch job) may set them as high as these.
const MOST: ClientLimits =
    ClientLimits { calls_per_minute: 1_000_000, live_deployments_per_day: 1_000, calls_in_flight: 10_000 };

/// What each client did lately.
pub(crate) struct Meter {
    counts: Arc<dyn RateCounter>,
    in_flight: Arc<Mutex<HashMap<String, u32>>>,
}

/// A call's place among its client's calls at once, given back when the call ends.
#[derive(Debug)]
pub(crate) struct InFlight {
    counts: Arc<Mutex<HashMap<String, u32>>>,
    client: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(count) = counts.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.client);
            }
        }
    }
}

/// How to change a limit, for the error that names it.
fn remedy(client: &str, flag: &str) -> String {
    format!("wait, or raise it in Keybridge (Clients) or with `keybridge client update {client} {flag} N`")
}

/// Who a limit counts: the client, and within it the identity provider's caller, if any.
fn counted(client: &Client, caller: Option<&str>) -> (String, String) {
    match caller {
        Some(caller) => (format!("{}\u{1f}{caller}", client.id), format!("`{caller}` through client `{}`", client.id)),
        None => (client.id.clone(), format!("client `{}`", client.id)),
    }
}

fn uncounted(e: String) -> BrokerError {
    BrokerError::Invalid(format!("the call could not be counted against its limits ({e}); nothing was sent; try again"))
}

impl Meter {
    pub(crate) fn new(counts: Arc<dyn RateCounter>) -> Meter {
        Meter { counts, in_flight: Arc::default() }
    }

    /// Take a place for a new call of `client` (for `caller`, an identity provider's, if any):
    /// refused past its calls at once or its calls a minute.
    pub(crate) fn start_call(&self, client: &Client, caller: Option<&str>) -> Result<InFlight, BrokerError> {
        let limits = client.limits;
        {
            let mut counts = lock(&self.in_flight);
            let count = counts.entry(client.id.clone()).or_default();
            if *count >= limits.calls_in_flight {
                return Err(BrokerError::LimitReached(format!(
                    "client `{}` has {} calls under way, its limit of calls at once; {}",
                    client.id,
                    limits.calls_in_flight,
                    remedy(&client.id, "--calls-in-flight")
                )));
            }
            *count += 1;
        }
        let place = InFlight { counts: self.in_flight.clone(), client: client.id.clone() };
        let (key, who) = counted(client, caller);
        if !self.counts.admit(&format!("calls\u{1f}{key}"), MINUTE, limits.calls_per_minute).map_err(uncounted)? {
            return Err(BrokerError::LimitReached(format!(
                "{who} started {} calls in the last minute, its limit; {}",
                limits.calls_per_minute,
                remedy(&client.id, "--calls-per-minute")
            )));
        }
        Ok(place)
    }

    /// Count a live deployment about to be sent for `client` (for `caller`, if any): refused past
    /// its deployments a day.
    pub(crate) fn deploy(&self, client: &Client, caller: Option<&str>) -> Result<(), BrokerError> {
        let most = client.limits.live_deployments_per_day;
        let (key, who) = counted(client, caller);
        if self.counts.admit(&format!("deployments\u{1f}{key}"), DAY, most).map_err(uncounted)? {
            return Ok(());
        }
        Err(BrokerError::LimitReached(format!(
            "{who} sent {most} live deployments in the last 24 hours, its limit; {}",
            remedy(&client.id, "--live-deployments-per-day")
        )))
    }
}

/// `limits` with `update` applied, each value checked.
pub(crate) fn updated(limits: ClientLimits, update: &ClientLimitsUpdate) -> Result<ClientLimits, BrokerError> {
    let next = ClientLimits {
        calls_per_minute: update.calls_per_minute.unwrap_or(limits.calls_per_minute),
        live_deployments_per_day: update.live_deployments_per_day.unwrap_or(limits.live_deployments_per_day),
        calls_in_flight: update.calls_in_flight.unwrap_or(limits.calls_in_flight),
    };
    let check = |name: &str, value: u32, most: u32| {
        if (1..=most).contains(&value) {
            Ok(())
        } else {
            Err(BrokerError::Invalid(format!("{name} {value} is outside 1..={most}")))
        }
    };
    check("calls per minute", next.calls_per_minute, MOST.calls_per_minute)?;
    check("live deployments per day", next.live_deployments_per_day, MOST.live_deployments_per_day)?;
    check("calls in flight", next.calls_in_flight, MOST.calls_in_flight)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_change_one_at_a_time_and_are_checked() {
        let changed =
            updated(ClientLimits::default(), &ClientLimitsUpdate { calls_in_flight: Some(3), ..Default::default() });
        assert_eq!(changed.unwrap(), ClientLimits { calls_in_flight: 3, ..ClientLimits::default() });
        let zero =
            updated(ClientLimits::default(), &ClientLimitsUpdate { calls_per_minute: Some(0), ..Default::default() });
        assert_eq!(zero.unwrap_err().to_string(), "calls per minute 0 is outside 1..=1000000");
    }
}
