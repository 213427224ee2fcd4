//! Untrusted WHEP PATCH bodies (trickle-ice-sdpfrag): parsing never panics or over-collects.
#![no_main]

use camrtc_untrusted::trickle::{MAX_CANDIDATES, parse_sdpfrag};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fragment) = parse_sdpfrag(data) {
        assert!(fragment.candidates.len() <= MAX_CANDIDATES);
    }
});
