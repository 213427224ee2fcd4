//! Offer inspection and codec selection, done before the webrtc crate ever sees an offer.
//!
//! The webrtc crate's media engine matches H.264 by exact `profile_idc` and constraint-flag
//! byte, so a browser offering `42e01f` would not match the `42c01f` our encoder really
//! produces although both are Constrained Baseline. So we pick the payload types ourselves,
//! by profile *class* as libwebrtc does, and then rewrite the chosen payload type's
//! `profile-level-id` to ours ([`rewrite_h264_profile`]) so the engine matches it and the
//! answer advertises what the stream actually is.
//!
//! Everything here is pure and total: offers come from the network, so any text yields a
//! value or an [`SdpError`], never a panic.

use std::fmt;
use std::io::Cursor;

use rtc_sdp::SessionDescription;
use rtc_sdp::description::media::MediaDescription;
use rtc_sdp::direction::Direction;

/// An H.264 profile as RFC 6184 §8.1 and libwebrtc's `h264_profile_level_id` classify it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum H264Profile {
    /// Baseline with constraint_set1 (or Main/Extended constrained down to it): what
    /// openh264 produces and what every browser decodes.
    ConstrainedBaseline,
    /// Baseline without constraint_set1: it may use FMO, ASO and redundant slices, which
    /// WebRTC decoders do not implement.
    Baseline,
    /// Main profile.
    Main,
    /// High with constraint_set4 and constraint_set5 (no B-frames), as Safari offers.
    ConstrainedHigh,
    /// High profile.
    High,
    /// Any profile libwebrtc does not negotiate, or reserved bits set.
    Other,
}

impl fmt::Display for H264Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConstrainedBaseline => "Constrained Baseline",
            Self::Baseline => "Baseline",
            Self::Main => "Main",
            Self::ConstrainedHigh => "Constrained High",
            Self::High => "High",
            Self::Other => "an unrecognised profile",
        })
    }
}

/// The three bytes of an H.264 `profile-level-id` (RFC 6184 §8.1): the first three bytes of
/// the SPS after the NAL header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProfileLevelId {
    /// `profile_idc`: 0x42 Baseline, 0x4d Main, 0x58 Extended, 0x64 High, …
    pub profile_idc: u8,
    /// The constraint_set0..5 flags (most significant bit first) and two reserved zero bits.
    pub profile_iop: u8,
    /// `level_idc`: ten times the level, e.g. 0x1f for 3.1.
    pub level_idc: u8,
}

/// libwebrtc's table, checked in order: `profile_idc`, then a pattern over the constraint
/// byte where `x` matches either bit. The low four bits are always pinned, so reserved bits
/// set, or constraint_set4/5 where they do not belong, make a profile `Other`.
const PROFILE_PATTERNS: [(u8, &str, H264Profile); 8] = [
    (0x42, "x1xx0000", H264Profile::ConstrainedBaseline),
    (0x4d, "1xxx0000", H264Profile::ConstrainedBaseline),
    (0x58, "11xx0000", H264Profile::ConstrainedBaseline),
    (0x42, "x0xx0000", H264Profile::Baseline),
    (0x58, "10xx0000", H264Profile::Baseline),
    (0x4d, "0x0x0000", H264Profile::Main),
    (0x64, "00000000", H264Profile::High),
    (0x64, "00001100", H264Profile::ConstrainedHigh),
];

/// Whether `byte` matches a pattern such as `"x1xx0000"`, most significant bit first.
fn matches_bits(byte: u8, pattern: &str) -> bool {
    pattern.bytes().enumerate().all(|(i, p)| {
        let bit = (byte >> (7 - i)) & 1;
        p == b'x' || (p == b'1') == (bit == 1)
    })
}

impl ProfileLevelId {
    /// Parses exactly six hex digits, either case, as in `a=fmtp:… profile-level-id=42e01f`.
    pub fn parse(hex6: &str) -> Option<Self> {
        let b = hex6.as_bytes();
        // from_str_radix alone would also take a sign, so vet the digits first.
        if b.len() != 6 || !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let byte = |i: usize| u8::from_str_radix(&hex6[i..i + 2], 16).ok();
        Some(Self { profile_idc: byte(0)?, profile_iop: byte(2)?, level_idc: byte(4)? })
    }

    /// The six lower-case hex digits SDP carries.
    pub fn to_hex(&self) -> String {
        format!("{:02x}{:02x}{:02x}", self.profile_idc, self.profile_iop, self.level_idc)
    }

    /// The profile class, by libwebrtc's table: `42e01f`, `42c01f` and `4d801f` are all
    /// Constrained Baseline, for instance, while `42001f` is plain Baseline.
    pub fn profile(&self) -> H264Profile {
        PROFILE_PATTERNS
            .iter()
            .find(|&&(idc, bits, _)| {
                idc == self.profile_idc && matches_bits(self.profile_iop, bits)
            })
            .map_or(H264Profile::Other, |&(.., profile)| profile)
    }
}

impl fmt::Display for ProfileLevelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The payload types and sections chosen from an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferChoice {
    /// The H.264 payload type to send video with; pass it to [`rewrite_h264_profile`].
    pub video_pt: u8,
    /// The `a=mid` of the video section that payload type belongs to.
    pub video_mid: String,
    /// The one-byte header extension id (1-14, RFC 8285) under which that section offers the
    /// playout-delay extension ([`PLAYOUT_DELAY_URI`]), if it does: Chromium and Safari do.
    pub video_playout_delay_id: Option<u8>,
    /// Opus, when the offer lets us send it; video alone is still a valid session.
    pub audio: Option<AudioChoice>,
}

/// The Opus payload type and section chosen from an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioChoice {
    /// The `opus/48000/2` payload type.
    pub pt: u8,
    /// The `a=mid` of the audio section that payload type belongs to.
    pub mid: String,
    /// The section is `sendrecv` (or has no direction): the viewer offers to send its
    /// microphone, which talkback plays and which is otherwise declined with
    /// [`decline_viewer_audio`].
    pub viewer_sends: bool,
}

/// The RTP header extension by which a sender asks libwebrtc-based receivers to play frames
/// out within a delay range (<http://www.webrtc.org/experiments/rtp-hdrext/playout-delay>).
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

/// A WHEP viewer offers audio and video; talkback or a data channel would add one or two more.
pub const MAX_MEDIA_SECTIONS: usize = 8;
/// Browsers gather a handful of candidates per interface; hundreds mean abuse.
pub const MAX_CANDIDATES: usize = 64;

