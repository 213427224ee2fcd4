//! Echo control for two-way audio: the device's microphone hears the talkback that its speaker
//! plays, and without this stage the talker hears themselves back.
//!
//! [`reference`] carries what the talkback player wrote to the speaker to the microphone thread;
//! [`stage`] runs between capture and the Opus encoder and either cancels the echo with WebRTC's
//! AEC3 (the `sonora` port) or ducks the microphone while the far end plays ([`duck`]).

pub mod duck;
pub mod reference;
pub mod stage;

pub use reference::{FarEndFrame, FarEndReader, FarEndSource, FarEndTap, far_end_channel};
pub use stage::EchoStage;

/// Why a frame could not be run through the echo canceller.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// AEC3 refused a far-end (speaker) frame; only a wrong frame format can cause it.
    #[error("echo canceller refused a speaker frame: {0}")]
    Render(sonora::Error),
    /// AEC3 refused a microphone frame; only a wrong frame format can cause it.
    #[error("echo canceller refused a microphone frame: {0}")]
    Capture(sonora::Error),
}
