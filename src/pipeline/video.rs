//! The video thread: a supervisor around the camera, orientation, and the H.264 stage.
//!
//! The thread owns its source. When the source is missing or fails (unplugged, I/O error,
//! stalled, a command that exited), the thread reopens it with backoff while viewers stay
//! connected; the first picture after a reopen is an IDR, so they resume at once. Failures are
//! reported through `/healthz` and logged once per outage, never per frame, and never touch the
//! audio thread.

use super::frame_rate::FrameRateGovernor;
use super::{VideoCommand, VideoOpener};
use crate::encode::h264::{H264Encoder, H264Settings, sps_profile};
use crate::encode::m2m::M2mEncoder;
use crate::encode::m2m::device::{M2mSettings, V4l2M2m};
use crate::encode::passthrough::Passthrough;
use crate::encode::{EncodeError, Encoded};
use crate::events::motion::MotionTap;
use crate::hub::{EncodeOutcome, EncodeReport, FrameSink, KeyframeCause, PipelineEvent};
use crate::media::{CaptureTime, EncodedFrame};
use crate::peer::sdp::ProfileLevelId;
use crate::snapshot::StillSender;
use crate::source::convert::Orientation;
use crate::source::health::{HealthSession, SourceHealth, SourceState};
use crate::source::supervisor::{Backoff, Decision, Outage};
use crate::source::{SourceError, VideoFrame};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Everything the video thread needs, shared by every start of the pipeline.
#[derive(Clone)]
pub struct VideoTrack {
    pub open: VideoOpener,
    /// Settings for openh264 when the source delivers raw pictures; width and height follow the
    /// pictures actually captured (after rotation).
    pub h264: H264Settings,
    pub orientation: Orientation,
    pub raw_encoder: RawEncoder,
    /// Where the stream's real profile-level-id is published for SDP answers.
    pub profile: Arc<watch::Sender<ProfileLevelId>>,
    /// Where every raw picture is left for snapshots (an `Arc` swap per frame, no copy).
    pub stills: StillSender,
    /// The motion detector's thread, offered every raw picture without waiting.
    pub motion: Option<MotionTap>,
}

/// Who encodes raw pictures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawEncoder {
    Openh264,
    /// The V4L2 memory-to-memory encoder at this device node.
    V4l2m2m(PathBuf),
}

/// One coded picture and, for keyframes, the profile its SPS declares.
type Coded = (Encoded, Option<ProfileLevelId>, CaptureTime);

/// Turns whatever the source delivers into H.264 ready for RTP.
struct H264Stage {
    raw_encoder: RawEncoder,
    openh264: Option<H264Encoder>,
    m2m: Option<(M2mEncoder<V4l2M2m>, M2mSettings)>,
    passthrough: Option<Passthrough>,
    force_keyframe: bool,
    /// Bandwidth adaptation's target for openh264, kbit/s; `None` keeps the configured bitrate.
    /// The M2M encoder and passthrough keep theirs (see `config/camrtc.toml`).
    bitrate_kbps: Option<u32>,
}

impl H264Stage {
    fn new(raw_encoder: RawEncoder) -> Self {
        Self {
            raw_encoder,
            openh264: None,
            m2m: None,
            passthrough: None,
            force_keyframe: false,
            bitrate_kbps: None,
        }
    }

    /// The source was (re)opened: its first picture must be a keyframe.
    fn restart(&mut self) {
        self.force_keyframe = true;
        if let Some(pass) = &mut self.passthrough {
            pass.restart();
        }
    }

