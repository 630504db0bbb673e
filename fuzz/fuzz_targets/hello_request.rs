//! The first frame and every later one, decoded as the broker decodes them: a value that
//! decodes must encode and decode again to the same value.
#![no_main]

use keybridge_broker_proto::{Hello, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hello) = serde_json::from_slice::<Hello>(data) {
        let again: Hello = serde_json::from_slice(&serde_json::to_vec(&hello).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&hello).unwrap());
    }
    if let Ok(request) = serde_json::from_slice::<Request>(data) {
        let again: Request = serde_json::from_slice(&serde_json::to_vec(&request).unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&request).unwrap());
    }
});
