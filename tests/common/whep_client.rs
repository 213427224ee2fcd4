//! A WHEP viewer made of the webrtc crate and real decoders: it checks what actually arrives,
//! not just that packets flow. Its light mode ([`WhepClient::light`]) decodes nothing: it counts
//! frames, keyframes and sequence gaps of the decrypted RTP, cheap enough to run a hundred at
//! once; `camrtc-bench` (src/bin/camrtc-bench) compiles this file in for its fan-out test.

use bytes::Bytes;
use rtc::ice::mdns::MulticastDnsMode;
use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_OPUS};
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};

/// What the client observed, in arrival order.
pub enum Event {
    State(RTCPeerConnectionState),
    /// The incoming video track, for sending RTCP (PLI) back to the daemon.
    VideoTrack(Arc<dyn TrackRemote>),
    Video(DecodedFrame),
    /// Decoded mono PCM at 48 kHz.
    Audio(Vec<i16>),
}

#[derive(Debug, Clone)]
pub struct DecodedFrame {
    pub width: usize,
    pub height: usize,
    /// The burned-in capture time, if it could be read.
    pub timecode: Option<u32>,
    /// Unix milliseconds (mod 2^32) when the frame was decoded.
    pub decoded_at: u32,
    /// The RTP header extensions (id, value) on the frame's first packet.
    pub first_packet_extensions: Vec<(u8, Bytes)>,
}

impl DecodedFrame {
    /// Capture-to-decode latency, from the burned-in timecode.
    pub fn latency_ms(&self) -> Option<u32> {
        self.timecode.map(|t| self.decoded_at.wrapping_sub(t))
    }
}

/// The HTTP side of a successful POST.
#[derive(Debug)]
pub struct Created {
    pub location: String,
    pub etag: Option<String>,
    pub links: Vec<String>,
    pub answer: String,
}

/// Where the client's ICE agent looks for paths.
pub struct Network {
    pub ice_servers: Vec<RTCIceServer>,
    /// `Relay` uses only TURN relay candidates, as a browser with `iceTransportPolicy: 'relay'`.
    pub policy: RTCIceTransportPolicy,
    pub udp_addr: String,
    /// Hide the host candidate on this address behind a `<uuid>.local` name and answer mDNS
    /// queries for it, as browsers do; `None`: mDNS off.
    pub mdns_ip: Option<std::net::IpAddr>,
}

impl Default for Network {
    fn default() -> Self {
        Network {
            ice_servers: Vec::new(),
            policy: RTCIceTransportPolicy::All,
            udp_addr: "127.0.0.1:0".to_owned(),
            mdns_ip: None,
        }
    }
}

pub struct WhepClient {
    pub pc: Arc<dyn PeerConnection>,
    pub events: mpsc::UnboundedReceiver<Event>,
    pub offer: String,
    /// The microphone of a talking client ([`WhepClient::talking`]): its audio section is
    /// sendrecv, as the viewer page's is when talkback is available.
    pub talk: Option<Talk>,
    /// One message each time ICE gathering completes.
    gathered: mpsc::UnboundedReceiver<()>,
}

/// What a light client counted; shared with whoever watches it.
#[derive(Debug, Default)]
pub struct LightStats {
    /// Complete video access units (RTP marker bit seen).
    pub frames: AtomicU64,
    /// Access units that carried an IDR or SPS.
    pub keyframes: AtomicU64,
    pub video_packets: AtomicU64,
    /// Video packets missing from the sequence (gaps in sequence numbers).
    pub lost_packets: AtomicU64,
    /// Access units a packet of which was missing.
    pub broken_frames: AtomicU64,
    pub audio_packets: AtomicU64,
    /// When the first complete keyframe arrived.
    pub first_keyframe_at: Mutex<Option<Instant>>,
}

impl LightStats {
    pub fn first_keyframe_at(&self) -> Option<Instant> {
        *self.first_keyframe_at.lock().expect("no panics while held")
    }
}

