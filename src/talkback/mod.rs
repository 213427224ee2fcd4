//! Two-way audio: a viewer's voice, received as Opus, played on the device's speaker.
//!
//! [`floor`] decides who may talk (one viewer at a time, cut off after `max_talk_s`) and
//! [`owner`] is the task that owns it;
//! [`jitter`] puts packets back in order; [`player`] decodes and plays them on its own thread,
//! so a slow or missing speaker never touches the tokio runtime, the viewers or the capture
//! pipeline.

pub mod floor;
pub mod jitter;
pub mod owner;
pub mod player;
