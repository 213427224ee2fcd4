//! `http.tls = "self-signed"`: the first start generates a certificate valid for localhost and
//! the loopback addresses, keeps it for later starts, and serves the API over HTTPS; a plain
//! HTTP request to the port is redirected to https://.

use camrtc_testkit as common;

use camrtc::config::TlsMode;
use common::tls::{get, trusting};
use common::{Daemon, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_signed_certificate_is_made_once_and_served() {
    init_logs();
    let dir = std::env::temp_dir().join(format!("camrtc-https-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (cert, key) = (dir.join("tls/cert.pem"), dir.join("tls/key.pem"));
    let mut config = demo_config(320, 240);
    config.http.tls = TlsMode::SelfSigned;
    config.http.tls_cert = cert.to_string_lossy().into_owned();
    config.http.tls_key = key.to_string_lossy().into_owned();

    let daemon = Daemon::start(config.clone()).await;
    let first = wait_for_https(&daemon, &cert).await;
    assert_eq!(first.status, 200, "{}", first.head);
    assert!(first.body.contains("\"status\""), "healthz JSON over HTTPS: {}", first.body);
    // The certificate also verifies for the loopback address itself (an IP SAN).
    let by_ip = get(trusting(&[&cert]), daemon.address, "127.0.0.1", "/", None).await;
    assert_eq!(by_ip.expect("verifies for 127.0.0.1").status, 200);

    // Plain HTTP to the HTTPS port: a redirect a person's browser follows.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(daemon.url("/healthz?x=1"))
        .send()
        .await
        .expect("answers in plain HTTP");
    assert_eq!(plain.status().as_u16(), 307);
    let location = plain.headers().get("location").expect("Location").to_str().expect("ascii");
    assert_eq!(location, format!("https://{}/healthz?x=1", daemon.address));
    daemon.stop().await;

    // The next start keeps the same certificate: browsers that trusted it keep trusting it.
    let daemon = Daemon::start(config).await;
    let again = wait_for_https(&daemon, &cert).await;
    assert_eq!(again.fingerprint, first.fingerprint);
    daemon.stop().await;
    std::fs::remove_dir_all(&dir).expect("clean up");
}

async fn wait_for_https(daemon: &Daemon, cert: &std::path::Path) -> common::tls::HttpsResponse {
    let started = std::time::Instant::now();
    loop {
        if cert.exists()
            && let Ok(response) =
                get(trusting(&[cert]), daemon.address, "localhost", "/healthz", None).await
        {
            return response;
        }
        assert!(started.elapsed().as_secs() < 10, "no HTTPS within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
