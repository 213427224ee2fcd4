//! The hub: encode once, fan out to every viewer.
//!
//! One task owns the viewer list, the pipeline (started on demand) and the keyframe policy.
//! Encoded frames arrive from the pipeline threads; each viewer gets them through its own bounded
//! queue, so a slow viewer drops frames (and resumes at the next keyframe) without ever slowing
//! the producer or the other viewers. Everything else talks to the hub by message.

mod bitrate;

pub use bitrate::{AUDIO_ALLOWANCE_BPS, BitrateController, BitrateLimits, ESTIMATE_SHARE};

use crate::media::EncodedFrame;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub type ViewerId = u64;

/// At most one IDR per this interval, however many viewers join or send PLI/FIR at once.
pub const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(250);
/// Dropped frames are reported at most this often per viewer, so a stalled viewer cannot flood
/// the log.
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(5);
/// How long to wait before restarting a failed pipeline: the first retry is quick, later ones back
/// off so a missing camera does not spin a core.
const RESTART_BACKOFF_FIRST: Duration = Duration::from_millis(500);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Frames in flight between the pipeline threads and the hub task; only a wedged runtime fills it.
const PIPELINE_QUEUE: usize = 64;

/// How the hub behaves; taken from `[pipeline]` in the config.
#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    /// Run capture and encoding only while someone watches.
    pub on_demand: bool,
    /// How long the pipeline keeps running after the last viewer leaves.
    pub idle_stop: Duration,
    /// Frames each viewer may have queued per track before it starts dropping.
    pub viewer_queue_frames: usize,
    /// Where bandwidth adaptation may move the encoder's bitrate.
    pub bitrate: BitrateLimits,
    /// Privacy mode at start (persisted): no capture at all until it is switched off.
    pub private: bool,
}

/// Why the hub could not serve a request.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub task has stopped (the daemon is shutting down).
    #[error("the media hub has stopped")]
    Stopped,
}

/// Why a pipeline could not start or stopped working.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PipelineError(pub String);

/// What the pipeline threads hand to the hub.
#[derive(Debug)]
pub enum PipelineEvent {
    Video(EncodedFrame),
    Audio(EncodedFrame),
    /// What the video encoder did with one picture (sent before the frame it produced, if any).
    Encoded(EncodeReport),
    /// A captured picture the video thread left out, not given to the encoder, because encoding
    /// every picture had been taking nearly the whole frame interval (CPU pressure).
    Thinned,
    /// The pipeline gave up (device gone, encoder error); the hub restarts it with backoff.
    Failed(PipelineError),
}

/// One encoder call, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeReport {
    /// How long the encoder call took (conversion and orientation excluded).
    pub took: Duration,
    /// From capture until the encoder returned.
    pub capture_to_encoded: Duration,
    pub outcome: EncodeOutcome,
}

/// What came out of one encoder call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeOutcome {
    Delta,
    Keyframe(KeyframeCause),
    /// The rate controller produced nothing for this picture.
    Skipped,
}

/// Why a keyframe was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeCause {
    /// The source was (re)opened, or the encoder (re)built.
    Start,
    /// The hub asked for it (joins, picture loss, resync).
    Requested,
    /// The encoder's own keyframe interval.
    Periodic,
}

/// Keyframes produced, by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyframeCauseCounts {
    pub start: u64,
    pub requested: u64,
    pub periodic: u64,
}

/// Frames lost on the way to viewers, by where and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DropCounts {
    /// Video frames refused because a viewer's queue was full.
    pub video_queue_full: u64,
    /// Video frames skipped while a viewer waits for a keyframe after such a loss.
    pub video_resync: u64,
    /// Audio packets refused because a viewer's queue was full.
    pub audio_queue_full: u64,
    /// Pictures the encoder's rate control skipped (before fan-out: every viewer misses them).
    pub encoder_skip: u64,
    /// Pictures left out before encoding to keep up under CPU pressure (every viewer misses them).
    pub cpu_pressure: u64,
    /// Frames a session failed to write to its transport.
    pub send_error: u64,
}

/// Written by sessions as they send, read by status snapshots: atomics, because one write per
/// frame per viewer should not cost a message to the hub.
#[derive(Debug, Default)]
pub struct SendStats {
    capture_to_sent: [AtomicU64; LATENCY_BOUNDS_MS.len() + 1],
    capture_to_sent_nanos: AtomicU64,
    send_errors: AtomicU64,
}

