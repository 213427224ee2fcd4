//! The audio thread: microphone → echo control → Opus → hub, under the source supervisor, so a
//! missing or unplugged microphone is retried on this thread alone while video and viewers carry
//! on.

use super::AudioOpener;
use crate::echo::EchoStage;
use crate::encode::opus::OpusEncoder;
use crate::events::sound::SoundTap;
use crate::hub::{FrameSink, PipelineError, PipelineEvent};
use crate::media::{AUDIO_CHUNK_SAMPLES, AUDIO_SAMPLE_RATE, EncodedFrame};
use crate::source::health::HealthSession;
use crate::source::supervisor::{Backoff, supervise};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// What each captured chunk goes through, in order.
pub(super) struct Stages {
    pub encoder: OpusEncoder,
    /// Echo control against talkback; `None` when off or when there is no talkback.
    pub echo: Option<EchoStage>,
    /// The sound-level detector, on every chunk after echo control.
    pub sound: Option<SoundTap>,
}

pub(super) fn run(
    open: &AudioOpener,
    stages: Stages,
    stop: &AtomicBool,
    sink: &FrameSink,
    health: &HealthSession,
) {
    let Stages { mut encoder, mut echo, mut sound } = stages;
    let duration = Duration::from_secs(AUDIO_CHUNK_SAMPLES as u64) / AUDIO_SAMPLE_RATE;
    let mut echo_failed = false;
    let consume = |mut chunk: crate::media::PcmChunk| {
        if let Some(stage) = echo.as_mut()
            && let Err(error) = stage.process(&mut chunk)
            && !std::mem::replace(&mut echo_failed, true)
        {
            // Never stop the microphone for it: the chunk goes out as captured (or half done).
            tracing::warn!(%error, "echo control failed; sending the microphone as captured");
        }
        // After echo control: talkback's echo is not a sound at the device.
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
