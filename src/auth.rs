//! Who may watch: bearer tokens, checked in constant time against stored SHA-256 digests.
//!
//! Only digests are kept in memory and in the config, so neither a config leak nor a memory dump
//! hands out a working token. The generated token file is the one place a token is stored whole:
//! the owner needs it to open the viewer URL.

use crate::config::{AuthConfig, AuthMode};
use ring::digest::{SHA256, digest};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// 32 random bytes, hex: far beyond guessing, short enough to paste.
const TOKEN_BYTES: usize = 32;

/// Why a request is not allowed, or why the token store is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request carries no `Authorization` header.
    #[error("authorization required: send Authorization: Bearer <token>")]
    Missing,
    /// The header is not a bearer token.
    #[error("the Authorization header must be: Bearer <token>")]
    Malformed,
    /// The token is not one of the accepted ones.
    #[error("the token is not valid")]
    Rejected,
    /// The token file cannot be read or written.
    #[error("auth.token_file {path}: {error}")]
    TokenFile { path: PathBuf, error: std::io::Error },
}

/// Who made a request: the digest of the token used, or nobody in particular without auth.
/// Sessions remember it so only their creator can change or end them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal([u8; 32]);

impl Principal {
    /// Every request when authentication is off.
    pub const ANONYMOUS: Principal = Principal([0; 32]);
}

/// The accepted tokens, as digests.
#[derive(Debug, Clone)]
pub struct Authenticator {
    /// None: authentication is off.
    digests: Option<Vec<[u8; 32]>>,
}

/// What starting up with token auth produced: the authenticator and, when a token was just
/// generated, that token (to be shown once).
pub struct Loaded {
    pub authenticator: Authenticator,
    pub new_token: Option<String>,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// `sha256:<hex>` for a token, as the config stores it.
pub fn token_digest_string(token: &str) -> String {
    let hex: String = sha256(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn parse_digest(text: &str) -> Option<[u8; 32]> {
    let hex = text.strip_prefix("sha256:")?;
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Authenticator {
    pub fn disabled() -> Self {
        Self { digests: None }
    }

    pub fn with_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self { digests: Some(tokens.into_iter().map(|t| sha256(t.as_bytes())).collect()) }
    }

    pub fn is_enabled(&self) -> bool {
        self.digests.is_some()
    }

    /// Builds the authenticator from `[auth]`, generating and storing a token on first start
    /// when none are configured.
    pub fn load(config: &AuthConfig) -> Result<Loaded, AuthError> {
        if config.mode == AuthMode::None {
            return Ok(Loaded { authenticator: Self::disabled(), new_token: None });
        }
        if !config.tokens.is_empty() {
            // Validation already proved every entry parses.
            let digests = config.tokens.iter().filter_map(|t| parse_digest(t)).collect();
            return Ok(Loaded { authenticator: Self { digests: Some(digests) }, new_token: None });
        }
        let (token, new) = load_or_create_token(Path::new(&config.token_file))?;
        Ok(Loaded {
            authenticator: Self::with_tokens([token.as_str()]),
            new_token: new.then_some(token),
        })
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let Some(digests) = &self.digests else { return Ok(Principal::ANONYMOUS) };
        let value = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(AuthError::Malformed);
        }
        let presented = sha256(token.trim().as_bytes());
        // Compare against every digest so the time taken says nothing about which one matched.
        let mut matched = subtle::Choice::from(0);
        for digest in digests {
            matched |= digest.ct_eq(&presented);
        }
        if bool::from(matched) { Ok(Principal(presented)) } else { Err(AuthError::Rejected) }
    }
}

/// Reads the stored token, or creates one (0600, written to a temporary file and renamed, so a
/// crash never leaves a half-written token). Returns the token and whether it is new.
fn load_or_create_token(path: &Path) -> Result<(String, bool), AuthError> {
    let fail = |error| AuthError::TokenFile { path: path.to_owned(), error };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_owned(), false)),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(fail(error)),
    }
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let temporary = path.with_extension("new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(fail)?;
    // The mode above only applies to new files; a leftover temporary keeps its old mode.
    file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    writeln!(file, "{token}").and_then(|()| file.sync_all()).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)?;
    Ok((token, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_checked_against_digests() {
        let auth = Authenticator::with_tokens(["alpha", "beta"]);
        assert!(auth.check(Some("Bearer alpha")).is_ok());
        assert!(auth.check(Some("bearer beta")).is_ok());
        assert_ne!(
            auth.check(Some("Bearer alpha")).expect("valid"),
            auth.check(Some("Bearer beta")).expect("valid"),
            "each token is its own principal"
        );
        let cases: &[(Option<&str>, &str)] = &[
            (None, "authorization required"),
            (Some("alpha"), "must be: Bearer"),
            (Some("Basic YWxwaGE6"), "must be: Bearer"),
            (Some("Bearer "), "must be: Bearer"),
            (Some("Bearer gamma"), "not valid"),
            (Some("Bearer alph"), "not valid"),
        ];
        for (header, reason) in cases {
            let error = auth.check(*header).expect_err("refused");
            assert!(error.to_string().contains(reason), "{header:?}: {error}");
        }
        assert_eq!(Authenticator::disabled().check(None).expect("open"), Principal::ANONYMOUS);
    }

    #[test]
    fn configured_digests_accept_their_tokens() {
        let digest = token_digest_string("front-door");
        assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64);
        let config =
            AuthConfig { mode: AuthMode::Token, tokens: vec![digest], token_file: String::new() };
        let loaded = Authenticator::load(&config).expect("loads");
        assert!(loaded.new_token.is_none());
        assert!(loaded.authenticator.check(Some("Bearer front-door")).is_ok());
        assert!(loaded.authenticator.check(Some("Bearer back-door")).is_err());
    }

    #[test]
    fn first_start_generates_a_private_token_and_later_starts_reuse_it() {
        let dir = std::env::temp_dir().join(format!("camrtc-auth-{}", std::process::id()));
        let path = dir.join("state").join("token");
        let config = AuthConfig {
            mode: AuthMode::Token,
            tokens: vec![],
            token_file: path.to_string_lossy().into_owned(),
        };
        let first = Authenticator::load(&config).expect("creates");
        let token = first.new_token.expect("a new token on first start");
        assert_eq!(token.len(), 2 * TOKEN_BYTES);
        let mode = std::fs::metadata(&path).expect("stored").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the service user may read the token");
        assert!(!path.with_extension("new").exists(), "no temporary left behind");

        let second = Authenticator::load(&config).expect("reads");
        assert!(second.new_token.is_none(), "the token is shown only once");
        assert!(second.authenticator.check(Some(&format!("Bearer {token}"))).is_ok());
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn an_unwritable_token_file_names_the_key() {
        let config = AuthConfig {
            mode: AuthMode::Token,
            tokens: vec![],
            token_file: "/proc/camrtc-cannot-exist/token".to_owned(),
        };
        let error = Authenticator::load(&config).err().expect("cannot create");
        assert!(error.to_string().starts_with("auth.token_file /proc/"), "{error}");
    }
}