/// Whether an H.264 RTP payload (RFC 6184) starts or carries an IDR or an SPS.
pub fn payload_has_keyframe(payload: &[u8]) -> bool {
    let is_key = |nal_type: u8| nal_type == 5 || nal_type == 7;
    match payload.first().map(|b| b & 0x1f) {
        // STAP-A: 2-byte sizes, each followed by a NAL unit.
        Some(24) => {
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let size = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                if rest.get(2).is_some_and(|h| is_key(h & 0x1f)) {
                    return true;
                }
                rest = rest.get(2 + size..).unwrap_or_default();
            }
            false
        }
        // FU-A: the start fragment's header names the NAL type.
        Some(28) => payload.get(1).is_some_and(|h| h & 0x80 != 0 && is_key(h & 0x1f)),
        Some(nal_type) => is_key(nal_type),
        None => false,
    }
}

/// How the client treats received media.
#[derive(Clone)]
enum Receive {
    Decode,
    Light(Arc<LightStats>),
}

struct Handler {
    events: mpsc::UnboundedSender<Event>,
    gathered: mpsc::UnboundedSender<()>,
    receive: Receive,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.events.send(Event::State(state));
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(());
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let events = self.events.clone();
        let kind = track.kind().await;
        if let Receive::Light(stats) = &self.receive {
            let stats = stats.clone();
            tokio::spawn(async move {
                match kind {
                    RtpCodecKind::Video => count_video(track, &stats).await,
                    _ => count_audio(track, &stats).await,
                }
            });
            return;
        }
        tokio::spawn(async move {
            match kind {
                RtpCodecKind::Video => {
                    let _ = events.send(Event::VideoTrack(track.clone()));
                    receive_video(track, events).await
                }
                RtpCodecKind::Audio => receive_audio(track, events).await,
                _ => {}
            }
        });
    }
}

fn unix_millis_u32() -> u32 {
    let millis =
        SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis();
    (millis & 0xffff_ffff) as u32
}

async fn receive_video(track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<Event>) {
    let mut depacketizer = H264Packet::default();
    let mut decoder = openh264::decoder::Decoder::new().expect("openh264 decoder");
    let mut access_unit = Vec::new();
    let mut first_packet_extensions = None;
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        first_packet_extensions.get_or_insert_with(|| {
            packet.header.extensions.iter().map(|e| (e.id, e.payload.clone())).collect()
        });
        if let Ok(nals) = depacketizer.depacketize(&packet.payload) {
            access_unit.extend_from_slice(&nals);
        }
        if !packet.header.marker {
            continue;
        }
        let unit = std::mem::take(&mut access_unit);
        let first_packet_extensions = first_packet_extensions.take().unwrap_or_default();
        let Ok(Some(picture)) = decoder.decode(&unit) else { continue };
        use openh264::formats::YUVSource;
        let (width, height) = picture.dimensions();
        let (stride, _, _) = picture.strides();
        let timecode = camrtc::source::timecode::read(picture.y(), stride, width, height).ok();
        let decoded_at = unix_millis_u32();
        let frame = DecodedFrame { width, height, timecode, decoded_at, first_packet_extensions };
        if events.send(Event::Video(frame)).is_err() {
            return;
        }
    }
}

async fn count_video(track: Arc<dyn TrackRemote>, stats: &LightStats) {
    let mut expected: Option<u16> = None;
    let (mut keyframe, mut broken) = (false, false);
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        stats.video_packets.fetch_add(1, Ordering::Relaxed);
        let sequence = packet.header.sequence_number;
        if let Some(expected) = expected {
            let gap = sequence.wrapping_sub(expected);
            // A gap of more than half the space is a late or repeated packet, not a loss.
            if gap != 0 && gap < 0x8000 {
                stats.lost_packets.fetch_add(u64::from(gap), Ordering::Relaxed);
                broken = true;
            }
        }
        expected = Some(sequence.wrapping_add(1));
        keyframe |= payload_has_keyframe(&packet.payload);
        if !packet.header.marker {
            continue;
        }
        stats.frames.fetch_add(1, Ordering::Relaxed);
        if broken {
            stats.broken_frames.fetch_add(1, Ordering::Relaxed);
        } else if keyframe {
            stats.keyframes.fetch_add(1, Ordering::Relaxed);
            stats
                .first_keyframe_at
                .lock()
                .expect("no panics while held")
                .get_or_insert_with(Instant::now);
        }
        (keyframe, broken) = (false, false);
    }
}

