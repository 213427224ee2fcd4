//! Keeps a source alive: a device missing at start, unplugged or failing is reopened with
//! backoff (first retry within 0.5 s, then doubling to 5 s), on the source's own thread, while
//! the rest of the pipeline and every viewer carry on. State changes go to `/healthz` and to the
//! log once each, never per retry. A wait is cut short when a device node appears, so a camera
//! plugged back after a long outage is picked up at once rather than at the next 5 s retry.

use super::SourceError;
use super::health::{HealthSession, SourceHealth, SourceState};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Where the kernel creates the nodes of cameras (`/dev/videoN`, with udev's `/dev/v4l/…` links)
/// and sound cards (`/dev/snd/…`): creating or removing a node changes its directory's mtime.
const DEVICE_DIRS: [&str; 3] = ["/dev", "/dev/snd", "/dev/v4l"];

/// How often a waiting supervisor looks at the stop flag and the device directories.
const WAIT_STEP: Duration = Duration::from_millis(50);

/// Exponential backoff between reopen attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// First retry 0.5 s after a failure; the wait doubles up to 5 s.
    pub fn for_devices() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(5))
    }

    pub fn new(first: Duration, max: Duration) -> Self {
        Self { first, max, next: first }
    }

    /// How long to wait before the next attempt; each call doubles the following wait.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// The source worked again: the next failure earns a quick retry.
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// What a supervisor should do after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Try to open the source again after this long.
    RetryIn(Duration),
    /// The failure will not go away by retrying (a configuration problem): stay stopped.
    GiveUp,
}

/// One source's outage, as its supervisor remembers it: the backoff, the failure last logged (so
/// a device that stays away is reported once), and whether retrying can help at all.
#[derive(Debug)]
pub struct Outage {
    backoff: Backoff,
    attempts: u32,
    reported: Option<String>,
    given_up: bool,
    device_dirs: Vec<PathBuf>,
}

impl Outage {
    pub fn new(backoff: Backoff) -> Self {
        Self::watching(backoff, DEVICE_DIRS.iter().map(PathBuf::from).collect())
    }

    /// An outage whose waits end early when anything is added to or removed from `device_dirs`.
    pub fn watching(backoff: Backoff, device_dirs: Vec<PathBuf>) -> Self {
        Self { backoff, attempts: 0, reported: None, given_up: false, device_dirs }
    }

    /// Waits `delay` before the next attempt. Returns early, within [`WAIT_STEP`], when `stop`
    /// is set or a device node appears or vanishes; the latter also resets the backoff, because
    /// a freshly created node may need a moment (udev setting its group) before it opens.
    pub fn wait(&mut self, delay: Duration, stop: &AtomicBool) {
        let deadline = Instant::now() + delay;
        let before = self.device_dir_times();
        while !stop.load(Ordering::Relaxed) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(WAIT_STEP));
            if self.device_dir_times() != before {
                tracing::debug!("device nodes changed; retrying now");
                self.backoff.reset();
                return;
            }
        }
    }

    fn device_dir_times(&self) -> Vec<Option<SystemTime>> {
        self.device_dirs.iter().map(|dir| dir.metadata().and_then(|m| m.modified()).ok()).collect()
    }

    /// Records a failure to open or to read; returns what to do and, the first time this
    /// failure is seen, the message to log.
    pub fn failed(&mut self, error: &SourceError) -> (Decision, Option<String>) {
        self.attempts = self.attempts.saturating_add(1);
        let message = error.to_string();
        let news = (self.reported.as_deref() != Some(&message)).then(|| message.clone());
        self.reported = Some(message);
        if error.is_retryable() {
            (Decision::RetryIn(self.backoff.next_delay()), news)
        } else {
            self.given_up = true;
            (Decision::GiveUp, news)
        }
    }

    /// The source delivered again: resets the backoff and returns how many failures the outage
    /// took, if there was one.
    pub fn recovered(&mut self) -> Option<u32> {
        self.backoff.reset();
        self.reported = None;
        let attempts = std::mem::take(&mut self.attempts);
        (attempts > 0).then_some(attempts)
    }

    /// True once a failure that retrying cannot fix has been seen.
    pub fn given_up(&self) -> bool {
        self.given_up
    }
}

/// How a supervised run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `stop` was set.
    Stopped,
    /// The consumer refused a frame (the pipeline is gone or broke): nothing left to capture for.
    ConsumerGone,
}

/// A source the supervisor pulls items from; `what` in [`supervise`] names it in log lines.
pub trait Supervised {
    type Item;
    fn next(&mut self) -> Result<Self::Item, SourceError>;
}

