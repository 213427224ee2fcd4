//! H.264 through openh264 (bundled source or Cisco's library: see `openh264_library`): Constrained Baseline, real-time
//! camera tuning, bitrate rate control, SPS/PPS ahead of every IDR, IDR on request.

use super::{EncodeError, Encoded, RTP_PAYLOAD_MTU};
use crate::media::RawFrame;
use bytes::Bytes;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::Payloader;

const CODEC: &str = "H.264";

/// What the H.264 encoder needs to know; everything else is fixed by the product's latency goals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Settings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval_ms: u32,
}

impl H264Settings {
    fn encoder_config(&self) -> EncoderConfig {
        let frames_per_keyframe =
            (u64::from(self.fps) * u64::from(self.keyframe_interval_ms) / 1000).max(1) as u32;
        EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(self.bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(self.fps as f32))
            // openh264 only holds the bitrate if it may skip frames (as libwebrtc configures it);
            // skips are rare at sane bitrates and cheaper than a burst that overflows the link.
            .skip_frames(true)
            .intra_frame_period(IntraFramePeriod::from_num_frames(frames_per_keyframe))
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            // One thread keeps per-frame latency predictable and leaves the other core to
            // networking; openh264's own threads only pay off above 720p.
            .num_threads(1)
            .complexity(Complexity::Low)
    }
}

/// An openh264 encoder plus the RTP payloader, so each frame is packetised exactly once.
pub struct H264Encoder {
    encoder: Encoder,
    payloader: H264Payloader,
    annex_b: Vec<u8>,
    settings: H264Settings,
    /// The bitrate asked for by [`set_bitrate`](Self::set_bitrate), in kbit/s.
    target_kbps: u32,
    /// What openh264 currently runs at; `None` until its first picture initialises it (the
    /// wrapper initialises lazily, and SetOption before that has nothing to act on).
    applied_kbps: Option<u32>,
}

impl H264Encoder {
    pub fn new(settings: H264Settings) -> Result<Self, EncodeError> {
        let encoder =
            Encoder::with_api_config(super::openh264_library::api()?, settings.encoder_config())
                .map_err(|e| EncodeError::Configure { codec: CODEC, reason: e.to_string() })?;
        Ok(Self {
            encoder,
            payloader: H264Payloader::default(),
            annex_b: Vec::new(),
            settings,
            target_kbps: settings.bitrate_kbps,
            applied_kbps: None,
        })
    }

    /// Changes the target bitrate from the next picture on, without a new IDR: openh264's rate
    /// controller takes the new figure in place (as libwebrtc's `SetRates` does).
    pub fn set_bitrate(&mut self, kbps: u32) {
        self.target_kbps = kbps;
    }

    /// The bitrate openh264 runs at now, in kbit/s (`None` before the first picture).
    pub fn bitrate_kbps(&self) -> Option<u32> {
        self.applied_kbps
    }

    fn apply_bitrate(&mut self) -> Result<(), EncodeError> {
        let Some(applied) = self.applied_kbps else { return Ok(()) };
        if applied == self.target_kbps {
            return Ok(());
        }
        let bps = i32::try_from(self.target_kbps.saturating_mul(1000)).unwrap_or(i32::MAX);
        // The layer's ceiling first when raising (a target above it is refused), last when
        // lowering, so the pair is valid after every call. The wrapper builds one spatial layer.
        let ceiling = (openh264_sys2::ENCODER_OPTION_MAX_BITRATE, openh264_sys2::SPATIAL_LAYER_0);
        let target = (openh264_sys2::ENCODER_OPTION_BITRATE, openh264_sys2::SPATIAL_LAYER_ALL);
        let order = if self.target_kbps > applied { [ceiling, target] } else { [target, ceiling] };
        for (option, layer) in order {
            let mut info = openh264_sys2::SBitrateInfo { iLayer: layer, iBitrate: bps };
            // SAFETY: the encoder is initialised (a picture went through it), and both options
            // read exactly one SBitrateInfo from the pointer during the call.
            let status =
                unsafe { self.encoder.raw_api().set_option(option, (&raw mut info).cast()) };
            if status != 0 {
                return Err(EncodeError::Configure {
                    codec: CODEC,
                    reason: format!(
                        "openh264 refused bitrate {} kbit/s (SetOption {option} returned {status})",
                        self.target_kbps
                    ),
                });
            }
        }
        self.applied_kbps = Some(self.target_kbps);
        Ok(())
    }

    pub fn settings(&self) -> H264Settings {
        self.settings
    }

