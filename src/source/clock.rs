//! Capture times from kernel timestamps.
//!
//! ALSA status timestamps and V4L2 buffer timestamps are `CLOCK_MONOTONIC` readings, the clock
//! `Instant` uses on Linux, but std offers no way to build an `Instant` from one. An anchor reads
//! both clocks (and the wall clock) at one moment; a kernel timestamp then becomes an offset from
//! it. Audio and video mapped this way share one timeline, which is what lip sync needs.

use crate::media::CaptureTime;
use nix::time::{ClockId, clock_gettime};
use std::time::{Duration, Instant, SystemTime};

/// `CLOCK_MONOTONIC`, `Instant` and wall-clock time read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonotonicAnchor {
    /// `CLOCK_MONOTONIC` as a duration since its (boot-time) epoch.
    pub monotonic: Duration,
    pub instant: Instant,
    pub wall: SystemTime,
}

impl MonotonicAnchor {
    /// Reads the clocks now.
    pub fn now() -> Self {
        let instant = Instant::now();
        let wall = SystemTime::now();
        // CLOCK_MONOTONIC cannot fail on Linux; if it somehow did, a zero reading makes every
        // kernel timestamp look "in the future", which maps to `now`: late, never wrong order.
        let monotonic = clock_gettime(ClockId::CLOCK_MONOTONIC)
            .map(|ts| Duration::new(ts.tv_sec().max(0) as u64, ts.tv_nsec() as u32))
            .unwrap_or(Duration::ZERO);
        Self { monotonic, instant, wall }
    }

    /// The capture time of an event the kernel stamped `at` on `CLOCK_MONOTONIC`. Events after
    /// the anchor (clock readings are not perfectly simultaneous) map to the anchor itself.
    pub fn capture_time(&self, at: Duration) -> CaptureTime {
        let age = self.monotonic.saturating_sub(at);
        CaptureTime {
            instant: self.instant.checked_sub(age).unwrap_or(self.instant),
            wall: self.wall.checked_sub(age).unwrap_or(self.wall),
        }
    }

    /// The capture time `offset` after the anchor: for sources with no kernel clock.
    pub fn after(&self, offset: Duration) -> CaptureTime {
        CaptureTime { instant: self.instant + offset, wall: self.wall + offset }
    }
}

/// A `timespec`-style reading as a duration; negative fields (never produced by the kernel) clamp
/// to zero. Generic because `time_t` and `long` are 32-bit on armhf and 64-bit elsewhere.
pub fn timespec_duration(seconds: impl Into<i64>, nanos: impl Into<i64>) -> Duration {
    let (seconds, nanos) = (seconds.into(), nanos.into());
    Duration::new(seconds.max(0) as u64, nanos.clamp(0, 999_999_999) as u32)
}

/// A `timeval`-style reading (microseconds, as V4L2 buffers carry) as a duration.
pub fn timeval_duration(seconds: impl Into<i64>, micros: impl Into<i64>) -> Duration {
    timespec_duration(seconds, micros.into().saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_timestamps_become_offsets_from_the_anchor() {
        let anchor = MonotonicAnchor::now();
        let earlier = anchor.capture_time(anchor.monotonic - Duration::from_millis(40));
        assert_eq!(anchor.instant - earlier.instant, Duration::from_millis(40));
        assert_eq!(anchor.wall.duration_since(earlier.wall).unwrap(), Duration::from_millis(40));

        let same = anchor.capture_time(anchor.monotonic);
        assert_eq!(same, CaptureTime { instant: anchor.instant, wall: anchor.wall });
        // A stamp slightly after the anchor was read cannot be later than "now".
        assert_eq!(anchor.capture_time(anchor.monotonic + Duration::from_millis(3)), same);
        assert_eq!(
            anchor.after(Duration::from_millis(20)).instant - anchor.instant,
            Duration::from_millis(20)
        );
    }

    #[test]
    fn anchor_reads_the_clock_instant_uses() {
        let first = MonotonicAnchor::now();
        std::thread::sleep(Duration::from_millis(20));
        let second = MonotonicAnchor::now();
        let by_kernel = second.monotonic - first.monotonic;
        let by_instant = second.instant - first.instant;
        let skew = by_kernel.abs_diff(by_instant);
        assert!(skew < Duration::from_millis(5), "{by_kernel:?} vs {by_instant:?}");
    }

    #[test]
    fn timespec_fields_clamp() {
        assert_eq!(timespec_duration(2, 500), Duration::new(2, 500));
        assert_eq!(timespec_duration(-1, -1), Duration::ZERO);
        assert_eq!(timespec_duration(0, 2_000_000_000), Duration::new(0, 999_999_999));
        assert_eq!(timeval_duration(3, 250_000i32), Duration::new(3, 250_000_000));
    }
}
