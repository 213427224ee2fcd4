//! In a VM with snd-aloop: capture times come from the driver's timestamps on the clock video
//! uses (each chunk stamped when its first sample was recorded, 20 ms apart), and a reader that
//! stalls long enough to overrun the driver's buffer is recovered in place: the overrun is
//! counted, capture goes on, and the timeline skips the lost audio instead of drifting.

use camrtc_testkit as common;

use camrtc::source::AudioSource;
use camrtc::source::alsa::AlsaSource;
use common::{alsa, vm};
use std::time::{Duration, Instant};

#[test]
fn vm_alsa_overrun_is_recovered_and_timestamps_follow_the_driver() {
    if vm::in_guest() {
        return guest();
    }
    vm::run_self_and_report(
        "vm_alsa_overrun_is_recovered_and_timestamps_follow_the_driver",
        Duration::from_secs(180),
    );
}

fn guest() {
    let tone = std::path::Path::new("/tmp/tone.raw");
    alsa::write_tone(tone, 440.0, 30, 1);
    let mut player = alsa::play_into_loopback(tone, 1);

    let mut source = AlsaSource::open("hw:Loopback,1,0").expect("loopback capture opens");
    // Settle: the first reads drain whatever queued while the stream started.
    for _ in 0..10 {
        source.next_chunk().expect("chunk");
    }
    let mut starts = Vec::new();
    let mut lag = Vec::new();
    for _ in 0..50 {
        let chunk = source.next_chunk().expect("chunk");
        let now = Instant::now();
        assert_eq!(chunk.samples.len(), 960);
        lag.push(now.saturating_duration_since(chunk.captured.instant));
        starts.push(chunk.captured.instant);
    }
    let steps: Vec<Duration> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    let mean_step = steps.iter().sum::<Duration>() / steps.len() as u32;
    let max_lag = lag.iter().max().copied().unwrap_or_default();
    println!(
        "MEASURED capture: mean chunk step {mean_step:?}, largest capture-to-read lag {max_lag:?}"
    );
    // Consecutive chunks start 20 ms apart on the driver's clock (jitter of the status snapshot
    // aside), and a chunk is never stamped later than when it was read, nor implausibly early.
    assert!(mean_step.abs_diff(Duration::from_millis(20)) < Duration::from_millis(2), "{steps:?}");
    assert!(lag.iter().all(|&l| l >= Duration::from_millis(19)), "stamped before its end: {lag:?}");
    assert!(max_lag < Duration::from_millis(400), "{lag:?}");

    // Stall for longer than the 200 ms buffer: the driver overruns.
    assert_eq!(source.xruns(), 0, "no overrun while reading steadily");
    let before = source.next_chunk().expect("chunk").captured.instant;
    std::thread::sleep(Duration::from_millis(600));
    let after = source.next_chunk().expect("capture continues after an overrun");
    let gap = after.captured.instant - before;
    println!(
        "MEASURED overrun: {} counted, timeline gap {gap:?} over a 600 ms stall",
        source.xruns()
    );
    assert!(source.xruns() >= 1, "the overrun was counted");
    // The audio lost in the stall is skipped on the timeline: the next chunk is stamped at
    // least the stall minus the buffer later, not 20 ms later.
    assert!(gap >= Duration::from_millis(350), "gap {gap:?}");
    for _ in 0..10 {
        source.next_chunk().expect("capture keeps going");
    }
    let _ = player.kill();
    let _ = player.wait();
}