/// Why an offer cannot be answered. `Display` is short enough to be an HTTP error body.
#[derive(Debug, thiserror::Error)]
pub enum SdpError {
    /// The text is not SDP the parser accepts (or is empty).
    #[error("offer is not valid SDP: {0}")]
    Invalid(String),
    /// More media sections than a WHEP viewer needs; each would cost a transceiver.
    #[error("offer has {0} media sections; at most {MAX_MEDIA_SECTIONS} are accepted")]
    TooManySections(usize),
    /// More ICE candidates than any browser gathers; each would cost connectivity checks.
    #[error("offer has {0} ICE candidates; at most {MAX_CANDIDATES} are accepted")]
    TooManyCandidates(usize),
    /// No video section, or only rejected (port 0) ones.
    #[error("offer has no video m-line")]
    NoVideo,
    /// Every video section forbids us to send (WHEP viewers must offer `recvonly`).
    #[error("offer's video section is not receive-capable (direction {direction})")]
    VideoNotReceiving {
        /// The direction attribute of the first video section: `sendonly` or `inactive`.
        direction: &'static str,
    },
    /// A chosen section lacks `a=mid`, which BUNDLE and the webrtc crate require.
    #[error("offer's {kind} section has no a=mid")]
    MissingMid {
        /// `video` or `audio`.
        kind: &'static str,
    },
    /// The video section has no H.264 in packetization mode 1 (single NAL units cannot
    /// carry our frames, and mode 0 is what an absent parameter means).
    #[error("offer has no H.264 with packetization-mode=1 (offered: {offered})")]
    NoPacketizationMode1 {
        /// The video codecs the section does offer, comma-separated.
        offered: String,
    },
    /// H.264 mode 1 is offered, but only in profiles a decoder for ours need not accept.
    #[error("offer has no H.264 profile compatible with {ours} (offered: {offered})")]
    NoCompatibleProfile {
        /// The class of the profile our encoder produces.
        ours: H264Profile,
        /// The `profile-level-id`s offered with packetization mode 1, comma-separated.
        offered: String,
    },
}

impl SdpError {
    /// True when the offer is well-formed but asks for something we cannot send (answer
    /// 406/488-like); false when the offer itself is malformed (answer 400).
    pub fn is_unsupported_media(&self) -> bool {
        !matches!(
            self,
            Self::Invalid(_)
                | Self::MissingMid { .. }
                | Self::TooManySections(_)
                | Self::TooManyCandidates(_)
        )
    }
}

/// Picks the H.264 payload type (and Opus, if any) to answer `offer_sdp` with, given the
/// profile our encoder really produces.
///
/// Video comes from the first non-rejected video section that lets us send; among its
/// `H264/90000` payload types with `packetization-mode=1`, the first of the same profile
/// class as `ours` wins, else the first merely compatible one (a Constrained Baseline
/// stream is a valid Baseline stream). Audio is the first `opus/48000/2` in the first
/// such audio section offering it.
pub fn choose_codecs(offer_sdp: &str, ours: &ProfileLevelId) -> Result<OfferChoice, SdpError> {
    let desc = parse(offer_sdp)?;
    if desc.media_descriptions.len() > MAX_MEDIA_SECTIONS {
        return Err(SdpError::TooManySections(desc.media_descriptions.len()));
    }
    let candidates = desc
        .media_descriptions
        .iter()
        .flat_map(|m| m.attributes.iter())
        .filter(|a| a.key == "candidate")
        .count();
    if candidates > MAX_CANDIDATES {
        return Err(SdpError::TooManyCandidates(candidates));
    }
    let session_direction = direction_of(&desc.attributes);
    let live = |kind: &'static str| {
        desc.media_descriptions
            .iter()
            .filter(move |m| m.media_name.media == kind && m.media_name.port.value != 0)
    };

    let mut videos = live("video").peekable();
    let Some(first_video) = videos.peek() else {
        return Err(SdpError::NoVideo);
    };
    let first_video_direction = media_direction(first_video, &session_direction);
    let Some(video) = videos.find(|m| lets_us_send(&media_direction(m, &session_direction))) else {
        return Err(SdpError::VideoNotReceiving {
            direction: direction_name(&first_video_direction),
        });
    };
    let video_pt = choose_h264(&Section::new(video), ours)?;
    let video_mid = mid(video).ok_or(SdpError::MissingMid { kind: "video" })?;
    let video_playout_delay_id = one_byte_extension_id(video, PLAYOUT_DELAY_URI);

    let audio = live("audio")
        .filter(|m| lets_us_send(&media_direction(m, &session_direction)))
        .find_map(|m| {
            let section = Section::new(m);
            section.payload_types().find(|&pt| section.is_opus(pt)).map(|pt| (m, pt))
        });
    let audio = match audio {
        Some((m, pt)) => Some(AudioChoice {
            pt,
            mid: mid(m).ok_or(SdpError::MissingMid { kind: "audio" })?,
            viewer_sends: matches!(
                media_direction(m, &session_direction),
                Direction::SendRecv | Direction::Unspecified
            ),
        }),
        None => None,
    };

    Ok(OfferChoice { video_pt, video_mid, video_playout_delay_id, audio })
}

/// The id of `uri` in `m`'s `a=extmap:<id>[/<direction>] <uri>` lines, when it fits a one-byte
/// header (1-14) and its direction lets us send it. Anything else (two-byte ids, a malformed
/// line, a recvonly mapping) reads as not offered: the extension is an optimisation.
fn one_byte_extension_id(m: &MediaDescription, uri: &str) -> Option<u8> {
    m.attributes.iter().filter(|a| a.key == "extmap").find_map(|a| {
        let (id, rest) = a.value.as_deref()?.split_once(|c: char| c.is_ascii_whitespace())?;
        // Extension attributes may follow the URI.
        let offered_uri = rest.split_ascii_whitespace().next()?;
        if offered_uri != uri {
            return None;
        }
        let (id, direction) = id.split_once('/').unwrap_or((id, "sendrecv"));
        let id: u8 = id.parse().ok().filter(|id| (1..=14).contains(id))?;
        matches!(direction, "sendrecv" | "recvonly").then_some(id)
    })
}

