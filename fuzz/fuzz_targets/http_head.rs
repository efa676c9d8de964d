//! cargo +nightly fuzz run http_head
//! Any bytes as the head of a request to the client port (a WebSocket upgrade, `/status`,
//! `/ticks/latest?symbols=…`): a head, "not complete yet" or an error, never a panic; and any
//! query string read for its parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::http::{parse_head, query_param};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, len))) = parse_head(data) {
        assert!(len <= data.len());
        let _ = head.header("x-api-key");
    }
    if let Ok(q) = std::str::from_utf8(data) {
        let _ = query_param(q, "symbols");
        let _ = query_param(q, "mode");
    }
});
