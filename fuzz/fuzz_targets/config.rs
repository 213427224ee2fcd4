//! Config files: any text either loads as a valid config or gives an error, never a panic.
#![no_main]

use camrtc_untrusted::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = Config::from_toml_str(text) {
        config.validate().expect("a loaded config is valid");
    }
});
