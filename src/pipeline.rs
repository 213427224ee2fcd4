//! The real pipeline: one thread per track that captures and encodes, feeding the hub.
//!
//! Capture and encode share a thread because the test source and most cameras hand over a frame
//! and then wait for the next one; a queue between them would only add latency. Each track
//! fails and recovers on its own: each thread supervises its own device.

mod audio;
mod frame_rate;
mod video;

pub use video::{RawEncoder, VideoTrack};

use crate::config::EchoCancellation;
use crate::echo::{EchoStage, FarEndSource};
use crate::encode::opus::OpusEncoder;
use crate::events::sound::SoundTap;
use crate::hub::{FrameSink, Pipeline, PipelineError, PipelineFactory};
use crate::source::health::HealthReporter;
use crate::source::{AudioSource, SourceError, VideoSource};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;

/// Opens a camera; called on every (re)open by the video thread's supervisor, so an unplugged
/// device is found again.
pub type VideoOpener = Arc<dyn Fn() -> Result<Box<dyn VideoSource>, SourceError> + Send + Sync>;
/// Shared with the audio thread, which reopens the microphone by itself when it vanishes.
pub type AudioOpener = Arc<dyn Fn() -> Result<Box<dyn AudioSource>, SourceError> + Send + Sync>;

/// Starts capture + encode threads on demand.
pub struct ThreadedPipelineFactory {
    pub video: VideoTrack,
    /// `/healthz`'s view of the camera.
    pub video_health: HealthReporter,
    pub audio: Option<AudioSettings>,
    /// Test-only: the video thread hangs after this many frames, as if stuck in a driver call
    /// (see `systemd::TEST_WEDGE_ENV`).
    pub wedge_video_after: Option<u64>,
}

/// The audio track: how to open the microphone, the Opus bitrate, and where its state goes.
pub struct AudioSettings {
    pub open: AudioOpener,
    pub bitrate_kbps: u32,
    pub health: HealthReporter,
    /// The sound-level detector, run on the audio thread on every captured chunk.
    pub sound: Option<(crate::events::sound::SoundSettings, crate::events::EventBus)>,
    /// Echo control against talkback; `None` when nothing plays on the device's speaker.
    pub echo: Option<EchoSettings>,
}

/// How the microphone is cleaned of the talkback the speaker plays.
#[derive(Debug, Clone)]
pub struct EchoSettings {
    pub mode: EchoCancellation,
    pub duck_db: u32,
    /// What the talkback player wrote to the speaker.
    pub far_end: FarEndSource,
}

enum VideoCommand {
    ForceKeyframe,
    /// Bandwidth adaptation's new target for the encoder, kbit/s.
    SetBitrate(u32),
}

struct ThreadedPipeline {
    stop: Arc<AtomicBool>,
    video_commands: mpsc::Sender<VideoCommand>,
}

impl PipelineFactory for ThreadedPipelineFactory {
    fn start(&mut self, sink: FrameSink) -> Result<Box<dyn Pipeline>, PipelineError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Cameras and microphones are opened on their own threads, by their supervisors: a
        // missing one must not hold up the other track (or the hub).
        let audio_encoder = match &self.audio {
            Some(audio) => Some(
                OpusEncoder::new(audio.bitrate_kbps).map_err(|e| PipelineError(e.to_string()))?,
            ),
            None => None,
        };

        let (video_commands, commands) = mpsc::channel();
        spawn_named("camrtc-video", {
            let (stop, sink) = (stop.clone(), sink.clone());
            let track = self.video.clone();
            let health = self.video_health.session();
            let wedge_after = self.wedge_video_after;
            move || video::run(track, health, video::Control { commands, stop, wedge_after }, sink)
        })?;
        if let (Some(audio), Some(encoder)) = (&self.audio, audio_encoder) {
            let health = audio.health.session();
            let open = audio.open.clone();
            let stop = stop.clone();
            let sound = audio.sound.clone().map(|(settings, bus)| SoundTap::new(settings, bus));
            // A fresh canceller per start: its echo path estimate may be stale after a pause.
            let echo = audio
                .echo
                .as_ref()
                .and_then(|echo| EchoStage::new(echo.mode, echo.duck_db, echo.far_end.clone()));
            spawn_named("camrtc-audio", move || {
                audio::run(&open, audio::Stages { encoder, echo, sound }, &stop, &sink, &health);
            })?;
        }
        Ok(Box::new(ThreadedPipeline { stop, video_commands }))
    }
}

fn spawn_named(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), PipelineError> {
    thread::Builder::new()
        .name(name.to_owned())
        .spawn(body)
        .map(drop)
        .map_err(|e| PipelineError(format!("cannot start thread {name}: {e}")))
}

impl Pipeline for ThreadedPipeline {
    fn force_keyframe(&mut self) {
        let _ = self.video_commands.send(VideoCommand::ForceKeyframe);
    }

    fn set_bitrate(&mut self, kbps: u32) {
        let _ = self.video_commands.send(VideoCommand::SetBitrate(kbps));
    }

    fn stop(self: Box<Self>) {
        // Threads notice within one frame interval; nobody waits for them.
        self.stop.store(true, Ordering::Relaxed);
    }
}