impl SendStats {
    /// A video frame captured at `captured` was handed to the transport at `now`.
    pub fn sent(&self, captured: std::time::Instant, now: std::time::Instant) {
        let latency = now.saturating_duration_since(captured);
        self.capture_to_sent[LatencyHistogram::bucket(latency)].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.capture_to_sent_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn send_failed(&self) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
    }

    fn capture_to_sent(&self) -> LatencyHistogram {
        LatencyHistogram {
            counts: std::array::from_fn(|i| self.capture_to_sent[i].load(Ordering::Relaxed)),
            sum: Duration::from_nanos(self.capture_to_sent_nanos.load(Ordering::Relaxed)),
        }
    }
}

/// Where pipeline threads put their output. Never blocks: if the hub is not keeping up the event
/// is dropped and counted.
#[derive(Clone)]
pub struct FrameSink {
    generation: u64,
    tx: mpsc::Sender<(u64, PipelineEvent)>,
    overflow: Arc<AtomicU64>,
}

impl FrameSink {
    /// A sink not attached to any hub, for testing pipeline threads on their own.
    #[cfg(test)]
    pub(crate) fn detached(capacity: usize) -> (FrameSink, mpsc::Receiver<(u64, PipelineEvent)>) {
        let (tx, rx) = mpsc::channel(capacity);
        (FrameSink { generation: 0, tx, overflow: Arc::new(AtomicU64::new(0)) }, rx)
    }

    /// Hands one event to the hub; returns false once the hub is gone, so threads can exit.
    pub fn send(&self, event: PipelineEvent) -> bool {
        match self.tx.try_send((self.generation, event)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// A running capture + encode pipeline, as the hub sees it.
pub trait Pipeline: Send {
    /// Ask the video encoder for an IDR as soon as possible.
    fn force_keyframe(&mut self);
    /// Bandwidth adaptation's new target for the video encoder, from the next picture on.
    fn set_bitrate(&mut self, kbps: u32);
    /// Stop without blocking the caller; threads finish on their own.
    fn stop(self: Box<Self>);
}

/// Starts pipelines; injected so tests can drive the hub without cameras or threads.
pub trait PipelineFactory: Send + 'static {
    fn start(&mut self, sink: FrameSink) -> Result<Box<dyn Pipeline>, PipelineError>;
}

/// Why a keyframe was asked for; counted for observability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyframeReason {
    /// A viewer's connection came up and it needs a decodable start.
    Join,
    /// The viewer's decoder asked (RTCP PLI or FIR).
    PictureLoss,
    /// The viewer dropped frames and must restart at a keyframe.
    Resync,
}

/// Keyframe requests by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct KeyframeRequestCounts {
    pub join: u64,
    pub picture_loss: u64,
    pub resync: u64,
}

impl KeyframeRequestCounts {
    fn count(&mut self, reason: KeyframeReason) {
        match reason {
            KeyframeReason::Join => self.join += 1,
            KeyframeReason::PictureLoss => self.picture_loss += 1,
            KeyframeReason::Resync => self.resync += 1,
        }
    }
}

/// A latency histogram with fixed bounds, cheap enough to update for every frame.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// `counts[i]`: observations at most `LATENCY_BOUNDS_MS[i]`; the last is everything larger.
    pub counts: [u64; LATENCY_BOUNDS_MS.len() + 1],
    pub sum: Duration,
}

/// Upper bounds of the latency buckets, in milliseconds: a frame interval at 30 fps is 33 ms.
pub const LATENCY_BOUNDS_MS: [u64; 10] = [1, 2, 5, 10, 20, 35, 50, 100, 250, 1000];

impl LatencyHistogram {
    pub fn observe(&mut self, latency: Duration) {
        self.counts[Self::bucket(latency)] += 1;
        self.sum += latency;
    }

