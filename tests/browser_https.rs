//! Over HTTPS with a self-signed certificate (after the person accepts it), Chromium plays the
//! stream and the page is a secure context, the precondition for talkback's microphone. The
//! page is opened by the machine's LAN-style address, not localhost, which browsers would
//! treat as secure even over plain HTTP.

use camrtc_testkit as common;

use camrtc::config::TlsMode;
use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_over_https_in_a_secure_context() {
    init_logs();
    let dir = std::env::temp_dir().join(format!("camrtc-browser-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = demo_config(320, 240);
    config.http.tls = TlsMode::SelfSigned;
    config.http.tls_cert = dir.join("cert.pem").to_string_lossy().into_owned();
    config.http.tls_key = dir.join("key.pem").to_string_lossy().into_owned();
    let daemon = Daemon::start(config).await;
    let url = format!("https://{}/", daemon.address);
    let pages = tokio::task::spawn_blocking(move || {
        browser::view_with(&url, 1, 2, &["--accept-any-certificate"])
    })
    .await
    .expect("browser run finished");
    assert_eq!((pages[0].width, pages[0].height), (320, 240));
    assert!(pages[0].frames_decoded >= 30, "frames decoded: {}", pages[0].frames_decoded);
    assert!(pages[0].secure_context, "an HTTPS page is a secure context");
    daemon.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}
