//! Who may watch: bearer tokens checked in constant time against stored SHA-256 digests, or
//! user names with passwords checked against Argon2 hashes (HTTP Basic).
//!
//! Only digests and hashes are kept in memory and in the config, so neither a config leak nor a
//! memory dump hands out a working credential. The generated token file is the one place a token
//! is stored whole: the owner needs it to open the viewer URL.

use crate::config::{AuthConfig, AuthMode, BasicUser};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2};
use ring::digest::{SHA256, digest};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// 32 random bytes, hex: far beyond guessing, short enough to paste.
const TOKEN_BYTES: usize = 32;
/// A browser sends Basic credentials with every request; re-running Argon2 (tens of
/// milliseconds and ~19 MiB on a Pi) for each trickle PATCH would be wasteful, so a successful
/// check is remembered this long.
const VERIFIED_TTL: Duration = Duration::from_secs(300);
/// Remembered successful checks; beyond this the oldest are forgotten.
const VERIFIED_CAPACITY: usize = 64;

/// Which `WWW-Authenticate` challenge a refusal carries, so clients know what to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge {
    Bearer,
    Basic,
}

impl Challenge {
    pub fn header_value(self) -> &'static str {
        match self {
            Challenge::Bearer => "Bearer realm=\"camrtc\"",
            Challenge::Basic => "Basic realm=\"camrtc\", charset=\"UTF-8\"",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Challenge::Bearer => "Bearer <token>",
            Challenge::Basic => "Basic <base64 of name:password>",
        }
    }
}

/// Why a request is not allowed, or why the token store is unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request carries no `Authorization` header.
    #[error("authorization required: send Authorization: {}", .0.expected())]
    Missing(Challenge),
    /// The header does not use the configured scheme, or is not well formed.
    #[error("the Authorization header must be: {}", .0.expected())]
    Malformed(Challenge),
    /// The token, or the user name and password, are not accepted.
    #[error("{}", match .0 { Challenge::Bearer => "the token is not valid", Challenge::Basic => "wrong user name or password" })]
    Rejected(Challenge),
    /// The token file cannot be read or written.
    #[error("auth.token_file {path}: {error}")]
    TokenFile { path: PathBuf, error: std::io::Error },
}

impl AuthError {
    /// The challenge to send with a 401, if this is a refusal.
    pub fn challenge(&self) -> Option<Challenge> {
        match self {
            AuthError::Missing(c) | AuthError::Malformed(c) | AuthError::Rejected(c) => Some(*c),
            AuthError::TokenFile { .. } => None,
        }
    }
}

/// Who made a request: a digest of the token or user name used, or nobody in particular without
/// auth. Sessions remember it so only their creator can change or end them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Principal([u8; 32]);

impl Principal {
    /// Every request when authentication is off.
    pub const ANONYMOUS: Principal = Principal([0; 32]);
}

/// The accepted credentials.
#[derive(Debug, Clone)]
pub struct Authenticator {
    scheme: Scheme,
}

