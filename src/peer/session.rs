//! A viewer session: one peer connection and the task that owns it.
//!
//! The task is the only owner of the connection and the viewer's hub feed. It starts media when
//! the connection comes up, forwards keyframe requests to the hub, and tears everything down on
//! DELETE, ICE failure, DTLS close, a connect timeout or daemon shutdown.

use super::bandwidth::{self, Estimate};
use super::chores::Chores;
use super::interfaces::BindAddrs;
use super::keyframe_requests::{self, KeyframeRequestForwarder};
use super::restart::{self, IceCredentials};
use super::retransmissions::{self, RetransmitOnce};
use super::rtp::{RtpStamper, media_epoch};
use super::sdp::{self, OfferChoice, ProfileLevelId};
use super::{PeerError, PeerSettings, nat};
use crate::hub::{HubHandle, KeyframeReason, ViewerFeed};
use crate::media::EncodedFrame;
use crate::talkback::floor::TalkerId;
use crate::talkback::owner::FloorHandle;
use camrtc_untrusted::trickle::TrickledCandidate;
use rtc::interceptor::Slot;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::peer_connection::transport::RTCDtlsTransportState;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters,
    RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

/// ICE declares a silent peer disconnected after this long...
const ICE_DISCONNECTED_TIMEOUT: Duration = Duration::from_secs(4);
/// ...and failed this long after that, which ends the session.
const ICE_FAILED_TIMEOUT: Duration = Duration::from_secs(8);
const ICE_KEEPALIVE: Duration = Duration::from_secs(2);
/// Connectivity checks every 20 ms instead of the crate's 200 ms: on a LAN the first check
/// answers in a millisecond, and every interval waited is time without a picture.
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// Why a session ended; logged once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Deleted,
    Failed,
    Closed,
    NeverConnected,
    Shutdown,
}

/// A WHEP PATCH, as the session sees it.
struct Patch {
    /// The If-Match header: `*`, an entity tag, or absent.
    if_match: Option<String>,
    /// The viewer's ICE credentials; new ones restart ICE.
    credentials: Option<IceCredentials>,
    candidates: Vec<TrickledCandidate>,
}

/// What a PATCH did.
#[derive(Debug)]
pub enum Patched {
    /// Candidates were added to the current ICE generation.
    Trickled,
    /// ICE restarted: our new credentials and candidates (an sdpfrag) and the new entity tag.
    Restarted { fragment: String, etag: String },
}

enum Command {
    Patch(Patch, oneshot::Sender<Result<Patched, PeerError>>),
    Close,
}

/// How the HTTP layer reaches a session. Cheap to clone; all state stays in the session task.
#[derive(Clone)]
pub struct SessionHandle {
    commands: mpsc::Sender<Command>,
}

impl SessionHandle {
    /// Applies a trickle or ICE-restart PATCH. `if_match` must be `*` or the current entity tag
    /// when present (RFC 9725 asks clients for it; curl users may leave it out).
    pub async fn patch(
        &self,
        if_match: Option<String>,
        credentials: Option<IceCredentials>,
        candidates: Vec<TrickledCandidate>,
    ) -> Result<Patched, PeerError> {
        let (reply, answer) = oneshot::channel();
        let patch = Patch { if_match, credentials, candidates };
        self.commands.send(Command::Patch(patch, reply)).await.map_err(|_| PeerError::Ended)?;
        answer.await.map_err(|_| PeerError::Ended)?
    }

    /// Ends the session (WHEP DELETE). Returns false if it had already ended.
    pub async fn close(&self) -> bool {
        self.commands.send(Command::Close).await.is_ok()
    }
}

/// Connection-level events, forwarded from the crate's callback handler into the session task.
#[derive(Debug)]
enum PcEvent {
    State(RTCPeerConnectionState),
    GatheringComplete,
}

struct Forwarder {
    events: mpsc::UnboundedSender<PcEvent>,
    /// Where the viewer's microphone goes, when talkback accepted it.
    talk: Option<Talker>,
}

