//! The simulator's QuantConnect signature check on any header values: only the account's own
//! signature, within the time window, is accepted.
#![no_main]

use keybridge_qc_sim::{SimAccount, check_signature};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000;

fuzz_target!(|data: &[u8]| {
    let account = SimAccount::demo();
    let (authorization, timestamp) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b""[..]),
    };
    if let Ok(user) = check_signature(Some(authorization), Some(timestamp), &[account.clone()], NOW, 7200) {
        assert_eq!(user, account.user_id);
    }
});
