//! cargo +nightly fuzz run keys_file
//! Any text as an API keys file: a clear error or a checked file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwire_io::gateway::keys::KeysFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = KeysFile::parse(text);
    }
});
