//! The shipped systemd unit passes `systemd-analyze verify` and stays hardened: exposure at most
//! 2.0 in `systemd-analyze security`.

use std::process::Command;

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/camrtc.service");

#[test]
fn unit_verifies_and_exposure_is_at_most_2() {
    // verify checks that ExecStart exists, so point it at the binary under test.
    let dir = std::env::temp_dir().join(format!("camrtc-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let unit = std::fs::read_to_string(UNIT).expect("unit file");
    let local = unit.replace("/usr/bin/camrtc", env!("CARGO_BIN_EXE_camrtc"));
    let copy = dir.join("camrtc.service");
    std::fs::write(&copy, local).expect("write copy");

    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs (scripts/install-deps.sh --test installs systemd)");
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze runs");
    let report = String::from_utf8_lossy(&security.stdout);
    let overall = report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or("");
    eprintln!("{overall}");
    assert!(security.status.success(), "exposure above 2.0: {overall}");
    std::fs::remove_dir_all(&dir).expect("clean up");
}