async fn count_audio(track: Arc<dyn TrackRemote>, stats: &LightStats) {
    while let Some(event) = track.poll().await {
        if let TrackRemoteEvent::OnRtpPacket(_) = event {
            stats.audio_packets.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn receive_audio(track: Arc<dyn TrackRemote>, events: mpsc::UnboundedSender<Event>) {
    let mut decoder =
        opus::Decoder::new(48_000, opus::Channels::Mono).expect("opus decoder at 48 kHz");
    let mut pcm = vec![0i16; 5760];
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else { continue };
        let Ok(samples) = decoder.decode(&packet.payload, &mut pcm, false) else { continue };
        if events.send(Event::Audio(pcm[..samples].to_vec())).is_err() {
            return;
        }
    }
}

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback { typ: typ.to_owned(), parameter: parameter.to_owned() }
}

/// A media engine that offers what Chrome offers for H.264 and Opus (the parts that matter).
fn browser_like_engine() -> MediaEngine {
    let mut engine = MediaEngine::default();
    for (pt, profile) in [(102u8, "42001f"), (106, "42e01f")] {
        engine
            .register_codec(
                RTCRtpCodecParameters {
                    rtp_codec: RTCRtpCodec {
                        mime_type: MIME_TYPE_H264.to_owned(),
                        clock_rate: 90_000,
                        channels: 0,
                        sdp_fmtp_line: format!(
                            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}"
                        ),
                        rtcp_feedback: vec![feedback("nack", ""), feedback("nack", "pli")],
                    },
                    payload_type: pt,
                },
                RtpCodecKind::Video,
            )
            .expect("H.264 registers");
    }
    engine
        .register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: camrtc::peer::sdp::PLAYOUT_DELAY_URI.to_owned(),
            },
            RtpCodecKind::Video,
            None,
        )
        .expect("the playout-delay extension registers");
    engine
        .register_codec(
            RTCRtpCodecParameters {
                rtp_codec: RTCRtpCodec {
                    mime_type: MIME_TYPE_OPUS.to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                payload_type: 111,
            },
            RtpCodecKind::Audio,
        )
        .expect("Opus registers");
    engine
}

impl WhepClient {
    /// Builds a recvonly peer connection and its complete offer (candidates included).
    pub async fn new() -> WhepClient {
        WhepClient::with_network(Network::default()).await
    }

    /// [`WhepClient::new`] with its own ICE servers, transport policy and local address.
    pub async fn with_network(network: Network) -> WhepClient {
        WhepClient::build(network, Receive::Decode, false).await
    }

    /// A client that also offers to send audio (a `sendrecv` audio section with an Opus track),
    /// which it sends through [`WhepClient::talk`].
    pub async fn talking() -> WhepClient {
        WhepClient::build(Network::default(), Receive::Decode, true).await
    }

    /// A client that decodes nothing and only counts into `stats` (no [`Event::Video`] or
    /// [`Event::Audio`] events).
    pub async fn light(stats: Arc<LightStats>) -> WhepClient {
        WhepClient::build(Network::default(), Receive::Light(stats), false).await
    }

