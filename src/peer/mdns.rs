//! Whether a peer connection may use mDNS on this host.
//!
//! The webrtc crate opens a socket joined to the mDNS multicast group for every peer connection
//! (it resolves browsers' `.local` host candidates with it) and fails the whole connection when
//! that socket cannot be made — on a host with no multicast route, no viewer could ever connect.
//! Probing the same socket first lets such a host serve viewers with mDNS off instead: browsers'
//! `.local` candidates are then not resolved, and the session connects through their
//! server-reflexive, relay or peer-reflexive candidates.

use rtc::ice::mdns::MulticastDnsMode;
use rtc::mdns::MulticastSocket;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the fallback has been logged: it is the same news for every session.
static FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

/// The mDNS mode for a new peer connection: query-only (the crate's default) when the multicast
/// socket can be opened now, disabled otherwise. Probed per session because routes come and go.
pub fn mode() -> MulticastDnsMode {
    match MulticastSocket::new().into_std() {
        Ok(_probe) => MulticastDnsMode::QueryOnly,
        Err(error) => {
            if !FALLBACK_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    %error,
                    "cannot join the mDNS multicast group (no multicast route?): mDNS is off, \
                     so browsers' .local candidates are not resolved; logged once"
                );
            }
            MulticastDnsMode::Disabled
        }
    }
}
