//! Sound-level events (a baby monitor's "the baby is crying"): the captured microphone's level
//! above a threshold for long enough raises one event; the detector re-arms only after the level
//! has stayed below the threshold for a hold-off time, so a steady noise raises nothing more.
//!
//! The audio thread computes each 20 ms chunk's level (a few hundred additions) and runs the
//! detector itself; only an event, a few times a minute at most, leaves the thread.

use super::{EventBus, EventKind};
pub use crate::config::SoundSettings;
use crate::media::PcmChunk;
use std::time::Instant;

/// Quieter than any real microphone's noise floor; what digital silence reads as.
pub const SILENCE_DBFS: f32 = -120.0;

/// The RMS level of `samples` in dB relative to full scale (0 dBFS: every sample at ±32768);
/// [`SILENCE_DBFS`] for digital silence.
pub fn level_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 { SILENCE_DBFS } else { (20.0 * rms.log10()).max(f64::from(SILENCE_DBFS)) as f32 }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Waiting for a sound; `since` is when the level last rose above the threshold.
    Armed { since: Option<Instant> },
    /// An event was raised; `quiet_since` is when the level last fell below the threshold.
    Fired { quiet_since: Option<Instant> },
}

/// The decision logic, fed one level per chunk with the chunk's capture time.
#[derive(Debug, Clone)]
pub struct SoundDetector {
    settings: SoundSettings,
    state: State,
}

impl SoundDetector {
    pub fn new(settings: SoundSettings) -> Self {
        Self { settings, state: State::Armed { since: None } }
    }

    /// One chunk's level at `now`; returns the level when this chunk completes an event.
    pub fn observe(&mut self, level_dbfs: f32, now: Instant) -> Option<f32> {
        let loud = level_dbfs >= self.settings.threshold_dbfs;
        match &mut self.state {
            State::Armed { since } => {
                if !loud {
                    *since = None;
                    return None;
                }
                let start = *since.get_or_insert(now);
                if now.saturating_duration_since(start) >= self.settings.min_duration {
                    self.state = State::Fired { quiet_since: None };
                    return Some(level_dbfs);
                }
                None
            }
            State::Fired { quiet_since } => {
                if loud {
                    *quiet_since = None;
                } else {
                    let start = *quiet_since.get_or_insert(now);
                    if now.saturating_duration_since(start) >= self.settings.hold_off {
                        self.state = State::Armed { since: None };
                    }
                }
                None
            }
        }
    }
}

/// The detector on the audio thread, publishing to the event bus without ever blocking.
pub struct SoundTap {
    detector: SoundDetector,
    bus: EventBus,
}

impl SoundTap {
    pub fn new(settings: SoundSettings, bus: EventBus) -> Self {
        Self { detector: SoundDetector::new(settings), bus }
    }

    pub fn observe(&mut self, chunk: &PcmChunk) {
        let level = level_dbfs(&chunk.samples);
        if let Some(level_dbfs) = self.detector.observe(level, chunk.captured.instant) {
            self.bus.publish(EventKind::Sound { level_dbfs });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CHUNK: Duration = Duration::from_millis(20);

    fn settings() -> SoundSettings {
        SoundSettings {
            threshold_dbfs: -30.0,
            min_duration: Duration::from_millis(400),
            hold_off: Duration::from_secs(2),
        }
    }

    /// Feeds `seconds` of chunks at `level` from `*now`; returns how many events fired.
    fn feed(detector: &mut SoundDetector, now: &mut Instant, level: f32, seconds: f32) -> usize {
        let chunks = (seconds / CHUNK.as_secs_f32()).round() as usize;
        (0..chunks)
            .filter(|_| {
                *now += CHUNK;
                detector.observe(level, *now).is_some()
            })
            .count()
    }

    #[test]
    fn levels_of_known_signals() {
        assert_eq!(level_dbfs(&[0; 960]), SILENCE_DBFS);
        assert_eq!(level_dbfs(&[]), SILENCE_DBFS);
        let full: Vec<i16> =
            (0..960).map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        assert!(level_dbfs(&full).abs() < 0.01, "{}", level_dbfs(&full));
        // A sine at a tenth of full scale: RMS is amplitude/sqrt(2), so -20 dB - 3.01 dB.
        let sine: Vec<i16> = (0..960).map(|i| (3276.8 * (i as f64 * 0.2).sin()) as i16).collect();
        let level = level_dbfs(&sine);
        assert!((level - -23.01).abs() < 0.2, "{level}");
    }

    #[test]
    fn a_steady_sound_fires_once_and_short_blips_never() {
        let mut detector = SoundDetector::new(settings());
        let mut now = Instant::now();
        assert_eq!(feed(&mut detector, &mut now, -60.0, 1.0), 0, "quiet room");
        // Blips shorter than min_duration, however many.
        for _ in 0..5 {
            assert_eq!(feed(&mut detector, &mut now, -10.0, 0.3), 0);
            assert_eq!(feed(&mut detector, &mut now, -60.0, 0.1), 0);
        }
        assert_eq!(
            feed(&mut detector, &mut now, -20.0, 10.0),
            1,
            "ten seconds of crying: one event"
        );
    }

    #[test]
    fn rearms_only_after_the_hold_off_of_quiet() {
        let mut detector = SoundDetector::new(settings());
        let mut now = Instant::now();
        assert_eq!(feed(&mut detector, &mut now, -20.0, 1.0), 1);
        // Pauses shorter than the hold-off do not re-arm.
        for _ in 0..3 {
            assert_eq!(feed(&mut detector, &mut now, -60.0, 1.5), 0);
            assert_eq!(feed(&mut detector, &mut now, -20.0, 1.0), 0);
        }
        assert_eq!(feed(&mut detector, &mut now, -60.0, 2.1), 0);
        assert_eq!(feed(&mut detector, &mut now, -20.0, 1.0), 1, "a new sound after real quiet");
    }

    #[test]
    fn fires_exactly_at_min_duration() {
        let mut detector = SoundDetector::new(settings());
        let start = Instant::now();
        assert_eq!(detector.observe(-20.0, start), None);
        assert_eq!(detector.observe(-20.0, start + Duration::from_millis(399)), None);
        assert_eq!(detector.observe(-21.0, start + Duration::from_millis(400)), Some(-21.0));
    }
}