    /// Makes the next encoded frame an IDR (with SPS/PPS in front of it).
    pub fn force_keyframe(&mut self) {
        self.encoder.force_intra_frame();
    }

    /// Encodes one picture. `Ok(None)` means the rate controller produced nothing for it.
    pub fn encode(&mut self, frame: &RawFrame) -> Result<Option<Encoded>, EncodeError> {
        self.apply_bitrate()?;
        let (width, height) = (frame.width as usize, frame.height as usize);
        let source = YUVSlices::new(
            (frame.y(), frame.u(), frame.v()),
            (width, height),
            (width, width / 2, width / 2),
        );
        let bitstream = self
            .encoder
            .encode(&source)
            .map_err(|e| EncodeError::Encode { codec: CODEC, reason: e.to_string() })?;
        let keyframe = matches!(bitstream.frame_type(), FrameType::IDR);
        self.applied_kbps.get_or_insert(self.settings.bitrate_kbps);
        if matches!(bitstream.frame_type(), FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        self.annex_b.clear();
        bitstream.write_vec(&mut self.annex_b);
        if self.annex_b.is_empty() {
            return Ok(None);
        }
        let payloads = self
            .payloader
            .payload(RTP_PAYLOAD_MTU, &Bytes::copy_from_slice(&self.annex_b))
            .map_err(|e| EncodeError::Encode { codec: CODEC, reason: e.to_string() })?;
        Ok(Some(Encoded { payloads, keyframe }))
    }

    /// The Annex B bytes of the last encoded frame (start codes included); used to read the SPS.
    pub fn last_annex_b(&self) -> &[u8] {
        &self.annex_b
    }
}

/// `profile-level-id` as carried in SDP: profile_idc, constraint flags, level_idc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsProfile {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
}

impl SpsProfile {
    /// Six lower-case hex digits, as in `profile-level-id=42c01f`.
    pub fn to_hex(self) -> String {
        format!("{:02x}{:02x}{:02x}", self.profile_idc, self.constraint_flags, self.level_idc)
    }
}

/// Reads profile, constraint flags and level from the first SPS in an Annex B stream.
///
/// These are the three bytes right after the SPS NAL header; emulation prevention cannot touch
/// them because profile_idc is never zero.
pub fn sps_profile(annex_b: &[u8]) -> Option<SpsProfile> {
    nal_units(annex_b).find(|nal| nal.first().map(|h| h & 0x1f) == Some(7)).and_then(|sps| {
        (sps.len() >= 4).then(|| SpsProfile {
            profile_idc: sps[1],
            constraint_flags: sps[2],
            level_idc: sps[3],
        })
    })
}

/// Splits an Annex B byte stream at its start codes (3- or 4-byte).
pub fn nal_units(annex_b: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i] == 0 && annex_b[i + 1] == 0 && annex_b[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&next| {
            let mut end = next - 3;
            // A 4-byte start code leaves one zero on the previous NAL; trailing zeros are not data.
            while end > 0 && annex_b[end - 1] == 0 {
                end -= 1;
            }
            end
        })
        .chain(std::iter::once(annex_b.len()))
        .collect();
    starts.into_iter().zip(ends).map(move |(s, e)| &annex_b[s..e.max(s)])
}

