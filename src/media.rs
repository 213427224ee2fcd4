//! The vocabulary shared by every stage of the pipeline: raw pictures and sound as sources produce
//! them, and encoded frames as the hub fans them out.

use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The moment a frame or audio chunk was captured, on both clocks that matter.
///
/// `instant` orders frames and maps to RTP timestamps (monotonic, never jumps); `wall` is what the
/// timecode burns in and what glass-to-glass latency is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTime {
    pub instant: Instant,
    pub wall: SystemTime,
}

impl CaptureTime {
    pub fn now() -> Self {
        Self { instant: Instant::now(), wall: SystemTime::now() }
    }

    /// Wall-clock capture time in Unix milliseconds modulo 2^32: the value the test pattern's
    /// timecode carries.
    pub fn unix_millis_u32(&self) -> u32 {
        let millis =
            self.wall.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis();
        (millis & 0xffff_ffff) as u32
    }
}

/// One uncompressed picture in I420 (planar Y, then U and V at half resolution), tightly packed.
#[derive(Debug, Clone)]
pub struct RawFrame {
    pub width: u32,
    pub height: u32,
    /// `width * height * 3 / 2` bytes: the Y plane, then U, then V.
    pub i420: Vec<u8>,
    pub captured: CaptureTime,
    /// The camera's own JPEG of exactly this picture (MJPEG cameras), so a snapshot can be that
    /// file instead of a second, lossier encode. Only the decoder sets it; anything that makes
    /// a new picture (rotation, mirroring) starts from [`RawFrame::black`], which has none.
    pub jpeg: Option<std::sync::Arc<[u8]>>,
}

impl RawFrame {
    /// A frame of the given size filled with black (luma 16, chroma 128).
    pub fn black(width: u32, height: u32, captured: CaptureTime) -> Self {
        let luma = (width * height) as usize;
        let mut i420 = vec![16u8; luma * 3 / 2];
        i420[luma..].fill(128);
        Self { width, height, i420, captured, jpeg: None }
    }

    pub fn y(&self) -> &[u8] {
        &self.i420[..self.luma_len()]
    }

    pub fn u(&self) -> &[u8] {
        let luma = self.luma_len();
        &self.i420[luma..luma + luma / 4]
    }

    pub fn v(&self) -> &[u8] {
        let luma = self.luma_len();
        &self.i420[luma + luma / 4..]
    }

    fn luma_len(&self) -> usize {
        (self.width * self.height) as usize
    }
}

/// A chunk of mono 48 kHz signed 16-bit PCM, normally 20 ms (960 samples).
#[derive(Debug, Clone)]
pub struct PcmChunk {
    pub samples: Vec<i16>,
    pub captured: CaptureTime,
}

/// Sample rate of every PCM chunk in the pipeline; Opus and WebRTC both run at 48 kHz.
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms chunk at [`AUDIO_SAMPLE_RATE`].
pub const AUDIO_CHUNK_SAMPLES: usize = 960;

/// One encoded access unit, shared by reference with every viewer.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    /// RTP payloads, packetised once by the encoder stage so that fan-out only copies pointers.
    pub payloads: Arc<[Bytes]>,
    pub captured: CaptureTime,
    /// True for an H.264 IDR (preceded by SPS/PPS); always true for audio.
    pub keyframe: bool,
    /// Length of the media the frame covers in its codec's clock: what the RTP timestamp of the
    /// next frame would add if capture times were missing.
    pub duration: Duration,
}