    async fn build(network: Network, receive: Receive, talking: bool) -> WhepClient {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (gathered_tx, mut gathered) = mpsc::unbounded_channel();
        let mut engine = browser_like_engine();
        let registry =
            register_default_interceptors(Registry::new(), &mut engine).expect("interceptors");
        let pc: Arc<dyn PeerConnection> = Arc::new(
            PeerConnectionBuilder::new()
                .with_configuration(
                    RTCConfigurationBuilder::new()
                        .with_ice_servers(network.ice_servers)
                        .with_ice_transport_policy(network.policy)
                        .build(),
                )
                .with_media_engine(engine)
                .with_interceptor_registry(registry)
                .with_setting_engine(
                    SettingEngineBuilder::new()
                        .with_include_loopback_candidate(true)
                        // The daemon's candidates are addresses, never `.local` names; without
                        // mDNS the client also works in namespaces that have no multicast route.
                        .with_multicast_dns_mode(match network.mdns_ip {
                            Some(_) => MulticastDnsMode::QueryAndGather,
                            None => MulticastDnsMode::Disabled,
                        })
                        .with_multicast_dns_local_ip(network.mdns_ip)
                        // The crate holds relay pairs back 2 s hoping for a better one; browsers
                        // do not, and a relay-only viewer has nothing better coming.
                        .with_relay_acceptance_min_wait(Some(Duration::ZERO))
                        .build(),
                )
                .with_handler(Arc::new(Handler {
                    events: events_tx,
                    gathered: gathered_tx,
                    receive,
                }))
                .with_udp_addrs(vec![network.udp_addr])
                .build()
                .await
                .expect("peer connection builds"),
        );
        let talk = talking.then(Talk::new);
        for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
            if let (RtpCodecKind::Audio, Some(talk)) = (kind, &talk) {
                // A track of its own makes the audio section sendrecv, as a browser's
                // addTransceiver('audio', {direction: 'sendrecv'}) does.
                pc.add_track(talk.track.clone() as Arc<dyn TrackLocal>).await.expect("audio track");
                continue;
            }
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .expect("transceiver");
        }
        let offer = pc.create_offer(None).await.expect("offer");
        pc.set_local_description(offer).await.expect("local description");
        tokio::time::timeout(Duration::from_secs(5), gathered.recv())
            .await
            .expect("ICE gathering completes");
        let offer = pc.local_description().await.expect("local description set").sdp;
        WhepClient { pc, events, offer, talk, gathered }
    }

    /// POSTs the offer; on 201 applies the answer.
    pub async fn post(&self, url: &str) -> Result<Created, (u16, String)> {
        self.post_with_token(url, None).await
    }

    /// POSTs the offer with `Authorization: Bearer <token>` when a token is given.
    pub async fn post_with_token(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<Created, (u16, String)> {
        let authorization = token.map(|token| format!("Bearer {token}"));
        self.post_with_authorization(url, authorization.as_deref()).await
    }

    /// POSTs the offer with this `Authorization` header value, if any.
    pub async fn post_with_authorization(
        &self,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Created, (u16, String)> {
        let mut request =
            reqwest::Client::new().post(url).header("Content-Type", "application/sdp");
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        let response =
            request.body(self.offer.clone()).send().await.map_err(|e| (0, e.to_string()))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let location = header("location");
        let etag = header("etag");
        let links = response
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        let content_type = header("content-type");
        let body = response.text().await.map_err(|e| (status, e.to_string()))?;
        if status != 201 {
            return Err((status, body));
        }
        assert_eq!(content_type.as_deref(), Some("application/sdp"));
        let answer = RTCSessionDescription::answer(body.clone()).expect("answer parses");
        self.pc.set_remote_description(answer).await.expect("answer applies");
        Ok(Created { location: location.expect("201 carries Location"), etag, links, answer: body })
    }

    /// Starts an ICE restart: a new offer with new credentials, gathered in full. Returns it.
    pub async fn ice_restart_offer(&mut self) -> String {
        self.pc.restart_ice().await.expect("restart_ice");
        let offer = self.pc.create_offer(None).await.expect("restart offer");
        self.pc.set_local_description(offer).await.expect("local description");
        tokio::time::timeout(Duration::from_secs(5), self.gathered.recv())
            .await
            .expect("ICE gathering completes again");
        self.pc.local_description().await.expect("local description set").sdp
    }

    /// Waits for the next event, or fails the test after `limit`.
    pub async fn next_event(&mut self, limit: Duration) -> Event {
        tokio::time::timeout(limit, self.events.recv())
            .await
            .expect("an event arrives in time")
            .expect("event stream open")
    }

    /// Collects decoded video frames and audio for `span` after the first decoded frame.
    pub async fn collect(&mut self, first_frame_within: Duration, span: Duration) -> Received {
        let mut received = Received::default();
        let started = tokio::time::Instant::now();
        loop {
            let event = self.next_event(first_frame_within).await;
            match event {
                Event::Video(frame) => {
                    received.first_frame_after = Some(started.elapsed());
                    received.frames.push(frame);
                    break;
                }
                Event::Audio(pcm) => received.audio.extend(pcm),
                Event::State(state) => {
                    assert_ne!(state, RTCPeerConnectionState::Failed, "connection failed")
                }
                Event::VideoTrack(track) => received.video_track = Some(track),
            }
        }
        let deadline = tokio::time::Instant::now() + span;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match event {
                Event::Video(frame) => received.frames.push(frame),
                Event::Audio(pcm) => received.audio.extend(pcm),
                Event::VideoTrack(track) => received.video_track = Some(track),
                Event::State(_) => {}
            }
        }
        received
    }

    pub async fn close(&self) {
        let _ = self.pc.close().await;
    }
}

