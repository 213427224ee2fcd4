//! The stage between microphone capture and the Opus encoder: removes (AEC) or ducks the
//! talkback that the microphone hears, in place, on the microphone thread. It never waits: far-end
//! frames are taken only if already queued, so the mic→Opus path gains no latency beyond the
//! processing itself.

use super::EchoError;
use super::duck::{apply_gain, duck_gain, is_active};
use super::reference::{FRAME_DURATION, FRAME_SAMPLES, FarEndReader, FarEndSource};
use crate::config::EchoCancellation;
use crate::media::{AUDIO_SAMPLE_RATE, PcmChunk};
use sonora::config::EchoCanceller;
use sonora::{AudioProcessing, Config, StreamConfig};
use std::time::{Duration, Instant};

/// With no far-end frame for this long the speaker is idle: AEC3 is then fed silence as the
/// render signal, as a real playback path would carry. Shorter gaps are the player's timing
/// jitter, which must not insert frames into the reference and shift its delay.
const IDLE_AFTER: Duration = Duration::from_millis(60);

/// How the stage treats the microphone.
enum Method {
    /// WebRTC AEC3 (boxed: its state is large and moves with the stage).
    Aec { apm: Box<AudioProcessing>, output: Vec<i16> },
    /// Half-duplex: attenuate by this many dB while the far end plays.
    Duck { attenuation_db: u32 },
}

/// One pipeline's echo stage; created when the audio thread starts.
pub struct EchoStage {
    method: Method,
    far_end: FarEndReader,
    /// When the last far-end frame with speech-level sound played (ducking's input).
    last_active: Option<Instant>,
    /// When the last far-end frame of any level played (AEC's idle detection).
    last_frame: Option<Instant>,
    silence: Vec<i16>,
}

impl std::fmt::Debug for EchoStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let method = match &self.method {
            Method::Aec { .. } => "aec".to_owned(),
            Method::Duck { attenuation_db } => format!("duck {attenuation_db} dB"),
        };
        f.debug_struct("EchoStage").field("method", &method).finish_non_exhaustive()
    }
}

impl EchoStage {
    /// The stage for `mode`, or `None` for `off` (the microphone then goes to the encoder as
    /// captured). `duck_db` is used by `duck`.
    pub fn new(mode: EchoCancellation, duck_db: u32, far_end: FarEndSource) -> Option<Self> {
        let method = match mode {
            EchoCancellation::Off => return None,
            EchoCancellation::Duck => Method::Duck { attenuation_db: duck_db },
            EchoCancellation::Aec => {
                let stream = StreamConfig::new(AUDIO_SAMPLE_RATE, 1);
                // Only the echo canceller (with the high-pass filter it requires): noise
                // suppression and gain control would change what baby monitors hear.
                let config =
                    Config { echo_canceller: Some(EchoCanceller::default()), ..Config::default() };
                let apm = AudioProcessing::builder()
                    .config(config)
                    .capture_config(stream)
                    .render_config(stream)
                    .build();
                Method::Aec { apm: Box::new(apm), output: vec![0; FRAME_SAMPLES] }
            }
        };
        Some(Self {
            method,
            far_end: FarEndReader::new(far_end),
            last_active: None,
            last_frame: None,
            silence: vec![0; FRAME_SAMPLES],
        })
    }

    /// Processes one captured chunk in place, 10 ms at a time. Samples past the last whole
    /// 10 ms (never, with 20 ms chunks) pass untouched rather than wait for more audio.
    pub fn process(&mut self, chunk: &mut PcmChunk) -> Result<(), EchoError> {
        let start = chunk.captured.instant;
        for (i, frame) in chunk.samples.chunks_exact_mut(FRAME_SAMPLES).enumerate() {
            let captured = start + FRAME_DURATION * i as u32;
            self.process_frame(frame, captured)?;
        }
        Ok(())
    }

    fn process_frame(&mut self, frame: &mut [i16], captured: Instant) -> Result<(), EchoError> {
        // Everything that started playing before this capture frame ends can be in it.
        let until = captured + FRAME_DURATION;
        let mut fed = false;
        while let Some(far) = self.far_end.next_due(until) {
            let end = far.play_at + FRAME_DURATION;
            self.last_frame = Some(end);
            if is_active(&far.samples) {
                self.last_active = Some(end);
            }
            if let Method::Aec { apm, output } = &mut self.method {
                apm.process_render_i16(&far.samples, output).map_err(EchoError::Render)?;
            }
            fed = true;
        }
        match &mut self.method {
            Method::Aec { apm, output } => {
                let idle = self.last_frame.is_none_or(|at| captured > at + IDLE_AFTER);
                if !fed && idle {
                    apm.process_render_i16(&self.silence, output).map_err(EchoError::Render)?;
                }
                // The reference is aligned to play-out time above, so what is left between
                // render and capture is the acoustic path, which AEC3 estimates itself.
                let _ = apm.set_stream_delay_ms(0);
                apm.process_capture_i16(frame, output).map_err(EchoError::Capture)?;
                frame.copy_from_slice(output);
            }
            Method::Duck { attenuation_db } => {
                apply_gain(frame, duck_gain(captured, self.last_active, *attenuation_db));
            }
        }
        Ok(())
    }
}