/// Encodes one black frame with `settings` to learn the profile-level-id the encoder will really
/// produce, so SDP answers can advertise it before the camera ever starts.
pub fn probe_profile(settings: H264Settings) -> Result<SpsProfile, EncodeError> {
    let mut encoder = H264Encoder::new(settings)?;
    let frame = RawFrame::black(settings.width, settings.height, crate::media::CaptureTime::now());
    encoder.encode(&frame)?;
    sps_profile(encoder.last_annex_b()).ok_or(EncodeError::NoSps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;

    fn settings(width: u32, height: u32) -> H264Settings {
        H264Settings { width, height, fps: 30, bitrate_kbps: 1000, keyframe_interval_ms: 2000 }
    }

    #[test]
    fn splits_annex_b_with_both_start_code_lengths() {
        let stream = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5];
        let nals: Vec<&[u8]> = nal_units(&stream).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]);
    }

    #[test]
    fn reads_profile_from_sps() {
        let stream = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0, 0, 0, 1, 0x68, 0xce];
        let profile = sps_profile(&stream).expect("stream has an SPS");
        assert_eq!(profile.to_hex(), "42c01f");
        assert_eq!(sps_profile(&[0, 0, 1, 0x65, 1, 2]), None);
    }

    #[test]
    fn first_frame_is_an_idr_with_parameter_sets_and_requests_are_honoured() {
        let mut encoder = H264Encoder::new(settings(320, 240)).expect("valid settings");
        let frame = RawFrame::black(320, 240, CaptureTime::now());
        let first = encoder.encode(&frame).expect("encodes").expect("produces a frame");
        assert!(first.keyframe);
        let types: Vec<u8> = nal_units(encoder.last_annex_b()).map(|n| n[0] & 0x1f).collect();
        assert_eq!(&types[..3], &[7, 8, 5], "SPS, PPS then IDR");
        // The payloader aggregates SPS+PPS into one STAP-A ahead of the IDR.
        assert_eq!(first.payloads[0][0] & 0x1f, 24);

        let second = encoder.encode(&frame).expect("encodes").expect("produces a frame");
        assert!(!second.keyframe);
        encoder.force_keyframe();
        let third = encoder.encode(&frame).expect("encodes").expect("produces a frame");
        assert!(third.keyframe);
        let types: Vec<u8> = nal_units(encoder.last_annex_b()).map(|n| n[0] & 0x1f).collect();
        assert_eq!(&types[..3], &[7, 8, 5], "a requested IDR carries SPS and PPS too");
        assert!(third.payloads.iter().all(|p| p.len() <= RTP_PAYLOAD_MTU));
    }

    /// Bytes produced for `frames` pictures of a gradient under fresh noise: the noise defeats
    /// prediction, so the rate controller is what bounds the size. (Pure full-range noise is
    /// avoided: openh264 refuses pictures that overflow its buffers.)
    fn encode_noise(encoder: &mut H264Encoder, frames: usize, seed: &mut u32) -> usize {
        let mut bytes = 0;
        for _ in 0..frames {
            let mut frame = RawFrame::black(320, 240, CaptureTime::now());
            for (i, byte) in frame.i420.iter_mut().enumerate() {
                // xorshift: cheap deterministic noise.
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                *byte = 64u8.wrapping_add((i % 128) as u8).wrapping_add((*seed >> 27) as u8);
            }
            if let Some(encoded) = encoder.encode(&frame).expect("encodes") {
                bytes += encoded.payloads.iter().map(|p| p.len()).sum::<usize>();
            }
        }
        bytes
    }

    #[test]
    fn bitrate_changes_at_run_time() {
        let mut encoder = H264Encoder::new(settings(320, 240)).expect("valid settings");
        let mut seed = 0x1234_5678;
        // Settle, then measure one second at each rate.
        encode_noise(&mut encoder, 30, &mut seed);
        let high = encode_noise(&mut encoder, 30, &mut seed);
        encoder.set_bitrate(150);
        let low = encode_noise(&mut encoder, 30, &mut seed);
        assert_eq!(encoder.bitrate_kbps(), Some(150));
        encoder.set_bitrate(1000);
        let back = encode_noise(&mut encoder, 30, &mut seed);
        // One second of 150 kbit/s is 18 750 bytes; of 1000 kbit/s, 125 000.
        assert!(low < 25_000, "150 kbit/s produced {low} bytes in a second");
        assert!(low * 3 < high, "150 kbit/s produced {low} bytes/s against {high} at 1000");
        assert!(back > low * 3, "back at 1000 kbit/s produced {back} bytes/s against {low}");
    }

    #[test]
    fn a_bitrate_change_costs_no_idr() {
        let mut encoder = H264Encoder::new(settings(320, 240)).expect("valid settings");
        let frame = RawFrame::black(320, 240, CaptureTime::now());
        let encode = |encoder: &mut H264Encoder| {
            encoder.encode(&frame).expect("encodes").expect("produces a frame").keyframe
        };
        assert!(encode(&mut encoder), "the first picture is an IDR");
        assert!(!encode(&mut encoder));
        for kbps in [200, 3000, 800] {
            encoder.set_bitrate(kbps);
            assert!(!encode(&mut encoder), "changing to {kbps} kbit/s forced an IDR");
            assert_eq!(encoder.bitrate_kbps(), Some(kbps));
        }
    }

    #[test]
    fn probe_reports_constrained_baseline() {
        let profile = probe_profile(settings(640, 480)).expect("probe works");
        assert_eq!(profile.profile_idc, 0x42);
        assert_ne!(
            profile.constraint_flags & 0x40,
            0,
            "constraint_set1 marks Constrained Baseline"
        );
    }
}
