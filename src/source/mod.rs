//! Media sources. Each runs on a dedicated thread and blocks until its next frame or chunk is due.

pub mod alsa;
pub mod clock;
pub mod health;
pub mod supervisor;
pub mod test_audio;
pub mod test_video;
pub mod timecode;

use crate::media::{PcmChunk, RawFrame};

/// Why a source could not deliver.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The configured source kind is not available in this build or on this machine.
    #[error("{0}")]
    Unavailable(String),
    /// The device failed while capturing; a supervisor may reopen it.
    #[error("capture failed: {0}")]
    Capture(String),
}

/// A camera: `next_frame` blocks until the next picture is captured (sources pace themselves).
pub trait VideoSource: Send {
    fn next_frame(&mut self) -> Result<RawFrame, SourceError>;
}

/// A microphone: `next_chunk` blocks until the next 20 ms of mono 48 kHz PCM is captured.
pub trait AudioSource: Send {
    fn next_chunk(&mut self) -> Result<PcmChunk, SourceError>;
}