impl<T: super::AudioSource + ?Sized> Supervised for Box<T> {
    type Item = crate::media::PcmChunk;
    fn next(&mut self) -> Result<Self::Item, SourceError> {
        self.next_chunk()
    }
}

/// Opens the source with `open`, hands every item to `consume` until it returns false, and
/// reopens with `backoff` whenever opening or reading fails, until `stop` is set.
pub fn supervise<S: Supervised>(
    what: &str,
    open: &dyn Fn() -> Result<S, SourceError>,
    mut consume: impl FnMut(S::Item) -> bool,
    backoff: Backoff,
    stop: &AtomicBool,
    health: &HealthSession,
) -> Ended {
    let mut outage = Outage::new(backoff);
    let ended = 'outer: loop {
        if stop.load(Ordering::Relaxed) {
            break Ended::Stopped;
        }
        let error = match open() {
            Ok(mut source) => {
                let mut delivered = false;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer Ended::Stopped;
                    }
                    match source.next() {
                        Ok(item) => {
                            if !delivered {
                                delivered = true;
                                health.set(SourceHealth::running());
                                if outage.recovered().is_some() {
                                    tracing::info!("{what} is back");
                                }
                            }
                            if !consume(item) {
                                break 'outer Ended::ConsumerGone;
                            }
                        }
                        Err(error) => break error,
                    }
                }
            }
            Err(error) => error,
        };
        let (decision, news) = outage.failed(&error);
        let Decision::RetryIn(delay) = decision else {
            tracing::error!(%error, "{what} stopped; fix the configuration and restart camrtc");
            health
                .set(SourceHealth { state: SourceState::Stopped, error: Some(error.to_string()) });
            return Ended::Stopped;
        };
        if news.is_some() {
            tracing::warn!(%error, retry_in = ?delay, "{what} unavailable; retrying until it returns");
        } else {
            tracing::debug!(%error, retry_in = ?delay, "{what} still unavailable");
        }
        health.set(SourceHealth::retrying(error.to_string()));
        outage.wait(delay, stop);
    };
    health.set(SourceHealth::stopped());
    ended
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::health::health_channel;
    use std::sync::Mutex;
    use std::time::Instant;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::for_devices();
        let delays: Vec<_> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), Duration::from_millis(500));
    }

    /// A device scripted as a list of open results, each open source yielding some items then
    /// failing.
    struct Script {
        /// `None`: opening fails; `Some(n)`: opens, yields n items, then fails.
        steps: Mutex<Vec<Option<u32>>>,
        opened_at: Mutex<Vec<Instant>>,
    }

    struct Scripted(u32);

    impl Supervised for Scripted {
        type Item = u32;
        fn next(&mut self) -> Result<u32, SourceError> {
            if self.0 == 0 {
                return Err(SourceError::Capture("unplugged".into()));
            }
            self.0 -= 1;
            Ok(self.0)
        }
    }

    #[test]
    fn missing_and_vanishing_devices_are_retried_and_resume() {
        let (reporter, watch) = health_channel();
        let script = Script {
            steps: Mutex::new(vec![Some(1000), None, Some(3), None]),
            opened_at: Mutex::new(Vec::new()),
        };
        let open = || {
            script.opened_at.lock().unwrap().push(Instant::now());
            match script.steps.lock().unwrap().pop().expect("script long enough") {
                Some(items) => Ok(Scripted(items)),
                None => Err(SourceError::Unavailable("no such device".into())),
            }
        };
        let stop = AtomicBool::new(false);
        let mut items = 0;
        let mut states = Vec::new();
        let health = reporter.session();
        let ended = supervise(
            "test device",
            &open,
            |_| {
                items += 1;
                states.push(watch.borrow().state);
                items < 10
            },
            Backoff::new(Duration::from_millis(30), Duration::from_millis(100)),
            &stop,
            &health,
        );
        assert_eq!(ended, Ended::ConsumerGone);
        // Missing at start, then 3 items, unplugged, missing once more, then back for good.
        assert_eq!(items, 10);
        assert!(states.iter().all(|s| *s == SourceState::Running));
        let opened = script.opened_at.lock().unwrap();
        assert_eq!(opened.len(), 4);
        let gaps: Vec<_> = opened.windows(2).map(|w| w[1] - w[0]).collect();
        // 30 ms after the first failure; the success in between resets the backoff to 30 ms.
        assert!(
            gaps[0] >= Duration::from_millis(30) && gaps[0] < Duration::from_millis(500),
            "{gaps:?}"
        );
        assert!(
            gaps[1] >= Duration::from_millis(30) && gaps[1] < Duration::from_millis(500),
            "{gaps:?}"
        );
        assert!(gaps[2] >= Duration::from_millis(60), "doubled after two failures: {gaps:?}");
        assert_eq!(watch.borrow().state, SourceState::Stopped);
    }

    #[test]
    fn retrying_state_carries_the_error_and_stop_ends_the_wait() {
        let (reporter, watch) = health_channel();
        let stop = AtomicBool::new(false);
        let open = || -> Result<Scripted, SourceError> {
            Err(SourceError::Unavailable("cannot open \"hw:9,0\"".into()))
        };
        let health = reporter.session();
        std::thread::scope(|scope| {
            let runner = scope.spawn(|| {
                supervise("mic", &open, |_| true, Backoff::for_devices(), &stop, &health)
            });
            let deadline = Instant::now() + Duration::from_secs(5);
            while watch.borrow().state != SourceState::Retrying {
                assert!(Instant::now() < deadline, "never reported retrying");
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(watch.borrow().error.as_deref(), Some("cannot open \"hw:9,0\""));
            let stopped_at = Instant::now();
            stop.store(true, Ordering::Relaxed);
            assert_eq!(runner.join().expect("no panic"), Ended::Stopped);
            assert!(stopped_at.elapsed() < Duration::from_millis(300), "stop waits out no backoff");
        });
        assert_eq!(*watch.borrow(), SourceHealth::stopped());
    }

    #[test]
    fn an_outage_reports_a_repeating_failure_once_and_recovery_resets_the_backoff() {
        let mut outage = Outage::new(Backoff::for_devices());
        let gone = SourceError::Unavailable("/dev/video0: No such device".into());
        let (decision, news) = outage.failed(&gone);
        assert_eq!(decision, Decision::RetryIn(Duration::from_millis(500)));
        assert_eq!(news.as_deref(), Some("/dev/video0: No such device"));
        let (decision, news) = outage.failed(&gone);
        assert_eq!(decision, Decision::RetryIn(Duration::from_secs(1)));
        assert_eq!(news, None, "the same failure again is not news");
        let (_, news) = outage.failed(&SourceError::Capture("timeout".into()));
        assert_eq!(news.as_deref(), Some("capture failed: timeout"), "a different one is");
        assert_eq!(outage.recovered(), Some(3));
        assert_eq!(outage.recovered(), None);
        assert_eq!(outage.failed(&gone).0, Decision::RetryIn(Duration::from_millis(500)));
        assert!(!outage.given_up());
        let (decision, _) = outage.failed(&SourceError::Config("unknown control".into()));
        assert_eq!(decision, Decision::GiveUp, "config errors are not retried");
        assert!(outage.given_up());
    }

    /// An empty directory standing in for /dev.
    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("camrtc-supervisor-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    #[test]
    fn a_device_node_appearing_ends_the_wait_and_resets_the_backoff() {
        let dev = scratch_dir("appears");
        let mut outage =
            Outage::watching(Backoff::for_devices(), vec![dev.clone(), "/nonexistent".into()]);
        let gone = SourceError::Unavailable("/dev/video0: No such device".into());
        for _ in 0..4 {
            outage.failed(&gone);
        }
        let (decision, _) = outage.failed(&gone);
        assert_eq!(decision, Decision::RetryIn(Duration::from_secs(5)), "a long outage");

        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let plug = scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(300));
                std::fs::write(dev.join("video0"), b"").expect("node created");
                Instant::now()
            });
            outage.wait(Duration::from_secs(5), &stop);
            let woke = Instant::now();
            let plugged = plug.join().expect("no panic");
            let late = woke.saturating_duration_since(plugged);
            assert!(late < Duration::from_millis(1500), "woke {late:?} after the node appeared");
        });
        assert_eq!(
            outage.failed(&gone).0,
            Decision::RetryIn(Duration::from_millis(500)),
            "a node that is not ready yet is retried quickly"
        );
        std::fs::remove_dir_all(dev).expect("scratch dir removed");
    }

    #[test]
    fn a_wait_without_device_changes_lasts_its_delay() {
        let dev = scratch_dir("steady");
        let mut outage = Outage::watching(Backoff::for_devices(), vec![dev.clone()]);
        let started = Instant::now();
        outage.wait(Duration::from_millis(200), &AtomicBool::new(false));
        assert!(started.elapsed() >= Duration::from_millis(200));
        std::fs::remove_dir_all(dev).expect("scratch dir removed");
    }
}
