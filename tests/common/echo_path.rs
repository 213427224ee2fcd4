//! A synthetic room for the echo tests: a talkback signal "played" on a speaker whose sound
//! reaches the microphone delayed and attenuated, mixed with near-end sound, run through the
//! real echo stage in simulated time (no sleeping: a 6 s run takes well under a second of CPU
//! in release).

use camrtc::echo::{EchoStage, FarEndTap};
use camrtc::media::{AUDIO_CHUNK_SAMPLES, CaptureTime, PcmChunk};
use nix::time::{ClockId, clock_gettime};
use std::f64::consts::TAU;
use std::time::{Duration, Instant, SystemTime};

pub const RATE: f64 = 48_000.0;
/// 10 ms at 48 kHz.
pub const FRAME: usize = 480;

/// The acoustic path from speaker to microphone.
pub struct EchoPath {
    pub delay: Duration,
    /// Linear gain (0.5 is -6 dB).
    pub gain: f64,
}

/// What went into and came out of the stage, sample for sample.
pub struct Run {
    pub mic: Vec<f64>,
    pub out: Vec<f64>,
    /// CPU time this thread spent in `EchoStage::process` (not wall time: the shared test machine
    /// is loaded), and the number of 10 ms frames it processed.
    pub busy: Duration,
    pub frames: usize,
}

/// Plays `far[n]` on the speaker and `near(n)` at the device for `seconds`, sample n at
/// t0 + n / 48 kHz. The player offers each 10 ms of far end 40 ms before it plays (as the real
/// player, which writes ahead into the device buffer), and the microphone thread processes each
/// 20 ms chunk after it was captured.
pub fn run(
    stage: &mut EchoStage,
    tap: &mut FarEndTap,
    path: &EchoPath,
    seconds: f64,
    far: &[f64],
    near: impl Fn(usize) -> f64,
) -> Run {
    let far = |n: usize| far.get(n).copied().unwrap_or(0.0);
    let t0 = Instant::now();
    let total = (seconds * RATE) as usize;
    let delay = (path.delay.as_secs_f64() * RATE).round() as usize;
    let lead_frames = 4;
    let mut offered = 0;
    let mut result = Run { mic: Vec::new(), out: Vec::new(), busy: Duration::ZERO, frames: 0 };
    for start in (0..total).step_by(AUDIO_CHUNK_SAMPLES) {
        let end = start + AUDIO_CHUNK_SAMPLES;
        while offered < end + lead_frames * FRAME {
            let frame: Vec<i16> = (offered..offered + FRAME).map(|n| to_i16(far(n))).collect();
            tap.offer(&frame, at(t0, offered));
            offered += FRAME;
        }
        let mic: Vec<f64> = (start..end)
            .map(|n| {
                let echo =
                    if n >= delay { path.gain * f64::from(to_i16(far(n - delay))) } else { 0.0 };
                echo / 32768.0 + near(n)
            })
            .collect();
        let mut chunk = PcmChunk {
            samples: mic.iter().map(|&x| to_i16(x)).collect(),
            captured: CaptureTime { instant: at(t0, start), wall: SystemTime::now() },
        };
        let began = thread_cpu();
        stage.process(&mut chunk).expect("16-bit mono 20 ms chunks are what AEC3 takes");
        result.busy += thread_cpu().saturating_sub(began);
        result.frames += AUDIO_CHUNK_SAMPLES / FRAME;
        result.mic.extend(mic);
        result.out.extend(chunk.samples.iter().map(|&s| f64::from(s) / 32768.0));
    }
    result
}

fn thread_cpu() -> Duration {
    let time = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .expect("Linux always has a per-thread CPU clock");
    Duration::new(time.tv_sec() as u64, time.tv_nsec() as u32)
}

fn at(t0: Instant, sample: usize) -> Instant {
    t0 + Duration::from_nanos(sample as u64 * 1_000_000_000 / RATE as u64)
}

