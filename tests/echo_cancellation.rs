//! Acoustic echo cancellation on a synthetic echo path: the talkback (speech-like noise below
//! 600 Hz, in syllables) reaches the microphone 30 or 60 ms later at -6 dB. The viewer talks
//! alone for 3 s, then a steady 1.6 kHz tone at the device joins (double talk). Over the last
//! 3 s the echo band (100-700 Hz) in what would go to the Opus encoder must be at least 20 dB
//! below the microphone's, while the near-end tone passes within 3 dB.
//!
//! Prints the figures recorded in docs/AUDIO.md (`cargo test --test echo_cancellation --
//! --nocapture`; with `--release` for the CPU figure).

#[path = "common/echo_path.rs"]
#[allow(dead_code)] // each test file uses part of it
mod echo_path;

use camrtc::config::EchoCancellation;
use camrtc::echo::{EchoStage, far_end_channel};
use echo_path::{EchoPath, RATE, band_power, db, mean_power, power_at, run, speech_like, tone};
use std::time::Duration;

const NEAR_HZ: f64 = 1600.0;
const SECONDS: f64 = 8.0;
const NEAR_FROM_S: f64 = 3.0;
const MEASURE_S: f64 = 3.0;
/// The echo's band: the far end is below 600 Hz, the high-pass filter AEC3 runs removes below
/// 100 Hz from both alike.
const ECHO_BAND: (f64, f64) = (100.0, 700.0);

fn aec() -> (camrtc::echo::FarEndTap, EchoStage) {
    let (tap, far_end) = far_end_channel();
    (tap, EchoStage::new(EchoCancellation::Aec, 30, far_end).expect("aec is a stage"))
}

fn near_end_from(start_s: f64) -> impl Fn(usize) -> f64 {
    let near = tone(NEAR_HZ, 0.05);
    move |n| if n as f64 >= start_s * RATE { near(n) } else { 0.0 }
}

fn echo_change(mic: &[f64], out: &[f64]) -> f64 {
    db(band_power(out, ECHO_BAND.0, ECHO_BAND.1), band_power(mic, ECHO_BAND.0, ECHO_BAND.1))
}

#[test]
fn talkback_echo_is_cancelled_and_the_near_end_passes() {
    let far = speech_like(SECONDS, 0.2);
    for delay_ms in [30, 60] {
        let (mut tap, mut stage) = aec();
        let path = EchoPath { delay: Duration::from_millis(delay_ms), gain: 0.5 };
        let result = run(&mut stage, &mut tap, &path, SECONDS, &far, near_end_from(NEAR_FROM_S));

        let second = RATE as usize;
        let by_second: Vec<String> = (0..SECONDS as usize)
            .map(|s| {
                let range = s * second..(s + 1) * second;
                format!("{:.0}", echo_change(&result.mic[range.clone()], &result.out[range]))
            })
            .collect();
        let from = result.mic.len() - (MEASURE_S * RATE) as usize;
        let (mic, out) = (&result.mic[from..], &result.out[from..]);
        let echo = echo_change(mic, out);
        let near = db(power_at(out, NEAR_HZ), power_at(mic, NEAR_HZ));
        let per_frame = result.busy / result.frames as u32;
        println!(
            "aec, path {delay_ms} ms at -6 dB: echo {echo:+.1} dB, near-end {NEAR_HZ} Hz tone \
             {near:+.1} dB (double talk, last {MEASURE_S} s of {SECONDS} s); echo dB by second \
             [{}]; {per_frame:?} per 10 ms frame",
            by_second.join(", ")
        );
        // The microphone really carried the echo, louder than the near-end tone.
        // (A tone of amplitude A has mean power A²/2; power_at reads A²/4.)
        let echo_in = mean_power(mic) - 2.0 * power_at(mic, NEAR_HZ);
        assert!(echo_in > 2.0 * power_at(mic, NEAR_HZ), "the echo path is too weak to test");
        assert!(echo <= -20.0, "{delay_ms} ms: echo only {echo:.1} dB down");
        assert!(near.abs() <= 3.0, "{delay_ms} ms: near-end changed {near:.1} dB");
    }
}

/// The attenuation above comes from the played reference, not from a filter that would remove
/// any low-frequency sound: with the reference cut off, the echo goes through.
#[test]
fn without_the_speaker_reference_the_echo_is_not_removed() {
    let (_unread, mut stage) = aec();
    let (mut unconnected, _) = far_end_channel();
    let path = EchoPath { delay: Duration::from_millis(40), gain: 0.5 };
    let far = speech_like(4.0, 0.2);
    let result = run(&mut stage, &mut unconnected, &path, 4.0, &far, near_end_from(0.0));
    let from = result.mic.len() / 2;
    let (mic, out) = (&result.mic[from..], &result.out[from..]);
    let echo = echo_change(mic, out);
    let near = db(power_at(out, NEAR_HZ), power_at(mic, NEAR_HZ));
    println!("aec without reference: echo {echo:+.1} dB, near-end {near:+.1} dB");
    assert!(echo > -3.0, "echo {echo:.1} dB down with no reference");
    assert!(near.abs() <= 1.0, "near-end changed by {near:.1} dB");
}