/// A session as the talkback floor knows it.
#[derive(Clone)]
struct Talker {
    floor: FloorHandle,
    id: TalkerId,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Forwarder {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(PcEvent::State(state));
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.events.send(PcEvent::GatheringComplete);
        }
    }

    /// The viewer's microphone: every packet goes to the floor, which plays it only while this
    /// viewer holds the floor. The loop ends when the connection closes.
    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let Some(talker) = self.talk.clone() else { return };
        if track.kind().await != RtpCodecKind::Audio {
            return;
        }
        tokio::spawn(async move {
            while let Some(event) = track.poll().await {
                let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
                let seq = packet.header.sequence_number;
                if !talker.floor.packet(talker.id, seq, packet.payload.to_vec()).await {
                    return;
                }
            }
        });
    }
}

/// One outgoing track and its RTP numbering.
struct Outgoing {
    track: Arc<TrackLocalStaticRTP>,
    stamper: RtpStamper,
}

impl Outgoing {
    async fn send(&mut self, frame: &EncodedFrame) -> Result<(), webrtc::error::Error> {
        for packet in self.stamper.packets(frame) {
            self.track.write_rtp(packet).await?;
        }
        Ok(())
    }
}

fn video_codec(choice_profile: &str) -> RTCRtpCodec {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodec {
        mime_type: MIME_TYPE_H264.to_owned(),
        clock_rate: 90_000,
        channels: 0,
        sdp_fmtp_line: format!(
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={choice_profile}"
        ),
        rtcp_feedback: vec![feedback("nack", ""), feedback("nack", "pli"), feedback("ccm", "fir")],
    }
}

fn audio_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: MIME_TYPE_OPUS.to_owned(),
        clock_rate: 48_000,
        channels: 2,
        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
        rtcp_feedback: vec![],
    }
}

fn media_engine(
    choice: &OfferChoice,
    settings: &PeerSettings,
    profile: &ProfileLevelId,
) -> Result<MediaEngine, PeerError> {
    let mut engine = MediaEngine::default();
    engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: video_codec(&profile.to_hex()),
            payload_type: choice.video_pt,
        },
        RtpCodecKind::Video,
    )?;
    if playout_delay(choice, settings).is_some() {
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: sdp::PLAYOUT_DELAY_URI.to_owned() },
            RtpCodecKind::Video,
            None,
        )?;
    }
    let talkback =
        settings.talkback.is_some() && choice.audio.as_ref().is_some_and(|a| a.viewer_sends);
    if let (true, Some(audio)) = (settings.audio || talkback, &choice.audio) {
        engine.register_codec(
            RTCRtpCodecParameters { rtp_codec: audio_codec(), payload_type: audio.pt },
            RtpCodecKind::Audio,
        )?;
    }
    Ok(engine)
}

/// The extension id and maximum to send the viewer, when it offered the extension and
/// `webrtc.playout_delay_max_ms` is on.
fn playout_delay(choice: &OfferChoice, settings: &PeerSettings) -> Option<(u8, u32)> {
    let max_ms = settings.playout_delay_max_ms;
    choice.video_playout_delay_id.filter(|_| max_ms > 0).map(|id| (id, max_ms))
}

fn local_track(kind: RtpCodecKind, codec: RTCRtpCodec, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    let id = format!("camrtc-{kind}");
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        "camrtc".to_owned(),
        id.clone(),
        id,
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}

/// A session that was set up: how to reach it, the SDP answer and the entity tag of its ICE state.
pub struct Created {
    pub handle: SessionHandle,
    pub answer: String,
    pub etag: String,
    /// The viewer's microphone is received (talkback on and a sendrecv audio section).
    pub receives_talk: bool,
}

