//! Telling systemd how the daemon is doing (`Type=notify`): READY=1 once the HTTP server listens,
//! STATUS= lines with the viewers and the capture state, and watchdog pings only while the media
//! pipeline, the hub, the session registry and the HTTP accept loop all answer. A capture thread
//! stuck in a driver call stops the pings, and systemd restarts the service (`WatchdogSec=`,
//! `Restart=on-failure`).
//!
//! Whether to ping is [`watchdog_verdict`], a pure function of what the checks saw and `now`.

use crate::http::server::AliveCheck;
use crate::hub::{HubHandle, HubStatus};
use crate::sessions::Sessions;
use sd_notify::NotifyState;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a running pipeline may go without a frame before it counts as wedged. Generous
/// against slow camera starts (some UVC cameras take seconds for the first frame), and many
/// frame intervals even at the lowest allowed rate (1 fps).
pub const STALL_LIMIT: Duration = Duration::from_secs(5);
/// Each part of the daemon must answer a liveness check within this time.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often STATUS= is refreshed when systemd asked for no watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(2);
/// Environment variable that wedges the video thread after this many frames. Test-only: it
/// exists so the watchdog can be proved to restart a stuck capture (tests/systemd_watchdog.rs and
/// the VM test); never set it in production.
pub const TEST_WEDGE_ENV: &str = "CAMRTC_TEST_WEDGE_VIDEO_AFTER_FRAMES";

/// What one round of liveness checks saw. `None` / `false`: that part did not answer in time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    pub hub: Option<HubStatus>,
    pub sessions: Option<usize>,
    pub http: bool,
}

/// Whether to send the watchdog ping this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ping,
    /// Withhold the ping; the reason goes to the log and to STATUS=.
    Withhold(String),
}

/// Ping only if every part answered and a running pipeline made progress within `stall_limit`.
/// A pipeline that is not running (idle on demand, or waiting to retry after an error the hub
/// already handles) counts as alive: nothing is stuck.
pub fn watchdog_verdict(now: Instant, seen: &Observation, stall_limit: Duration) -> Verdict {
    let Some(hub) = &seen.hub else {
        return Verdict::Withhold("the media hub does not answer".into());
    };
    if seen.sessions.is_none() {
        return Verdict::Withhold("the session registry does not answer".into());
    }
    if !seen.http {
        return Verdict::Withhold("the HTTP server does not answer".into());
    }
    match hub.pipeline_progress {
        Some(at) if hub.pipeline_running && now.saturating_duration_since(at) > stall_limit => {
            Verdict::Withhold(format!(
                "capture is stuck: no video frame for {} s",
                now.saturating_duration_since(at).as_secs()
            ))
        }
        _ => Verdict::Ping,
    }
}

/// The one-line STATUS= text `systemctl status camrtc` shows.
pub fn status_line(hub: &HubStatus, sessions: usize) -> String {
    let viewers = match sessions {
        1 => "1 viewer".to_owned(),
        n => format!("{n} viewers"),
    };
    let capture = match (&hub.last_pipeline_error, hub.pipeline_running) {
        (_, true) => "capture running".to_owned(),
        (Some(error), false) => format!("capture failed, retrying: {error}"),
        (None, false) => "capture idle until a viewer connects".to_owned(),
    };
    format!("{viewers}; {capture}")
}

/// The connection to systemd's notification socket, present when systemd started us with
/// `Type=notify` (NOTIFY_SOCKET is set).
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    /// How often systemd wants a ping (`WatchdogSec=`), if at all.
    watchdog: Option<Duration>,
}

impl Notifier {
    pub fn from_env() -> Option<Notifier> {
        std::env::var_os("NOTIFY_SOCKET")?;
        Some(Notifier { watchdog: sd_notify::watchdog_enabled() })
    }

    fn send(&self, state: &[NotifyState]) {
        if let Err(error) = sd_notify::notify(state) {
            tracing::warn!(%error, "cannot notify systemd");
        }
    }

    /// The daemon serves: systemd may start what depends on it.
    pub fn ready(&self) {
        self.send(&[NotifyState::Ready, NotifyState::Status("serving")]);
    }

    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("shutting down")]);
    }

    /// Several checks per watchdog interval, so one slow round does not cost a restart.
    fn period(&self) -> Duration {
        self.watchdog
            .map_or(STATUS_PERIOD, |interval| (interval / 4).max(Duration::from_millis(100)))
    }
}

/// The parts of the daemon the watchdog checks.
pub struct Watched {
    pub hub: HubHandle,
    pub sessions: Sessions,
    pub http: mpsc::Sender<AliveCheck>,
}

impl Watched {
    async fn observe(&self) -> Observation {
        let hub = tokio::time::timeout(CHECK_TIMEOUT, self.hub.status()).await;
        let sessions = tokio::time::timeout(CHECK_TIMEOUT, self.sessions.count()).await;
        let http = tokio::time::timeout(CHECK_TIMEOUT, async {
            let (reply, answer) = oneshot::channel();
            self.http.send(reply).await.is_ok() && answer.await.is_ok()
        })
        .await;
        Observation {
            hub: hub.ok().and_then(Result::ok),
            sessions: sessions.ok(),
            http: http.unwrap_or(false),
        }
    }
}

