//! In a VM whose PID 1 is the host's real systemd (tests/vm/run.sh --systemd): the shipped unit
//! (systemd/camrtc.service, plus a test drop-in) starts camrtc as the unprivileged `camrtc` user;
//! `systemctl start` returns only after READY=1; the hardened sandbox can still capture from
//! vivid's /dev/video0 and record from the snd-aloop card; and a capture thread wedged on
//! purpose (CAMRTC_TEST_WEDGE_VIDEO_AFTER_FRAMES) stops the watchdog pings, so systemd kills and
//! restarts the service.

mod common;

use common::vm;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn vm_systemd_readiness_hardening_and_watchdog_restart() {
    if vm::in_guest() {
        return guest();
    }
    let run = vm::run_self_under_systemd(
        "vm_systemd_readiness_hardening_and_watchdog_restart",
        Duration::from_secs(600),
    );
    run.assert_success();
    for line in run.reports("SYSTEMD ") {
        eprintln!("{line}");
    }
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

/// The test drop-in: the binary under test, a short watchdog, the wedge, and a check that runs
/// inside the daemon's own sandbox (ExecStartPost shares its user, device ACL and filters).
const DROP_IN: &str = "[Service]
ExecStart=
ExecStart=@BIN@ run --config /etc/camrtc/camrtc.toml
WatchdogSec=5
Environment=CAMRTC_TEST_WEDGE_VIDEO_AFTER_FRAMES=600
ExecStartPost=/bin/sh -c 'v4l2-ctl -d /dev/video0 --stream-mmap --stream-count=3 --stream-to=/dev/null && echo \"devicecheck: captured 3 frames from /dev/video0 as $(id -un) ($(id -Gn))\"'
ExecStartPost=/bin/sh -c 'arecord -q -D hw:Loopback,1,0 -f S16_LE -r 48000 -c 2 -d 1 /dev/null && echo \"devicecheck: recorded 1 s from hw:Loopback,1,0 as $(id -un)\"'
";

/// Always-on test source, so the wedge happens without a viewer. (Camera capture itself is
/// exercised by the ExecStartPost check above.)
const CONFIG: &str = "[http]\nlisten = \"127.0.0.1:8080\"\n[video]\nsource = \"test\"\n\
    width = 320\nheight = 240\n[audio]\nsource = \"test\"\n[pipeline]\non_demand = false\n";

fn guest() {
    // What the .deb's postinst does.
    sh("useradd --system --user-group --no-create-home --home-dir /var/lib/camrtc \
        --shell /usr/sbin/nologin --groups video,audio camrtc");
    let unit = include_str!("../systemd/camrtc.service");
    std::fs::write("/etc/systemd/system/camrtc.service", unit).expect("unit written");
    std::fs::create_dir_all("/etc/systemd/system/camrtc.service.d").expect("drop-in dir");
    let drop_in = DROP_IN.replace("@BIN@", env!("CARGO_BIN_EXE_camrtc"));
    std::fs::write("/etc/systemd/system/camrtc.service.d/test.conf", drop_in).expect("drop-in");
    std::fs::create_dir_all("/etc/camrtc").expect("config dir");
    std::fs::write("/etc/camrtc/camrtc.toml", CONFIG).expect("config");
    sh("systemctl daemon-reload && udevadm settle");
    println!("SYSTEMD /dev/video0: {}", sh("stat -c '%A %U:%G' /dev/video0"));

    // Type=notify: start returns once camrtc said READY=1 (and ExecStartPost passed).
    let started = Instant::now();
    sh("systemctl start camrtc");
    println!("SYSTEMD ready: systemctl start returned after {:?}", started.elapsed());
    assert_eq!(show("ActiveState"), "active");
    assert_eq!(show("Type"), "notify");
    let status = show("StatusText");
    println!("SYSTEMD status: {status}");
    // Under emulation the wedge (5 s of frames) may already have struck by now.
    assert!(
        status == "serving"
            || status == "0 viewers; capture running"
            || status.starts_with("unhealthy: capture is stuck"),
        "a STATUS= line from camrtc: {status}"
    );
    let pid = show("MainPID");
    let user = sh(&format!("stat -c %U /proc/{pid}"));
    assert_eq!(user, "camrtc", "the daemon runs as the camrtc user");

    let journal = sh("journalctl -u camrtc -o cat --no-pager");
    for check in
        ["devicecheck: captured 3 frames from /dev/video0 as camrtc", "devicecheck: recorded 1 s"]
    {
        let line = journal.lines().find(|l| l.starts_with(check));
        println!("SYSTEMD {}", line.unwrap_or_else(|| panic!("no '{check}' in:\n{journal}")));
    }

    // 600 frames at 30 fps, the 5 s stall limit, then WatchdogSec=5: a restart within ~30 s;
    // emulation is slow, so allow much more.
    let wedged = Instant::now();
    while show("NRestarts") == "0" {
        assert!(wedged.elapsed() < Duration::from_secs(180), "no watchdog restart:\n{journal}");
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("SYSTEMD restarted {:?} after the first start", wedged.elapsed());
    let journal = sh("journalctl -u camrtc -o cat --no-pager");
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
}
