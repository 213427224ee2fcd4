//! Hub behaviour with paused time: no threads, no cameras, a fake pipeline the test feeds.

use super::*;
use crate::media::CaptureTime;
use bytes::Bytes;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

#[derive(Clone, Default)]
struct Probe {
    starts: Arc<AtomicUsize>,
    stops: Arc<AtomicUsize>,
    keyframes: Arc<AtomicUsize>,
    fail_starts: Arc<AtomicUsize>,
    /// Every bitrate the hub set, in order.
    bitrates: Arc<Mutex<Vec<u32>>>,
    sink: Arc<Mutex<Option<FrameSink>>>,
}

struct FakeFactory(Probe);
struct FakePipeline(Probe);

impl PipelineFactory for FakeFactory {
    fn start(&mut self, sink: FrameSink) -> Result<Box<dyn Pipeline>, PipelineError> {
        if self.0.fail_starts.load(Ordering::SeqCst) > 0 {
            self.0.fail_starts.fetch_sub(1, Ordering::SeqCst);
            return Err(PipelineError("camera unplugged".into()));
        }
        self.0.starts.fetch_add(1, Ordering::SeqCst);
        *self.0.sink.lock().expect("test mutex") = Some(sink);
        Ok(Box::new(FakePipeline(self.0.clone())))
    }
}

impl Pipeline for FakePipeline {
    fn force_keyframe(&mut self) {
        self.0.keyframes.fetch_add(1, Ordering::SeqCst);
    }
    fn set_bitrate(&mut self, kbps: u32) {
        self.0.bitrates.lock().expect("test mutex").push(kbps);
    }
    fn stop(self: Box<Self>) {
        self.0.stops.fetch_add(1, Ordering::SeqCst);
    }
}

impl Probe {
    fn push(&self, event: PipelineEvent) {
        let sink = self.sink.lock().expect("test mutex").clone().expect("pipeline started");
        assert!(sink.send(event));
    }
    fn video(&self, keyframe: bool) {
        self.push(PipelineEvent::Video(frame(keyframe)));
    }
}

fn frame(keyframe: bool) -> EncodedFrame {
    EncodedFrame {
        payloads: Arc::from(vec![Bytes::from_static(b"frame")]),
        captured: CaptureTime {
            instant: Instant::now().into_std(),
            wall: std::time::SystemTime::now(),
        },
        keyframe,
        duration: Duration::from_millis(33),
    }
}

fn settings(queue: usize) -> HubSettings {
    HubSettings {
        on_demand: true,
        idle_stop: Duration::from_secs(3),
        viewer_queue_frames: queue,
        bitrate: BitrateLimits { start_kbps: 1000, min_kbps: 150, max_kbps: 2000 },
        private: false,
    }
}

fn start(queue: usize) -> (HubHandle, Probe, CancellationToken) {
    let probe = Probe::default();
    let shutdown = CancellationToken::new();
    let (hub, _task) =
        spawn(settings(queue), Box::new(FakeFactory(probe.clone())), shutdown.clone());
    (hub, probe, shutdown)
}

/// Lets the hub task process everything queued so far without moving the paused clock.
/// (The hub serves commands before frames, so a bare status query could overtake them.)
async fn settle(hub: &HubHandle) -> HubStatus {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    hub.status().await.expect("hub running")
}

#[tokio::test(start_paused = true)]
async fn capture_runs_only_while_someone_watches() {
    let (hub, probe, _shutdown) = start(8);
    assert!(!settle(&hub).await.pipeline_running, "nothing runs before the first viewer");

    let viewer = hub.join(true).await.expect("joins");
    assert!(settle(&hub).await.pipeline_running);
    assert_eq!(probe.starts.load(Ordering::SeqCst), 1);

    drop(viewer);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(settle(&hub).await.pipeline_running, "keeps running through the idle grace period");

    // A viewer returning within the grace period reuses the running pipeline.
    let again = hub.join(true).await.expect("joins");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(settle(&hub).await.pipeline_running);
    assert_eq!(probe.starts.load(Ordering::SeqCst), 1);

    drop(again);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let status = settle(&hub).await;
    assert!(!status.pipeline_running, "stops a few seconds after the last viewer leaves");
    assert_eq!(probe.stops.load(Ordering::SeqCst), 1);
    assert_eq!(status.viewers, 0);
}

