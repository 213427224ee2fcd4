//! Untrusted Authorization headers: checking never panics and only the real credentials pass,
//! for bearer tokens and for Basic user names and passwords.
#![no_main]

use camrtc_untrusted::auth::Authenticator;
use camrtc_untrusted::config::BasicUser;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

const TOKEN: &str = "fuzz-token-0123456789abcdef";
/// "fuzz-password" hashed with the cheapest Argon2 parameters, so the fuzzer runs fast; the
/// parsing and checking paths are the same as with real costs.
const CHEAP_HASH: &str =
    "$argon2id$v=19$m=8,t=1,p=1$ZnV6ei1zYWx0LTE2Ynl0ZQ$WRiAi0YTAFtU3mMfstAXhM/6ZUEfSPaDg2GFTZw5Zio";

static BEARER: LazyLock<Authenticator> = LazyLock::new(|| Authenticator::with_tokens([TOKEN]));
static BASIC: LazyLock<Authenticator> = LazyLock::new(|| {
    Authenticator::with_users(&[BasicUser { name: "fuzz".into(), password_hash: CHEAP_HASH.into() }])
});

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if BEARER.check(Some(header)).is_ok() {
        let token = header.trim().split_once(' ').map(|(_, t)| t.trim());
        assert_eq!(token, Some(TOKEN));
    }
    if BASIC.check(Some(header)).is_ok() {
        // "fuzz:fuzz-password" in base64.
        let credentials = header.trim().split_once(' ').map(|(_, c)| c.trim());
        assert_eq!(credentials, Some("ZnV6ejpmdXp6LXBhc3N3b3Jk"));
    }
});
