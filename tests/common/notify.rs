//! A stand-in for systemd's notification socket (`NOTIFY_SOCKET`): a datagram socket the test
//! reads, so the daemon's sd_notify messages can be checked without systemd.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl NotifySocket {
    pub fn bind(name: &str) -> NotifySocket {
        let path =
            std::env::temp_dir().join(format!("camrtc-notify-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        NotifySocket { socket, path }
    }

    /// The daemon command with NOTIFY_SOCKET and WATCHDOG_USEC set, as systemd would.
    pub fn command(&self, watchdog: Duration) -> Command {
        let mut command = Command::new(super::camrtc_binary());
        command
            .env("NOTIFY_SOCKET", &self.path)
            .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
            .env_remove("WATCHDOG_PID");
        command
    }

    /// The next message, or None if none arrives within `limit`.
    pub fn recv(&self, limit: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(limit.max(Duration::from_millis(1)))).expect("timeout");
        let mut buffer = [0u8; 4096];
        let n = self.socket.recv(&mut buffer).ok()?;
        Some(String::from_utf8_lossy(&buffer[..n]).into_owned())
    }

    /// Waits for a message containing `line` (e.g. "READY=1"); returns it.
    pub fn wait_for(&self, line: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .recv(left)
                .unwrap_or_else(|| panic!("no {line:?} from the daemon within {limit:?}"));
            if message.lines().any(|l| l == line || l.starts_with(line)) {
                return message;
            }
        }
    }

    /// Every message that arrives within `span`.
    pub fn collect(&self, span: Duration) -> Vec<String> {
        let deadline = Instant::now() + span;
        let mut messages = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.recv(left) {
                Some(message) => messages.push(message),
                None => break,
            }
        }
        messages
    }
}
