//! `http.tls = "files"`: SIGHUP makes the running daemon serve a replaced certificate to new
//! connections, and a broken replacement is refused with a logged error while the previous
//! certificate stays in service.

use camrtc_testkit as common;

use common::process::{NO_AUTH, start_daemon_with};
use common::tls::{get, trusting};
use rcgen::{CertificateParams, KeyPair};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A new self-signed certificate for localhost, written over `cert` and `key`.
fn write_pair(cert: &Path, key: &Path) {
    let key_pair = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let certificate = params.self_signed(&key_pair).expect("certificate");
    // Replace atomically, as certificate renewal tools do.
    std::fs::write(key.with_extension("tmp"), key_pair.serialize_pem()).expect("write key");
    std::fs::write(cert.with_extension("tmp"), certificate.pem()).expect("write cert");
    std::fs::rename(key.with_extension("tmp"), key).expect("rename key");
    std::fs::rename(cert.with_extension("tmp"), cert).expect("rename cert");
}

fn hangup(pid: u32) {
    let status = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status();
    assert!(status.expect("kill runs").success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_and_keeps_it_when_the_new_one_is_broken() {
    let dir = std::env::temp_dir().join(format!("camrtc-tls-reload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let (first_copy, second_copy) = (dir.join("first.pem"), dir.join("second.pem"));
    write_pair(&cert, &key);
    std::fs::copy(&cert, &first_copy).expect("copy");
    let log = dir.join("daemon.log");
    let mut daemon = start_daemon_with(
        &format!("tls = \"files\"\ntls_cert = {cert:?}\ntls_key = {key:?}\n"),
        NO_AUTH,
        Stdio::from(std::fs::File::create(&log).expect("log file")),
    )
    .await;
    let address = daemon.base.trim_start_matches("http://").parse().expect("address");
    let trust = trusting(&[&first_copy]);
    let first = get(trust, address, "localhost", "/healthz", None).await.expect("HTTPS");
    assert_eq!(first.status, 200);

    write_pair(&cert, &key);
    std::fs::copy(&cert, &second_copy).expect("copy");
    hangup(daemon.child.id());
    let trust = trusting(&[&first_copy, &second_copy]);
    let started = Instant::now();
    let second = loop {
        let response = get(trust.clone(), address, "localhost", "/healthz", None).await;
        let response = response.expect("still serving during the reload");
        if response.fingerprint != first.fingerprint {
            break response;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "new certificate not served in 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(second.status, 200);

    // A half-written renewal: the key file is garbage. The daemon keeps the second certificate.
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\ngarbage\n").expect("write");
    hangup(daemon.child.id());
    let started = Instant::now();
    while !std::fs::read_to_string(&log).expect("log").contains("reload failed") {
        assert!(started.elapsed() < Duration::from_secs(5), "no reload error logged in 5 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let third = get(trust, address, "localhost", "/healthz", None).await.expect("HTTPS");
    assert_eq!(third.fingerprint, second.fingerprint, "the previous certificate stays");
    assert!(daemon.child.try_wait().expect("status").is_none(), "the daemon is still running");
    let log = std::fs::read_to_string(&log).expect("log");
    assert!(log.contains("http.tls_key"), "the error names the key: {log}");
    drop(daemon);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
