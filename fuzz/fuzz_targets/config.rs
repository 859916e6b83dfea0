//! Any text as the daemon's config file: parsed and checked, or refused with problems —
//! never a panic, whatever the nesting, types or sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = orchestrator::config::Config::from_toml_str(text, "fuzz.toml") {
        assert!(!e.to_string().is_empty(), "a refusal says why");
    }
});