    fn encode(
        &mut self,
        frame: VideoFrame,
        settings: H264Settings,
        orientation: Orientation,
        stills: &StillSender,
        motion: Option<&MotionTap>,
    ) -> Result<Vec<Coded>, SourceError> {
        let encoder_failed = |e: EncodeError| SourceError::Capture(format!("encoder: {e}"));
        let raw = match frame {
            VideoFrame::Raw(raw) => {
                let raw = Arc::new(
                    orientation.apply(raw).map_err(|e| SourceError::Capture(e.to_string()))?,
                );
                stills.send_replace(Some(raw.clone()));
                if let Some(motion) = motion {
                    motion.offer(&raw);
                }
                raw
            }
            VideoFrame::H264(unit) => {
                self.force_keyframe = false;
                let pass = self.passthrough.get_or_insert_with(Passthrough::new);
                let encoded = pass.encode(&unit).map_err(encoder_failed)?;
                let profile = profile_of(encoded.as_ref(), pass.last_annex_b());
                return Ok(encoded.map(|e| (e, profile, unit.captured)).into_iter().collect());
            }
        };
        let force = std::mem::take(&mut self.force_keyframe);
        let wanted = H264Settings { width: raw.width, height: raw.height, ..settings };
        if let RawEncoder::V4l2m2m(path) = &self.raw_encoder {
            let m2m_settings = M2mSettings {
                width: wanted.width,
                height: wanted.height,
                fps: wanted.fps,
                bitrate_kbps: wanted.bitrate_kbps,
                keyframe_interval_ms: wanted.keyframe_interval_ms,
            };
            if self.m2m.as_ref().is_none_or(|(_, s)| *s != m2m_settings) {
                self.m2m = None;
                let device = V4l2M2m::open(path, m2m_settings)
                    .and_then(M2mEncoder::new)
                    .map_err(|e| encoder_failed(e.into()))?;
                self.m2m = Some((device, m2m_settings));
            }
            let (encoder, _) = self.m2m.as_mut().expect("opened just above when missing or stale");
            if force {
                encoder.force_keyframe().map_err(|e| encoder_failed(e.into()))?;
            }
            let coded = encoder.encode(&raw).map_err(|e| encoder_failed(e.into()))?;
            return Ok(coded
                .into_iter()
                .map(|c| {
                    let profile = profile_of(Some(&c.encoded), &c.annex_b);
                    (c.encoded, profile, c.captured)
                })
                .collect());
        }
        // openh264, rebuilt when the size changes (a camera back in another mode, a rotation).
        if self.openh264.as_ref().is_none_or(|e| e.settings() != wanted) {
            self.openh264 = Some(H264Encoder::new(wanted).map_err(encoder_failed)?);
        }
        let encoder = self.openh264.as_mut().expect("built just above when missing or stale");
        if let Some(kbps) = self.bitrate_kbps {
            encoder.set_bitrate(kbps);
        }
        if force {
            encoder.force_keyframe();
        }
        let encoded = encoder.encode(&raw).map_err(encoder_failed)?;
        let profile = profile_of(encoded.as_ref(), encoder.last_annex_b());
        Ok(encoded.map(|e| (e, profile, raw.captured)).into_iter().collect())
    }
}

fn profile_of(encoded: Option<&crate::encode::Encoded>, annex_b: &[u8]) -> Option<ProfileLevelId> {
    encoded.filter(|e| e.keyframe).and_then(|_| sps_profile(annex_b)).map(|sps| ProfileLevelId {
        profile_idc: sps.profile_idc,
        profile_iop: sps.constraint_flags,
        level_idc: sps.level_idc,
    })
}

/// How the pipeline steers the video thread.
pub(super) struct Control {
    pub commands: mpsc::Receiver<VideoCommand>,
    pub stop: Arc<AtomicBool>,
    /// Test-only: stop producing after this many frames (see `systemd::TEST_WEDGE_ENV`).
    pub wedge_after: Option<u64>,
}