/// Returns `offer_sdp` with the `profile-level-id` of payload type `pt` set to `ours`.
///
/// Only `a=fmtp:<pt>` lines in video sections where `pt` is H.264 change, and in them only
/// the parameter's value (appended when absent); every other byte, line endings included,
/// is kept, so the offer's ICE credentials, fingerprint and ordering reach the webrtc crate
/// untouched. Text that is not SDP comes back unchanged.
pub fn rewrite_h264_profile(offer_sdp: &str, pt: u8, ours: &ProfileLevelId) -> String {
    // The rtpmap may follow the fmtp (Firefox sorts attributes), so find the sections
    // where `pt` is H.264 before touching anything.
    let mut h264_sections = Vec::new();
    let mut section: Option<usize> = None;
    let mut is_video = false;
    for line in offer_sdp.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            section = Some(section.map_or(0, |s| s + 1));
            is_video = m.split_whitespace().next() == Some("video");
        } else if let (Some(s), true) = (section, is_video)
            && let Some((line_pt, params)) = pt_attribute(line, "a=rtpmap:")
            && line_pt == pt
            && codec_name(params).eq_ignore_ascii_case("H264")
            && h264_sections.last() != Some(&s)
        {
            h264_sections.push(s);
        }
    }

    let hex = ours.to_hex();
    let mut out = String::with_capacity(offer_sdp.len() + hex.len() + 18);
    let mut section: Option<usize> = None;
    for line in offer_sdp.split_inclusive('\n') {
        let body = line.trim_end_matches(['\r', '\n']);
        let ending = &line[body.len()..];
        if body.starts_with("m=") {
            section = Some(section.map_or(0, |s| s + 1));
        }
        let in_h264_section = section.is_some_and(|s| h264_sections.contains(&s));
        match pt_attribute(body, "a=fmtp:") {
            // An fmtp line without parameters is skipped by the parser (see `Section::new`);
            // giving it one would make it the line that counts, hiding the real parameters.
            Some((line_pt, params))
                if in_h264_section && line_pt == pt && !params.trim().is_empty() =>
            {
                let params_at = body.len() - params.len();
                out.push_str(&body[..params_at]);
                out.push_str(&with_profile_level_id(params, &hex));
                out.push_str(ending);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// Returns `offer_sdp` with the audio section `mid` made `recvonly`, so the webrtc crate answers
/// `sendonly` and receives nothing from the viewer (talkback off). Every other byte is kept.
///
/// The crate's transceivers are `sendrecv` and would otherwise accept whatever a `sendrecv`
/// offer sends; a direction attribute is added when the section has none (the default, and a
/// session-level one, are `sendrecv`).
pub fn decline_viewer_audio(offer_sdp: &str, mid: &str) -> String {
    let mut out = String::with_capacity(offer_sdp.len() + 12);
    let sections =
        offer_sdp.split_inclusive('\n').fold(Vec::<Vec<&str>>::new(), |mut acc, line| {
            if line.starts_with("m=") || acc.is_empty() {
                acc.push(Vec::new());
            }
            acc.last_mut().expect("pushed above").push(line);
            acc
        });
    let body = |line: &str| line.trim_end_matches(['\r', '\n']).to_owned();
    for section in sections {
        let is_it = section.first().is_some_and(|l| l.starts_with("m=audio"))
            && section.iter().any(|l| body(l).strip_prefix("a=mid:") == Some(mid));
        if !is_it {
            section.iter().for_each(|line| out.push_str(line));
            continue;
        }
        let ending = if section[0].ends_with("\r\n") { "\r\n" } else { "\n" };
        let has_direction = section.iter().any(|l| {
            matches!(body(l).as_str(), "a=sendrecv" | "a=sendonly" | "a=recvonly" | "a=inactive")
        });
        for line in section {
            match body(line).as_str() {
                "a=sendrecv" => {
                    out.push_str("a=recvonly");
                    out.push_str(ending);
                }
                text if !has_direction && text.strip_prefix("a=mid:") == Some(mid) => {
                    out.push_str(line);
                    out.push_str("a=recvonly");
                    out.push_str(ending);
                }
                _ => out.push_str(line),
            }
        }
    }
    out
}

/// Sets `profile-level-id` in an fmtp parameter list, keeping everything around the value.
fn with_profile_level_id(params: &str, hex: &str) -> String {
    let mut start = 0;
    for segment in params.split(';') {
        let end = start + segment.len();
        if let Some((key, value)) = segment.split_once('=')
            && key.trim().eq_ignore_ascii_case("profile-level-id")
        {
            let value_start = start + key.len() + 1;
            let lead = value.len() - value.trim_start().len();
            let trail = value.len() - value.trim_end().len();
            return [&params[..value_start + lead], hex, &params[end - trail..]].concat();
        }
        start = end + 1;
    }
    let trimmed = params.trim_end();
    let separator = if trimmed.is_empty() || trimmed.ends_with(';') { "" } else { ";" };
    [trimmed, separator, "profile-level-id=", hex, &params[trimmed.len()..]].concat()
}

/// Splits `a=<kind>:<pt> <rest>` into the payload type and `<rest>` (trimmed at the front);
/// the rtc parser, like this, takes everything up to the first whitespace as the type.
fn pt_attribute<'a>(line: &'a str, prefix: &str) -> Option<(u8, &'a str)> {
    let rest = line.strip_prefix(prefix)?;
    let (pt, params) = rest.split_once(|c: char| c.is_ascii_whitespace())?;
    Some((pt.parse().ok()?, params.trim_start()))
}

/// The encoding name of an rtpmap's `<name>/<clock>[/<channels>]`.
fn codec_name(encoding: &str) -> &str {
    encoding.split('/').next().unwrap_or_default().trim()
}

fn parse(offer_sdp: &str) -> Result<SessionDescription, SdpError> {
    if offer_sdp.trim().is_empty() {
        return Err(SdpError::Invalid("offer is empty".into()));
    }
    // The parser is third-party code fed untrusted network input; a bug there must cost
    // one request, not the task serving it.
    let parsed = std::panic::catch_unwind(|| {
        SessionDescription::unmarshal(&mut Cursor::new(offer_sdp.as_bytes()))
    });
    match parsed {
        Ok(Ok(desc)) => Ok(desc),
        Ok(Err(e)) => Err(SdpError::Invalid(printable(&e.to_string(), 160))),
        Err(_) => Err(SdpError::Invalid("parser failed".into())),
    }
}

/// The first direction attribute in a list, as the webrtc crate reads it.
fn direction_of(attributes: &[rtc_sdp::description::common::Attribute]) -> Direction {
    attributes
        .iter()
        .map(|a| Direction::new(&a.key))
        .find(|d| *d != Direction::Unspecified)
        .unwrap_or_default()
}

/// A media-level direction overrides the session-level one (RFC 8866 §6.7).
fn media_direction(m: &MediaDescription, session: &Direction) -> Direction {
    match direction_of(&m.attributes) {
        Direction::Unspecified => session.clone(),
        d => d,
    }
}

/// The offer's direction is the offerer's view: we may send unless it refuses to receive.
fn lets_us_send(d: &Direction) -> bool {
    matches!(d, Direction::RecvOnly | Direction::SendRecv | Direction::Unspecified)
}

fn direction_name(d: &Direction) -> &'static str {
    match d {
        Direction::SendOnly => "sendonly",
        Direction::Inactive => "inactive",
        Direction::RecvOnly => "recvonly",
        Direction::SendRecv => "sendrecv",
        Direction::Unspecified => "unspecified",
    }
}

fn mid(m: &MediaDescription) -> Option<String> {
    m.attribute("mid").flatten().map(str::to_owned).filter(|mid| !mid.is_empty())
}

/// One codec's rtpmap and fmtp, as written in a media section.
#[derive(Default, Clone, Copy)]
struct Codec<'a> {
    /// `<name>/<clock>[/<channels>]`, present only when the section has an rtpmap for it.
    encoding: Option<&'a str>,
    fmtp: Option<&'a str>,
}

