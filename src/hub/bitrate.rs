//! Bandwidth adaptation for the one shared encoder.
//!
//! Every viewer's session runs send-side congestion control (GCC over TWCC feedback) and reports
//! its estimate to the hub. There is only one encoder, so one number must serve everyone: the
//! weakest viewer's, because a stream above a viewer's link fills its bottleneck queue and its
//! latency grows without bound. Down moves follow at once; up moves wait until every link has
//! shown room for a while and then climb in steps, because an overshoot costs a viewer seconds
//! of queueing while an undershoot costs a little sharpness.
//!
//! `min_kbps` is the floor: a viewer whose link carries even less does not drag everyone down
//! further; its bottleneck overflows, the hub drops its frames and it resumes at keyframes.

use std::time::Duration;
use tokio::time::Instant;

/// Taken off a path's estimate before video's share: Opus at 32 kbit/s is ~55 kbit/s on the
/// wire with RTP/SRTP/UDP/IP headers at 50 packets a second, and it is not adapted.
pub const AUDIO_ALLOWANCE_BPS: u64 = 60_000;
/// The share of the rest given to video: the remainder covers packet headers, retransmissions,
/// and slack so a bottleneck queue built before the estimate fell can drain.
pub const ESTIMATE_SHARE: f64 = 0.85;
/// Lower only when the wanted target is this far below the current one, so the estimate's own
/// jitter does not reconfigure the encoder several times a second.
const DOWN_DEADBAND: f64 = 0.95;
/// Raise only when every viewer has room for this much more...
const UP_MARGIN: f64 = 1.1;
/// ...continuously for this long...
pub const UP_HOLD: Duration = Duration::from_secs(2);
/// ...and then by at most this factor per hold, so a climb probes instead of jumping.
const UP_STEP: f64 = 1.25;

/// The range adaptation moves in, from `[video]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BitrateLimits {
    /// The target before any estimate arrives.
    pub start_kbps: u32,
    pub min_kbps: u32,
    pub max_kbps: u32,
}

/// Chooses the shared encoder's target from the viewers' estimates. Pure: the caller passes the
/// time.
#[derive(Debug)]
pub struct BitrateController {
    limits: BitrateLimits,
    current_kbps: u32,
    /// Since when every viewer has had room for more (reset by each raise).
    room_since: Option<Instant>,
}

impl BitrateController {
    pub fn new(limits: BitrateLimits) -> Self {
        let current_kbps = limits.start_kbps.clamp(limits.min_kbps, limits.max_kbps);
        Self { limits, current_kbps, room_since: None }
    }

    pub fn current_kbps(&self) -> u32 {
        self.current_kbps
    }

    /// The viewers' latest estimates (bits per second) as of `now`; returns the new target when
    /// it changes. No estimates at all (nobody connected yet) leaves the target alone.
    pub fn update(
        &mut self,
        now: Instant,
        estimates_bps: impl IntoIterator<Item = u64>,
    ) -> Option<u32> {
        let Some(weakest) = estimates_bps.into_iter().min() else {
            self.room_since = None;
            return None;
        };
        let share =
            (weakest.saturating_sub(AUDIO_ALLOWANCE_BPS) as f64 * ESTIMATE_SHARE / 1000.0) as u32;
        let wanted = share.clamp(self.limits.min_kbps, self.limits.max_kbps);
        let current = f64::from(self.current_kbps);
        if f64::from(wanted) < current * DOWN_DEADBAND {
            self.room_since = None;
            self.current_kbps = wanted;
            return Some(wanted);
        }
        let room = wanted > self.current_kbps
            && (f64::from(wanted) >= current * UP_MARGIN || wanted == self.limits.max_kbps);
        if !room {
            self.room_since = None;
            return None;
        }
        let since = *self.room_since.get_or_insert(now);
        if now < since + UP_HOLD {
            return None;
        }
        let step = (current * UP_STEP).ceil() as u32;
        self.current_kbps = wanted.min(step);
        self.room_since = Some(now);
        Some(self.current_kbps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BitrateLimits = BitrateLimits { start_kbps: 1000, min_kbps: 150, max_kbps: 2000 };

    fn kbps(k: u64) -> u64 {
        k * 1000
    }

    #[test]
    fn follows_the_weakest_viewer_down_at_once() {
        let t0 = Instant::now();
        let mut control = BitrateController::new(LIMITS);
        // (400 - 60) * 0.85
        assert_eq!(control.update(t0, [kbps(5000), kbps(400), kbps(3000)]), Some(289));
        assert_eq!(control.current_kbps(), 289);
        // Jitter within the dead band changes nothing.
        assert_eq!(control.update(t0 + Duration::from_millis(100), [kbps(390)]), None);
        assert_eq!(control.update(t0 + Duration::from_millis(200), [kbps(300)]), Some(204));
    }

    #[test]
    fn never_leaves_the_configured_range() {
        let t0 = Instant::now();
        let mut control = BitrateController::new(LIMITS);
        assert_eq!(control.update(t0, [kbps(50)]), Some(150), "floored at min");
        let mut t = t0;
        for _ in 0..40 {
            t += Duration::from_secs(1);
            control.update(t, [kbps(100_000)]);
        }
        assert_eq!(control.current_kbps(), 2000, "capped at max, and max is reached");
        let starts_above = BitrateLimits { start_kbps: 5000, ..LIMITS };
        assert_eq!(BitrateController::new(starts_above).current_kbps(), 2000);
    }

    #[test]
    fn climbs_slowly_and_only_after_sustained_room() {
        let t0 = Instant::now();
        let mut control = BitrateController::new(LIMITS);
        assert_eq!(control.update(t0, [kbps(250)]), Some(161));
        // Room appears, but a raise waits for UP_HOLD of it...
        let mut t = t0 + Duration::from_millis(500);
        assert_eq!(control.update(t, [kbps(2500)]), None);
        t += UP_HOLD - Duration::from_millis(1);
        assert_eq!(control.update(t, [kbps(2500)]), None);
        // ...and then climbs by one step, not straight to what the estimate allows.
        t += Duration::from_millis(1);
        assert_eq!(control.update(t, [kbps(2500)]), Some(202));
        // The next step needs another hold.
        assert_eq!(control.update(t + Duration::from_millis(100), [kbps(2500)]), None);
        assert_eq!(control.update(t + UP_HOLD, [kbps(2500)]), Some(253));
    }

    #[test]
    fn a_dip_resets_the_wait_for_room() {
        let t0 = Instant::now();
        let mut control = BitrateController::new(LIMITS);
        control.update(t0, [kbps(500)]);
        assert_eq!(control.current_kbps(), 374);
        assert_eq!(control.update(t0 + Duration::from_secs(1), [kbps(1000)]), None);
        // One sample with no room (but not low enough to lower) restarts the hold.
        assert_eq!(control.update(t0 + Duration::from_millis(2500), [kbps(510)]), None);
        assert_eq!(control.update(t0 + Duration::from_secs(3), [kbps(1000)]), None);
        assert_eq!(control.update(t0 + Duration::from_secs(4), [kbps(1000)]), None);
        assert_eq!(control.update(t0 + Duration::from_secs(5), [kbps(1000)]), Some(468));
    }

    #[test]
    fn no_estimates_keep_the_target() {
        let t0 = Instant::now();
        let mut control = BitrateController::new(LIMITS);
        assert_eq!(control.update(t0, std::iter::empty()), None);
        assert_eq!(control.current_kbps(), 1000);
    }
}
