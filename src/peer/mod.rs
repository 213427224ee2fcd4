//! One WebRTC peer connection per viewer, answering a recvonly WHEP offer with H.264 + Opus
//! (and, with talkback, receiving the viewer's microphone from a sendrecv audio section).

mod bandwidth;
mod chores;
mod interfaces;
mod keyframe_requests;
mod mdns;
pub mod nat;
mod retransmissions;
pub mod rtp;
mod session;

use camrtc_untrusted::restart;
pub use camrtc_untrusted::restart::IceCredentials;
pub use camrtc_untrusted::sdp;
pub use interfaces::InterfaceChoice;
pub use session::{Created, Patched, SessionEnd, SessionHandle, create_session};

use crate::hub::{BitrateLimits, HubError};
use sdp::ProfileLevelId;
use std::time::Duration;

/// What every session needs, decided once at start-up.
#[derive(Clone)]
pub struct PeerSettings {
    /// Offer loopback host candidates: needed when viewer and daemon share a machine with no other
    /// interface (tests, VMs).
    pub include_loopback_candidates: bool,
    /// The profile-level-id the video stream really has, advertised in answers. The video thread
    /// updates it from each keyframe's SPS (a camera's own H.264 is only known once it streams).
    pub video_profile: tokio::sync::watch::Receiver<ProfileLevelId>,
    /// Whether an audio track is offered at all.
    pub audio: bool,
    /// A session that has not connected by then is torn down.
    pub connect_timeout: Duration,
    /// How long to wait for our own ICE candidates before answering without the rest.
    pub gather_timeout: Duration,
    /// The video bitrate range, which bounds each session's congestion-control estimate.
    pub bitrate: BitrateLimits,
    /// Public addresses advertised beside each host candidate (`webrtc.nat_1to1_ips`).
    pub public_ips: Vec<std::net::IpAddr>,
    /// Which interfaces and address families sessions bind.
    pub interfaces: std::sync::Arc<interfaces::InterfaceChoice>,
    /// Where each session's UDP port comes from when `webrtc.udp_port_min`/`max` fix them.
    pub udp_ports: Option<std::sync::Arc<nat::PortPool>>,
    /// Also listen for ICE-TCP on the same addresses and port (`webrtc.ice_tcp`).
    pub ice_tcp: bool,
    /// The playout-delay maximum asked of viewers that offer the extension
    /// (`webrtc.playout_delay_max_ms`); 0: not asked.
    pub playout_delay_max_ms: u32,
    /// The talkback floor, when `talkback.enabled`: viewers offering `sendrecv` audio are
    /// answered `sendrecv` and their packets handed to it.
    pub talkback: Option<crate::talkback::owner::FloorHandle>,
}

/// Why a session could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The offer cannot be used (malformed, or no codec we can send).
    #[error(transparent)]
    Offer(#[from] sdp::SdpError),
    /// The WebRTC stack rejected an operation (bad candidate, bad description, socket failure).
    #[error("WebRTC: {0}")]
    WebRtc(String),
    /// The hub is gone, so there is nothing to stream.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// Every port of the fixed UDP range is taken.
    #[error(transparent)]
    Ports(#[from] nat::PortError),
    /// A PATCH named an entity tag the session no longer has (its ICE was restarted since).
    #[error("If-Match does not match the session's ETag")]
    StaleEtag,
    /// The session already ended.
    #[error("the session has ended")]
    Ended,
}

impl From<webrtc::error::Error> for PeerError {
    fn from(error: webrtc::error::Error) -> Self {
        PeerError::WebRtc(error.to_string())
    }
}
