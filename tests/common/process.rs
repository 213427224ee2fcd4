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

/// A loopback port nobody uses: bind, read it, release it for the daemon.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The soak tests' daemon: test sources, no auth, generous limits, quick idle stop.
pub async fn start_daemon() -> DaemonProcess {
    start_daemon_with("", NO_AUTH, Stdio::null()).await
}

/// The `[auth]` section of most process tests.
pub const NO_AUTH: &str = "mode = \"none\"";

/// [`start_daemon`] with `http_extra` (TOML lines) added to its `[http]` section, `auth` as its
/// `[auth]` section and its log on `stderr`.
pub async fn start_daemon_with(http_extra: &str, auth: &str, stderr: Stdio) -> DaemonProcess {
    let port = free_port();
    let daemon = spawn_run_logging(
        &format!("process-{port}"),
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\nmax_viewers = 50\nmax_sessions_per_minute = 6000\n\
             {http_extra}\n\
             [video]\nsource = \"test\"\nwidth = 320\nheight = 240\n\
             [audio]\nsource = \"test\"\n\
             [webrtc]\ninclude_loopback_candidates = true\nconnect_timeout_ms = 1000\n\
             [auth]\n{auth}\n\
             [pipeline]\nidle_stop_ms = 200\n"
        ),
        port,
        Command::new(super::camrtc_binary()),
        stderr,
    );
    if http_extra.contains("tls") {
        // Plain HTTP would only be redirected to https://, which this client cannot follow.
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(10), "daemon did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    } else {
        wait_listening(&daemon, Duration::from_secs(10)).await;
    }
    daemon
}

/// Runs `program run --config <config written to a temp file>`; `program` carries any extra
/// environment (and may be an emulator with the binary as its first argument).
pub fn spawn_run(name: &str, config: &str, port: u16, program: Command) -> DaemonProcess {
    spawn_run_logging(name, config, port, program, Stdio::null())
}

/// [`spawn_run`] with the daemon's log going to `stderr`.
pub fn spawn_run_logging(
    name: &str,
    config: &str,
    port: u16,
    mut program: Command,
    stderr: Stdio,
) -> DaemonProcess {
    let dir = std::env::temp_dir().join(format!("camrtc-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("camrtc.toml");
    std::fs::write(&path, config).expect("write config");
    let child = program
        .env("MALLOC_ARENA_MAX", "2")
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("daemon starts");
    DaemonProcess { child, base: format!("http://127.0.0.1:{port}") }
}

/// Waits until the daemon answers HTTP (any status: /healthz may want a token).
pub async fn wait_listening(daemon: &DaemonProcess, limit: Duration) {
    let started = Instant::now();
    while reqwest::get(format!("{}/healthz", daemon.base)).await.is_err() {
        assert!(started.elapsed() < limit, "daemon did not start within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
