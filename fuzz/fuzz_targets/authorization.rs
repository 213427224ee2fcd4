//! Untrusted Authorization headers: checking never panics and only the real token passes.
#![no_main]

use camrtc::auth::Authenticator;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let auth = Authenticator::with_tokens(["fuzz-token-0123456789abcdef"]);
    if auth.check(Some(header)).is_ok() {
        let token = header.trim().split_once(' ').map(|(_, t)| t.trim());
        assert_eq!(token, Some("fuzz-token-0123456789abcdef"));
    }
});