    fn bucket(latency: Duration) -> usize {
        let millis = latency.as_secs_f64() * 1000.0;
        LATENCY_BOUNDS_MS
            .iter()
            .position(|&bound| millis <= bound as f64)
            .unwrap_or(LATENCY_BOUNDS_MS.len())
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// What a viewer receives: one queue per track. Dropping it leaves the hub.
pub struct ViewerFeed {
    pub id: ViewerId,
    pub video: mpsc::Receiver<Arc<EncodedFrame>>,
    pub audio: mpsc::Receiver<Arc<EncodedFrame>>,
    _leave: LeaveOnDrop,
}

struct LeaveOnDrop {
    id: ViewerId,
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for LeaveOnDrop {
    fn drop(&mut self) {
        // If the hub is already gone there is nobody left to tell.
        let _ = self.commands.send(Command::Leave(self.id));
    }
}

/// A snapshot of the hub for /healthz and status lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct HubStatus {
    /// Privacy mode: capture is stopped whoever watches (see [`HubHandle::set_privacy`]).
    pub privacy: bool,
    pub viewers: usize,
    pub active_viewers: usize,
    pub pipeline_running: bool,
    pub last_pipeline_error: Option<String>,
    pub video_frames: u64,
    pub audio_frames: u64,
    pub keyframes: u64,
    pub keyframe_requests_sent: u64,
    /// Viewers started from a recent keyframe instead of a new IDR.
    pub gop_replays: u64,
    pub dropped_frames: u64,
    /// The audio part of `dropped_frames`.
    pub dropped_audio_frames: u64,
    /// Frames queued to viewers, summed over viewers (one frame to three viewers counts three).
    pub frames_delivered: u64,
    /// Keyframe requests received, by why, before coalescing into `keyframe_requests_sent`.
    pub keyframe_requests: KeyframeRequestCounts,
    /// Capture to arrival at the hub for video frames: capture, conversion and encoding.
    #[serde(skip)]
    pub capture_to_hub: LatencyHistogram,
    /// Capture until the encoder returned.
    #[serde(skip)]
    pub capture_to_encoded: LatencyHistogram,
    /// Capture until a session handed the frame's packets to its transport, per viewer.
    #[serde(skip)]
    pub capture_to_sent: LatencyHistogram,
    /// Time spent in the video encoder per picture.
    #[serde(skip)]
    pub encode_time: LatencyHistogram,
    pub keyframe_causes: KeyframeCauseCounts,
    pub drops: DropCounts,
    /// The video encoder's target as bandwidth adaptation last chose it, kbit/s.
    pub video_bitrate_target_kbps: u32,
    /// Each connected viewer's latest congestion-control estimate.
    pub bandwidth_estimates: Vec<ViewerEstimate>,
    pub pipeline_overflow: u64,
    /// When the running pipeline last showed progress: its start, then every video frame. A
    /// capture thread stuck in a driver call stops moving it; the systemd watchdog reads it.
    /// `None` while no pipeline runs. Audio does not count: its own supervisor reopens a
    /// vanished microphone with backoff, and a missing microphone must not restart the daemon.
    #[serde(skip)]
    pub pipeline_progress: Option<Instant>,
}

/// One viewer's path estimate, as its session last reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ViewerEstimate {
    pub viewer: ViewerId,
    pub bits_per_second: u64,
}

enum Command {
    Join {
        wants_audio: bool,
        reply: oneshot::Sender<ViewerFeed>,
    },
    Activate(ViewerId),
    Leave(ViewerId),
    Keyframe(ViewerId, KeyframeReason),
    Estimate(ViewerId, u64),
    Status(oneshot::Sender<HubStatus>),
    /// Someone other than a viewer needs pictures (a snapshot): run capture until released.
    Hold,
    Release,
    Privacy(bool),
}

/// Keeps capture running while it lives (see [`HubHandle::hold_capture`]).
pub struct CaptureHold {
    commands: mpsc::UnboundedSender<Command>,
}

impl Drop for CaptureHold {
    fn drop(&mut self) {
        // If the hub is already gone there is nothing to release.
        let _ = self.commands.send(Command::Release);
    }
}

/// The handle everyone else holds. Cheap to clone.
#[derive(Clone)]
pub struct HubHandle {
    commands: mpsc::UnboundedSender<Command>,
    send_stats: Arc<SendStats>,
    /// The encoder's current target, kbit/s: written by the hub, read by joining sessions to
    /// start their estimate there.
    bitrate_kbps: Arc<std::sync::atomic::AtomicU32>,
}

impl HubHandle {
    /// The video encoder's current target, kbit/s.
    pub fn video_bitrate_kbps(&self) -> u32 {
        self.bitrate_kbps.load(Ordering::Relaxed)
    }

