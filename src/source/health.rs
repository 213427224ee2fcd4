//! What `/healthz` says about each source: running, retrying after a failure, or stopped.
//!
//! The thread that supervises a source owns its state and publishes every change through a
//! `watch` channel; the HTTP side only reads the latest value, so a slow health check never
//! holds up capture.

use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::watch;

/// Where a source is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Delivering frames or chunks.
    Running,
    /// Failed or missing; the supervisor is trying to open it again with backoff.
    Retrying,
    /// Not capturing: nobody is watching (on-demand pipeline), or the daemon is stopping.
    Stopped,
}

/// One source's state as `/healthz` shows it: `{"state": "retrying", "error": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceHealth {
    pub state: SourceState,
    /// The last failure, while retrying (and after a fatal stop).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SourceHealth {
    pub fn running() -> Self {
        Self { state: SourceState::Running, error: None }
    }

    pub fn retrying(error: impl Into<String>) -> Self {
        Self { state: SourceState::Retrying, error: Some(error.into()) }
    }

    pub fn stopped() -> Self {
        Self { state: SourceState::Stopped, error: None }
    }
}

/// The reading end, held by the HTTP layer.
pub type HealthWatch = watch::Receiver<SourceHealth>;

/// The writing end, kept by whoever starts the source's threads. Each start takes a
/// [`HealthSession`]; only the newest session may publish, so a thread that is still winding
/// down after a restart cannot overwrite its successor's state.
#[derive(Debug, Clone)]
pub struct HealthReporter {
    tx: Arc<watch::Sender<SourceHealth>>,
    epoch: Arc<AtomicU64>,
}

/// A new reporter and its reader; the state starts as stopped.
pub fn health_channel() -> (HealthReporter, HealthWatch) {
    let (tx, rx) = watch::channel(SourceHealth::stopped());
    (HealthReporter { tx: Arc::new(tx), epoch: Arc::new(AtomicU64::new(0)) }, rx)
}

impl HealthReporter {
    /// Starts a new publishing session, silencing every earlier one.
    pub fn session(&self) -> HealthSession {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        HealthSession { reporter: self.clone(), epoch }
    }
}

/// The right to publish one source thread's state; see [`HealthReporter::session`].
#[derive(Debug)]
pub struct HealthSession {
    reporter: HealthReporter,
    epoch: u64,
}

impl HealthSession {
    /// Publishes `health` unless a newer session has started or nothing changed.
    pub fn set(&self, health: SourceHealth) {
        let HealthReporter { tx, epoch } = &self.reporter;
        // The epoch is checked under the channel's lock, so a superseded session cannot slip a
        // write in between its successor's writes.
        tx.send_if_modified(|current| {
            if epoch.load(Ordering::SeqCst) != self.epoch || *current == health {
                return false;
            }
            *current = health.clone();
            true
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_state_and_optional_error() {
        let json = |h: SourceHealth| serde_json::to_string(&h).expect("serialisable");
        assert_eq!(json(SourceHealth::running()), r#"{"state":"running"}"#);
        assert_eq!(json(SourceHealth::stopped()), r#"{"state":"stopped"}"#);
        assert_eq!(
            json(SourceHealth::retrying("no such device")),
            r#"{"state":"retrying","error":"no such device"}"#
        );
    }

    #[test]
    fn only_the_newest_session_publishes() {
        let (reporter, watch) = health_channel();
        assert_eq!(*watch.borrow(), SourceHealth::stopped());
        let old = reporter.session();
        old.set(SourceHealth::running());
        assert_eq!(*watch.borrow(), SourceHealth::running());

        let new = reporter.session();
        new.set(SourceHealth::retrying("unplugged"));
        old.set(SourceHealth::stopped());
        assert_eq!(*watch.borrow(), SourceHealth::retrying("unplugged"));
        new.set(SourceHealth::running());
        assert_eq!(*watch.borrow(), SourceHealth::running());
    }
}