/// Runs until `stop` is set or the hub goes away.
pub(super) fn run(track: VideoTrack, health: HealthSession, control: Control, sink: FrameSink) {
    let Control { commands, stop, wedge_after } = control;
    let mut frames: u64 = 0;
    let frame_duration = Duration::from_secs(1) / track.h264.fps.max(1);
    let mut stage = H264Stage::new(track.raw_encoder.clone());
    let mut governor = FrameRateGovernor::new(frame_duration);
    let mut outage = Outage::new(Backoff::for_devices());
    'open: while !stop.load(Ordering::Relaxed) {
        let mut source = match (track.open)() {
            Ok(source) => source,
            Err(error) => {
                if wait_to_retry(&mut outage, &error, &health, &stop) {
                    continue 'open;
                }
                break 'open;
            }
        };
        stage.restart();
        source.request_keyframe();
        // Why the next keyframe is forced, if it is: for /metrics.
        let mut forced_cause = KeyframeCause::Start;
        let mut delivering = false;
        while !stop.load(Ordering::Relaxed) {
            if wedge_after.is_some_and(|after| frames >= after) {
                // The test wedge: produce nothing, like a thread stuck in an ioctl, but still
                // end when told so the test process can exit.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            frames += 1;
            let mut encoding = None;
            let result = source.next_frame().and_then(|frame| {
                // Requests that arrived while we waited for the frame apply to this one.
                let mut keyframe_requested = false;
                for command in commands.try_iter() {
                    match command {
                        VideoCommand::ForceKeyframe => keyframe_requested = true,
                        VideoCommand::SetBitrate(kbps) => stage.bitrate_kbps = Some(kbps),
                    }
                }
                if keyframe_requested {
                    if !stage.force_keyframe {
                        forced_cause = KeyframeCause::Requested;
                    }
                    stage.force_keyframe = true;
                    source.request_keyframe();
                }
                let raw = matches!(frame, VideoFrame::Raw(_));
                // A camera's own H.264 cannot be thinned out: every picture may be a reference.
                // Ok(None) means exactly this: a picture left out.
                if raw && !governor.admit() {
                    return Ok(None);
                }
                let forced = stage.force_keyframe.then_some(forced_cause);
                let started = Instant::now();
                let coded = stage.encode(
                    frame,
                    track.h264,
                    track.orientation,
                    &track.stills,
                    track.motion.as_ref(),
                );
                encoding = Some((started.elapsed(), raw, forced));
                coded.map(Some)
            });
            let coded = match result {
                Ok(Some(coded)) => coded,
                Ok(None) => {
                    sink.send(PipelineEvent::Thinned);
                    continue;
                }
                Err(error) => {
                    drop(source);
                    if wait_to_retry(&mut outage, &error, &health, &stop) {
                        continue 'open;
                    }
                    break 'open;
                }
            };
            let (took, raw, forced) = encoding.expect("set whenever encode ran, and it did");
            if raw && let Some(divisor) = governor.encoded(Instant::now(), took) {
                let fps = track.h264.fps as f32 / divisor as f32;
                let encode_ms = took.as_secs_f32() * 1000.0;
                if divisor > 1 {
                    tracing::warn!(
                        encode_ms,
                        fps,
                        "encoding takes nearly the frame interval; encoding 1 picture in {divisor}"
                    );
                } else {
                    tracing::info!(
                        encode_ms,
                        fps,
                        "encoding keeps up again; every picture encoded"
                    );
                }
            }
            if coded.is_empty() {
                // Passthrough waits for whole access units; only an encoder given a picture skips.
                if raw {
                    let outcome = EncodeOutcome::Skipped;
                    let report = EncodeReport { took, capture_to_encoded: took, outcome };
                    sink.send(PipelineEvent::Encoded(report));
                }
                continue;
            }
            if !delivering {
                delivering = true;
                health.set(SourceHealth::running());
                match outage.recovered() {
                    Some(attempts) => tracing::info!(attempts, "camera is back"),
                    None => tracing::info!("camera delivering pictures"),
                }
            }
            let encoded_at = Instant::now();
            for (encoded, profile, captured) in coded {
                if let Some(profile) = profile {
                    publish_profile(&track.profile, profile);
                }
                let outcome = if encoded.keyframe {
                    EncodeOutcome::Keyframe(forced.unwrap_or(KeyframeCause::Periodic))
                } else {
                    EncodeOutcome::Delta
                };
                let capture_to_encoded = encoded_at.saturating_duration_since(captured.instant);
                sink.send(PipelineEvent::Encoded(EncodeReport {
                    took,
                    capture_to_encoded,
                    outcome,
                }));
                let event = PipelineEvent::Video(EncodedFrame {
                    payloads: encoded.payloads.into(),
                    captured,
                    keyframe: encoded.keyframe,
                    duration: frame_duration,
                });
                if !sink.send(event) {
                    break 'open;
                }
            }
        }
    }
    // A source given up on keeps its error on show until the next start.
    if !outage.given_up() {
        health.set(SourceHealth::stopped());
    }
}

