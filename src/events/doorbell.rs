//! The doorbell button: a GPIO input line read through the Linux GPIO character device, debounced,
//! raising one event per press.
//!
//! Reading the line is behind [`ButtonLine`] so the debounce and the task can be tested with a
//! line fed from a channel ([`ChannelLine`]); the real line ([`GpioLine`]) uses the `gpiocdev`
//! crate (uAPI v2) on a thread of its own, because waiting for an edge is a blocking read. The
//! real path is checked at start (the chip and line must exist) but has not been exercised on
//! hardware: the kernel on the test machines has neither gpio-sim nor gpio-mockup.

use super::{EventBus, EventKind};
pub use crate::config::{Bias, GpioSettings};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the GPIO thread looks up from waiting to see whether it should stop.
const STOP_POLL: Duration = Duration::from_millis(200);

/// Why the doorbell line cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum DoorbellError {
    /// The GPIO chip device (`events.doorbell.chip`) does not exist or cannot be opened.
    #[error("events.doorbell.chip = {chip:?}: cannot open the GPIO chip: {error}")]
    Chip { chip: PathBuf, error: String },
    /// The chip has no such line (`events.doorbell.line`).
    #[error("events.doorbell.line = {line}: {chip:?} has only {lines} lines (0 to {})", .lines.saturating_sub(1))]
    NoSuchLine { chip: PathBuf, line: u32, lines: u32 },
    /// The kernel refused the line as an input with edge detection (in use by another
    /// program or a driver, or not permitted).
    #[error("events.doorbell.line = {line} on {chip:?}: cannot request it as an input: {error}")]
    Request { chip: PathBuf, line: u32, error: String },
    /// Reading edges failed after the line was open.
    #[error("reading the doorbell line failed: {0}")]
    Read(String),
    /// The line's reader is gone.
    #[error("the doorbell line closed")]
    Closed,
}

/// A button input: its level now, then each change.
#[async_trait::async_trait]
pub trait ButtonLine: Send {
    /// True while the button is pressed (after any active-low inversion).
    fn initial(&self) -> bool;
    /// Waits for the next change of level and returns the new level.
    async fn next_level(&mut self) -> Result<bool, DoorbellError>;
}

/// A line whose levels arrive on a channel: what tests press, and how [`GpioLine`]'s thread
/// hands over its edges.
pub struct ChannelLine {
    initial: bool,
    levels: mpsc::Receiver<Result<bool, DoorbellError>>,
}

impl ChannelLine {
    pub fn new(initial: bool, levels: mpsc::Receiver<Result<bool, DoorbellError>>) -> Self {
        Self { initial, levels }
    }
}

#[async_trait::async_trait]
impl ButtonLine for ChannelLine {
    fn initial(&self) -> bool {
        self.initial
    }

    async fn next_level(&mut self) -> Result<bool, DoorbellError> {
        self.levels.recv().await.unwrap_or(Err(DoorbellError::Closed))
    }
}

/// The real button, through `/dev/gpiochipN`. Untested on hardware (see the module comment).
pub struct GpioLine {
    channel: ChannelLine,
    stop: Arc<AtomicBool>,
}

impl Drop for GpioLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl GpioLine {
    /// Requests the line as an input with edge detection on both edges; fails with the config
    /// key to fix when the chip or line does not exist or cannot be had.
    pub fn open(settings: &GpioSettings) -> Result<Self, DoorbellError> {
        let chip = settings.chip.clone();
        let info = gpiocdev::Chip::from_path(&chip)
            .and_then(|c| c.info())
            .map_err(|e| DoorbellError::Chip { chip: chip.clone(), error: e.to_string() })?;
        if settings.line >= info.num_lines {
            return Err(DoorbellError::NoSuchLine {
                chip,
                line: settings.line,
                lines: info.num_lines,
            });
        }
        let mut builder = gpiocdev::Request::builder();
        builder
            .on_chip(&chip)
            .with_consumer("camrtc-doorbell")
            .with_line(settings.line)
            .as_input()
            .with_edge_detection(gpiocdev::line::EdgeDetection::BothEdges);
        if settings.active_low {
            builder.as_active_low();
        }
        match settings.bias {
            Bias::AsIs => {}
            Bias::PullUp => {
                builder.with_bias(gpiocdev::line::Bias::PullUp);
            }
            Bias::PullDown => {
                builder.with_bias(gpiocdev::line::Bias::PullDown);
            }
        }
        let request_failed = |e: gpiocdev::Error| DoorbellError::Request {
            chip: chip.clone(),
            line: settings.line,
            error: e.to_string(),
        };
        let request = builder.request().map_err(request_failed)?;
        let initial =
            request.value(settings.line).map_err(request_failed)? == gpiocdev::line::Value::Active;
        let (tx, rx) = mpsc::channel(16);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        std::thread::Builder::new()
            .name("camrtc-gpio".to_owned())
            .spawn(move || read_edges(&request, &tx, &thread_stop))
            .map_err(|e| DoorbellError::Read(format!("cannot start the GPIO thread: {e}")))?;
        Ok(Self { channel: ChannelLine::new(initial, rx), stop })
    }
}

