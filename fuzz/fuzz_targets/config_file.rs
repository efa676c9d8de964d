//! cargo +nightly fuzz run config_file
//! Any text as a config file: one error naming the file, line and key, or a config, never a
//! panic (the error's line and key are found by hand in the text: that is what is fuzzed).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = tickwire::config::parse(std::path::Path::new("fuzz.toml"), text) {
            let _ = e.to_string();
        }
    }
});