/// Checks the daemon every period until `shutdown`: pings the watchdog when healthy, and keeps
/// STATUS= current (sent only when it changes).
pub async fn supervise(notifier: Notifier, watched: Watched, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(notifier.period());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = String::new();
    let mut withholding = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let seen = watched.observe().await;
        let verdict = watchdog_verdict(Instant::now(), &seen, STALL_LIMIT);
        let status = match (&verdict, &seen.hub) {
            (Verdict::Withhold(reason), _) => format!("unhealthy: {reason}"),
            (Verdict::Ping, hub) => {
                status_line(&hub.clone().unwrap_or_default(), seen.sessions.unwrap_or(0))
            }
        };
        match &verdict {
            Verdict::Ping if withholding => {
                withholding = false;
                tracing::info!("healthy again; watchdog pings resume");
            }
            Verdict::Withhold(reason) if !withholding => {
                withholding = true;
                tracing::error!(
                    "{reason}; withholding watchdog pings so systemd restarts camrtc \
                     (if WatchdogSec= is set)"
                );
            }
            _ => {}
        }
        let mut states = Vec::with_capacity(2);
        if status != last_status {
            states.push(NotifyState::Status(&status));
        }
        if verdict == Verdict::Ping && notifier.watchdog.is_some() {
            states.push(NotifyState::Watchdog);
        }
        if !states.is_empty() {
            notifier.send(&states);
        }
        last_status = status;
    }
}

/// Reads [`TEST_WEDGE_ENV`]: after how many frames the video thread should wedge, if at all.
pub fn test_wedge_from_env() -> Result<Option<u64>, String> {
    match std::env::var(TEST_WEDGE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(value) => match value.trim().parse() {
            Ok(frames) => {
                tracing::warn!(
                    "{TEST_WEDGE_ENV}={frames}: the video thread will hang after {frames} frames \
                     (a test of the watchdog; never set this in production)"
                );
                Ok(Some(frames))
            }
            Err(_) => Err(format!("{TEST_WEDGE_ENV}={value:?} must be a number of frames")),
        },
        Err(std::env::VarError::NotUnicode(value)) => {
            Err(format!("{TEST_WEDGE_ENV}={value:?} must be a number of frames"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(hub: HubStatus) -> Observation {
        Observation { hub: Some(hub), sessions: Some(0), http: true }
    }

    fn running_since(at: Instant) -> HubStatus {
        HubStatus { pipeline_running: true, pipeline_progress: Some(at), ..HubStatus::default() }
    }

    #[test]
    fn pings_while_frames_flow() {
        let now = Instant::now();
        let seen = healthy(running_since(now - Duration::from_millis(40)));
        assert_eq!(watchdog_verdict(now, &seen, STALL_LIMIT), Verdict::Ping);
        let seen = healthy(running_since(now - STALL_LIMIT));
        assert_eq!(watchdog_verdict(now, &seen, STALL_LIMIT), Verdict::Ping, "at the limit");
    }

    #[test]
    fn a_pipeline_without_frames_past_the_limit_stops_the_pings() {
        let now = Instant::now();
        let seen = healthy(running_since(now - STALL_LIMIT - Duration::from_secs(2)));
        assert_eq!(
            watchdog_verdict(now, &seen, STALL_LIMIT),
            Verdict::Withhold("capture is stuck: no video frame for 7 s".into())
        );
    }

    #[test]
    fn an_idle_or_retrying_pipeline_counts_as_alive() {
        let now = Instant::now();
        assert_eq!(
            watchdog_verdict(now, &healthy(HubStatus::default()), STALL_LIMIT),
            Verdict::Ping
        );
        let retrying =
            HubStatus { last_pipeline_error: Some("no camera".into()), ..HubStatus::default() };
        assert_eq!(watchdog_verdict(now, &healthy(retrying), STALL_LIMIT), Verdict::Ping);
    }

    #[test]
    fn any_part_that_does_not_answer_stops_the_pings() {
        let now = Instant::now();
        let hub_gone = Observation { hub: None, ..healthy(HubStatus::default()) };
        let registry_gone = Observation { sessions: None, ..healthy(HubStatus::default()) };
        let http_gone = Observation { http: false, ..healthy(HubStatus::default()) };
        for (seen, part) in [(hub_gone, "hub"), (registry_gone, "registry"), (http_gone, "HTTP")] {
            match watchdog_verdict(now, &seen, STALL_LIMIT) {
                Verdict::Withhold(reason) => assert!(reason.contains(part), "{reason}"),
                Verdict::Ping => panic!("pinged although the {part} did not answer"),
            }
        }
    }

    #[test]
    fn status_lines_say_viewers_and_capture_state() {
        let idle = HubStatus::default();
        assert_eq!(status_line(&idle, 0), "0 viewers; capture idle until a viewer connects");
        let running = HubStatus { pipeline_running: true, ..HubStatus::default() };
        assert_eq!(status_line(&running, 1), "1 viewer; capture running");
        let failed = HubStatus {
            last_pipeline_error: Some("no /dev/video0".into()),
            ..HubStatus::default()
        };
        assert_eq!(status_line(&failed, 2), "2 viewers; capture failed, retrying: no /dev/video0");
    }

    #[test]
    fn checks_run_several_times_per_watchdog_interval() {
        let notifier = Notifier { watchdog: Some(Duration::from_secs(20)) };
        assert_eq!(notifier.period(), Duration::from_secs(5));
        assert_eq!(Notifier { watchdog: None }.period(), STATUS_PERIOD);
    }
}