#[tokio::test(start_paused = true)]
async fn joins_and_picture_loss_are_coalesced_into_few_idrs() {
    let (hub, probe, _shutdown) = start(8);
    let mut viewers = Vec::new();
    for _ in 0..3 {
        viewers.push(hub.join(true).await.expect("joins"));
    }
    for viewer in &viewers {
        hub.activate(viewer.id);
        hub.request_keyframe(viewer.id, KeyframeReason::PictureLoss);
    }
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 1, "the first request goes out at once");

    tokio::time::sleep(Duration::from_millis(100)).await;
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 1, "later ones wait for the interval");

    tokio::time::sleep(Duration::from_millis(200)).await;
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 2, "and are folded into one deferred IDR");

    tokio::time::sleep(Duration::from_secs(2)).await;
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 2, "nothing more without new requests");
}

#[tokio::test(start_paused = true)]
async fn an_idr_produced_meanwhile_satisfies_a_deferred_request() {
    let (hub, probe, _shutdown) = start(8);
    let a = hub.join(true).await.expect("joins");
    let b = hub.join(true).await.expect("joins");
    hub.activate(a.id);
    settle(&hub).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    hub.activate(b.id);
    settle(&hub).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    probe.video(true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_viewer_joining_just_after_a_keyframe_starts_from_it_without_a_new_idr() {
    let (hub, probe, _shutdown) = start(8);
    let mut first = hub.join(true).await.expect("joins");
    hub.activate(first.id);
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 1);
    probe.video(true);
    probe.video(false);
    settle(&hub).await;
    assert!(first.video.try_recv().expect("keyframe").keyframe);

    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = hub.join(true).await.expect("joins");
    hub.activate(second.id);
    let status = settle(&hub).await;
    assert_eq!(status.gop_replays, 1);
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 1, "no extra IDR was needed");
    assert!(second.video.try_recv().expect("the recent keyframe").keyframe);
    assert!(!second.video.try_recv().expect("and the frame after it").keyframe);

    // Once the keyframe is older than the coalescing interval, a newcomer gets a fresh IDR.
    tokio::time::sleep(KEYFRAME_MIN_INTERVAL).await;
    let third = hub.join(true).await.expect("joins");
    hub.activate(third.id);
    let status = settle(&hub).await;
    assert_eq!(status.gop_replays, 1);
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_viewer_drops_and_resumes_at_a_keyframe_without_hurting_others() {
    let (hub, probe, _shutdown) = start(4);
    let mut slow = hub.join(true).await.expect("joins");
    let mut fast = hub.join(true).await.expect("joins");
    hub.activate(slow.id);
    hub.activate(fast.id);
    settle(&hub).await;

    probe.video(false);
    settle(&hub).await;
    assert!(fast.video.try_recv().is_err(), "a new viewer starts at a keyframe, not mid-GOP");

    probe.video(true);
    for _ in 0..9 {
        probe.video(false);
        settle(&hub).await;
        let got = fast.video.try_recv().expect("the fast viewer gets every frame");
        drop(got);
    }
    // The fast viewer also has the keyframe from before the loop; drain it.
    while fast.video.try_recv().is_ok() {}

    let status = settle(&hub).await;
    assert_eq!(status.dropped_frames, 6, "the slow viewer's queue of 4 overflowed 6 times");
    assert_eq!((status.drops.video_queue_full, status.drops.video_resync), (1, 5), "then resynced");
    // One IDR went out for the joins; the overflow's request waits out the coalescing interval.
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 1);
    tokio::time::sleep(KEYFRAME_MIN_INTERVAL).await;
    settle(&hub).await;
    assert_eq!(probe.keyframes.load(Ordering::SeqCst), 2, "dropping asked for a fresh keyframe");

    // The slow viewer catches up on what it has, then sees P-frames skipped until a keyframe.
    let mut queued = Vec::new();
    while let Ok(frame) = slow.video.try_recv() {
        queued.push(frame.keyframe);
    }
    assert_eq!(queued, vec![true, false, false, false]);
    probe.video(false);
    settle(&hub).await;
    assert!(slow.video.try_recv().is_err(), "no P-frame after a gap: it could not be decoded");
    probe.video(true);
    settle(&hub).await;
    assert!(slow.video.try_recv().expect("resumes at the keyframe").keyframe);
}

