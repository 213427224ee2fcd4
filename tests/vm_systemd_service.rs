//! In a VM whose PID 1 is the host's real systemd (tests/vm/run.sh --systemd), the life of the
//! Debian package: `dpkg -i` of a .deb made by cargo-deb from this build creates the `camrtc`
//! user, enables the unit and starts it (`Type=notify`: only after READY=1) with the shipped
//! config, which generates the access token; reconfigured for vivid's /dev/video0 and the
//! snd-aloop card, the daemon itself captures both inside the hardened sandbox; a capture thread
//! wedged on purpose (CAMRTC_TEST_WEDGE_VIDEO_AFTER_FRAMES) stops the watchdog pings, so systemd
//! kills and restarts the service; and `dpkg --purge` leaves no unit, user, config or state.

use camrtc_testkit as common;

use common::vm;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TEST: &str = "vm_systemd_package_install_hardening_watchdog_and_purge";
const DEB_ENV: &str = "CAMRTC_TEST_DEB";

#[test]
fn vm_systemd_package_install_hardening_watchdog_and_purge() {
    if vm::in_guest() {
        return guest();
    }
    let deb = package_this_build();
    let deb = deb.to_str().expect("target paths are UTF-8");
    let run = vm::run_self_under_systemd(TEST, Duration::from_secs(600), &[(DEB_ENV, deb)]);
    run.assert_success();
    for line in run.reports("SYSTEMD ") {
        eprintln!("{line}");
    }
}

/// The .deb of the binary under test, made by the same cargo-deb configuration as the release
/// packages (cross/build-deb.sh), only from this profile's binary.
fn package_this_build() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_camrtc"));
    let profile_dir = binary.parent().expect("the binary sits in a profile directory");
    let target_dir = profile_dir.parent().expect("the profile directory sits in a target dir");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected binary path {}", binary.display()),
    };
    let output_dir = profile_dir.join("vm-deb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("cross/cargo-deb.sh");
    let started = Instant::now();
    let output = Command::new(&script)
        .args(["--no-build", "--strip", "--profile", profile, "--output"])
        .arg(&output_dir)
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cargo-deb failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deb = PathBuf::from(stdout.lines().last().expect("cargo-deb prints the package path"));
    assert!(deb.is_file(), "no package at {}:\n{stdout}", deb.display());
    eprintln!("packaged {} in {:?}", deb.display(), started.elapsed());
    deb
}

fn sh(command: &str) -> String {
    let output = Command::new("sh").args(["-c", command]).output().expect("sh runs");
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        output.status.success(),
        "{command}: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    text
}

fn show(property: &str) -> String {
    sh(&format!("systemctl show camrtc -p {property} --value"))
}

fn journal() -> String {
    sh("journalctl -u camrtc -o cat --no-pager")
}

/// The test drop-in: a short watchdog and the wedge (after 150 frames: 10 s at 15 fps).
const DROP_IN: &str = "[Service]
WatchdogSec=5
Environment=CAMRTC_TEST_WEDGE_VIDEO_AFTER_FRAMES=150
";

/// The real devices, always on (so the wedge happens without a viewer), no auth on loopback.
const DEVICE_CONFIG: &str = "[http]\nlisten = \"127.0.0.1:8080\"\n\
    [video]\nsource = \"v4l2\"\ndevice = \"/dev/video0\"\nwidth = 320\nheight = 240\nfps = 15\n\
    [audio]\nsource = \"alsa\"\ndevice = \"hw:Loopback,1,0\"\n\
    [auth]\nmode = \"none\"\n[pipeline]\non_demand = false\n";