#[derive(Debug, Clone)]
enum Scheme {
    Open,
    Bearer(Vec<[u8; 32]>),
    Basic(Arc<BasicAccounts>),
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` for a token, as the config stores it.
pub fn token_digest_string(token: &str) -> String {
    format!("sha256:{}", hex(&sha256(token.as_bytes())))
}

/// An Argon2id PHC string for `password` with a fresh random salt and the crate's defaults
/// (the OWASP-recommended m=19 MiB, t=2, p=1), as `auth.users[].password_hash` stores it.
pub fn hash_password(password: &str) -> String {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("the default Argon2 parameters accept any password length we can hold in memory")
        .to_string()
}

/// Whether `text` is a PHC string for one of the Argon2 variants.
pub fn is_argon2_hash(text: &str) -> bool {
    PasswordHash::new(text).is_ok_and(|hash| Algorithm::try_from(hash.algorithm).is_ok())
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

/// Splits `Scheme credentials`, accepting the scheme in any case.
fn credentials(header: Option<&str>, challenge: Challenge) -> Result<&str, AuthError> {
    let value = header.ok_or(AuthError::Missing(challenge))?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or(AuthError::Malformed(challenge))?;
    let wanted = match challenge {
        Challenge::Bearer => "bearer",
        Challenge::Basic => "basic",
    };
    let rest = rest.trim();
    if !scheme.eq_ignore_ascii_case(wanted) || rest.is_empty() {
        return Err(AuthError::Malformed(challenge));
    }
    Ok(rest)
}

impl Authenticator {
    pub fn disabled() -> Self {
        Self { scheme: Scheme::Open }
    }

    pub fn with_tokens<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self { scheme: Scheme::Bearer(tokens.into_iter().map(|t| sha256(t.as_bytes())).collect()) }
    }

    pub fn with_users(users: &[BasicUser]) -> Self {
        Self { scheme: Scheme::Basic(Arc::new(BasicAccounts::new(users))) }
    }

    pub fn is_enabled(&self) -> bool {
        !matches!(self.scheme, Scheme::Open)
    }

    /// Basic credentials are checked with Argon2, which takes real CPU time: callers on an async
    /// runtime should run [`Authenticator::check`] on a blocking thread when this is true.
    pub fn is_expensive(&self) -> bool {
        matches!(self.scheme, Scheme::Basic(_))
    }

    /// Whether the viewer page itself needs credentials. With Basic auth it does, so the browser
    /// asks for them once and then sends them with every API call; a bearer token travels in
    /// the URL fragment instead, which the page reads.
    pub fn protects_page(&self) -> bool {
        matches!(self.scheme, Scheme::Basic(_))
    }

    /// Builds the authenticator from `[auth]`, generating and storing a token on first start
    /// when token mode has none configured.
    pub fn load(config: &AuthConfig) -> Result<Loaded, AuthError> {
        let authenticator = match config.mode {
            AuthMode::None => Self::disabled(),
            AuthMode::Basic => Self::with_users(&config.users),
            // Validation already proved every entry parses.
            AuthMode::Token if !config.tokens.is_empty() => Self {
                scheme: Scheme::Bearer(
                    config.tokens.iter().filter_map(|t| parse_digest(t)).collect(),
                ),
            },
            AuthMode::Token => {
                let (token, new) = load_or_create_token(Path::new(&config.token_file))?;
                return Ok(Loaded {
                    authenticator: Self::with_tokens([token.as_str()]),
                    new_token: new.then_some(token),
                });
            }
        };
        Ok(Loaded { authenticator, new_token: None })
    }

    /// Checks an `Authorization` header value.
    pub fn check(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        match &self.scheme {
            Scheme::Open => Ok(Principal::ANONYMOUS),
            Scheme::Bearer(digests) => {
                let token = credentials(authorization, Challenge::Bearer)?;
                let presented = sha256(token.as_bytes());
                // Compare against every digest so the time taken says nothing about which one
                // matched.
                let mut matched = subtle::Choice::from(0);
                for digest in digests {
                    matched |= digest.ct_eq(&presented);
                }
                if bool::from(matched) {
                    Ok(Principal(presented))
                } else {
                    Err(AuthError::Rejected(Challenge::Bearer))
                }
            }
            Scheme::Basic(accounts) => {
                accounts.check(credentials(authorization, Challenge::Basic)?, Instant::now())
            }
        }
    }
}

/// Basic-auth accounts and the checks that recently succeeded.
#[derive(Debug)]
struct BasicAccounts {
    /// Name and PHC hash text (parsed at each check; validation proved it parses).
    users: Vec<(String, String)>,
    /// Checked against when the name is unknown, with the same Argon2 cost as a real account,
    /// so an unknown name takes as long as a wrong password and response times do not reveal
    /// which names exist.
    decoy: String,
    /// Digest of the header's credentials → who they belong to, and until when that is trusted.
    /// Only this cache is shared between requests; it is never held across a hash computation.
    verified: Mutex<HashMap<[u8; 32], (Principal, Instant)>>,
}

impl BasicAccounts {
    fn new(users: &[BasicUser]) -> Self {
        Self {
            users: users.iter().map(|u| (u.name.clone(), u.password_hash.clone())).collect(),
            decoy: decoy_hash(users.first().map(|u| u.password_hash.as_str())),
            verified: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, encoded: &str, now: Instant) -> Result<Principal, AuthError> {
        let rejected = AuthError::Rejected(Challenge::Basic);
        let key = sha256(encoded.as_bytes());
        if let Some(principal) = self.remembered(&key, now) {
            return Ok(principal);
        }
        let (name, password) =
            decode_basic(encoded).ok_or(AuthError::Malformed(Challenge::Basic))?;
        let account =
            self.users.iter().find(|(user, _)| user.as_bytes().ct_eq(name.as_bytes()).into());
        let hash_text = account.map_or(self.decoy.as_str(), |(_, hash)| hash.as_str());
        let hash =
            PasswordHash::new(hash_text).map_err(|_| AuthError::Rejected(Challenge::Basic))?;
        let password_ok = Argon2::default().verify_password(password.as_bytes(), &hash).is_ok();
        if !(password_ok && account.is_some()) {
            return Err(rejected);
        }
        let principal = Principal(sha256(format!("basic\0{name}").as_bytes()));
        self.remember(key, principal, now);
        Ok(principal)
    }

    fn remembered(&self, key: &[u8; 32], now: Instant) -> Option<Principal> {
        let verified =
            self.verified.lock().expect("the cache holder never panics while holding it");
        verified.get(key).filter(|(_, until)| *until > now).map(|(principal, _)| *principal)
    }

    fn remember(&self, key: [u8; 32], principal: Principal, now: Instant) {
        let mut verified =
            self.verified.lock().expect("the cache holder never panics while holding it");
        verified.retain(|_, (_, until)| *until > now);
        if verified.len() >= VERIFIED_CAPACITY
            && let Some(oldest) =
                verified.iter().min_by_key(|(_, (_, until))| *until).map(|(k, _)| *k)
        {
            verified.remove(&oldest);
        }
        verified.insert(key, (principal, now + VERIFIED_TTL));
    }
}

/// A hash of a password nobody knows, made with the same algorithm and cost as `like`.
fn decoy_hash(like: Option<&str>) -> String {
    let salt =
        SaltString::encode_b64(b"camrtc-decoy-salt").expect("17 bytes is a valid salt length");
    let hasher = like
        .and_then(|text| PasswordHash::new(text).ok())
        .and_then(|hash| {
            let algorithm = Algorithm::try_from(hash.algorithm).ok()?;
            let version = hash.version.and_then(|v| argon2::Version::try_from(v).ok());
            let params = argon2::Params::try_from(&hash).ok()?;
            Some(Argon2::new(algorithm, version.unwrap_or_default(), params))
        })
        .unwrap_or_default();
    let decoy: [u8; 16] = rand::random();
    hasher
        .hash_password(&decoy, &salt)
        .expect("parameters that hashed an account's password hash this one too")
        .to_string()
}

/// `base64(name:password)` → name and password, as RFC 7617 defines (UTF-8).
fn decode_basic(encoded: &str) -> Option<(String, String)> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), password.to_owned()))
}

/// Reads the stored token, or creates one (0600, written atomically, so a crash never leaves a
/// half-written token). Returns the token and whether it is new.
fn load_or_create_token(path: &Path) -> Result<(String, bool), AuthError> {
    let fail = |error| AuthError::TokenFile { path: path.to_owned(), error };
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_owned(), false)),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(fail(error)),
    }
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    let token = hex(&bytes);
    crate::state_file::write_atomically(path, format!("{token}\n").as_bytes(), 0o600)
        .map_err(fail)?;
    Ok((token, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
        let config = AuthConfig {
            mode: AuthMode::Token,
            tokens: vec![digest],
            token_file: String::new(),
            users: vec![],
        };
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
            users: vec![],
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
            users: vec![],
        };
        let error = Authenticator::load(&config).err().expect("cannot create");
        assert!(error.to_string().starts_with("auth.token_file /proc/"), "{error}");
    }

    fn basic(name: &str, password: &str) -> String {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        format!("Basic {encoded}")
    }

    #[test]
    fn basic_credentials_are_checked_against_argon2_hashes() {
        let users = [
            BasicUser { name: "grandma".into(), password_hash: hash_password("knit-2-purl-2") },
            BasicUser { name: "dad".into(), password_hash: hash_password("p\u{e4}ssw\u{f6}rd:x") },
        ];
        assert!(users.iter().all(|u| is_argon2_hash(&u.password_hash)));
        let auth = Authenticator::with_users(&users);
        assert!(auth.is_expensive() && auth.protects_page());
        let grandma = auth.check(Some(&basic("grandma", "knit-2-purl-2"))).expect("valid");
        let dad =
            auth.check(Some(&basic("dad", "p\u{e4}ssw\u{f6}rd:x"))).expect("colon in password");
        assert_ne!(grandma, dad, "each user is their own principal");
        assert_eq!(
            auth.check(Some(&basic("grandma", "knit-2-purl-2"))).expect("cached"),
            grandma,
            "a remembered check yields the same principal"
        );
        let cases: &[(Option<String>, &str)] = &[
            (None, "authorization required: send Authorization: Basic"),
            (Some("Bearer abc".into()), "must be: Basic"),
            (Some("Basic !!!not-base64".into()), "must be: Basic"),
            (Some("Basic bm9jb2xvbg==".into()), "must be: Basic"),
            (Some(basic("grandma", "wrong")), "wrong user name or password"),
            (Some(basic("stranger", "knit-2-purl-2")), "wrong user name or password"),
            (Some(basic("Grandma", "knit-2-purl-2")), "wrong user name or password"),
        ];
        for (header, reason) in cases {
            let error = auth.check(header.as_deref()).expect_err("refused");
            assert!(error.to_string().contains(reason), "{header:?}: {error}");
            assert_eq!(error.challenge(), Some(Challenge::Basic));
        }
    }

    #[test]
    fn remembered_checks_expire_and_stay_bounded() {
        let accounts = BasicAccounts::new(&[BasicUser {
            name: "a".into(),
            password_hash: hash_password("secret"),
        }]);
        let start = Instant::now();
        let key = sha256(b"k");
        accounts.remember(key, Principal::ANONYMOUS, start);
        assert!(accounts.remembered(&key, start + VERIFIED_TTL / 2).is_some());
        assert!(accounts.remembered(&key, start + VERIFIED_TTL).is_none(), "expired");
        for i in 0..VERIFIED_CAPACITY * 2 {
            let at = start + Duration::from_millis(i as u64);
            accounts.remember(sha256(&i.to_le_bytes()), Principal::ANONYMOUS, at);
        }
        let held = accounts.verified.lock().expect("not poisoned").len();
        assert_eq!(held, VERIFIED_CAPACITY);
    }

    #[test]
    fn only_argon2_phc_strings_count_as_password_hashes() {
        assert!(is_argon2_hash(&hash_password("x")));
        assert!(!is_argon2_hash("secret"));
        assert!(!is_argon2_hash(&token_digest_string("secret")));
        assert!(!is_argon2_hash("$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA"));
    }
}
