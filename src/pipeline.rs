//! The real pipeline: one thread per track that captures and encodes, feeding the hub.
//!
//! Capture and encode share a thread because the test source and most cameras hand over a frame
//! and then wait for the next one; a queue between them would only add latency.

use crate::encode::h264::{H264Encoder, H264Settings};
use crate::encode::opus::OpusEncoder;
use crate::hub::{FrameSink, Pipeline, PipelineError, PipelineEvent, PipelineFactory};
use crate::media::EncodedFrame;
use crate::source::health::HealthReporter;
use crate::source::{AudioSource, SourceError, VideoSource};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

mod audio;

/// Opens a source; called on every pipeline start so an unplugged device is reopened.
pub type VideoOpener = Box<dyn Fn() -> Result<Box<dyn VideoSource>, SourceError> + Send>;
/// Shared with the audio thread, which reopens the microphone by itself when it vanishes.
pub type AudioOpener = Arc<dyn Fn() -> Result<Box<dyn AudioSource>, SourceError> + Send + Sync>;

/// Starts capture + encode threads on demand.
pub struct ThreadedPipelineFactory {
    pub video: VideoOpener,
    pub h264: H264Settings,
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
}

enum VideoCommand {
    ForceKeyframe,
}

struct ThreadedPipeline {
    stop: Arc<AtomicBool>,
    video_commands: mpsc::Sender<VideoCommand>,
}

impl PipelineFactory for ThreadedPipelineFactory {
    fn start(&mut self, sink: FrameSink) -> Result<Box<dyn Pipeline>, PipelineError> {
        let stop = Arc::new(AtomicBool::new(false));
        // Open and configure in the caller so a missing device is reported at once; both are
        // quick compared with a frame interval.
        let video_source = (self.video)().map_err(|e| PipelineError(e.to_string()))?;
        let encoder = H264Encoder::new(self.h264).map_err(|e| PipelineError(e.to_string()))?;
        // The microphone is opened on its own thread: a missing one must not hold up video.
        let audio_encoder = match &self.audio {
            Some(audio) => Some(
                OpusEncoder::new(audio.bitrate_kbps).map_err(|e| PipelineError(e.to_string()))?,
            ),
            None => None,
        };

        let (video_commands, commands) = mpsc::channel();
        let frame_duration = Duration::from_secs(1) / self.h264.fps.max(1);
        let wedge_after = self.wedge_video_after;
        spawn_named("camrtc-video", {
            let (stop, sink) = (stop.clone(), sink.clone());
            move || {
                let video = VideoLoop { duration: frame_duration, commands, wedge_after };
                run_video(video_source, encoder, video, &stop, &sink)
            }
        })?;
        if let (Some(audio), Some(encoder)) = (&self.audio, audio_encoder) {
            let health = audio.health.session();
            let open = audio.open.clone();
            let stop = stop.clone();
            spawn_named("camrtc-audio", move || {
                audio::run(&open, encoder, &stop, &sink, &health);
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

    fn stop(self: Box<Self>) {
        // Threads notice within one frame interval; nobody waits for them.
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct VideoLoop {
    duration: Duration,
    commands: mpsc::Receiver<VideoCommand>,
    wedge_after: Option<u64>,
}

fn run_video(
    mut source: Box<dyn VideoSource>,
    mut encoder: H264Encoder,
    video: VideoLoop,
    stop: &AtomicBool,
    sink: &FrameSink,
) {
    let VideoLoop { duration, commands, wedge_after } = video;
    let mut frames: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        if wedge_after.is_some_and(|after| frames >= after) {
            // The test wedge: produce nothing, like a thread stuck in an ioctl, but still end
            // when told so the test process can exit.
            thread::sleep(Duration::from_millis(50));
            continue;
        }
        frames += 1;
        let frame = match source.next_frame() {
            Ok(frame) => frame,
            Err(error) => {
                sink.send(PipelineEvent::Failed(PipelineError(format!("video: {error}"))));
                return;
            }
        };
        // Requests that arrived while we waited for the frame apply to this one.
        if commands.try_iter().any(|c| matches!(c, VideoCommand::ForceKeyframe)) {
            encoder.force_keyframe();
        }
        match encoder.encode(&frame) {
            Ok(Some(encoded)) => {
                let event = PipelineEvent::Video(EncodedFrame {
                    payloads: encoded.payloads.into(),
                    captured: frame.captured,
                    keyframe: encoded.keyframe,
                    duration,
                });
                if !sink.send(event) {
                    return;
                }
            }
            Ok(None) => {}
            Err(error) => {
                sink.send(PipelineEvent::Failed(PipelineError(error.to_string())));
                return;
            }
        }
    }
}
