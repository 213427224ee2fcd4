//! The daemon under test: a `camrtc run` subprocess with the test sources, and what the bench reads
//! about it from /proc and /metrics.

use crate::BenchError;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The stream every scenario serves.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Stream {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
}

pub struct Daemon {
    child: Child,
    pub base: String,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM first so it closes its peers; the bench's viewers are gone by then anyway.
        let _ = send_sigterm(self.child.id());
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn send_sigterm(pid: u32) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The configuration of every run: test pattern with timecode and tone, no auth, loopback.
fn config(port: u16, stream: Stream, extra: &str) -> String {
    let Stream { width, height, fps, bitrate_kbps } = stream;
    format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\nmax_viewers = 1000\nmax_sessions_per_minute = 6000\n\
         max_connections = 2000\n\
         [video]\nsource = \"test\"\nwidth = {width}\nheight = {height}\nfps = {fps}\n\
         bitrate_kbps = {bitrate_kbps}\n\
         [audio]\nsource = \"test\"\n\
         [webrtc]\ninclude_loopback_candidates = true\n\
         [auth]\nmode = \"none\"\n\
         [pipeline]\non_demand = false\n{extra}"
    )
}

impl Daemon {
    /// Starts `binary run` and waits until it answers HTTP. `extra` is appended to the config.
    pub async fn start(binary: &Path, stream: Stream, extra: &str) -> Result<Daemon, BenchError> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| BenchError::Daemon(format!("no free port: {e}")))?
            .port();
        let dir = std::env::temp_dir().join(format!("camrtc-bench-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| BenchError::Daemon(format!("{}: {e}", dir.display())))?;
        let path = dir.join("camrtc.toml");
        std::fs::write(&path, config(port, stream, extra))
            .map_err(|e| BenchError::Daemon(format!("{}: {e}", path.display())))?;
        let log = std::fs::File::create(dir.join("daemon.log"))
            .map_err(|e| BenchError::Daemon(format!("log file: {e}")))?;
        let child = Command::new(binary)
            .arg("run")
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| {
                BenchError::Daemon(format!(
                    "cannot run {} ({e}); build it with `cargo build --release --bin camrtc` \
                     or name it with --daemon",
                    binary.display()
                ))
            })?;
        let daemon = Daemon { child, base: format!("http://127.0.0.1:{port}"), dir };
        let started = Instant::now();
        while reqwest::get(format!("{}/healthz", daemon.base)).await.is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(BenchError::Daemon(format!(
                    "{} did not answer within 10 s (log: {})",
                    binary.display(),
                    daemon.dir.join("daemon.log").display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time and memory right now.
    pub fn sample(&self) -> Result<ProcSample, BenchError> {
        ProcSample::read(self.pid())
    }

    /// The sample values of `/metrics`, by series name with labels (`name{label="x"}`).
    pub async fn metrics(&self) -> Result<Metrics, BenchError> {
        let text = reqwest::get(format!("{}/metrics", self.base))
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| BenchError::Daemon(format!("/metrics: {e}")))?
            .text()
            .await
            .map_err(|e| BenchError::Daemon(format!("/metrics: {e}")))?;
        Ok(Metrics::parse(&text))
    }
}

/// One reading of /proc for the daemon.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    at: Instant,
    /// utime + stime in clock ticks.
    cpu_ticks: u64,
    pub rss_kib: u64,
    pub threads: u64,
}

impl ProcSample {
    fn read(pid: u32) -> Result<ProcSample, BenchError> {
        let gone = |e: std::io::Error| BenchError::Daemon(format!("daemon process {pid}: {e}"));
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(gone)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(gone)?;
        Ok(ProcSample {
            at: Instant::now(),
            cpu_ticks: parse_stat_cpu_ticks(&stat)
                .ok_or_else(|| BenchError::Daemon(format!("unreadable /proc/{pid}/stat")))?,
            rss_kib: status_field(&status, "VmRSS:").unwrap_or(0),
            threads: status_field(&status, "Threads:").unwrap_or(0),
        })
    }

    /// Cores used on average between `earlier` and `self`.
    pub fn cores_since(&self, earlier: &ProcSample) -> f64 {
        // SAFETY: sysconf only reads a constant.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let seconds = self.at.duration_since(earlier.at).as_secs_f64().max(1e-3);
        self.cpu_ticks.saturating_sub(earlier.cpu_ticks) as f64 / ticks_per_second / seconds
    }
}

/// utime + stime (fields 14 and 15) from /proc/PID/stat. The command name in parentheses may
/// contain spaces, so fields are counted after its closing parenthesis.
fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

fn status_field(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix(field)?.split_whitespace().next()?.parse().ok())
}

/// OpenMetrics samples by series.
#[derive(Debug, Default, Clone)]
pub struct Metrics(pub std::collections::BTreeMap<String, f64>);

impl Metrics {
    fn parse(text: &str) -> Metrics {
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_owned(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }

    /// How much a counter grew since `earlier`.
    pub fn delta(&self, earlier: &Metrics, series: &str) -> f64 {
        self.get(series) - earlier.get(series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_ticks_past_a_name_with_spaces() {
        let stat = "42 (camrtc rt) S 1 42 42 0 -1 4194560 100 0 0 0 250 35 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(285));
    }

    #[test]
    fn parses_samples_and_skips_comments() {
        let metrics = Metrics::parse(
            "# TYPE camrtc_frames counter\ncamrtc_frames_total{track=\"video\"} 90\n# EOF\n",
        );
        assert_eq!(metrics.get("camrtc_frames_total{track=\"video\"}"), 90.0);
        assert_eq!(metrics.get("missing"), 0.0);
    }
}
