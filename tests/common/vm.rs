//! Real-driver tests: a test boots the VM of tests/vm/run.sh and re-runs itself inside it, where
//! `in_guest()` is true and the test does its real work against vivid and snd-aloop.

use camrtc::config::{
    AudioSourceKind, Config, PixelFormatChoice, VideoEncoderKind, VideoSourceKind,
};
use std::process::Command;
use std::time::{Duration, Instant};

/// Set inside the guest (passed through by run.sh, which forwards `CAMRTC_*` variables).
const GUEST_ENV: &str = "CAMRTC_VM_GUEST";

/// True when this process runs inside the VM.
pub fn in_guest() -> bool {
    std::env::var_os(GUEST_ENV).is_some()
}

/// How one VM run went.
#[derive(Debug)]
pub struct VmRun {
    /// The guest command's exit status (124: timed out, 125: the VM failed).
    pub status: Option<i32>,
    /// Serial console output: kernel messages, the command's stdout and stderr.
    pub console: String,
    /// Guest uptime when the init script handed over to the command.
    pub booted_after: Option<Duration>,
    /// Host wall time from starting qemu to its exit.
    pub elapsed: Duration,
}

impl VmRun {
    /// Fails the test with the guest's console unless the command succeeded.
    pub fn assert_success(&self) {
        assert_eq!(self.status, Some(0), "guest failed; console:\n{}", self.console);
        eprintln!(
            "VM: booted in {:?} (guest uptime), whole run {:?}",
            self.booted_after.unwrap_or_default(),
            self.elapsed
        );
    }

    /// Lines of the console that start with `prefix`, without it.
    pub fn reports<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.console
            .lines()
            .filter_map(move |line| line.split_once(prefix).map(|(_, rest)| rest.trim_end()))
    }
}

/// Boots the VM and runs `test_name` of the current test binary in it, giving up after `limit`.
pub fn run_self(test_name: &str, limit: Duration) -> VmRun {
    run_self_with(test_name, limit, &[], &[])
}

/// Like [`run_self`], with the host's real systemd as the guest's PID 1 (run.sh --systemd): the
/// test runs as a oneshot service once the system is up, over a writable overlay of the host root.
/// `env` reaches the guest (names must start with `CAMRTC_`, which run.sh forwards).
pub fn run_self_under_systemd(test_name: &str, limit: Duration, env: &[(&str, &str)]) -> VmRun {
    run_self_with(test_name, limit, &["--systemd"], env)
}

fn run_self_with(
    test_name: &str,
    limit: Duration,
    options: &[&str],
    env: &[(&str, &str)],
) -> VmRun {
    let exe = std::env::current_exe().expect("the test binary knows its path");
    assert!(
        !exe.starts_with("/tmp") && !exe.starts_with("/run"),
        "{} is under /tmp or /run, which the VM replaces with tmpfs; use a target dir elsewhere",
        exe.display()
    );
    let script = super::repo_path("tests/vm/run.sh");
    let started = Instant::now();
    let output = Command::new(&script)
        .args(["--timeout", &limit.as_secs().to_string()])
        .args(options)
        .arg("--")
        .arg(&exe)
        .args(["--exact", test_name, "--nocapture", "--test-threads=1"])
        .env(GUEST_ENV, "1")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let elapsed = started.elapsed();
    let console = String::from_utf8_lossy(&output.stdout).replace('\r', "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let booted_after = console
        .lines()
        // The firmware's screen-clearing escapes may precede the marker on its line.
        .find_map(|line| line.split_once("CAMRTC_VM_BOOTED uptime=").map(|(_, secs)| secs))
        .and_then(|secs| secs.trim().parse::<f64>().ok())
        .map(Duration::from_secs_f64);
    VmRun {
        status: output.status.code(),
        console: format!("{console}\n--- run.sh stderr ---\n{stderr}"),
        booted_after,
        elapsed,
    }
}

/// The host side of a VM test: runs `test_name` in the VM, fails with the guest's console unless
/// it passed, and shows the lines the guest printed with a `MEASURED ` prefix.
pub fn run_self_and_report(test_name: &str, limit: Duration) {
    let run = run_self(test_name, limit);
    run.assert_success();
    for line in run.reports("MEASURED ") {
        eprintln!("{line}");
    }
}

/// vivid's /dev/video0 in `format`, at its smallest webcam size (320x180; it has no 320x240) and a
/// rate TCG encodes in real time, through openh264, video only.
pub fn vivid_config(format: PixelFormatChoice) -> Config {
    let mut config = super::demo_config(320, 180);
    config.video.source = VideoSourceKind::V4l2;
    config.video.device = "/dev/video0".to_owned();
    config.video.encoder = VideoEncoderKind::Openh264;
    config.video.format = format;
    config.video.fps = 15;
    config.video.bitrate_kbps = 300;
    config.audio.source = AudioSourceKind::None;
    config
}

/// Runs modprobe in the guest. Unloading is retried for a few seconds: a daemon just stopped may
/// still be closing the device on its capture thread, which keeps the module in use.
pub fn modprobe(args: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let output = Command::new("modprobe").args(args).output().expect("modprobe runs");
        if output.status.success() {
            return;
        }
        let removing = args.first() == Some(&"-r");
        assert!(
            removing && Instant::now() < deadline,
            "modprobe {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