/// Answers a WHEP offer: builds the peer connection, waits (briefly) for our candidates, and
/// starts the session task. `ice_servers` are this session's own (TURN REST credentials are
/// minted per session).
pub async fn create_session(
    offer: &str,
    talker: TalkerId,
    settings: &PeerSettings,
    ice_servers: Vec<RTCIceServer>,
    hub: HubHandle,
    shutdown: CancellationToken,
    on_end: impl FnOnce(SessionEnd) + Send + 'static,
) -> Result<Created, PeerError> {
    // Read once: the stream's profile can change when a camera is swapped, but one session
    // must advertise the same one everywhere.
    let profile = *settings.video_profile.borrow();
    let choice = sdp::choose_codecs(offer, &profile)?;
    let mut offer = sdp::rewrite_h264_profile(offer, choice.video_pt, &profile);
    let talk = settings.talkback.clone().map(|floor| Talker { floor, id: talker });
    // The viewer's microphone is taken only when talkback can play it; otherwise the answer
    // declines it (sendonly), as it did before talkback existed.
    let receive_talk = match &choice.audio {
        Some(audio) if audio.viewer_sends && talk.is_some() => true,
        Some(audio) if audio.viewer_sends => {
            offer = sdp::decline_viewer_audio(&offer, &audio.mid);
            false
        }
        _ => false,
    };

    let mut engine = media_engine(&choice, settings, &profile)?;
    let registry = register_default_interceptors(Registry::new(), &mut engine)?
        .with(Slot::from(keyframe_requests::SLOT), KeyframeRequestForwarder::default())
        .with(Slot::from(retransmissions::SLOT), RetransmitOnce::default());
    let (registry, estimate) =
        bandwidth::configure(registry, &mut engine, settings.bitrate, hub.video_bitrate_kbps())?;
    let setting_engine = SettingEngineBuilder::new()
        .with_include_loopback_candidate(settings.include_loopback_candidates)
        .with_multicast_dns_mode(super::mdns::mode())
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), None)
        .with_ice_timeouts(
            Some(ICE_DISCONNECTED_TIMEOUT),
            Some(ICE_FAILED_TIMEOUT),
            Some(ICE_KEEPALIVE),
        )
        .build();
    let configuration = RTCConfigurationBuilder::new().with_ice_servers(ice_servers).build();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    // Held until the session has closed its connection, so no other session binds the port
    // while these sockets still use it.
    let port = settings.udp_ports.as_ref().map(|pool| pool.lease()).transpose()?;
    let udp_addrs = BindAddrs {
        choice: Arc::clone(&settings.interfaces),
        port: port.as_ref().map_or(0, nat::PortLease::port),
    };
    // The leased number for TCP too, so one forwarded range serves both; a TCP port that is
    // taken only costs this viewer its TCP candidates (the crate logs it), never the session.
    let tcp_addrs = if settings.ice_tcp { vec![udp_addrs.clone()] } else { Vec::new() };
    let pc: Arc<dyn PeerConnection> = Arc::new(
        PeerConnectionBuilder::new()
            .with_configuration(configuration)
            .with_media_engine(engine)
            .with_setting_engine(setting_engine)
            .with_interceptor_registry(registry)
            .with_handler(Arc::new(Forwarder {
                events: events_tx,
                talk: talk.clone().filter(|_| receive_talk),
            }))
            .with_udp_addrs(vec![udp_addrs])
            .with_tcp_addrs(tcp_addrs)
            .build()
            .await?,
    );

    let result = answer(&pc, &offer, &choice, settings, receive_talk, &profile, &mut events).await;
    let (video, video_sender, audio, answer_sdp) = match result {
        Ok(ok) => ok,
        Err(error) => {
            let _ = pc.close().await;
            return Err(error);
        }
    };
    let feed = match hub.join(audio.is_some()).await {
        Ok(feed) => feed,
        Err(error) => {
            let _ = pc.close().await;
            return Err(error.into());
        }
    };

    let (commands, command_rx) = mpsc::channel(8);
    let etag = new_etag();
    let session = Session {
        etag: etag.clone(),
        gather_timeout: settings.gather_timeout,
        public_ips: settings.public_ips.clone(),
        ended: None,
        pc,
        hub,
        feed,
        video,
        video_sender,
        audio,
        events,
        commands: command_rx,
        connected: false,
        chores: Chores::new(tokio::time::Instant::now()),
        estimate,
        talk,
        _port: port,
    };
    let connect_timeout = settings.connect_timeout;
    tokio::spawn(async move {
        let end = session.run(shutdown, connect_timeout).await;
        on_end(end);
    });
    Ok(Created {
        handle: SessionHandle { commands },
        answer: answer_sdp,
        etag,
        receives_talk: receive_talk,
    })
}

