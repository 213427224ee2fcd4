//! When a connected session does its periodic chores: report its bandwidth estimate to the hub
//! and check whether the viewer closed DTLS.
//!
//! They ride the wake-ups media already causes (a frame to send every 20-33 ms) instead of
//! timers of their own: on a small board each wake-up of the runtime costs more than the chore,
//! and per-session timers never line up, so ten viewers' timers were sixty extra wake-ups a
//! second. A fallback deadline, later than any chore is due, covers a session with no media
//! flowing (a camera outage with no microphone).

use std::time::Duration;
// The runtime's clock, the one the fallback sleeps on (and the one tests can pause).
use tokio::time::Instant;

/// TWCC feedback arrives every 50-100 ms, and the hub's policy only needs to see each trend
/// promptly.
const ESTIMATE_REPORT_INTERVAL: Duration = Duration::from_millis(200);
/// How often the DTLS state is looked at.
const DTLS_CLOSE_POLL: Duration = Duration::from_secs(1);
/// How far past a due chore the fallback wakes: longer than any gap between media frames, so it
/// never fires while media flows, and short enough that a closed tab is noticed within 1.25 s.
const FALLBACK_SLACK: Duration = Duration::from_millis(250);

/// Which chores are due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Due {
    pub report_estimate: bool,
    pub check_liveness: bool,
}

/// The schedule of one connected session's chores.
#[derive(Debug, Clone, Copy)]
pub struct Chores {
    next_estimate: Instant,
    next_liveness: Instant,
}

impl Chores {
    /// A schedule starting at `now` (the moment the session connected): the estimate is reported
    /// at once, the first liveness check comes one poll interval later.
    pub fn new(now: Instant) -> Self {
        Self { next_estimate: now, next_liveness: now + DTLS_CLOSE_POLL }
    }

    /// The chores due at `now`; each one returned is scheduled again from `now`.
    pub fn take_due(&mut self, now: Instant) -> Due {
        let due = Due {
            report_estimate: now >= self.next_estimate,
            check_liveness: now >= self.next_liveness,
        };
        if due.report_estimate {
            self.next_estimate = now + ESTIMATE_REPORT_INTERVAL;
        }
        if due.check_liveness {
            self.next_liveness = now + DTLS_CLOSE_POLL;
        }
        due
    }

    /// When to wake if nothing else does.
    pub fn fallback(&self) -> Instant {
        self.next_estimate.min(self.next_liveness) + FALLBACK_SLACK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn reports_at_once_and_checks_liveness_after_a_poll_interval() {
        let start = Instant::now();
        let mut chores = Chores::new(start);
        assert_eq!(chores.take_due(start), Due { report_estimate: true, check_liveness: false });
        assert_eq!(chores.take_due(start + ms(199)), Due::default());
        assert_eq!(
            chores.take_due(start + ms(200)),
            Due { report_estimate: true, check_liveness: false }
        );
        assert_eq!(
            chores.take_due(start + ms(1000)),
            Due { report_estimate: true, check_liveness: true }
        );
        assert_eq!(chores.take_due(start + ms(1001)), Due::default());
    }

    #[test]
    fn frames_every_33_ms_do_every_chore_before_the_fallback() {
        let start = Instant::now();
        let mut chores = Chores::new(start);
        let (mut reports, mut checks) = (0, 0);
        for frame in 0..=300u64 {
            let now = start + ms(frame * 100 / 3);
            assert!(now < chores.fallback(), "the fallback would have fired before frame {frame}");
            let due = chores.take_due(now);
            reports += u32::from(due.report_estimate);
            checks += u32::from(due.check_liveness);
        }
        // Ten seconds of frames: a report per 200 ms (rounded up to the next frame), a check a
        // second.
        assert!((45..=51).contains(&reports), "{reports} reports");
        assert!((9..=10).contains(&checks), "{checks} checks");
    }

    #[test]
    fn without_media_the_fallback_comes_after_the_next_due_chore() {
        let start = Instant::now();
        let mut chores = Chores::new(start);
        chores.take_due(start);
        assert_eq!(chores.fallback(), start + ms(200) + FALLBACK_SLACK);
        // Woken by the fallback alone, the session still does each chore when it is due.
        let mut now = chores.fallback();
        let mut checked_at = None;
        while checked_at.is_none() {
            if chores.take_due(now).check_liveness {
                checked_at = Some(now);
            }
            now = chores.fallback();
        }
        let checked_at = checked_at.expect("the loop ends on a check");
        assert!(checked_at - start <= DTLS_CLOSE_POLL + FALLBACK_SLACK, "{:?}", checked_at - start);
    }
}
