//! The ICE servers each session uses: the configured ones, with TURN REST credentials (coturn's
//! `use-auth-secret` scheme) minted per session for `turn:` entries that have none of their own.
//!
//! The same list goes to the daemon's ICE agent and, in WHEP `Link` headers, to the browser, so
//! both ends can allocate relays on the same server.

use crate::config::{IceServer, WebRtcConfig};
use base64::Engine as _;
use ring::hmac;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use webrtc::peer_connection::RTCIceServer;

/// The user part of TURN REST usernames. coturn checks only the timestamp; the name shows up in
/// its logs, which is where someone would look for who allocated a relay.
pub const TURN_REST_USER: &str = "camrtc";

/// One set of TURN REST credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnCredentials {
    /// `<expiry unix seconds>:camrtc`.
    pub username: String,
    /// base64(HMAC-SHA1(secret, username)).
    pub credential: String,
}

impl std::fmt::Debug for TurnCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnCredentials")
            .field("username", &self.username)
            .field("credential", &format_args!("<redacted>"))
            .finish()
    }
}

/// Credentials valid from `now` for `ttl`, as coturn's `use-auth-secret` expects them
/// (draft-uberti-behave-turn-rest): the username carries the expiry, the credential is the
/// HMAC-SHA1 of the username keyed with the shared secret.
pub fn turn_rest_credentials(secret: &[u8], ttl: Duration, now: SystemTime) -> TurnCredentials {
    // A clock before 1970 yields already-expired credentials, which coturn refuses visibly.
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let expiry = now.as_secs().saturating_add(ttl.as_secs());
    let username = format!("{expiry}:{TURN_REST_USER}");
    // SHA-1 is what the scheme (and every TURN server implementing it) specifies.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    TurnCredentials { username, credential }
}

/// The configured ICE servers and, when `webrtc.turn_secret` is set, what is needed to mint
/// TURN REST credentials. Immutable; shared by every session.
pub struct IceServers {
    configured: Vec<IceServer>,
    /// Kept as bytes, not in a config type, so nothing prints it by accident.
    turn_rest: Option<(Vec<u8>, Duration)>,
}

impl std::fmt::Debug for IceServers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IceServers")
            .field("configured", &self.configured.len())
            .field("turn_rest", &self.turn_rest.is_some())
            .finish()
    }
}

impl IceServers {
    pub fn from_config(config: &WebRtcConfig) -> Self {
        let turn_rest = config.turn_secret.is_set().then(|| {
            (
                config.turn_secret.0.as_bytes().to_vec(),
                Duration::from_secs(config.turn_ttl_s.into()),
            )
        });
        Self { configured: config.ice_servers.clone(), turn_rest }
    }

    /// The servers one session uses, with fresh TURN REST credentials where they apply.
    pub fn for_session(&self, now: SystemTime) -> Vec<IceServer> {
        let Some((secret, ttl)) = &self.turn_rest else { return self.configured.clone() };
        // One set per session: every entry that needs them gets the same, as a browser would.
        let fresh = turn_rest_credentials(secret, *ttl, now);
        self.configured
            .iter()
            .map(|server| {
                let mut server = server.clone();
                if server.uses_turn_rest() {
                    server.username = Some(fresh.username.clone());
                    server.credential = Some(fresh.credential.clone());
                }
                server
            })
            .collect()
    }
}

/// The webrtc crate's form of a session's servers, for the daemon's own ICE agent.
pub fn to_rtc(servers: &[IceServer]) -> Vec<RTCIceServer> {
    servers
        .iter()
        .map(|server| RTCIceServer {
            urls: server.urls.clone(),
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, TurnSecret};

    fn at(unix_seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix_seconds)
    }

    #[test]
    fn credentials_follow_the_turn_rest_scheme() {
        let fresh = turn_rest_credentials(b"north", Duration::from_secs(86_400), at(1_700_000_000));
        assert_eq!(fresh.username, "1700086400:camrtc");
        // Computed independently: python3 -c "import hmac,hashlib,base64;
        // print(base64.b64encode(hmac.new(b'north',b'1700086400:camrtc',hashlib.sha1).digest()))"
        assert_eq!(fresh.credential, "GqY0fA4tYo1tignjnuy9U507Vvc=");
    }

    #[test]
    fn credentials_change_with_time_and_secret() {
        let ttl = Duration::from_secs(60);
        let first = turn_rest_credentials(b"north", ttl, at(1_700_000_000));
        let later = turn_rest_credentials(b"north", ttl, at(1_700_000_001));
        let other_secret = turn_rest_credentials(b"south", ttl, at(1_700_000_000));
        assert_eq!(later.username, "1700000061:camrtc");
        assert_ne!(first.credential, later.credential);
        assert_eq!(first.username, other_secret.username);
        assert_ne!(first.credential, other_secret.credential);
        // Before 1970 the expiry is the TTL itself: long past, so the server refuses it.
        assert_eq!(turn_rest_credentials(b"north", ttl, UNIX_EPOCH - ttl).username, "60:camrtc");
    }

    #[test]
    fn debug_output_hides_the_credential() {
        let fresh = turn_rest_credentials(b"north", Duration::from_secs(60), at(0));
        let printed = format!("{fresh:?}");
        assert!(!printed.contains(&fresh.credential), "{printed}");
        assert!(printed.contains("60:camrtc"), "{printed}");
    }

    #[test]
    fn sessions_get_rest_credentials_only_where_none_are_configured() {
        let stun = IceServer { urls: vec!["stun:h:3478".into()], username: None, credential: None };
        let fixed = IceServer {
            urls: vec!["turn:a:3478".into()],
            username: Some("u".into()),
            credential: Some("p".into()),
        };
        let rest = IceServer { urls: vec!["turn:b:3478".into()], username: None, credential: None };
        let config = WebRtcConfig {
            ice_servers: vec![stun.clone(), fixed.clone(), rest.clone()],
            turn_secret: TurnSecret("north".into()),
            turn_ttl_s: 86_400,
            ..WebRtcConfig::default()
        };
        Config { webrtc: config.clone(), ..Config::default() }.validate().unwrap();
        let servers = IceServers::from_config(&config);
        assert!(!format!("{servers:?}").contains("north"));

        let session = servers.for_session(at(1_700_000_000));
        assert_eq!(session[0], stun);
        assert_eq!(session[1], fixed);
        assert_eq!(session[2].urls, rest.urls);
        assert_eq!(session[2].username.as_deref(), Some("1700086400:camrtc"));
        assert_eq!(session[2].credential.as_deref(), Some("GqY0fA4tYo1tignjnuy9U507Vvc="));
        let next = servers.for_session(at(1_700_000_100));
        assert_eq!(next[2].username.as_deref(), Some("1700086500:camrtc"));

        let rtc = to_rtc(&session);
        assert_eq!(rtc[0].username, "");
        assert_eq!(rtc[2].username, "1700086400:camrtc");
        assert_eq!(rtc[2].credential, "GqY0fA4tYo1tignjnuy9U507Vvc=");
    }

    #[test]
    fn without_a_secret_sessions_get_the_configured_servers() {
        let fixed = IceServer {
            urls: vec!["turn:a:3478".into()],
            username: Some("u".into()),
            credential: Some("p".into()),
        };
        let config = WebRtcConfig { ice_servers: vec![fixed.clone()], ..WebRtcConfig::default() };
        assert_eq!(IceServers::from_config(&config).for_session(at(5)), vec![fixed]);
    }
}