#[tokio::test(start_paused = true)]
async fn inactive_viewers_receive_nothing_and_audio_flows_once_active() {
    let (hub, probe, _shutdown) = start(8);
    let mut viewer = hub.join(true).await.expect("joins");
    probe.push(PipelineEvent::Audio(frame(true)));
    probe.video(true);
    settle(&hub).await;
    assert!(viewer.audio.try_recv().is_err());
    assert!(viewer.video.try_recv().is_err());

    hub.activate(viewer.id);
    probe.push(PipelineEvent::Audio(frame(true)));
    settle(&hub).await;
    assert!(viewer.audio.try_recv().is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_failing_pipeline_is_restarted_with_backoff() {
    let (hub, probe, _shutdown) = start(8);
    probe.fail_starts.store(2, Ordering::SeqCst);
    let _viewer = hub.join(true).await.expect("joins");
    let status = settle(&hub).await;
    assert!(!status.pipeline_running);
    assert_eq!(status.last_pipeline_error.as_deref(), Some("camera unplugged"));

    tokio::time::sleep(Duration::from_millis(510)).await;
    assert!(!settle(&hub).await.pipeline_running, "second attempt also fails");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(!settle(&hub).await.pipeline_running, "backoff doubled to 1 s");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = settle(&hub).await;
    assert!(status.pipeline_running);
    assert_eq!(status.last_pipeline_error, None);

    probe.push(PipelineEvent::Failed(PipelineError("device vanished".into())));
    let status = settle(&hub).await;
    assert!(!status.pipeline_running);
    assert_eq!(probe.stops.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn frames_from_a_stopped_pipeline_are_ignored() {
    let (hub, probe, _shutdown) = start(8);
    let mut viewer = hub.join(true).await.expect("joins");
    hub.activate(viewer.id);
    settle(&hub).await;
    let old_sink = probe.sink.lock().expect("test mutex").clone().expect("started");
    probe.push(PipelineEvent::Failed(PipelineError("glitch".into())));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(settle(&hub).await.pipeline_running, "restarted");
    old_sink.send(PipelineEvent::Video(frame(true)));
    settle(&hub).await;
    assert!(viewer.video.try_recv().is_err());
    probe.video(true);
    settle(&hub).await;
    assert!(viewer.video.try_recv().is_ok());
}

#[tokio::test(start_paused = true)]
async fn pipeline_progress_follows_video_and_only_while_running() {
    let (hub, probe, _shutdown) = start(8);
    assert_eq!(settle(&hub).await.pipeline_progress, None, "idle: nothing to watch");

    let viewer = hub.join(true).await.expect("joins");
    let started = Instant::now();
    assert_eq!(settle(&hub).await.pipeline_progress, Some(started), "a start counts as progress");

    tokio::time::sleep(Duration::from_secs(1)).await;
    probe.video(true);
    assert_eq!(settle(&hub).await.pipeline_progress, Some(started + Duration::from_secs(1)));

    // Audio chunks alone are no progress: video is what a wedged capture stops.
    tokio::time::sleep(Duration::from_secs(1)).await;
    probe.push(PipelineEvent::Audio(frame(true)));
    assert_eq!(settle(&hub).await.pipeline_progress, Some(started + Duration::from_secs(1)));

    drop(viewer);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(settle(&hub).await.pipeline_progress, None, "stopped on demand");
}

#[tokio::test(start_paused = true)]
async fn encoder_reports_and_send_stats_reach_the_status() {
    let (hub, probe, _shutdown) = start(8);
    let viewer = hub.join(true).await.expect("joins");
    hub.activate(viewer.id);
    settle(&hub).await;
    let report = |outcome, millis| {
        PipelineEvent::Encoded(EncodeReport {
            took: Duration::from_millis(millis),
            capture_to_encoded: Duration::from_millis(millis + 1),
            outcome,
        })
    };
    probe.push(report(EncodeOutcome::Keyframe(KeyframeCause::Start), 8));
    probe.push(report(EncodeOutcome::Delta, 4));
    probe.push(report(EncodeOutcome::Skipped, 4));
    probe.push(PipelineEvent::Thinned);
    probe.push(PipelineEvent::Thinned);
    probe.push(report(EncodeOutcome::Keyframe(KeyframeCause::Requested), 9));
    probe.push(report(EncodeOutcome::Keyframe(KeyframeCause::Periodic), 9));
    let captured = std::time::Instant::now();
    hub.send_stats().sent(captured, captured + Duration::from_millis(15));
    hub.send_stats().send_failed();

    let status = settle(&hub).await;
    assert_eq!(status.encode_time.count(), 5);
    assert_eq!(status.encode_time.sum, Duration::from_millis(34));
    assert_eq!(
        status.capture_to_encoded.counts[LatencyHistogram::bucket(Duration::from_millis(10))],
        3
    );
    assert_eq!(status.keyframe_causes, KeyframeCauseCounts { start: 1, requested: 1, periodic: 1 });
    assert_eq!(status.drops.encoder_skip, 1);
    assert_eq!(status.drops.cpu_pressure, 2, "thinned pictures are not encode reports");
    assert_eq!(status.drops.send_error, 1);
    assert_eq!(status.capture_to_sent.count(), 1);
    assert_eq!(
        status.capture_to_sent.counts[LatencyHistogram::bucket(Duration::from_millis(15))],
        1
    );
}

#[tokio::test(start_paused = true)]
async fn the_weakest_active_viewer_steers_the_encoder() {
    let (hub, probe, _shutdown) = start(8);
    let strong = hub.join(true).await.expect("joins");
    let weak = hub.join(true).await.expect("joins");
    let waiting = hub.join(true).await.expect("joins");
    hub.activate(strong.id);
    hub.activate(weak.id);
    let bitrates = || probe.bitrates.lock().expect("test mutex").clone();
    assert_eq!(bitrates(), vec![1000], "a new pipeline starts at the current target");

    hub.report_estimate(strong.id, 5_000_000);
    hub.report_estimate(weak.id, 400_000);
    // A viewer not yet connected has no say, however poor its estimate.
    hub.report_estimate(waiting.id, 10_000);
    let status = settle(&hub).await;
    assert_eq!(bitrates(), vec![1000, 289]);
    assert_eq!(status.video_bitrate_target_kbps, 289);
    assert_eq!(hub.video_bitrate_kbps(), 289);
    let estimates: Vec<(ViewerId, u64)> =
        status.bandwidth_estimates.iter().map(|e| (e.viewer, e.bits_per_second)).collect();
    assert_eq!(estimates, vec![(strong.id, 5_000_000), (weak.id, 400_000)]);

    // The weak viewer leaves: the encoder climbs back, one step per hold, not at once.
    drop(weak);
    hub.report_estimate(strong.id, 5_000_000);
    settle(&hub).await;
    assert_eq!(bitrates(), vec![1000, 289]);
    tokio::time::sleep(bitrate::UP_HOLD).await;
    hub.report_estimate(strong.id, 5_000_000);
    settle(&hub).await;
    assert_eq!(bitrates(), vec![1000, 289, 362]);
}

#[tokio::test(start_paused = true)]
async fn privacy_stops_capture_at_once_for_viewers_and_holds_and_resumes_after() {
    let (hub, probe, _shutdown) = start(8);
    let viewer = hub.join(true).await.expect("joins");
    let hold = hub.hold_capture();
    assert!(settle(&hub).await.pipeline_running);

    hub.set_privacy(true);
    let status = settle(&hub).await;
    assert!(status.privacy);
    assert!(!status.pipeline_running, "stopped without waiting for the idle grace period");
    assert_eq!(probe.stops.load(Ordering::SeqCst), 1);
    // Nothing brings it back while private: more viewers, holds, time.
    let second = hub.join(true).await.expect("joins");
    let second_hold = hub.hold_capture();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(!settle(&hub).await.pipeline_running);
    assert_eq!(probe.starts.load(Ordering::SeqCst), 1);

    hub.set_privacy(false);
    let status = settle(&hub).await;
    assert!(!status.privacy);
    assert!(status.pipeline_running, "viewers still there: capture resumes");
    assert_eq!(probe.starts.load(Ordering::SeqCst), 2);
    drop((viewer, second, hold, second_hold));
}

#[tokio::test(start_paused = true)]
async fn a_hub_started_private_never_opens_the_camera() {
    let probe = Probe::default();
    let shutdown = CancellationToken::new();
    let always_on = HubSettings { on_demand: false, private: true, ..settings(8) };
    let (hub, _task) = spawn(always_on, Box::new(FakeFactory(probe.clone())), shutdown.clone());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let status = settle(&hub).await;
    assert!(status.privacy && !status.pipeline_running);
    assert_eq!(probe.starts.load(Ordering::SeqCst), 0);
    hub.set_privacy(false);
    assert!(settle(&hub).await.pipeline_running, "always-on capture starts when switched off");
}
