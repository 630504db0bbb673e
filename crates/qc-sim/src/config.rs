use crate::fault::FaultRule;

/// One QuantConnect account the simulator accepts.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct SimAccount {
    pub user_id: String,
    pub api_token: String,
    pub organization_id: String,
}

impl SimAccount {
    /// The documented demo account, used by the app's demo mode and by tests:
    ///
    /// * user id `1000001`
    /// * API token `keybridge-demo-token-0000000000000000000000000000000000000000000000`
    /// * organization id `demo-org-0001`
    ///
    /// It is public on purpose: it only ever opens this simulator, never QuantConnect.
    pub fn demo() -> SimAccount {
        SimAccount {
            user_id: "1000001".to_owned(),
            api_token: "keybridge-demo-token-0000000000000000000000000000000000000000000000".to_owned(),
            organization_id: "demo-org-0001".to_owned(),
        }
    }
}

/// How a simulator instance behaves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Accounts whose signatures are accepted; each has its own state.
    pub accounts: Vec<SimAccount>,
    /// A request is refused when `|sim_now - Timestamp| > timestamp_window_secs`.
    pub timestamp_window_secs: u64,
    /// The simulator's clock is the real clock plus this offset, to test clock skew.
    pub clock_offset_secs: i64,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// How many reads of a backtest, optimization or compile job answer "still running"
    /// before they answer "done". With the default of 1 the first read after create is in
    /// progress and the later ones are complete; 0 makes jobs complete at once.
    pub backtest_reads_until_complete: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            accounts: vec![SimAccount::demo()],
            timestamp_window_secs: 7200,
            clock_offset_secs: 0,
            faults: Vec::new(),
            backtest_reads_until_complete: 1,
        }
    }
}
