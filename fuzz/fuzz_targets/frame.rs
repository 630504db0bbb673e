//! The frame reader on any bytes a peer could send: an error or a frame, never a panic, and never
//! more memory than what arrived.
#![no_main]

use keybridge_broker_proto::{Request, read_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let mut reader = data;
        // Read frames until the bytes run out or one is refused.
        while read_frame::<Request, _>(&mut reader).await.is_ok() {}
    });
});
