//! Encoders: raw pictures to H.264, PCM to Opus. Each runs on its pipeline's dedicated thread,
//! never on the async runtime, because a codec call blocks for milliseconds.

pub mod h264;
pub mod m2m;
pub mod openh264_library;
pub mod opus;
pub mod passthrough;

use bytes::Bytes;

/// Largest RTP payload we produce. 1200 bytes leaves room for SRTP, TURN and IPv6 headers
/// inside a 1280-byte path MTU, the size every WebRTC stack assumes is safe.
pub const RTP_PAYLOAD_MTU: usize = 1200;

/// Why an encoder could not be created or could not encode.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The codec library refused the configuration (size, rate, bitrate).
    #[error("cannot configure the {codec} encoder: {reason}")]
    Configure { codec: &'static str, reason: String },
    /// The codec library failed on one frame.
    #[error("{codec} encoding failed: {reason}")]
    Encode { codec: &'static str, reason: String },
    /// Cisco's prebuilt OpenH264 library (the `cisco-openh264` build) is missing, or is not one of
    /// Cisco's published builds.
    #[error(
        "cannot load Cisco's OpenH264 library {}: {reason} (download libopenh264-2.6.0 for this \
         architecture from Cisco and put it there, or set CAMRTC_OPENH264_LIBRARY)",
        path.display()
    )]
    Library { path: std::path::PathBuf, reason: String },
    /// The encoder produced no sequence parameter set to read the profile from.
    #[error("the H.264 encoder produced no SPS")]
    NoSps,
}

/// One encoded frame before fan-out: the codec output and whether a decoder can start from it.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub payloads: Vec<Bytes>,
    pub keyframe: bool,
}
