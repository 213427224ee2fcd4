//! The privacy switch: while on, capture is stopped entirely (camera and microphone closed) and
//! snapshots are refused; the setting survives restarts in `privacy.state_file`.
//!
//! One task owns the setting: it writes the file first (so what a restart reads is never behind
//! what viewers were told), then tells the hub, publishes the new state for `/api/status` and the
//! page, and raises a privacy event.

use crate::events::{EventBus, EventKind};
use crate::hub::HubHandle;
use std::path::{Path, PathBuf};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

const ON: &str = "on\n";
const OFF: &str = "off\n";

/// Why the privacy setting could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    /// The state file exists but cannot be read.
    #[error("privacy.state_file {}: cannot read it: {error}", path.display())]
    Read { path: PathBuf, error: std::io::Error },
    /// The state file holds something other than "on" or "off".
    #[error("privacy.state_file {}: holds {found:?}, expected \"on\" or \"off\"", path.display())]
    Corrupt { path: PathBuf, found: String },
    /// The new setting could not be saved, so it was not applied.
    #[error("cannot save the privacy setting to {}: {error}; nothing was changed", path.display())]
    Write { path: PathBuf, error: std::io::Error },
    /// The daemon is stopping.
    #[error("the daemon is shutting down")]
    Stopped,
}

/// The persisted setting: off when the file does not exist yet.
pub fn load(path: &Path) -> Result<bool, PrivacyError> {
    match std::fs::read_to_string(path) {
        Ok(text) => match text.trim() {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(PrivacyError::Corrupt { path: path.to_owned(), found: other.to_owned() }),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(PrivacyError::Read { path: path.to_owned(), error }),
    }
}

type Request = (bool, oneshot::Sender<Result<(), PrivacyError>>);

/// The handle HTTP handlers hold.
#[derive(Clone)]
pub struct Privacy {
    requests: mpsc::Sender<Request>,
    state: watch::Receiver<bool>,
}

impl Privacy {
    /// Whether privacy mode is on now.
    pub fn enabled(&self) -> bool {
        *self.state.borrow()
    }

    /// Turns privacy mode on or off; returns once it is saved and capture has been told.
    pub async fn set(&self, enabled: bool) -> Result<(), PrivacyError> {
        let (reply, answer) = oneshot::channel();
        self.requests.send((enabled, reply)).await.map_err(|_| PrivacyError::Stopped)?;
        answer.await.map_err(|_| PrivacyError::Stopped)?
    }
}

/// Starts the owner task with the setting `initial` (already applied to the hub at its start).
pub fn spawn(
    initial: bool,
    path: PathBuf,
    hub: HubHandle,
    bus: EventBus,
    shutdown: CancellationToken,
) -> Privacy {
    let (requests, mut incoming) = mpsc::channel::<Request>(4);
    let (state_tx, state) = watch::channel(initial);
    tokio::spawn(async move {
        loop {
            let (enabled, reply) = tokio::select! {
                () = shutdown.cancelled() => return,
                request = incoming.recv() => match request { Some(r) => r, None => return },
            };
            if *state_tx.borrow() == enabled {
                let _ = reply.send(Ok(()));
                continue;
            }
            let file = path.clone();
            let saved = tokio::task::spawn_blocking(move || {
                crate::state_file::write_atomically(
                    &file,
                    if enabled { ON } else { OFF }.as_bytes(),
                    0o644,
                )
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            if let Err(error) = saved {
                let _ = reply.send(Err(PrivacyError::Write { path: path.clone(), error }));
                continue;
            }
            hub.set_privacy(enabled);
            state_tx.send_replace(enabled);
            tracing::info!(
                enabled,
                "privacy mode {}",
                if enabled { "on: camera and microphone off" } else { "off" }
            );
            bus.publish(EventKind::Privacy { enabled });
            let _ = reply.send(Ok(()));
        }
    });
    Privacy { requests, state }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_off_and_garbage_is_named() {
        let dir = std::env::temp_dir().join(format!("camrtc-privacy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("privacy");
        let _ = std::fs::remove_file(&path);
        assert!(!load(&path).expect("missing is off"));
        std::fs::write(&path, "on\n").expect("write");
        assert!(load(&path).expect("on"));
        std::fs::write(&path, "maybe").expect("write");
        let error = load(&path).expect_err("garbage").to_string();
        assert!(error.contains("holds \"maybe\""), "{error}");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