#[derive(Default)]
pub struct Received {
    pub video_track: Option<Arc<dyn TrackRemote>>,
    pub first_frame_after: Option<Duration>,
    pub frames: Vec<DecodedFrame>,
    pub audio: Vec<i16>,
}

impl Received {
    /// The tone's frequency from zero crossings, skipping the decoder's first 100 ms.
    pub fn tone_hz(&self) -> f64 {
        let samples = &self.audio[self.audio.len().min(4800)..];
        let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        crossings as f64 / 2.0 / (samples.len() as f64 / 48_000.0)
    }

    pub fn audio_peak(&self) -> i16 {
        self.audio.iter().map(|s| s.saturating_abs()).max().unwrap_or(0)
    }
}

/// A client's microphone: a 48 kHz mono tone, Opus-encoded in 20 ms packets as a browser sends.
pub struct Talk {
    track: Arc<TrackLocalStaticRTP>,
    /// In a mutex only so that a client holding it can be shared (the encoder is not `Sync`).
    encoder: Mutex<opus::Encoder>,
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
    /// Samples sent so far, so a tone stays continuous across calls.
    sample: u64,
}

impl Talk {
    fn new() -> Talk {
        let ssrc = rand::random();
        let codec = RTCRtpCodec {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            rtcp_feedback: vec![],
        };
        let track = Arc::new(TrackLocalStaticRTP::new(rtc::media_stream::MediaStreamTrack::new(
            "viewer".to_owned(),
            "viewer-mic".to_owned(),
            "viewer-mic".to_owned(),
            RtpCodecKind::Audio,
            vec![rtc::rtp_transceiver::rtp_sender::RTCRtpEncodingParameters {
                rtp_coding_parameters: rtc::rtp_transceiver::rtp_sender::RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        )));
        let encoder = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
            .expect("Opus encoder");
        Talk {
            track,
            encoder: Mutex::new(encoder),
            ssrc,
            sequence: rand::random(),
            timestamp: rand::random(),
            sample: 0,
        }
    }

    /// Sends one 20 ms packet of a `hz` tone at `peak` (0..1 of full scale; 0 is silence).
    /// Returns when it was handed to the connection.
    pub async fn send_packet(&mut self, hz: f64, peak: f64) {
        let amplitude = peak * f64::from(i16::MAX);
        let pcm: Vec<i16> = (0..960u64)
            .map(|i| {
                let t = (self.sample + i) as f64 / 48_000.0;
                (amplitude * (std::f64::consts::TAU * hz * t).sin()).round() as i16
            })
            .collect();
        self.sample += 960;
        let payload = self
            .encoder
            .get_mut()
            .expect("no panic while held")
            .encode_vec(&pcm, 4000)
            .expect("Opus encodes");
        let packet = rtc::rtp::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: self.sequence,
                timestamp: self.timestamp,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        };
        self.sequence = self.sequence.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(960);
        self.track.write_rtp(packet).await.expect("RTP written");
    }

    /// Sends `packets` packets of a tone, paced in real time as a microphone would.
    pub async fn send_tone(&mut self, hz: f64, peak: f64, packets: usize) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..packets {
            tick.tick().await;
            self.send_packet(hz, peak).await;
        }
    }
}

/// DELETE a session resource; returns the status code.
pub async fn delete(url: &str) -> u16 {
    delete_with_token(url, None).await
}

/// DELETE with `Authorization: Bearer <token>` when a token is given.
pub async fn delete_with_token(url: &str, token: Option<&str>) -> u16 {
    let authorization = token.map(|token| format!("Bearer {token}"));
    delete_with_authorization(url, authorization.as_deref()).await
}

/// DELETE with this `Authorization` header value, if any.
pub async fn delete_with_authorization(url: &str, authorization: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new().delete(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Raw POST for bad-input tests.
pub async fn post_raw(url: &str, content_type: &str, body: impl Into<Bytes>) -> (u16, String) {
    let response = reqwest::Client::new()
        .post(url)
        .header("Content-Type", content_type)
        .body(reqwest::Body::from(body.into()))
        .send()
        .await
        .expect("daemon answers");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}
