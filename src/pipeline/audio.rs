//! The audio thread: microphone → Opus → hub, under the source supervisor, so a missing or
//! unplugged microphone is retried on this thread alone while video and viewers carry on.

use super::AudioOpener;
use crate::encode::opus::OpusEncoder;
use crate::events::sound::SoundTap;
use crate::hub::{FrameSink, PipelineError, PipelineEvent};
use crate::media::{AUDIO_CHUNK_SAMPLES, AUDIO_SAMPLE_RATE, EncodedFrame};
use crate::source::health::HealthSession;
use crate::source::supervisor::{Backoff, supervise};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub(super) fn run(
    open: &AudioOpener,
    mut encoder: OpusEncoder,
    stop: &AtomicBool,
    sink: &FrameSink,
    health: &HealthSession,
    mut sound: Option<SoundTap>,
) {
    let duration = Duration::from_secs(AUDIO_CHUNK_SAMPLES as u64) / AUDIO_SAMPLE_RATE;
    let consume = |chunk: crate::media::PcmChunk| {
        if let Some(sound) = &mut sound {
            sound.observe(&chunk);
        }
        match encoder.encode(&chunk) {
            Ok(encoded) => sink.send(PipelineEvent::Audio(EncodedFrame {
                payloads: encoded.payloads.into(),
                captured: chunk.captured,
                keyframe: true,
                duration,
            })),
            Err(error) => {
                // Not a device problem (chunks are always 20 ms): let the hub restart everything.
                sink.send(PipelineEvent::Failed(PipelineError(format!("audio: {error}"))));
                false
            }
        }
    };
    supervise("microphone", &|| open(), consume, Backoff::for_devices(), stop, health);
}