    /// Where sessions count what they send.
    pub fn send_stats(&self) -> &Arc<SendStats> {
        &self.send_stats
    }

    /// Registers a viewer. It receives nothing until [`activate`](Self::activate), but its
    /// existence already starts the pipeline, so capture warms up while ICE and DTLS connect.
    pub async fn join(&self, wants_audio: bool) -> Result<ViewerFeed, HubError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Join { wants_audio, reply }).map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }

    /// The viewer's transport is up: start its media at the next (promptly requested) keyframe.
    pub fn activate(&self, id: ViewerId) {
        let _ = self.commands.send(Command::Activate(id));
    }

    pub fn request_keyframe(&self, id: ViewerId, reason: KeyframeReason) {
        let _ = self.commands.send(Command::Keyframe(id, reason));
    }

    /// The viewer's congestion control estimates its path carries `bits_per_second`.
    pub fn report_estimate(&self, id: ViewerId, bits_per_second: u64) {
        let _ = self.commands.send(Command::Estimate(id, bits_per_second));
    }

    /// Starts capture (if it is on demand and idle) and keeps it running until the hold is
    /// dropped; then the usual idle stop applies.
    pub fn hold_capture(&self) -> CaptureHold {
        let _ = self.commands.send(Command::Hold);
        CaptureHold { commands: self.commands.clone() }
    }

    /// Privacy mode on: capture stops now (camera and microphone closed) and stays stopped for
    /// viewers and holds alike until it is switched off again.
    pub fn set_privacy(&self, enabled: bool) {
        let _ = self.commands.send(Command::Privacy(enabled));
    }

    pub async fn status(&self) -> Result<HubStatus, HubError> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(Command::Status(reply)).map_err(|_| HubError::Stopped)?;
        answer.await.map_err(|_| HubError::Stopped)
    }
}

/// Coalesces keyframe requests: the first one goes out at once, later ones within
/// [`KEYFRAME_MIN_INTERVAL`] are folded into a single deferred request.
#[derive(Debug)]
pub struct KeyframeGate {
    min_interval: Duration,
    last_sent: Option<Instant>,
    pending_since: Option<Instant>,
}

impl KeyframeGate {
    pub fn new(min_interval: Duration) -> Self {
        Self { min_interval, last_sent: None, pending_since: None }
    }

    /// A request arrived at `now`; true means "ask the encoder now".
    pub fn request(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(last) if now < last + self.min_interval => {
                self.pending_since.get_or_insert(now);
                false
            }
            _ => {
                self.last_sent = Some(now);
                self.pending_since = None;
                true
            }
        }
    }

    /// When a deferred request becomes due, if one is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending_since.and(self.last_sent).map(|last| last + self.min_interval)
    }

    /// True when a deferred request is due at `now` (and marks it sent).
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deadline() {
            Some(due) if now >= due => {
                self.last_sent = Some(now);
                self.pending_since = None;
                true
            }
            _ => false,
        }
    }

    /// A keyframe captured at `captured` went out; it satisfies requests made before it.
    pub fn keyframe_produced(&mut self, captured: Instant) {
        if self.pending_since.is_some_and(|since| captured >= since) {
            self.pending_since = None;
        }
    }
}

/// The latest keyframe and the frames after it, kept only while the keyframe is younger than
/// [`KEYFRAME_MIN_INTERVAL`]: a viewer joining then can start from it instead of waiting for the
/// coalesced next IDR. Older than that, catching up would cost more latency than a new IDR.
#[derive(Default)]
struct RecentGop {
    frames: Vec<Arc<EncodedFrame>>,
}

/// More frames than fit in the freshness window at 60 fps; bounds memory whatever the rate.
const RECENT_GOP_MAX_FRAMES: usize = 16;

impl RecentGop {
    fn push(&mut self, frame: &Arc<EncodedFrame>) {
        if frame.keyframe {
            self.frames.clear();
            self.frames.push(frame.clone());
        } else if !self.frames.is_empty() && self.frames.len() < RECENT_GOP_MAX_FRAMES {
            self.frames.push(frame.clone());
        } else {
            self.frames.clear();
        }
    }

    fn fresh(&self, now: Instant) -> bool {
        self.frames.first().is_some_and(|keyframe| {
            now < Instant::from_std(keyframe.captured.instant) + KEYFRAME_MIN_INTERVAL
        })
    }

    fn frames(&self) -> &[Arc<EncodedFrame>] {
        &self.frames
    }
}