/// A media section's codecs indexed by payload type, built in one pass so that hostile
/// offers with thousands of formats cost linear time.
struct Section<'a> {
    formats: &'a [String],
    codecs: Vec<Codec<'a>>,
}

impl<'a> Section<'a> {
    fn new(m: &'a MediaDescription) -> Self {
        let mut codecs = vec![Codec::default(); 256];
        for a in &m.attributes {
            let Some(value) = a.value.as_deref() else {
                continue;
            };
            let is_rtpmap = match a.key.as_str() {
                "rtpmap" => true,
                "fmtp" => false,
                _ => continue,
            };
            let Some((pt, rest)) = value
                .split_once(|c: char| c.is_ascii_whitespace())
                .and_then(|(pt, rest)| Some((pt.parse::<u8>().ok()?, rest.trim())))
            else {
                continue;
            };
            // The first line for a payload type wins, as in the rtc crate's codec merge.
            let codec = &mut codecs[usize::from(pt)];
            let slot = if is_rtpmap { &mut codec.encoding } else { &mut codec.fmtp };
            slot.get_or_insert(rest);
        }
        Self { formats: &m.media_name.formats, codecs }
    }

    /// The m-line's payload types, in the offerer's order of preference.
    fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    fn codec(&self, pt: u8) -> Codec<'a> {
        self.codecs[usize::from(pt)]
    }

    /// (name, clock rate, channels) of a payload type with an rtpmap.
    fn encoding(&self, pt: u8) -> Option<(&'a str, Option<u32>, Option<&'a str>)> {
        let mut parts = self.codec(pt).encoding?.split('/');
        let name = parts.next()?.trim();
        let clock = parts.next().and_then(|c| c.trim().parse().ok());
        Some((name, clock, parts.next().map(str::trim)))
    }

    fn is_opus(&self, pt: u8) -> bool {
        matches!(self.encoding(pt), Some((name, Some(48_000), Some("2")))
            if name.eq_ignore_ascii_case("opus"))
    }

    fn is_h264(&self, pt: u8) -> bool {
        matches!(self.encoding(pt), Some((name, Some(90_000), _))
            if name.eq_ignore_ascii_case("H264"))
    }

    /// An fmtp parameter's value; names are case-insensitive (RFC 6838 media type
    /// parameters), and the first occurrence wins, as in the rtc crate.
    fn fmtp_param(&self, pt: u8, key: &str) -> Option<&'a str> {
        self.codec(pt).fmtp?.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then_some(v.trim())
        })
    }
}

/// How well an offered profile suits a stream in ours: lower is better, `None` unusable.
fn compatibility(ours: &ProfileLevelId, offered: &ProfileLevelId) -> Option<u8> {
    use H264Profile::*;
    match (ours.profile(), offered.profile()) {
        (Other, Other) => (ours.profile_idc == offered.profile_idc
            && ours.profile_iop == offered.profile_iop)
            .then_some(0),
        (a, b) if a == b => Some(0),
        // The constrained profiles are subsets of their parents, so a parent decoder copes.
        (ConstrainedBaseline, Baseline) | (ConstrainedHigh, High) => Some(1),
        _ => None,
    }
}

fn choose_h264(section: &Section<'_>, ours: &ProfileLevelId) -> Result<u8, SdpError> {
    let mode1: Vec<u8> = section
        .payload_types()
        .filter(|&pt| {
            section.is_h264(pt) && section.fmtp_param(pt, "packetization-mode") == Some("1")
        })
        .collect();
    if mode1.is_empty() {
        let names = section.payload_types().filter_map(|pt| section.encoding(pt)).map(|e| e.0);
        let names = names.filter(|n| !is_repair_codec(n));
        return Err(SdpError::NoPacketizationMode1 { offered: summarise(names) });
    }

    // RFC 6184 §8.1: no profile-level-id means Baseline at level 1.
    let default = ProfileLevelId { profile_idc: 0x42, profile_iop: 0x00, level_idc: 0x0a };
    let best = mode1
        .iter()
        .filter_map(|&pt| {
            let plid = match section.fmtp_param(pt, "profile-level-id") {
                None => Some(default),
                Some(hex) => ProfileLevelId::parse(hex),
            };
            Some((compatibility(ours, &plid?)?, pt))
        })
        // min_by_key keeps the first of equals, i.e. the offerer's preference.
        .min_by_key(|&(rank, _)| rank);
    match best {
        Some((_, pt)) => Ok(pt),
        None => {
            let offered = mode1
                .iter()
                .map(|&pt| section.fmtp_param(pt, "profile-level-id").unwrap_or("(absent)"));
            Err(SdpError::NoCompatibleProfile { ours: ours.profile(), offered: summarise(offered) })
        }
    }
}

/// Codecs that only protect or repeat another codec, so naming them in an error misleads.
fn is_repair_codec(name: &str) -> bool {
    ["rtx", "red", "ulpfec", "flexfec", "flexfec-03"].iter().any(|r| name.eq_ignore_ascii_case(r))
}