/// A quoted entity tag of 64 random bits: it only has to change with every ICE generation.
fn new_etag() -> String {
    format!("\"{:016x}\"", rand::random::<u64>())
}

/// Waits up to `timeout` for gathering to complete, handing every other event to `other`.
/// Returns whether gathering completed.
async fn gathered(
    events: &mut mpsc::UnboundedReceiver<PcEvent>,
    timeout: Duration,
    mut other: impl FnMut(PcEvent),
) -> bool {
    tokio::time::timeout(timeout, async {
        while let Some(event) = events.recv().await {
            match event {
                PcEvent::GatheringComplete => return true,
                event => other(event),
            }
        }
        false
    })
    .await
    .unwrap_or(false)
}

async fn answer(
    pc: &Arc<dyn PeerConnection>,
    offer: &str,
    choice: &OfferChoice,
    settings: &PeerSettings,
    receive_talk: bool,
    profile: &ProfileLevelId,
    events: &mut mpsc::UnboundedReceiver<PcEvent>,
) -> Result<(Outgoing, Arc<dyn RtpSender>, Option<Outgoing>, String), PeerError> {
    let epoch = media_epoch();
    let video_ssrc = rand::random();
    let mut stamper = RtpStamper::new(video_ssrc, choice.video_pt, 90_000, epoch);
    if let Some((id, max_ms)) = playout_delay(choice, settings) {
        stamper = stamper.with_playout_delay(id, max_ms);
    }
    let video = Outgoing {
        track: local_track(RtpCodecKind::Video, video_codec(&profile.to_hex()), video_ssrc),
        stamper,
    };
    let video_sender = pc.add_track(video.track.clone() as Arc<dyn TrackLocal>).await?;
    let audio = match (settings.audio, &choice.audio) {
        (true, Some(audio_choice)) => {
            let ssrc = rand::random();
            let audio = Outgoing {
                track: local_track(RtpCodecKind::Audio, audio_codec(), ssrc),
                stamper: RtpStamper::new(ssrc, audio_choice.pt, 48_000, epoch),
            };
            pc.add_track(audio.track.clone() as Arc<dyn TrackLocal>).await?;
            Some(audio)
        }
        _ => None,
    };
    if receive_talk && audio.is_none() {
        // No microphone here, but a speaker: receive the viewer's audio all the same.
        pc.add_transceiver_from_kind(
            RtpCodecKind::Audio,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await?;
    }

    let offer = RTCSessionDescription::offer(offer.to_owned())?;
    pc.set_remote_description(offer).await?;
    let answer = pc.create_answer(None).await?;
    pc.set_local_description(answer).await?;

    // WHEP answers carry our candidates; host candidates are gathered in microseconds, and a
    // slow STUN/TURN server must not hold the viewer's picture hostage.
    gathered(events, settings.gather_timeout, |_| {}).await;
    let local = pc
        .local_description()
        .await
        .ok_or_else(|| PeerError::WebRtc("no local description after answering".into()))?;
    let sdp = nat::advertise_public_addresses(&local.sdp, &settings.public_ips);
    Ok((video, video_sender, audio, sdp))
}

struct Session {
    pc: Arc<dyn PeerConnection>,
    hub: HubHandle,
    feed: ViewerFeed,
    video: Outgoing,
    video_sender: Arc<dyn RtpSender>,
    audio: Option<Outgoing>,
    events: mpsc::UnboundedReceiver<PcEvent>,
    commands: mpsc::Receiver<Command>,
    connected: bool,
    /// The estimate reports and DTLS checks of a connected session (rescheduled on connecting).
    chores: Chores,
    /// The entity tag of the current ICE generation; a restart replaces it.
    etag: String,
    gather_timeout: Duration,
    /// Set when an event handled outside the main loop (during a restart) ended the session.
    ended: Option<SessionEnd>,
    estimate: Estimate,
    /// The talkback floor, which this session lets go of when it ends.
    talk: Option<Talker>,
    /// `webrtc.nat_1to1_ips`, advertised again with a restart's new candidates.
    public_ips: Vec<std::net::IpAddr>,
    /// Returned to the pool when the session, its connection closed, is dropped.
    _port: Option<nat::PortLease>,
}

impl Session {
    async fn run(mut self, shutdown: CancellationToken, connect_timeout: Duration) -> SessionEnd {
        let connect_deadline = tokio::time::Instant::now() + connect_timeout;
        let video_track = self.video.track.clone();
        let fallback = tokio::time::sleep_until(self.chores.fallback());
        tokio::pin!(fallback);
        let end = loop {
            if let Some(end) = self.ended {
                break end;
            }
            if self.connected {
                let due = self.chores.take_due(tokio::time::Instant::now());
                if due.report_estimate {
                    self.hub.report_estimate(self.feed.id, self.estimate.bits_per_second());
                }
                if due.check_liveness && self.peer_closed_dtls().await {
                    break SessionEnd::Closed;
                }
                let wake = self.chores.fallback();
                if fallback.deadline() != wake {
                    fallback.as_mut().reset(wake);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break SessionEnd::Shutdown,
                // Only wakes the loop, whose top does the chores.
                () = &mut fallback, if self.connected => {}
                command = self.commands.recv() => match command {
                    Some(Command::Patch(patch, reply)) => {
                        let _ = reply.send(self.patch(patch).await);
                    }
                    Some(Command::Close) | None => break SessionEnd::Deleted,
                },
                event = self.events.recv() => match event {
                    Some(event) => self.on_event(event),
                    None => break SessionEnd::Closed,
                },
                () = tokio::time::sleep_until(connect_deadline), if !self.connected => {
                    break SessionEnd::NeverConnected;
                }
                Some(frame) = self.feed.video.recv(), if self.connected => {
                    let stats = self.hub.send_stats();
                    match self.video.send(&frame).await {
                        Ok(()) => stats.sent(frame.captured.instant, std::time::Instant::now()),
                        Err(error) => {
                            stats.send_failed();
                            tracing::debug!(viewer = self.feed.id, %error, "video write failed");
                        }
                    }
                }
                Some(frame) = recv_audio(&mut self.feed.audio, self.audio.is_some()), if self.connected => {
                    if let Some(audio) = self.audio.as_mut()
                        && let Err(error) = audio.send(&frame).await
                    {
                        self.hub.send_stats().send_failed();
                        tracing::debug!(viewer = self.feed.id, %error, "audio write failed");
                    }
                }
                Some(TrackLocalEvent::OnRtcpPacket(packets)) = video_track.poll() => {
                    if packets.iter().any(|p| keyframe_requests::is_keyframe_request(p.as_ref())) {
                        self.hub.request_keyframe(self.feed.id, KeyframeReason::PictureLoss);
                    }
                }
            }
        };
        if let Some(talk) = &self.talk {
            talk.floor.release_later(talk.id);
        }
        // Closing sends DTLS close_notify so the browser learns at once, not after ICE timeouts.
        if let Err(error) = self.pc.close().await {
            tracing::debug!(viewer = self.feed.id, %error, "closing the peer connection");
        }
        tracing::info!(viewer = self.feed.id, reason = ?end, "viewer session ended");
        end
    }

    fn on_event(&mut self, event: PcEvent) {
        match event {
            PcEvent::State(RTCPeerConnectionState::Connected) => self.on_connected(),
            PcEvent::State(RTCPeerConnectionState::Failed) => {
                self.ended.get_or_insert(SessionEnd::Failed);
            }
            PcEvent::State(RTCPeerConnectionState::Closed) => {
                self.ended.get_or_insert(SessionEnd::Closed);
            }
            _ => {}
        }
    }

    fn on_connected(&mut self) {
        if self.connected {
            return;
        }
        self.connected = true;
        self.chores = Chores::new(tokio::time::Instant::now());
        tracing::info!(viewer = self.feed.id, "viewer connected");
        self.hub.activate(self.feed.id);
    }

    /// The crate keeps the connection "connected" after the viewer's DTLS close_notify (the W3C
    /// state rules allow it) and raises no event, so a closed tab would hold the session until
    /// ICE times out. The DTLS transport's own state tells the truth.
    async fn peer_closed_dtls(&self) -> bool {
        let Ok(Some(transport)) = self.video_sender.transport().await else { return false };
        matches!(transport.state().await, Ok(RTCDtlsTransportState::Closed))
    }

    async fn patch(&mut self, patch: Patch) -> Result<Patched, PeerError> {
        if let Some(tag) = patch.if_match.as_deref().map(str::trim)
            && tag != "*"
            && tag != self.etag
        {
            return Err(PeerError::StaleEtag);
        }
        let remote = self.pc.remote_description().await;
        let current = remote.as_ref().and_then(|offer| restart::credentials_of(&offer.sdp));
        let outcome = match patch.credentials {
            Some(new) if Some(&new) != current.as_ref() => {
                let offer = remote.ok_or(PeerError::Ended)?;
                let (fragment, etag) = self.restart_ice(&offer.sdp, &new).await?;
                Patched::Restarted { fragment, etag }
            }
            _ => Patched::Trickled,
        };
        for candidate in patch.candidates {
            let TrickledCandidate { candidate, sdp_mid, sdp_mline_index, username_fragment } =
                candidate;
            let init = RTCIceCandidateInit {
                candidate,
                sdp_mid,
                sdp_mline_index,
                username_fragment,
                ..Default::default()
            };
            self.pc.add_ice_candidate(init).await?;
        }
        Ok(outcome)
    }

    /// Restarts ICE with the viewer's new credentials: the crate restarts an answerer when a new
    /// offer carries new credentials. Our TURN allocation is kept with the credentials it was
    /// made with: given new ones, the crate re-signs the live allocation's refreshes with them,
    /// and coturn answers those 441 Wrong Credentials (RFC 8656 requires the allocation's own
    /// username), so the allocation would lapse (tests/turn_credentials_renewed.rs saw it).
    async fn restart_ice(
        &mut self,
        previous_offer: &str,
        new: &IceCredentials,
    ) -> Result<(String, String), PeerError> {
        let offer = RTCSessionDescription::offer(restart::restart_offer(previous_offer, new))?;
        self.pc.set_remote_description(offer).await?;
        let answer = self.pc.create_answer(None).await?;
        self.pc.set_local_description(answer).await?;
        let mut seen = Vec::new();
        let complete = gathered(&mut self.events, self.gather_timeout, |e| seen.push(e)).await;
        for event in seen {
            self.on_event(event);
        }
        let local = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| PeerError::WebRtc("no local description after restarting".into()))?;
        let answer = nat::advertise_public_addresses(&local.sdp, &self.public_ips);
        let fragment = restart::answer_fragment(&answer, complete).ok_or_else(|| {
            PeerError::WebRtc("the restarted answer has no ICE credentials".into())
        })?;
        self.etag = new_etag();
        tracing::info!(viewer = self.feed.id, "viewer restarted ICE");
        Ok((fragment, self.etag.clone()))
    }
}

/// Audio frames are only pulled when the session has an audio track to put them on.
async fn recv_audio(
    rx: &mut mpsc::Receiver<Arc<EncodedFrame>>,
    wanted: bool,
) -> Option<Arc<EncodedFrame>> {
    if wanted { rx.recv().await } else { std::future::pending().await }
}
