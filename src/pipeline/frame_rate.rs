//! Under sustained CPU pressure, encode fewer pictures before making them smaller.
//!
//! When the encoder needs nearly a whole frame interval per picture, the video thread falls
//! behind the camera: pictures wait (latency) and the source drops them unevenly (judder). Halving
//! the rate evenly keeps latency flat and motion regular, and keeps the resolution viewers chose
//! the camera for; a doorbell's picture is worth more sharp at 15 fps than blurred at 30.
//! Lowering resolution would rebuild the encoder (an IDR for everyone) and is not done here.

use std::time::{Duration, Instant};

/// Encode time above this share of the time each encoded picture may take is pressure...
const PRESSURE_SHARE: f64 = 0.8;
/// ...when it lasts this long.
const PRESSURE_HOLD: Duration = Duration::from_secs(2);
/// Back up a step when the previous rate would use at most this share...
const RELIEF_SHARE: f64 = 0.5;
/// ...for this long: longer than the way down, so a borderline load does not flap.
const RELIEF_HOLD: Duration = Duration::from_secs(5);
/// At most every fourth picture is dropped: 30 fps becomes 7.5 at worst.
const MAX_DIVISOR: u32 = 4;
/// Weight of the newest encode time in the running average (about the last 16 pictures).
const EWMA_WEIGHT: f64 = 1.0 / 16.0;

/// Decides which captured pictures are encoded. Pure: the caller passes the time.
#[derive(Debug)]
pub struct FrameRateGovernor {
    interval: Duration,
    /// Encode one picture in this many.
    divisor: u32,
    seen: u64,
    average_secs: Option<f64>,
    pressure_since: Option<Instant>,
    relief_since: Option<Instant>,
}

impl FrameRateGovernor {
    /// For a source delivering a picture every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            divisor: 1,
            seen: 0,
            average_secs: None,
            pressure_since: None,
            relief_since: None,
        }
    }

    /// Encode one picture in this many.
    #[cfg(test)]
    pub fn divisor(&self) -> u32 {
        self.divisor
    }

    /// Whether the next captured picture should be encoded.
    pub fn admit(&mut self) -> bool {
        let admit = self.seen.is_multiple_of(u64::from(self.divisor));
        self.seen += 1;
        admit
    }

    /// An encoder call took `took`, finishing at `now`; returns the new divisor if it changed.
    pub fn encoded(&mut self, now: Instant, took: Duration) -> Option<u32> {
        let took = took.as_secs_f64();
        let average = match self.average_secs {
            Some(average) => average + (took - average) * EWMA_WEIGHT,
            None => took,
        };
        self.average_secs = Some(average);
        let interval = self.interval.as_secs_f64();
        let budget = interval * f64::from(self.divisor);
        if average > budget * PRESSURE_SHARE && self.divisor < MAX_DIVISOR {
            self.relief_since = None;
            let since = *self.pressure_since.get_or_insert(now);
            if now.duration_since(since) >= PRESSURE_HOLD {
                self.pressure_since = None;
                return Some(self.step(self.divisor + 1));
            }
            return None;
        }
        self.pressure_since = None;
        let previous_budget = interval * f64::from(self.divisor.saturating_sub(1));
        if self.divisor > 1 && average < previous_budget * RELIEF_SHARE {
            let since = *self.relief_since.get_or_insert(now);
            if now.duration_since(since) >= RELIEF_HOLD {
                self.relief_since = None;
                return Some(self.step(self.divisor - 1));
            }
            return None;
        }
        self.relief_since = None;
        None
    }

    fn step(&mut self, divisor: u32) -> u32 {
        self.divisor = divisor;
        self.seen = 0;
        divisor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(33);

    /// Feeds `count` pictures of `took` each at the source rate from `*now`, encoding only the
    /// admitted ones; returns every change of divisor.
    fn run(
        governor: &mut FrameRateGovernor,
        now: &mut Instant,
        count: usize,
        took: Duration,
    ) -> Vec<u32> {
        let mut changes = Vec::new();
        for _ in 0..count {
            *now += INTERVAL;
            if governor.admit() {
                changes.extend(governor.encoded(*now, took));
            }
        }
        changes
    }

    #[test]
    fn a_light_load_keeps_every_picture() {
        let mut governor = FrameRateGovernor::new(INTERVAL);
        let mut now = Instant::now();
        assert_eq!(run(&mut governor, &mut now, 300, Duration::from_millis(10)), Vec::<u32>::new());
        assert!((0..10).all(|_| governor.admit()));
    }

    #[test]
    fn sustained_pressure_halves_the_rate_and_relief_restores_it() {
        let mut governor = FrameRateGovernor::new(INTERVAL);
        let mut now = Instant::now();
        // A brief spike is not pressure.
        assert_eq!(run(&mut governor, &mut now, 30, Duration::from_millis(31)), Vec::<u32>::new());
        assert_eq!(run(&mut governor, &mut now, 30, Duration::from_millis(5)), Vec::<u32>::new());
        // Encoding that needs ~30 of every 33 ms for seconds halves the rate, and stays there:
        // 30 ms is comfortable within two intervals.
        assert_eq!(run(&mut governor, &mut now, 300, Duration::from_millis(30)), vec![2]);
        let admitted = (0..10).filter(|_| governor.admit()).count();
        assert_eq!(admitted, 5, "every other picture");
        // Once a picture costs well under half an interval again, full rate returns, slowly.
        let changes = run(&mut governor, &mut now, 120, Duration::from_millis(8));
        assert_eq!(changes, Vec::<u32>::new(), "not within 4 s");
        assert_eq!(run(&mut governor, &mut now, 120, Duration::from_millis(8)), vec![1]);
    }

    #[test]
    fn the_rate_never_drops_below_a_quarter() {
        let mut governor = FrameRateGovernor::new(INTERVAL);
        let mut now = Instant::now();
        let changes = run(&mut governor, &mut now, 2000, Duration::from_millis(500));
        assert_eq!(changes, vec![2, 3, 4]);
        assert_eq!(governor.divisor(), 4);
    }
}
