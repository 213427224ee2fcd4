//! Motion, through the daemon's motion thread and event bus: a still (noisy) scene raises
//! nothing, someone walking through raises one event, and the thread never holds up the offerer.

use camrtc::events::motion::{self, MotionSettings};
use camrtc::events::{EventKind, Fanout};
use camrtc::media::{CaptureTime, RawFrame};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// A 320x240 I420 picture: noisy grey, and a textured 64x64 block at `x` when given.
fn picture(block_x: Option<usize>, seed: u32, captured: CaptureTime) -> Arc<RawFrame> {
    let (w, h) = (320usize, 240usize);
    let mut frame = RawFrame::black(w as u32, h as u32, captured);
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    for v in &mut frame.i420[..w * h] {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *v = 100 + (state % 7) as u8;
    }
    if let Some(x) = block_x {
        for row in 80..144 {
            for col in x..x + 64 {
                frame.i420[row * w + col] = if (row / 8 + col / 8) % 2 == 0 { 220 } else { 30 };
            }
        }
    }
    Arc::new(frame)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_walking_through_is_one_event_and_a_still_scene_none() {
    let shutdown = CancellationToken::new();
    let bus = camrtc::events::spawn(Fanout::streams_only(), shutdown.clone());
    let mut events = bus.subscribe().await.expect("subscribes");
    let settings = MotionSettings {
        region: [0.0, 0.0, 1.0, 1.0],
        pixel_delta: 25,
        min_changed_percent: 3.0,
        cooldown: Duration::from_secs(60),
    };
    let tap = motion::spawn(settings, bus.clone()).expect("motion thread starts");
    let start = Instant::now();
    let at = |frame: u64| CaptureTime {
        instant: start + Duration::from_millis(66 * frame),
        wall: std::time::SystemTime::now(),
    };
    // Offered at the camera's pace, as the video thread does (a busy detector skips pictures).
    let mut frame = 0;
    for seed in 0..30 {
        tap.offer(&picture(None, seed, at(frame)));
        frame += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(events.try_recv().is_err(), "a still scene is no motion");

    for step in 0..40 {
        tap.offer(&picture(Some(step * 6), 100 + step as u32, at(frame)));
        frame += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("motion within 2 s")
        .expect("bus open");
    let EventKind::Motion { changed_percent } = event.kind else { panic!("{event:?}") };
    assert!(changed_percent >= 3.0, "{changed_percent}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events.try_recv().is_err(), "the walk is one event");
    shutdown.cancel();
}