/// "A, B, C" of distinct items, bounded so a hostile offer cannot bloat an error body.
fn summarise<'a>(items: impl Iterator<Item = &'a str>) -> String {
    const MAX_ITEMS: usize = 8;
    let mut seen: Vec<&str> = Vec::new();
    let mut more = false;
    for item in items {
        if seen.iter().any(|s| s.eq_ignore_ascii_case(item)) {
            continue;
        }
        if seen.len() == MAX_ITEMS {
            more = true;
            break;
        }
        seen.push(item);
    }
    if seen.is_empty() {
        return "none".into();
    }
    let mut out: Vec<String> = seen.iter().map(|s| printable(s, 24)).collect();
    if more {
        out.push("…".into());
    }
    out.join(", ")
}

/// Offer text echoed into an error body: printable ASCII only, at most `max` characters.
fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME: &str = include_str!("../../tests/fixtures/offers/chrome.sdp");
    const FIREFOX: &str = include_str!("../../tests/fixtures/offers/firefox.sdp");
    const SAFARI: &str = include_str!("../../tests/fixtures/offers/safari.sdp");
    const VP8_ONLY: &str = include_str!("../../tests/fixtures/offers/vp8_only.sdp");

    /// What openh264 emits.
    const OURS: ProfileLevelId =
        ProfileLevelId { profile_idc: 0x42, profile_iop: 0xc0, level_idc: 0x1f };

    fn choice(video_pt: u8, video_mid: &str, audio: Option<(u8, &str)>) -> OfferChoice {
        OfferChoice {
            video_pt,
            video_mid: video_mid.into(),
            video_playout_delay_id: None,
            audio: audio.map(|(pt, mid)| AudioChoice { pt, mid: mid.into(), viewer_sends: false }),
        }
    }

    /// The fixtures' video sections offer the playout-delay extension: Chromium and Safari as
    /// id 5, Firefox as id 6 (recvonly).
    fn with_playout_delay(mut choice: OfferChoice, id: u8) -> OfferChoice {
        choice.video_playout_delay_id = Some(id);
        choice
    }

    fn sending(mut choice: OfferChoice) -> OfferChoice {
        if let Some(audio) = choice.audio.as_mut() {
            audio.viewer_sends = true;
        }
        choice
    }

    #[test]
    fn a_viewer_offering_its_microphone_is_seen_and_can_be_declined() {
        // Chrome's audio section comes first.
        let sendrecv = CHROME.replacen("a=recvonly", "a=sendrecv", 1);
        let choice = choose_codecs(&sendrecv, &OURS).unwrap();
        assert_eq!(
            choice,
            with_playout_delay(sending(self::choice(106, "1", Some((111, "0")))), 5)
        );
        let declined = decline_viewer_audio(&sendrecv, "0");
        assert_eq!(declined, CHROME, "only the direction line changed back");
        assert_eq!(
            choose_codecs(&declined, &OURS).unwrap(),
            with_playout_delay(self::choice(106, "1", Some((111, "0"))), 5)
        );

        let absent = CHROME.replacen("a=recvonly\r\n", "", 1);
        assert!(choose_codecs(&absent, &OURS).unwrap().audio.unwrap().viewer_sends);
        let declined = decline_viewer_audio(&absent, "0");
        assert_eq!(declined.lines().count(), absent.lines().count() + 1, "one line added");
        assert!(declined.contains("a=mid:0\r\na=recvonly\r\n"), "{declined}");
        assert!(!choose_codecs(&declined, &OURS).unwrap().audio.unwrap().viewer_sends);
        assert_eq!(decline_viewer_audio(CHROME, "0"), CHROME, "recvonly stays");
        assert_eq!(decline_viewer_audio(&sendrecv, "9"), sendrecv, "no such section");
    }

    /// Fixtures must stay CRLF (a careless editor or autocrlf would hide line-ending bugs).
    #[test]
    fn fixtures_are_crlf_sdp() {
        for sdp in [CHROME, FIREFOX, SAFARI, VP8_ONLY] {
            assert!(sdp.starts_with("v=0\r\n"));
            assert!(sdp.ends_with("\r\n"));
            assert_eq!(sdp.matches('\n').count(), sdp.matches("\r\n").count());
        }
    }

    #[test]
    fn chrome_prefers_constrained_baseline_over_baseline() {
        assert_eq!(
            choose_codecs(CHROME, &OURS).unwrap(),
            with_playout_delay(choice(106, "1", Some((111, "0"))), 5)
        );
    }

    #[test]
    fn firefox_picks_mode_1_h264_and_opus() {
        assert_eq!(
            choose_codecs(FIREFOX, &OURS).unwrap(),
            with_playout_delay(choice(126, "1", Some((109, "0"))), 6)
        );
    }

    #[test]
    fn safari_skips_constrained_high() {
        assert_eq!(
            choose_codecs(SAFARI, &OURS).unwrap(),
            with_playout_delay(choice(98, "0", Some((111, "1"))), 5)
        );
    }

    #[test]
    fn falls_back_to_baseline_in_offer_order() {
        let offer = CHROME.replace("profile-level-id=42e01f", "profile-level-id=640c1f");
        assert_eq!(choose_codecs(&offer, &OURS).unwrap().video_pt, 102);
    }

    #[test]
    fn vp8_only_names_what_was_offered() {
        let err = choose_codecs(VP8_ONLY, &OURS).unwrap_err();
        assert!(err.is_unsupported_media());
        assert_eq!(
            err.to_string(),
            "offer has no H.264 with packetization-mode=1 (offered: VP8, VP9, AV1)"
        );
    }

    #[test]
    fn packetization_mode_0_or_absent_is_refused() {
        // Firefox's 97 has no packetization-mode at all, which means mode 0.
        let offer = FIREFOX.replace("packetization-mode=1", "packetization-mode=0");
        let err = choose_codecs(&offer, &OURS).unwrap_err();
        assert!(matches!(err, SdpError::NoPacketizationMode1 { .. }), "{err}");
        assert!(err.is_unsupported_media());
        assert_eq!(
            err.to_string(),
            "offer has no H.264 with packetization-mode=1 (offered: VP8, VP9, H264, AV1)"
        );
    }

    #[test]
    fn only_incompatible_profiles_are_refused() {
        let offer = SAFARI.replace("profile-level-id=42e01f", "profile-level-id=640c1f");
        let err = choose_codecs(&offer, &OURS).unwrap_err();
        assert!(err.is_unsupported_media());
        assert_eq!(
            err.to_string(),
            "offer has no H.264 profile compatible with Constrained Baseline (offered: 640c1f)"
        );
    }

    #[test]
    fn video_we_may_not_send_on_is_refused() {
        // Safari's video section comes first, so replacen hits it.
        for direction in ["sendonly", "inactive"] {
            let offer = SAFARI.replacen("a=recvonly", &format!("a={direction}"), 1);
            let err = choose_codecs(&offer, &OURS).unwrap_err();
            assert!(err.is_unsupported_media());
            assert_eq!(
                err.to_string(),
                format!("offer's video section is not receive-capable (direction {direction})")
            );
        }
    }

    #[test]
    fn sendrecv_and_absent_direction_are_fine() {
        let sendrecv = CHROME.replace("a=recvonly", "a=sendrecv");
        let expected = with_playout_delay(sending(choice(106, "1", Some((111, "0")))), 5);
        assert_eq!(choose_codecs(&sendrecv, &OURS).unwrap(), expected);
        let absent = CHROME.replace("a=recvonly\r\n", "");
        assert_eq!(choose_codecs(&absent, &OURS).unwrap(), expected);
    }

    #[test]
    fn session_level_direction_applies_to_sections_without_one() {
        let offer = CHROME.replace("a=recvonly\r\n", "").replacen(
            "a=extmap-allow-mixed\r\n",
            "a=extmap-allow-mixed\r\na=inactive\r\n",
            1,
        );
        assert!(matches!(
            choose_codecs(&offer, &OURS),
            Err(SdpError::VideoNotReceiving { direction: "inactive" })
        ));
    }

    #[test]
    fn audio_is_optional() {
        let video_only = &SAFARI[..SAFARI.find("m=audio").unwrap()];
        assert_eq!(
            choose_codecs(video_only, &OURS).unwrap(),
            with_playout_delay(choice(98, "0", None), 5)
        );

        let no_opus = FIREFOX.replace(" opus/", " speex/");
        let firefox_video_only = with_playout_delay(choice(126, "1", None), 6);
        assert_eq!(choose_codecs(&no_opus, &OURS).unwrap(), firefox_video_only);

        let sendonly_audio = FIREFOX.replacen("a=recvonly", "a=sendonly", 1);
        assert_eq!(choose_codecs(&sendonly_audio, &OURS).unwrap(), firefox_video_only);
    }

    #[test]
    fn playout_delay_is_found_only_where_we_may_send_it_in_a_one_byte_header() {
        let line = "a=extmap:5 http://www.webrtc.org/experiments/rtp-hdrext/playout-delay\r\n";
        assert!(CHROME.contains(line));
        let id = |offer: &str| choose_codecs(offer, &OURS).unwrap().video_playout_delay_id;
        let with = |replacement: &str| CHROME.replace(line, replacement);
        assert_eq!(id(&with("")), None, "not offered");
        assert_eq!(id(&with(&line.replace(":5 ", ":14 "))), Some(14));
        assert_eq!(id(&with(&line.replace(":5 ", ":5/recvonly "))), Some(5));
        assert_eq!(id(&with(&line.replace(":5 ", ":5/sendrecv "))), Some(5));
        for refused in [":15 ", ":0 ", ":5/sendonly ", ":5/inactive ", ":x ", ":256 "] {
            assert_eq!(id(&with(&line.replace(":5 ", refused))), None, "{refused}");
        }
        let with_attributes = line.replace("\r\n", " something\r\n");
        assert_eq!(id(&with(&with_attributes)), Some(5), "extension attributes after the URI");
        let other_uri = line.replace("playout-delay", "playout-delayed");
        assert_eq!(id(&with(&other_uri)), None);
        // Only the chosen video section counts: Chrome's audio section has no such line.
        let in_audio_only = with("").replacen("a=mid:0\r\n", &format!("a=mid:0\r\n{line}"), 1);
        assert_eq!(id(&in_audio_only), None);
    }

    #[test]
    fn codec_names_are_case_insensitive() {
        let offer = CHROME.replace("H264/", "h264/").replace("opus/", "OPUS/");
        assert_eq!(
            choose_codecs(&offer, &OURS).unwrap(),
            with_playout_delay(choice(106, "1", Some((111, "0"))), 5)
        );
        let offer = CHROME.replace(
            "packetization-mode=1;profile-level-id=42e01f",
            "PACKETIZATION-MODE=1;Profile-Level-Id=42E01F",
        );
        assert_eq!(choose_codecs(&offer, &OURS).unwrap().video_pt, 106);
    }

    #[test]
    fn rejected_video_sections_are_skipped() {
        let rejected = "m=video 0 UDP/TLS/RTP/SAVPF 106\r\na=mid:9\r\na=rtpmap:106 H264/90000\r\n\
                        a=fmtp:106 packetization-mode=1;profile-level-id=42e01f\r\n";
        let at = SAFARI.find("m=video").unwrap();
        let offer = format!("{}{rejected}{}", &SAFARI[..at], &SAFARI[at..]);
        assert_eq!(choose_codecs(&offer, &OURS).unwrap().video_mid, "0");

        let only_rejected = CHROME.replace("m=video 9 ", "m=video 0 ");
        let err = choose_codecs(&only_rejected, &OURS).unwrap_err();
        assert!(matches!(err, SdpError::NoVideo));
        assert_eq!(err.to_string(), "offer has no video m-line");
    }

    #[test]
    fn missing_mid_is_malformed() {
        let offer = SAFARI.replace("a=mid:0\r\n", "");
        let err = choose_codecs(&offer, &OURS).unwrap_err();
        assert!(!err.is_unsupported_media());
        assert_eq!(err.to_string(), "offer's video section has no a=mid");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let half = &CHROME[..CHROME.len() / 2];
        let inputs = [
            "",
            "\r\n \r\n",
            "hello world",
            "v=0\r\n",
            "v=1\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- x y IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video\r\n",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 99999 RTP/AVP 96\r\n",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=vidéo 9 RTP/AVP 96\r\n",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\né=x\r\n",
            "\u{feff}v=0\r\n",
            "=\r\n==\r\na=\r\n",
            half,
        ];
        for input in inputs {
            let err = choose_codecs(input, &OURS).unwrap_err();
            assert!(err.to_string().len() < 300, "{err}");
        }
        let err = choose_codecs("", &OURS).unwrap_err();
        assert!(!err.is_unsupported_media());
        assert!(err.to_string().starts_with("offer is not valid SDP: "), "{err}");
    }

    #[test]
    fn no_prefix_of_an_offer_panics() {
        for end in (0..=CHROME.len()).filter(|&i| CHROME.is_char_boundary(i)) {
            let prefix = &CHROME[..end];
            let result = choose_codecs(prefix, &OURS);
            // The parser accepts a cut mid-value but not mid-type ("a" without "="), so
            // what a prefix yields depends on both where it ends and what it contains:
            // audio comes first, and 106's fmtp line is the last thing 106 needs.
            if !prefix.contains("m=video") {
                assert!(result.is_err(), "prefix of {end} bytes: {result:?}");
            }
            let has_106 = prefix.contains(
                "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
            );
            match result {
                Ok(choice) if has_106 => assert_eq!(choice.video_pt, 106, "prefix of {end} bytes"),
                Err(SdpError::Invalid(_)) | Ok(_) => {}
                Err(e) => assert!(!has_106, "prefix of {end} bytes: {e}"),
            }
            let _ = rewrite_h264_profile(prefix, 106, &OURS);
        }
    }

    #[test]
    fn mutated_offers_never_panic() {
        // A tiny fixed-seed LCG: reproducible, and no dev-dependency for one test.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % bound.max(1)
        };
        let alphabet = b"=:;/ \r\n0123456789av-mx\x00\xff";
        for sdp in [CHROME, FIREFOX, SAFARI] {
            for _ in 0..300 {
                let mut bytes = sdp.as_bytes().to_vec();
                for _ in 0..1 + next(8) {
                    let i = next(bytes.len());
                    match next(3) {
                        0 => bytes[i] = alphabet[next(alphabet.len())],
                        1 => {
                            bytes.remove(i);
                        }
                        _ => bytes.insert(i, alphabet[next(alphabet.len())]),
                    }
                }
                let text = String::from_utf8_lossy(&bytes);
                let _ = choose_codecs(&text, &OURS);
                let _ = rewrite_h264_profile(&text, 106, &OURS);
            }
        }
    }

    #[test]
    fn hundreds_of_m_lines() {
        let mut offer = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
        for i in 0..299 {
            offer.push_str(&format!(
                "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:{i}\r\na=sendonly\r\n\
                 a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"
            ));
        }
        offer.push_str(
            "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:last\r\na=recvonly\r\n\
             a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n",
        );
        assert!(matches!(choose_codecs(&offer, &OURS), Err(SdpError::TooManySections(300))));

        let mut formats = String::new();
        let mut attributes = String::new();
        for pt in 0..=255u16 {
            formats.push_str(&format!(" {pt}"));
            attributes.push_str(&format!("a=rtpmap:{pt} X{pt}/90000\r\n"));
        }
        let many_codecs = format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF{formats}\r\na=mid:0\r\n{attributes}"
        );
        let err = choose_codecs(&many_codecs, &OURS).unwrap_err();
        assert_eq!(
            err.to_string(),
            "offer has no H.264 with packetization-mode=1 (offered: X0, X1, X2, X3, X4, X5, X6, X7, …)"
        );
    }

    #[test]
    fn huge_offer_is_handled() {
        let padding = "a=x-padding:0123456789abcdef0123456789abcdef\r\n".repeat(50_000);
        let offer = CHROME.replacen("a=mid:1\r\n", &format!("a=mid:1\r\n{padding}"), 1);
        assert_eq!(choose_codecs(&offer, &OURS).unwrap().video_pt, 106);
    }

    #[test]
    fn hostile_text_is_not_echoed_verbatim() {
        let evil = format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm={}\u{7}<b> 9 X 1\r\n",
            "v".repeat(10_000)
        );
        let msg = choose_codecs(&evil, &OURS).unwrap_err().to_string();
        assert!(msg.len() < 300 && !msg.contains('\u{7}'), "{msg}");
    }

    fn changed_lines<'a>(before: &'a str, after: &'a str) -> Vec<(&'a str, &'a str)> {
        assert_eq!(before.split_inclusive('\n').count(), after.split_inclusive('\n').count());
        before
            .split_inclusive('\n')
            .zip(after.split_inclusive('\n'))
            .filter(|(b, a)| b != a)
            .collect()
    }

    #[test]
    fn rewrite_leaves_an_empty_fmtp_line_alone() {
        // Found by the offer fuzz target: an earlier, empty fmtp line for the chosen type must
        // not become the one the parser uses.
        let ours = ProfileLevelId { profile_idc: 0x42, profile_iop: 0xc0, level_idc: 0x1f };
        let offer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
             a=fmtp:98 \r\na=rtpmap:98 H264/90000\r\n\
             a=fmtp:98 packetization-mode=1;profile-level-id=42e01f\r\n";
        let choice = choose_codecs(offer, &ours).expect("usable");
        let rewritten = rewrite_h264_profile(offer, choice.video_pt, &ours);
        assert!(rewritten.contains("a=fmtp:98 \r\n"), "{rewritten}");
        assert!(rewritten.contains("packetization-mode=1;profile-level-id=42c01f"), "{rewritten}");
        assert_eq!(choose_codecs(&rewritten, &ours).expect("still usable").video_pt, 98);
    }

    #[test]
    fn rewrite_touches_only_the_chosen_fmtp_value() {
        let cases = [
            (
                CHROME,
                106,
                "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
                "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42c01f\r\n",
            ),
            (
                FIREFOX,
                126,
                "a=fmtp:126 profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1\r\n",
                "a=fmtp:126 profile-level-id=42c01f;level-asymmetry-allowed=1;packetization-mode=1\r\n",
            ),
            (
                SAFARI,
                98,
                "a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
                "a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42c01f\r\n",
            ),
        ];
        for (offer, pt, before, after) in cases {
            let chosen = choose_codecs(offer, &OURS).unwrap();
            assert_eq!(chosen.video_pt, pt);
            let rewritten = rewrite_h264_profile(offer, pt, &OURS);
            assert_eq!(changed_lines(offer, &rewritten), [(before, after)]);
            assert_eq!(choose_codecs(&rewritten, &OURS).unwrap(), chosen);
            // The webrtc crate must see the new value when it parses the offer.
            let desc =
                SessionDescription::unmarshal(&mut Cursor::new(rewritten.as_bytes())).unwrap();
            let video =
                desc.media_descriptions.iter().find(|m| m.media_name.media == "video").unwrap();
            assert!(video.codecs()[&pt].fmtp.contains("profile-level-id=42c01f"));
        }
    }

    /// The point of the rewrite: unrewritten, the rtc engine falls back to matching H.264 by
    /// MIME type alone and answers every H.264 payload type it was offered (mode 0 and High
    /// included); rewritten, it matches ours exactly and answers just the chosen one.
    #[test]
    fn rewritten_offer_makes_the_rtc_engine_answer_our_payload_type() {
        use rtc::media_stream::MediaStreamTrack;
        use rtc::peer_connection::RTCPeerConnectionBuilder;
        use rtc::peer_connection::configuration::media_engine::MediaEngine;
        use rtc::peer_connection::sdp::RTCSessionDescription;
        use rtc::rtp_transceiver::rtp_sender::{
            RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
            RtpCodecKind,
        };
        use std::time::Instant;

        let codec = |mime: &str, clock_rate, channels, fmtp: &str| RTCRtpCodec {
            mime_type: mime.into(),
            clock_rate,
            channels,
            sdp_fmtp_line: fmtp.into(),
            rtcp_feedback: vec![],
        };
        let fmtp =
            format!("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={OURS}");
        let h264 = codec("video/H264", 90_000, 0, &fmtp);
        let opus = codec("audio/opus", 48_000, 2, "minptime=10;useinbandfec=1");
        let answer = |offer: String| {
            let mut engine = MediaEngine::default();
            for (codec, payload_type, kind) in
                [(&h264, 102, RtpCodecKind::Video), (&opus, 111, RtpCodecKind::Audio)]
            {
                let parameters = RTCRtpCodecParameters { rtp_codec: codec.clone(), payload_type };
                engine.register_codec(parameters, kind).unwrap();
            }
            let mut pc = RTCPeerConnectionBuilder::new()
                .with_media_engine(engine)
                .build(Instant::now())
                .unwrap();
            let offer = RTCSessionDescription::offer(offer).unwrap();
            pc.set_remote_description(Instant::now(), offer).unwrap();
            for (codec, kind, ssrc) in
                [(&h264, RtpCodecKind::Video, 1), (&opus, RtpCodecKind::Audio, 2)]
            {
                let encoding = RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(ssrc),
                        ..Default::default()
                    },
                    codec: codec.clone(),
                    ..Default::default()
                };
                let id = format!("{kind}");
                pc.add_track(MediaStreamTrack::new(
                    "s".into(),
                    id.clone(),
                    id,
                    kind,
                    vec![encoding],
                ))
                .unwrap();
            }
            pc.create_answer(None).unwrap().sdp
        };
        let video_formats = |sdp: &str| -> Vec<String> {
            let m = sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
            m.split_whitespace().skip(3).map(str::to_owned).collect()
        };

        for offer in [CHROME, FIREFOX, SAFARI] {
            let chosen = choose_codecs(offer, &OURS).unwrap();
            let pt = chosen.video_pt;
            assert!(video_formats(&answer(offer.to_owned())).len() > 1);

            let answered = answer(rewrite_h264_profile(offer, pt, &OURS));
            assert_eq!(video_formats(&answered), [pt.to_string()]);
            // The answer echoes the offer's fmtp line, now carrying our profile.
            let fmtp_line = answered.lines().find(|l| l.starts_with(&format!("a=fmtp:{pt} ")));
            assert!(fmtp_line.unwrap().contains(&format!("profile-level-id={OURS}")));
            let audio_pt = chosen.audio.unwrap().pt;
            assert!(answered.contains(&format!("a=rtpmap:{audio_pt} opus/48000/2\r\n")));
        }
    }

    #[test]
    fn rewrite_edge_cases() {
        let ours = ProfileLevelId::parse("42C028").unwrap();
        let with = |fmtp: &str| {
            let offer = format!(
                "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
                 m=audio 9 UDP/TLS/RTP/SAVPF 102\r\na=rtpmap:102 opus/48000/2\r\na=fmtp:102 minptime=10\r\n\
                 m=video 9 UDP/TLS/RTP/SAVPF 102 103\r\na=fmtp:102 {fmtp}\r\na=rtpmap:102 H264/90000\r\n\
                 a=rtpmap:103 VP8/90000\r\na=fmtp:103 x=1\r\n"
            );
            let rewritten = rewrite_h264_profile(&offer, 102, &ours);
            changed_lines(&offer, &rewritten).first().map(|(_, a)| a.to_string())
        };
        assert_eq!(
            with("Profile-Level-Id = 42E01F ;packetization-mode=1").unwrap(),
            "a=fmtp:102 Profile-Level-Id = 42c028 ;packetization-mode=1\r\n"
        );
        assert_eq!(
            with("packetization-mode=1").unwrap(),
            "a=fmtp:102 packetization-mode=1;profile-level-id=42c028\r\n"
        );
        assert_eq!(
            with("packetization-mode=1; ").unwrap(),
            "a=fmtp:102 packetization-mode=1;profile-level-id=42c028 \r\n"
        );
        assert_eq!(with("profile-level-id=").unwrap(), "a=fmtp:102 profile-level-id=42c028\r\n");

        // Bare LF, no trailing newline, and other payload types stay as they were.
        let lf =
            "v=0\nm=video 9 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 profile-level-id=42001f";
        assert_eq!(rewrite_h264_profile(lf, 96, &ours), lf.replace("42001f", "42c028"));
        assert_eq!(rewrite_h264_profile(lf, 97, &ours), lf);
        assert_eq!(rewrite_h264_profile("garbage ünïcode\r\n", 96, &ours), "garbage ünïcode\r\n");
    }

    #[test]
    fn profile_level_id_table() {
        use H264Profile::*;
        let table = [
            ("42e01f", Some(ConstrainedBaseline)),
            ("42c01f", Some(ConstrainedBaseline)),
            ("42401f", Some(ConstrainedBaseline)),
            ("42001f", Some(Baseline)),
            ("42801f", Some(Baseline)),
            ("4d001f", Some(Main)),
            ("4d401f", Some(Main)),
            ("4d801f", Some(ConstrainedBaseline)),
            ("58c01f", Some(ConstrainedBaseline)),
            ("58801f", Some(Baseline)),
            ("640c1f", Some(ConstrainedHigh)),
            ("64001f", Some(High)),
            ("64081f", Some(Other)),
            ("42e11f", Some(Other)),
            ("f4001f", Some(Other)),
            ("42E01F", Some(ConstrainedBaseline)),
            ("zz", None),
            ("42e0", None),
            ("42e01f0", None),
            ("+42e01", None),
            ("42e0+f", None),
            ("42é01", None),
            ("", None),
        ];
        for (hex, profile) in table {
            assert_eq!(ProfileLevelId::parse(hex).map(|p| p.profile()), profile, "{hex}");
        }
        let p = ProfileLevelId::parse("42C01F").unwrap();
        assert_eq!(p, OURS);
        assert_eq!(p.to_hex(), "42c01f");
        assert_eq!(p.to_string(), "42c01f");
    }
}