struct Viewer {
    video: mpsc::Sender<Arc<EncodedFrame>>,
    /// None when the viewer negotiated no audio: nothing is queued for it.
    audio: Option<mpsc::Sender<Arc<EncodedFrame>>>,
    active: bool,
    needs_keyframe: bool,
    /// Set by a queue overflow until the next keyframe gets through: frames skipped meanwhile
    /// are losses too (unlike the wait for the first keyframe after joining).
    resyncing: bool,
    dropped: u64,
    dropped_since_log: u64,
    last_drop_log: Option<Instant>,
    /// The latest congestion-control estimate from the viewer's session, bits per second.
    estimate_bps: Option<u64>,
}

impl Viewer {
    /// Queues a video frame, or starts dropping until the next keyframe if the queue is full.
    fn offer_video(&mut self, id: ViewerId, frame: &Arc<EncodedFrame>, now: Instant) -> Delivery {
        if self.needs_keyframe && !frame.keyframe {
            if self.resyncing {
                self.count_drop(id, "video", now);
                return Delivery::Dropped(DropReason::Resync);
            }
            return Delivery::Skipped;
        }
        match self.video.try_send(frame.clone()) {
            Ok(()) => {
                self.needs_keyframe = false;
                self.resyncing = false;
                Delivery::Sent
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.needs_keyframe = true;
                self.resyncing = true;
                self.count_drop(id, "video", now);
                Delivery::Dropped(DropReason::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
        }
    }

    fn offer_audio(&mut self, id: ViewerId, frame: &Arc<EncodedFrame>, now: Instant) -> Delivery {
        let Some(audio) = &self.audio else {
            return Delivery::Skipped;
        };
        match audio.try_send(frame.clone()) {
            Ok(()) => Delivery::Sent,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.count_drop(id, "audio", now);
                Delivery::Dropped(DropReason::QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Gone,
        }
    }

    /// Queues a just-activated viewer's first frames; false if they did not all fit.
    fn replay(&mut self, id: ViewerId, frames: &[Arc<EncodedFrame>], now: Instant) -> bool {
        for frame in frames {
            if self.offer_video(id, frame, now) != Delivery::Sent {
                return false;
            }
        }
        !frames.is_empty()
    }

    fn count_drop(&mut self, id: ViewerId, track: &str, now: Instant) {
        self.dropped += 1;
        self.dropped_since_log += 1;
        if self.last_drop_log.is_none_or(|last| now >= last + DROP_LOG_INTERVAL) {
            tracing::warn!(
                viewer = id,
                track,
                dropped = self.dropped_since_log,
                total = self.dropped,
                "viewer is not keeping up; dropping frames until its next keyframe"
            );
            self.dropped_since_log = 0;
            self.last_drop_log = Some(now);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Delivery {
    Sent,
    Skipped,
    Dropped(DropReason),
    Gone,
}

#[derive(Debug, PartialEq, Eq)]
enum DropReason {
    QueueFull,
    Resync,
}

/// Starts the hub task and returns its handle. The task ends when `shutdown` is cancelled,
/// stopping the pipeline with it.
pub fn spawn(
    settings: HubSettings,
    factory: Box<dyn PipelineFactory>,
    shutdown: CancellationToken,
) -> (HubHandle, tokio::task::JoinHandle<()>) {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::channel(PIPELINE_QUEUE);
    let hub = Hub {
        settings,
        factory,
        pipeline: None,
        generation: 0,
        events_tx,
        overflow: Arc::new(AtomicU64::new(0)),
        viewers: HashMap::new(),
        next_id: 1,
        gate: KeyframeGate::new(KEYFRAME_MIN_INTERVAL),
        recent_gop: RecentGop::default(),
        idle_since: None,
        restart_at: None,
        restart_backoff: RESTART_BACKOFF_FIRST,
        status: HubStatus {
            privacy: settings.private,
            video_bitrate_target_kbps: BitrateController::new(settings.bitrate).current_kbps(),
            ..HubStatus::default()
        },
        bitrate: BitrateController::new(settings.bitrate),
        shared_bitrate: Arc::new(std::sync::atomic::AtomicU32::new(
            BitrateController::new(settings.bitrate).current_kbps(),
        )),
        commands: commands.clone(),
        video_progress: None,
        holds: 0,
    };
    let send_stats = Arc::new(SendStats::default());
    let bitrate_kbps = hub.shared_bitrate.clone();
    let task = tokio::spawn(hub.run(command_rx, events, shutdown, send_stats.clone()));
    (HubHandle { commands, send_stats, bitrate_kbps }, task)
}

struct Hub {
    settings: HubSettings,
    factory: Box<dyn PipelineFactory>,
    pipeline: Option<Box<dyn Pipeline>>,
    /// Bumped on every start so late frames from a stopped pipeline are recognised and ignored.
    generation: u64,
    events_tx: mpsc::Sender<(u64, PipelineEvent)>,
    overflow: Arc<AtomicU64>,
    viewers: HashMap<ViewerId, Viewer>,
    next_id: ViewerId,
    gate: KeyframeGate,
    recent_gop: RecentGop,
    idle_since: Option<Instant>,
    restart_at: Option<Instant>,
    restart_backoff: Duration,
    status: HubStatus,
    bitrate: BitrateController,
    shared_bitrate: Arc<std::sync::atomic::AtomicU32>,
    commands: mpsc::UnboundedSender<Command>,
    /// The running pipeline's start, then its latest video frame.
    video_progress: Option<Instant>,
    /// Live [`CaptureHold`]s.
    holds: usize,
}

impl Hub {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::Receiver<(u64, PipelineEvent)>,
        shutdown: CancellationToken,
        send_stats: Arc<SendStats>,
    ) {
        if self.wants_pipeline() {
            self.start_pipeline(Instant::now());
        }
        loop {
            let wake = self.next_wakeup();
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.on_command(command, &send_stats, Instant::now()),
                Some((generation, event)) = events.recv() => {
                    if generation == self.generation {
                        self.on_event(event, Instant::now());
                    }
                }
                () = sleep_until_opt(wake) => self.on_timer(Instant::now()),
            }
        }
        if let Some(pipeline) = self.pipeline.take() {
            pipeline.stop();
        }
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let idle_stop = self.idle_since.map(|since| since + self.settings.idle_stop);
        [self.gate.deadline(), idle_stop, self.restart_at].into_iter().flatten().min()
    }

    fn on_command(&mut self, command: Command, send_stats: &SendStats, now: Instant) {
        match command {
            Command::Join { wants_audio, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                let depth = self.settings.viewer_queue_frames.max(2);
                let (video, video_rx) = mpsc::channel(depth);
                let (audio, audio_rx) = mpsc::channel(depth);
                let feed = ViewerFeed {
                    id,
                    video: video_rx,
                    audio: audio_rx,
                    _leave: LeaveOnDrop { id, commands: self.commands.clone() },
                };
                // If the caller gave up waiting, the returned feed is dropped here and its
                // LeaveOnDrop queues the Leave that undoes the insert below.
                let _ = reply.send(feed);
                self.viewers.insert(
                    id,
                    Viewer {
                        video,
                        audio: wants_audio.then_some(audio),
                        active: false,
                        needs_keyframe: true,
                        resyncing: false,
                        dropped: 0,
                        dropped_since_log: 0,
                        last_drop_log: None,
                        estimate_bps: None,
                    },
                );
                tracing::debug!(viewer = id, viewers = self.viewers.len(), "viewer joined");
                self.viewers_changed(now);
            }
            Command::Activate(id) => {
                let Some(viewer) = self.viewers.get_mut(&id) else { return };
                viewer.active = true;
                viewer.needs_keyframe = true;
                // A keyframe from moments ago (with the frames since) starts the viewer at once,
                // where a fresh IDR might be held back by the coalescing interval.
                if self.recent_gop.fresh(now) && viewer.replay(id, self.recent_gop.frames(), now) {
                    self.status.gop_replays += 1;
                } else {
                    self.request_keyframe(KeyframeReason::Join, now);
                }
            }
            Command::Leave(id) => {
                if self.viewers.remove(&id).is_some() {
                    tracing::debug!(viewer = id, viewers = self.viewers.len(), "viewer left");
                    self.viewers_changed(now);
                }
            }
            Command::Keyframe(id, reason) => {
                if self.viewers.get(&id).is_some_and(|v| v.active) {
                    self.request_keyframe(reason, now);
                }
            }
            Command::Estimate(id, bits_per_second) => {
                let Some(viewer) = self.viewers.get_mut(&id) else { return };
                viewer.estimate_bps = Some(bits_per_second);
                self.adapt_bitrate(now);
            }
            Command::Hold => {
                self.holds += 1;
                self.viewers_changed(now);
            }
            Command::Release => {
                self.holds = self.holds.saturating_sub(1);
                self.viewers_changed(now);
            }
            Command::Privacy(enabled) => {
                self.status.privacy = enabled;
                if enabled {
                    self.idle_since = None;
                    self.restart_at = None;
                    if let Some(pipeline) = self.pipeline.take() {
                        tracing::info!("privacy mode: stopping capture");
                        pipeline.stop();
                    }
                }
                self.viewers_changed(now);
            }
            Command::Status(reply) => {
                let mut status = self.status.clone();
                let mut estimates: Vec<ViewerEstimate> = self
                    .viewers
                    .iter()
                    .filter_map(|(&viewer, v)| {
                        let bits_per_second = v.estimate_bps.filter(|_| v.active)?;
                        Some(ViewerEstimate { viewer, bits_per_second })
                    })
                    .collect();
                estimates.sort_by_key(|e| e.viewer);
                status.bandwidth_estimates = estimates;
                status.viewers = self.viewers.len();
                status.active_viewers = self.viewers.values().filter(|v| v.active).count();
                status.pipeline_running = self.pipeline.is_some();
                status.pipeline_overflow = self.overflow.load(Ordering::Relaxed);
                status.pipeline_progress = self.pipeline.as_ref().and(self.video_progress);
                status.capture_to_sent = send_stats.capture_to_sent();
                status.drops.send_error = send_stats.send_errors.load(Ordering::Relaxed);
                let _ = reply.send(status);
            }
        }
    }

    fn on_event(&mut self, event: PipelineEvent, now: Instant) {
        match event {
            PipelineEvent::Video(frame) => {
                self.status.video_frames += 1;
                let captured = Instant::from_std(frame.captured.instant);
                self.status.capture_to_hub.observe(now.saturating_duration_since(captured));
                self.video_progress = Some(now);
                if frame.keyframe {
                    self.status.keyframes += 1;
                    self.gate.keyframe_produced(Instant::from_std(frame.captured.instant));
                    // A working pipeline earns a quick retry next time it fails.
                    self.restart_backoff = RESTART_BACKOFF_FIRST;
                }
                let frame = Arc::new(frame);
                self.recent_gop.push(&frame);
                let mut dropped = 0;
                let mut gone = Vec::new();
                for (&id, viewer) in self.viewers.iter_mut().filter(|(_, v)| v.active) {
                    match viewer.offer_video(id, &frame, now) {
                        Delivery::Dropped(reason) => {
                            dropped += 1;
                            match reason {
                                DropReason::QueueFull => self.status.drops.video_queue_full += 1,
                                DropReason::Resync => self.status.drops.video_resync += 1,
                            }
                        }
                        Delivery::Gone => gone.push(id),
                        Delivery::Sent => self.status.frames_delivered += 1,
                        Delivery::Skipped => {}
                    }
                }
                self.status.dropped_frames += dropped;
                self.forget(gone, now);
                if dropped > 0 {
                    self.request_keyframe(KeyframeReason::Resync, now);
                }
            }
            PipelineEvent::Audio(frame) => {
                self.status.audio_frames += 1;
                let frame = Arc::new(frame);
                let mut gone = Vec::new();
                for (&id, viewer) in self.viewers.iter_mut().filter(|(_, v)| v.active) {
                    match viewer.offer_audio(id, &frame, now) {
                        Delivery::Dropped(_) => {
                            self.status.dropped_frames += 1;
                            self.status.dropped_audio_frames += 1;
                            self.status.drops.audio_queue_full += 1;
                        }
                        Delivery::Gone => gone.push(id),
                        Delivery::Sent => self.status.frames_delivered += 1,
                        Delivery::Skipped => {}
                    }
                }
                self.forget(gone, now);
            }
            PipelineEvent::Encoded(report) => {
                self.status.encode_time.observe(report.took);
                self.status.capture_to_encoded.observe(report.capture_to_encoded);
                let causes = &mut self.status.keyframe_causes;
                match report.outcome {
                    EncodeOutcome::Delta => {}
                    EncodeOutcome::Keyframe(KeyframeCause::Start) => causes.start += 1,
                    EncodeOutcome::Keyframe(KeyframeCause::Requested) => causes.requested += 1,
                    EncodeOutcome::Keyframe(KeyframeCause::Periodic) => causes.periodic += 1,
                    EncodeOutcome::Skipped => self.status.drops.encoder_skip += 1,
                }
            }
            PipelineEvent::Thinned => self.status.drops.cpu_pressure += 1,
            PipelineEvent::Failed(error) => {
                tracing::error!(%error, retry_in = ?self.restart_backoff, "media pipeline failed");
                self.status.last_pipeline_error = Some(error.0);
                if let Some(pipeline) = self.pipeline.take() {
                    pipeline.stop();
                }
                self.schedule_restart(now);
            }
        }
    }

    fn on_timer(&mut self, now: Instant) {
        if self.gate.poll(now) {
            self.send_keyframe_request();
        }
        if self.idle_since.is_some_and(|since| now >= since + self.settings.idle_stop) {
            self.idle_since = None;
            if let Some(pipeline) = self.pipeline.take() {
                tracing::info!("no viewers left; stopping capture");
                pipeline.stop();
            }
        }
        if self.restart_at.is_some_and(|at| now >= at) {
            self.restart_at = None;
            if self.wants_pipeline() {
                self.start_pipeline(now);
            }
        }
    }

    fn forget(&mut self, gone: Vec<ViewerId>, now: Instant) {
        if gone.is_empty() {
            return;
        }
        for id in gone {
            self.viewers.remove(&id);
        }
        self.viewers_changed(now);
    }

    fn wants_pipeline(&self) -> bool {
        !self.status.privacy
            && (!self.settings.on_demand || !self.viewers.is_empty() || self.holds > 0)
    }

    fn viewers_changed(&mut self, now: Instant) {
        if self.wants_pipeline() {
            self.idle_since = None;
            if self.pipeline.is_none() && self.restart_at.is_none() {
                self.start_pipeline(now);
            }
        } else if self.pipeline.is_some() {
            self.idle_since.get_or_insert(now);
        } else {
            // Nobody to serve and nothing running: forget any pending retry too.
            self.restart_at = None;
        }
    }

    fn start_pipeline(&mut self, now: Instant) {
        self.generation += 1;
        self.recent_gop = RecentGop::default();
        // A fresh pipeline gets the stall limit to deliver its first frame.
        self.video_progress = Some(now);
        let sink = FrameSink {
            generation: self.generation,
            tx: self.events_tx.clone(),
            overflow: self.overflow.clone(),
        };
        match self.factory.start(sink) {
            Ok(mut pipeline) => {
                tracing::info!("capture started");
                pipeline.set_bitrate(self.bitrate.current_kbps());
                self.pipeline = Some(pipeline);
                self.status.last_pipeline_error = None;
            }
            Err(error) => {
                tracing::error!(%error, retry_in = ?self.restart_backoff, "cannot start the media pipeline");
                self.status.last_pipeline_error = Some(error.0);
                self.schedule_restart(now);
            }
        }
    }

    fn schedule_restart(&mut self, now: Instant) {
        self.restart_at = Some(now + self.restart_backoff);
        self.restart_backoff = (self.restart_backoff * 2).min(RESTART_BACKOFF_MAX);
    }

    /// Steers the shared encoder by the weakest active viewer's estimate.
    fn adapt_bitrate(&mut self, now: Instant) {
        let estimates = self.viewers.values().filter(|v| v.active).filter_map(|v| v.estimate_bps);
        if let Some(kbps) = self.bitrate.update(now, estimates) {
            tracing::debug!(kbps, "video bitrate target");
            self.status.video_bitrate_target_kbps = kbps;
            self.shared_bitrate.store(kbps, Ordering::Relaxed);
            if let Some(pipeline) = self.pipeline.as_mut() {
                pipeline.set_bitrate(kbps);
            }
        }
    }

    fn request_keyframe(&mut self, reason: KeyframeReason, now: Instant) {
        tracing::trace!(?reason, "keyframe requested");
        self.status.keyframe_requests.count(reason);
        if self.gate.request(now) {
            self.send_keyframe_request();
        }
    }

    fn send_keyframe_request(&mut self) {
        if let Some(pipeline) = self.pipeline.as_mut() {
            pipeline.force_keyframe();
            self.status.keyframe_requests_sent += 1;
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
