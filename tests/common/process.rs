//! The daemon as a separate process, for tests that watch its threads, descriptors and memory
//! or send it signals.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DaemonProcess {
    pub child: Child,
    pub base: String,
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("daemon alive");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("daemon alive").count()
}

pub async fn health(base: &str) -> serde_json::Value {
    reqwest::get(format!("{base}/healthz")).await.expect("answers").json().await.expect("JSON")
}

/// Waits until the daemon has no sessions, no viewers and no running pipeline.
pub async fn wait_idle(base: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = health(base).await;
        if status["sessions"] == 0 && status["viewers"] == 0 && status["pipeline_running"] == false
        {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not idle after {limit:?}: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn start_daemon() -> DaemonProcess {
    // A free port: bind, read it, release it for the daemon.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = std::env::temp_dir().join(format!("camrtc-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("camrtc.toml");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\nmax_viewers = 50\nmax_sessions_per_minute = 6000\n\
             [video]\nsource = \"test\"\nwidth = 320\nheight = 240\n\
             [audio]\nsource = \"test\"\n\
             [webrtc]\ninclude_loopback_candidates = true\nconnect_timeout_ms = 1000\n\
             [auth]\nmode = \"none\"\n\
             [pipeline]\nidle_stop_ms = 200\n"
        ),
    )
    .expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_camrtc"))
        .env("MALLOC_ARENA_MAX", "2")
        .arg("run")
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("daemon starts");
    let daemon = DaemonProcess { child, base: format!("http://127.0.0.1:{port}") };
    let started = Instant::now();
    while reqwest::get(format!("{}/healthz", daemon.base)).await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "daemon did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon
}