fn guest() {
    let deb = std::env::var(DEB_ENV).expect("the host passes the package path");
    sh("udevadm settle");
    println!("SYSTEMD /dev/video0: {}", sh("stat -c '%A %U:%G' /dev/video0"));

    // The host root this VM boots is a container image whose policy-rc.d forbids starting
    // services from package scripts (exit 101); a real Raspberry Pi OS has none.
    sh("rm -f /usr/sbin/policy-rc.d");
    // Installing enables and starts the service; Type=notify makes the start wait for READY=1.
    let started = Instant::now();
    let installed = sh(&format!("dpkg -i {deb} 2>&1"));
    println!("SYSTEMD dpkg -i took {:?}", started.elapsed());
    assert_eq!(sh("systemctl is-enabled camrtc"), "enabled", "{installed}");
    assert_eq!(show("ActiveState"), "active", "{installed}\n{}", journal());
    assert_eq!(show("Type"), "notify");
    let groups = sh("id -nG camrtc");
    assert!(groups.contains("video") && groups.contains("audio"), "camrtc's groups: {groups}");
    let pid = show("MainPID");
    assert_eq!(sh(&format!("stat -c %U /proc/{pid}")), "camrtc", "the daemon's user");
    assert_eq!(sh("stat -c '%a %U' /var/lib/camrtc/token"), "600 camrtc", "the generated token");
    assert_eq!(sh("stat -c '%a %U:%G' /etc/camrtc/camrtc.toml"), "640 root:camrtc");
    let token = sh("cat /var/lib/camrtc/token");
    let url_line = journal().lines().find(|l| l.contains("#token=")).map(str::to_owned);
    let url_line = url_line.unwrap_or_else(|| panic!("no viewer URL logged:\n{}", journal()));
    assert!(url_line.contains(&format!("#token={token}")), "logged URL: {url_line}");
    println!("SYSTEMD installed: {}", show("StatusText"));
    // The shipped config asks for a token: none, no entry; the generated one opens the API.
    sh("test \"$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz)\" = 401");
    sh(&format!("curl -sf -H 'Authorization: Bearer {token}' http://127.0.0.1:8080/healthz"));

    // The daemon itself on the real devices, inside the unit's sandbox (DeviceAllow, groups,
    // filters). systemctl restart waits for READY=1 again.
    std::fs::write("/etc/camrtc/camrtc.toml", DEVICE_CONFIG).expect("config");
    std::fs::create_dir_all("/etc/systemd/system/camrtc.service.d").expect("drop-in dir");
    std::fs::write("/etc/systemd/system/camrtc.service.d/test.conf", DROP_IN).expect("drop-in");
    sh("systemctl daemon-reload && systemctl restart camrtc");
    let capturing = Instant::now();
    let health = loop {
        let health = sh("curl -s http://127.0.0.1:8080/healthz || true");
        let value: serde_json::Value = serde_json::from_str(&health).unwrap_or_default();
        let frames = |kind: &str| value[kind].as_u64().unwrap_or(0);
        if frames("video_frames") >= 15 && frames("audio_frames") >= 50 {
            break health;
        }
        assert!(
            capturing.elapsed() < Duration::from_secs(60),
            "no capture from vivid and snd-aloop: {health}\n{}",
            journal()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    println!("SYSTEMD capturing from /dev/video0 and hw:Loopback,1,0 as camrtc: {health}");

    // 150 frames at 15 fps, the 5 s stall limit, then WatchdogSec=5: a restart within ~25 s;
    // emulation is slow, so allow much more.
    let wedged = Instant::now();
    while show("NRestarts") == "0" {
        assert!(wedged.elapsed() < Duration::from_secs(180), "no watchdog restart:\n{}", journal());
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("SYSTEMD restarted {:?} after capture began", wedged.elapsed());
    let journal = journal();
    for expected in [
        "capture is stuck: no video frame",
        "Watchdog timeout (limit 5s)!",
        "Failed with result 'watchdog'",
        "Scheduled restart job, restart counter is at 1",
    ] {
        let line = journal.lines().find(|l| l.contains(expected));
        println!(
            "SYSTEMD journal: {}",
            line.unwrap_or_else(|| panic!("no '{expected}' in:\n{journal}"))
        );
    }

    // Purge: the test's drop-in is the admin's own file, so it goes first.
    std::fs::remove_dir_all("/etc/systemd/system/camrtc.service.d").expect("drop-in removed");
    let purged = sh("dpkg --purge camrtc 2>&1");
    assert_eq!(show("LoadState"), "not-found", "{purged}");
    sh("! getent passwd camrtc && ! getent group camrtc");
    sh("test ! -e /etc/camrtc && test ! -e /var/lib/camrtc && test ! -e /usr/bin/camrtc");
    println!("SYSTEMD purged: no unit, user, group, /etc/camrtc, /var/lib/camrtc or binary left");
}
