//! Half-duplex ducking through the real echo stage: while talkback plays (speech-like, with
//! pauses shorter than the hold), the microphone's near-end tone is turned down by `duck_db`,
//! and it comes back at full level once the talkback has been silent for the hold and release.

#[path = "common/echo_path.rs"]
#[allow(dead_code)] // each test file uses part of it
mod echo_path;

use camrtc::config::EchoCancellation;
use camrtc::echo::{EchoStage, duck, far_end_channel};
use echo_path::{EchoPath, RATE, db, power_at, run, speech_like, tone};
use std::time::Duration;

const NEAR_HZ: f64 = 1600.0;

#[test]
fn the_microphone_is_ducked_while_talkback_plays_and_restored_after() {
    let (mut tap, far_end) = far_end_channel();
    let mut stage = EchoStage::new(EchoCancellation::Duck, 30, far_end).expect("duck is a stage");
    let path = EchoPath { delay: Duration::from_millis(40), gain: 0.5 };
    // Talkback for the first 2 s, then silence.
    let far = speech_like(2.0, 0.2);
    let result = run(&mut stage, &mut tap, &path, 4.0, &far, tone(NEAR_HZ, 0.05));

    let window = |from_s: f64, to_s: f64| {
        let range = (from_s * RATE) as usize..(to_s * RATE) as usize;
        db(power_at(&result.out[range.clone()], NEAR_HZ), power_at(&result.mic[range], NEAR_HZ))
    };
    let during = window(0.5, 1.9);
    let back_after = 2.0 + (duck::HOLD + duck::RELEASE).as_secs_f64();
    let after = window(back_after + 0.05, 4.0);
    println!("duck 30 dB: near-end {during:+.1} dB while talkback plays, {after:+.1} dB after");
    assert!((during + 30.0).abs() <= 1.0, "ducked by {during:.1} dB, not 30");
    assert!(after.abs() <= 0.5, "near-end {after:.1} dB after talkback ended");
}

#[test]
fn off_leaves_the_microphone_alone() {
    let (_tap, far_end) = far_end_channel();
    assert!(EchoStage::new(EchoCancellation::Off, 30, far_end).is_none());
}