fn read_edges(
    request: &gpiocdev::Request,
    levels: &mpsc::Sender<Result<bool, DoorbellError>>,
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let edge = match request.wait_edge_event(STOP_POLL) {
            Ok(false) => continue,
            Ok(true) => request.read_edge_event(),
            Err(error) => Err(error),
        };
        let level = edge
            .map(|edge| edge.kind == gpiocdev::line::EdgeKind::Rising)
            .map_err(|e| DoorbellError::Read(e.to_string()));
        let failed = level.is_err();
        if levels.blocking_send(level).is_err() || failed {
            return;
        }
    }
}

#[async_trait::async_trait]
impl ButtonLine for GpioLine {
    fn initial(&self) -> bool {
        self.channel.initial()
    }

    async fn next_level(&mut self) -> Result<bool, DoorbellError> {
        self.channel.next_level().await
    }
}

/// Contact bounce filter: a level counts once it has held for `period`. Pure: fed levels and
/// the time they were seen.
#[derive(Debug, Clone)]
pub struct Debouncer {
    period: Duration,
    stable: bool,
    pending: Option<(bool, Instant)>,
}

impl Debouncer {
    pub fn new(period: Duration, initial: bool) -> Self {
        Self { period, stable: initial, pending: None }
    }

    /// The line read `level` at `now`.
    pub fn change(&mut self, level: bool, now: Instant) {
        self.pending = (level != self.stable).then_some((level, now));
    }

    /// When the pending level will have held long enough.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.map(|(_, since)| since + self.period)
    }

    /// True when, at `now`, the line has settled pressed (a new press).
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.pending {
            Some((level, since)) if now >= since + self.period => {
                self.pending = None;
                self.stable = level;
                level
            }
            _ => false,
        }
    }
}

/// Reads `line` until `shutdown`, publishing one doorbell event per debounced press. A line that
/// fails is logged and no longer read (the rest of the daemon carries on).
pub async fn run(
    mut line: impl ButtonLine,
    debounce: Duration,
    bus: EventBus,
    shutdown: CancellationToken,
) {
    let mut debouncer = Debouncer::new(debounce, line.initial());
    loop {
        let due = debouncer.deadline();
        tokio::select! {
            () = shutdown.cancelled() => return,
            level = line.next_level() => match level {
                Ok(level) => debouncer.change(level, Instant::now()),
                Err(error) => {
                    tracing::error!(%error, "doorbell button no longer read");
                    return;
                }
            },
            () = async { tokio::time::sleep_until(due.expect("guarded by the branch condition")).await }, if due.is_some() => {
                if debouncer.poll(Instant::now()) {
                    bus.publish(EventKind::Doorbell);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_chip_names_the_key() {
        let settings = GpioSettings {
            chip: PathBuf::from("/dev/gpiochip-camrtc-missing"),
            line: 17,
            active_low: true,
            bias: Bias::PullUp,
        };
        let error = GpioLine::open(&settings).err().expect("no such chip here").to_string();
        assert!(
            error.starts_with("events.doorbell.chip = \"/dev/gpiochip-camrtc-missing\""),
            "{error}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bounces_make_one_press_and_a_release_none() {
        let mut debouncer = Debouncer::new(Duration::from_millis(30), false);
        let start = Instant::now();
        // Contacts chatter for 10 ms, then hold.
        for (ms, level) in [(0, true), (2, false), (4, true), (7, false), (10, true)] {
            debouncer.change(level, start + Duration::from_millis(ms));
            assert!(!debouncer.poll(start + Duration::from_millis(ms)));
        }
        assert_eq!(debouncer.deadline(), Some(start + Duration::from_millis(40)));
        assert!(!debouncer.poll(start + Duration::from_millis(39)));
        assert!(debouncer.poll(start + Duration::from_millis(40)), "pressed once settled");
        assert!(!debouncer.poll(start + Duration::from_millis(100)), "only once");
        debouncer.change(false, start + Duration::from_millis(200));
        assert!(!debouncer.poll(start + Duration::from_millis(300)), "a release is no press");
        // A glitch shorter than the period is no press.
        debouncer.change(true, start + Duration::from_millis(400));
        debouncer.change(false, start + Duration::from_millis(410));
        assert!(!debouncer.poll(start + Duration::from_millis(500)));
    }
}