pub fn to_i16(x: f64) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

pub fn tone(hz: f64, amplitude: f64) -> impl Fn(usize) -> f64 {
    move |n| amplitude * (TAU * hz * n as f64 / RATE).sin()
}

/// Where the talker's stand-in ends: a 4th-order Butterworth low-pass leaves nothing of it an
/// octave and more above (-48 dB at 1.2 kHz).
pub const CUTOFF: f64 = 600.0;

/// A talker's stand-in: noise low-passed at [`CUTOFF`] with `rms` while sounding, spoken in
/// syllables of 250 ms with 100 ms pauses. Noise rather than a tone: AEC3 locates the echo by
/// correlation, which a periodic signal makes ambiguous (a 600 Hz tone locked on at some delays
/// and not at others), and talk is never periodic for long.
pub fn speech_like(seconds: f64, rms: f64) -> Vec<f64> {
    let total = (seconds * RATE) as usize;
    let mut signal: Vec<f64> = (0..total).map(noise).collect();
    for q in [0.541_196_1, 1.306_563] {
        low_pass(&mut signal, CUTOFF, q);
    }
    let level = (signal.iter().map(|x| x * x).sum::<f64>() / total as f64).sqrt();
    for (n, x) in signal.iter_mut().enumerate() {
        *x *= rms / level * syllable_envelope(n);
    }
    signal
}

/// 250 ms on, 100 ms off, with 10 ms ramps.
fn syllable_envelope(n: usize) -> f64 {
    let t = (n as f64 / RATE) % 0.35;
    let ramp = 0.01;
    if t < ramp {
        t / ramp
    } else if t < 0.25 - ramp {
        1.0
    } else if t < 0.25 {
        (0.25 - t) / ramp
    } else {
        0.0
    }
}

/// Uniform noise in [-1, 1], a pure function of the sample index (splitmix64), so runs repeat.
fn noise(n: usize) -> f64 {
    let mut z = (n as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    z as f64 / u64::MAX as f64 * 2.0 - 1.0
}

/// One biquad low-pass section (the audio EQ cookbook's), in place.
fn low_pass(x: &mut [f64], cutoff: f64, q: f64) {
    let w = TAU * cutoff / RATE;
    let alpha = w.sin() / (2.0 * q);
    let a0 = 1.0 + alpha;
    let b0 = (1.0 - w.cos()) / 2.0 / a0;
    let (b1, b2) = (2.0 * b0, b0);
    let (a1, a2) = (-2.0 * w.cos() / a0, (1.0 - alpha) / a0);
    let (mut x1, mut x2, mut y1, mut y2) = (0.0, 0.0, 0.0, 0.0);
    for v in x.iter_mut() {
        let y = b0 * *v + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2;
        (x2, x1, y2, y1) = (x1, *v, y1, y);
        *v = y;
    }
}

/// Mean power (mean square) of `samples`.
pub fn mean_power(samples: &[f64]) -> f64 {
    samples.iter().map(|x| x * x).sum::<f64>() / samples.len() as f64
}

/// Power at `hz` over `samples` (Goertzel), normalised by length: A²/4 for a tone of amplitude A.
pub fn power_at(samples: &[f64], hz: f64) -> f64 {
    let coefficient = 2.0 * (TAU * hz / RATE).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - coefficient * s1 * s2) / (samples.len() as f64).powi(2)
}

/// `after` relative to `before` in dB.
pub fn db(after: f64, before: f64) -> f64 {
    10.0 * (after / before).log10()
}

/// Power summed over Goertzel bins every 10 Hz from `low` to `high` Hz: the echo's band, read
/// without the near-end tone or the sidebands that the suppressor's changing gain gives it.
pub fn band_power(samples: &[f64], low: f64, high: f64) -> f64 {
    let mut hz = low;
    let mut total = 0.0;
    while hz <= high {
        total += power_at(samples, hz);
        hz += 10.0;
    }
    total
}
