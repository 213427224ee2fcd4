//! A synthetic microphone: a steady sine tone, paced in real time like a capture device.

use super::test_video::Pacer;
use super::{AudioSource, SourceError};
use crate::media::{AUDIO_CHUNK_SAMPLES, AUDIO_SAMPLE_RATE, CaptureTime, PcmChunk};
use std::f64::consts::TAU;
use std::time::Instant;

/// Peak amplitude of −12 dBFS (10^(−12/20) of full scale): clearly audible, with headroom so the
/// Opus encoder never clips.
const PEAK: f64 = 0.251_188_643_150_958 * i16::MAX as f64;

/// A pure generator of a phase-continuous sine tone in 20 ms chunks of mono 48 kHz PCM.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    /// Kept wrapped to [0, 2π) so precision does not decay as the tone runs for days.
    phase: f64,
    step: f64,
}

impl ToneGenerator {
    /// A tone at `freq_hz`; frequencies at or above 24 kHz alias, 0 gives silence.
    pub fn new(freq_hz: u32) -> Self {
        Self { phase: 0.0, step: TAU * f64::from(freq_hz) / f64::from(AUDIO_SAMPLE_RATE) }
    }

    /// The next [`AUDIO_CHUNK_SAMPLES`] samples, starting exactly where the previous chunk ended.
    pub fn next_chunk(&mut self, captured: CaptureTime) -> PcmChunk {
        // A phasor rotated by the step: four multiplications a sample instead of a sin() call.
        // Re-seeded from the wrapped phase every chunk, so its rounding error (about 1e-13 after
        // a chunk) never accumulates.
        let (mut sin, mut cos) = self.phase.sin_cos();
        let (step_sin, step_cos) = self.step.sin_cos();
        let mut samples = Vec::with_capacity(AUDIO_CHUNK_SAMPLES);
        for _ in 0..AUDIO_CHUNK_SAMPLES {
            samples.push((sin * PEAK).round() as i16);
            (sin, cos) = (sin * step_cos + cos * step_sin, cos * step_cos - sin * step_sin);
        }
        // rem_euclid rather than one subtraction: correct even when the advance exceeds 2π.
        self.phase = (self.phase + self.step * AUDIO_CHUNK_SAMPLES as f64).rem_euclid(TAU);
        PcmChunk { samples, captured }
    }
}

/// An [`AudioSource`] that delivers [`ToneGenerator`] chunks in real time, one every 20 ms.
#[derive(Debug)]
pub struct TestToneSource {
    tone: ToneGenerator,
    /// Started on the first chunk, so time spent between construction and use is not "late".
    pacer: Option<Pacer>,
    next_index: u64,
}

impl TestToneSource {
    /// A source of a sine tone at `freq_hz`.
    pub fn new(freq_hz: u32) -> Self {
        Self { tone: ToneGenerator::new(freq_hz), pacer: None, next_index: 0 }
    }
}

impl AudioSource for TestToneSource {
    fn next_chunk(&mut self) -> Result<PcmChunk, SourceError> {
        let chunks_per_sec = AUDIO_SAMPLE_RATE / AUDIO_CHUNK_SAMPLES as u32;
        let pacer = *self.pacer.get_or_insert_with(|| Pacer::new(Instant::now(), chunks_per_sec));
        let index = pacer.wait(self.next_index);
        let captured = CaptureTime::now();
        self.next_index = index.saturating_add(1);
        Ok(self.tone.next_chunk(captured))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn one_second(freq_hz: u32) -> Vec<i16> {
        let mut tone = ToneGenerator::new(freq_hz);
        let now = CaptureTime::now();
        let chunks = AUDIO_SAMPLE_RATE as usize / AUDIO_CHUNK_SAMPLES;
        (0..chunks).flat_map(|_| tone.next_chunk(now).samples).collect()
    }

    #[test]
    fn chunk_length() {
        let mut tone = ToneGenerator::new(440);
        for _ in 0..3 {
            assert_eq!(tone.next_chunk(CaptureTime::now()).samples.len(), AUDIO_CHUNK_SAMPLES);
        }
    }

    #[test]
    fn peak_is_minus_12_dbfs() {
        let target = 10f64.powf(-12.0 / 20.0) * 32767.0;
        for freq in [440, 1000] {
            let peak = one_second(freq).iter().map(|s| i32::from(*s).abs()).max().unwrap();
            let error = (f64::from(peak) - target).abs() / target;
            assert!(error < 0.01, "{freq} Hz: peak {peak}, target {target:.0}");
        }
    }

    #[test]
    fn frequency_by_zero_crossings() {
        for freq in [440u32, 1000] {
            let samples = one_second(freq);
            let rising = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count() as i64;
            assert!((rising - i64::from(freq)).abs() <= 1, "{freq} Hz: {rising} rising crossings");
        }
    }

    #[test]
    fn phase_is_continuous_across_chunks() {
        for freq in [440, 1000, 997] {
            let mut tone = ToneGenerator::new(freq);
            let now = CaptureTime::now();
            let mut previous = tone.next_chunk(now).samples;
            for _ in 0..100 {
                let chunk = tone.next_chunk(now).samples;
                let step = |a: i16, b: i16| (i32::from(a) - i32::from(b)).abs();
                let largest_inside = chunk.windows(2).map(|w| step(w[0], w[1])).max().unwrap();
                let boundary = step(previous[AUDIO_CHUNK_SAMPLES - 1], chunk[0]);
                assert!(boundary <= largest_inside, "{freq} Hz: {boundary} > {largest_inside}");
                previous = chunk;
            }
        }
    }

    #[test]
    fn matches_the_sine_of_the_sample_index() {
        for freq in [440u32, 997, 1000, 23_999] {
            let mut tone = ToneGenerator::new(freq);
            let mut n = 0u64;
            // A minute of tone: any drift of the rotation or the phase would show.
            for _ in 0..3_000 {
                for sample in tone.next_chunk(CaptureTime::now()).samples {
                    // The exact phase of sample n, from integers, so this reference cannot drift.
                    let cycles = (u64::from(freq) * n % u64::from(AUDIO_SAMPLE_RATE)) as f64;
                    let exact = (TAU * cycles / f64::from(AUDIO_SAMPLE_RATE)).sin() * PEAK;
                    assert!((f64::from(sample) - exact).abs() <= 1.0, "{freq} Hz, sample {n}");
                    n += 1;
                }
            }
        }
    }

    #[test]
    fn phase_stays_wrapped() {
        for freq in [0, 1, 440, 23_999, 100_000] {
            let mut tone = ToneGenerator::new(freq);
            for _ in 0..500 {
                tone.next_chunk(CaptureTime::now());
                assert!((0.0..TAU).contains(&tone.phase), "{freq} Hz: phase {}", tone.phase);
            }
        }
    }

    #[test]
    fn source_paces_chunks() {
        let mut source = TestToneSource::new(440);
        let first = source.next_chunk().unwrap();
        let second = source.next_chunk().unwrap();
        assert_eq!(second.samples.len(), AUDIO_CHUNK_SAMPLES);
        // One 20 ms interval less the instant the first stamp took; sleep may only overshoot.
        assert!(second.captured.instant - first.captured.instant >= Duration::from_millis(19));
    }
}
