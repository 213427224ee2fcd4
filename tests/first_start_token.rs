//! The packaged default: token auth with no token configured. The first start generates a token
//! and logs the viewer URL carrying it; an outside probe without it gets 401 from every media
//! and session endpoint, and with the token from that log line the stream plays.

use camrtc_testkit as common;

use common::process::start_daemon_with;
use common::whep_client::{WhepClient, delete_with_token};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_without_the_logged_token_get_401_and_the_token_plays() {
    let dir = std::env::temp_dir().join(format!("camrtc-first-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let (log, token_file) = (dir.join("daemon.log"), dir.join("state/token"));
    let daemon = start_daemon_with(
        "",
        &format!("mode = \"token\"\ntoken_file = {token_file:?}"),
        Stdio::from(std::fs::File::create(&log).expect("log file")),
    )
    .await;
    let base = daemon.base.clone();

    let started = Instant::now();
    let token = loop {
        let text = std::fs::read_to_string(&log).expect("log");
        if let Some((_, rest)) = text.split_once(&format!("open {base}/#token=")) {
            break rest.chars().take_while(char::is_ascii_hexdigit).collect::<String>();
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no viewer URL logged: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(token.len(), 64, "a 256-bit token");
    assert_eq!(std::fs::read_to_string(&token_file).expect("stored").trim(), token);

    let client = reqwest::Client::new();
    let probes = [
        client.get(format!("{base}/healthz")),
        client.post(format!("{base}/whep")).header("Content-Type", "application/sdp").body("v=0"),
        client
            .patch(format!("{base}/whep/0123456789abcdef0123456789abcdef"))
            .header("Content-Type", "application/trickle-ice-sdpfrag")
            .body("a=ice-ufrag:x\r\n"),
        client.delete(format!("{base}/whep/0123456789abcdef0123456789abcdef")),
    ];
    for probe in probes {
        let response = probe.send().await.expect("answers");
        let (status, url) = (response.status().as_u16(), response.url().clone());
        let challenge = response.headers().get("www-authenticate").cloned();
        assert_eq!(status, 401, "{url}");
        assert!(challenge.is_some(), "{url}: a 401 names the scheme");
    }

    let mut viewer = WhepClient::new().await;
    let created = viewer.post_with_token(&format!("{base}/whep"), Some(&token)).await.expect("201");
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(300)).await;
    assert_eq!((received.frames[0].width, received.frames[0].height), (320, 240));
    let resource = format!("{base}{}", created.location);
    assert_eq!(delete_with_token(&resource, Some(&token)).await, 200);
    viewer.close().await;
    drop(daemon);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
