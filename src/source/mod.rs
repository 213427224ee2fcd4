//! Media sources. Each runs on a dedicated thread and blocks until its next frame or chunk is due.

pub mod alsa;
pub mod annexb;
pub mod clock;
pub mod convert;
pub mod devices;
pub mod exec;
pub mod health;
pub mod supervisor;
pub mod test_audio;
pub mod test_video;
pub mod timecode;
pub mod v4l2;

use crate::media::{CaptureTime, PcmChunk, RawFrame};
use bytes::Bytes;

/// Why a source could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The device or program is not there (yet): missing node, command not found. Worth retrying,
    /// since cameras get plugged in and programs get installed.
    #[error("{0}")]
    Unavailable(String),
    /// The device failed while capturing (unplugged, I/O error, stalled); a supervisor reopens it.
    #[error("capture failed: {0}")]
    Capture(String),
    /// The configuration cannot work with this device (unknown control, no usable format);
    /// retrying would fail the same way, so the source stays stopped until the config changes.
    #[error("{0}")]
    Config(String),
}

impl SourceError {
    /// Whether reopening the source later may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SourceError::Config(_))
    }
}

/// One H.264 access unit (a whole picture) in Annex B form, start codes included, as a camera
/// with its own encoder or an external program produces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub annex_b: Bytes,
    pub captured: CaptureTime,
}

/// What a camera delivers: raw pictures for our encoder, or pictures it has encoded itself.
#[derive(Debug, Clone)]
pub enum VideoFrame {
    Raw(RawFrame),
    H264(AccessUnit),
}

impl VideoFrame {
    pub fn captured(&self) -> CaptureTime {
        match self {
            VideoFrame::Raw(frame) => frame.captured,
            VideoFrame::H264(unit) => unit.captured,
        }
    }
}

/// Which of the [`VideoFrame`] kinds a source produces; fixed once it is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoOutput {
    Raw,
    H264,
}

/// A camera: `next_frame` blocks until the next picture is captured (sources pace themselves).
pub trait VideoSource: Send {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError>;

    /// Raw frames (encoded here) or H.264 (passed through).
    fn output(&self) -> VideoOutput;

    /// Asks a source that encodes for itself to make its next picture an IDR. Returns false when
    /// it cannot, in which case the stream's own keyframe interval is all there is.
    fn request_keyframe(&mut self) -> bool {
        false
    }
}

/// A microphone: `next_chunk` blocks until the next 20 ms of mono 48 kHz PCM is captured.
pub trait AudioSource: Send {
    fn next_chunk(&mut self) -> Result<PcmChunk, SourceError>;
}