fn publish_profile(profile: &watch::Sender<ProfileLevelId>, seen: ProfileLevelId) {
    let changed = profile.send_if_modified(|current| {
        let changed = *current != seen;
        *current = seen;
        changed
    });
    if changed {
        tracing::info!(profile_level_id = %seen, "video stream profile");
    }
}

/// Records a failure and sleeps the backoff delay; false when the thread should end instead
/// (stop requested, or a failure retrying cannot fix).
fn wait_to_retry(
    outage: &mut Outage,
    error: &SourceError,
    health: &HealthSession,
    stop: &AtomicBool,
) -> bool {
    let (decision, news) = outage.failed(error);
    match decision {
        Decision::RetryIn(delay) => {
            if let Some(message) = news {
                tracing::warn!(error = %message, retry_in = ?delay, "camera unavailable; retrying until it returns");
            } else {
                tracing::debug!(%error, retry_in = ?delay, "camera still unavailable");
            }
            health.set(SourceHealth::retrying(error.to_string()));
            outage.wait(delay, stop);
            !stop.load(Ordering::Relaxed)
        }
        Decision::GiveUp => {
            tracing::error!(%error, "camera stopped; fix the configuration and restart camrtc");
            health
                .set(SourceHealth { state: SourceState::Stopped, error: Some(error.to_string()) });
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::RawFrame;
    use crate::source::health::health_channel;
    use crate::source::{VideoOutput, VideoSource};
    use std::time::Instant;

    /// A camera that can be unplugged: while `present` is false, opening fails and a running
    /// source fails on its next frame, as a real one does with ENODEV.
    struct FakeCamera {
        present: Arc<AtomicBool>,
    }

    impl VideoSource for FakeCamera {
        fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
            std::thread::sleep(Duration::from_millis(20));
            if !self.present.load(Ordering::SeqCst) {
                return Err(SourceError::Capture("/dev/video9: No such device".into()));
            }
            Ok(VideoFrame::Raw(RawFrame::black(128, 96, CaptureTime::now())))
        }

        fn output(&self) -> VideoOutput {
            VideoOutput::Raw
        }
    }

    #[test]
    fn an_unplugged_camera_is_reopened_and_resumes_with_an_idr() {
        let present = Arc::new(AtomicBool::new(false));
        let opens = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let open: VideoOpener = {
            let (present, opens) = (present.clone(), opens.clone());
            Arc::new(move || {
                opens.fetch_add(1, Ordering::SeqCst);
                if present.load(Ordering::SeqCst) {
                    Ok(Box::new(FakeCamera { present: present.clone() }) as Box<dyn VideoSource>)
                } else {
                    Err(SourceError::Unavailable("/dev/video9: No such file or directory".into()))
                }
            })
        };
        let (profile, _profile_rx) = watch::channel(ProfileLevelId::parse("42e01f").unwrap());
        let track = VideoTrack {
            open,
            h264: H264Settings {
                width: 128,
                height: 96,
                fps: 50,
                bitrate_kbps: 300,
                keyframe_interval_ms: 60_000,
            },
            orientation: Orientation::default(),
            raw_encoder: RawEncoder::Openh264,
            profile: Arc::new(profile),
            stills: Arc::new(watch::channel(None).0),
            motion: None,
        };
        let (reporter, health) = health_channel();
        let (sink, mut events) = FrameSink::detached(256);
        let (_commands, command_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::spawn({
            let (session, stop) = (reporter.session(), stop.clone());
            let control = Control { commands: command_rx, stop, wedge_after: None };
            move || run(track, session, control, sink)
        });
        // Frames, and what caused each keyframe.
        let next_video = |events: &mut tokio::sync::mpsc::Receiver<(u64, PipelineEvent)>| {
            let mut cause = None;
            loop {
                match events.blocking_recv().expect("the video thread is running") {
                    (_, PipelineEvent::Video(frame)) => return (frame, cause),
                    (_, PipelineEvent::Encoded(report)) => cause = Some(report.outcome),
                    (_, other) => panic!("the video thread only sends video, got {other:?}"),
                }
            }
        };

        // Missing at start: retried, reported, nothing sent.
        std::thread::sleep(Duration::from_millis(700));
        assert!(opens.load(Ordering::SeqCst) >= 2, "retried within 0.7 s");
        assert_eq!(health.borrow().state, SourceState::Retrying);
        assert!(health.borrow().error.as_deref().unwrap_or("").contains("/dev/video9"));
        assert!(events.try_recv().is_err());

        // Plugged in: the first picture is an IDR and the state is running.
        present.store(true, Ordering::SeqCst);
        let (first, cause) = next_video(&mut events);
        assert!(first.keyframe);
        assert_eq!(cause, Some(EncodeOutcome::Keyframe(KeyframeCause::Start)));
        assert_eq!(*health.borrow(), SourceHealth::running());
        let (second, cause) = next_video(&mut events);
        assert!(!second.keyframe);
        assert_eq!(cause, Some(EncodeOutcome::Delta));

        // Unplugged while streaming, and back: an IDR again, within the first quick retry.
        present.store(false, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(health.borrow().state, SourceState::Retrying);
        while events.try_recv().is_ok() {}
        let returned = Instant::now();
        present.store(true, Ordering::SeqCst);
        let (resumed, cause) = next_video(&mut events);
        assert!(resumed.keyframe, "video resumes with an IDR");
        assert_eq!(cause, Some(EncodeOutcome::Keyframe(KeyframeCause::Start)));
        assert!(returned.elapsed() < Duration::from_secs(2), "{:?}", returned.elapsed());

        stop.store(true, Ordering::SeqCst);
        thread.join().expect("the video thread ends cleanly");
        assert_eq!(*health.borrow(), SourceHealth::stopped());
    }

    #[test]
    fn a_config_error_stops_the_camera_with_its_reason() {
        let open: VideoOpener =
            Arc::new(|| Err(SourceError::Config("unknown control \"brightnes\"".into())));
        let (profile, _rx) = watch::channel(ProfileLevelId::parse("42e01f").unwrap());
        let track = VideoTrack {
            open,
            h264: H264Settings {
                width: 128,
                height: 96,
                fps: 30,
                bitrate_kbps: 300,
                keyframe_interval_ms: 2000,
            },
            orientation: Orientation::default(),
            raw_encoder: RawEncoder::Openh264,
            profile: Arc::new(profile),
            stills: Arc::new(watch::channel(None).0),
            motion: None,
        };
        let (reporter, health) = health_channel();
        let (sink, _events) = FrameSink::detached(4);
        let (_commands, command_rx) = mpsc::channel();
        let control = Control {
            commands: command_rx,
            stop: Arc::new(AtomicBool::new(false)),
            wedge_after: None,
        };
        run(track, reporter.session(), control, sink);
        let state = health.borrow().clone();
        assert_eq!(state.state, SourceState::Stopped);
        assert!(state.error.expect("reason kept").contains("brightnes"));
    }
}
