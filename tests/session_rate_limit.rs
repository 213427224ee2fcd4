//! One client creating sessions in a loop is slowed to `http.max_sessions_per_minute`: the
//! excess gets 429 with Retry-After, whatever it posts.

use camrtc_testkit as common;

use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_creating_sessions_too_fast_gets_429() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.http.max_sessions_per_minute = 3;
    let daemon = Daemon::start(config).await;
    let whep = daemon.url("/whep");

    // Junk counts too: the limit protects the work of parsing and building peer connections.
    for _ in 0..2 {
        let (status, _) = common::whep_client::post_raw(&whep, "application/sdp", "junk").await;
        assert_eq!(status, 400);
    }
    let viewer = WhepClient::new().await;
    viewer.post(&whep).await.expect("the third session of the minute is fine");

    let response = reqwest::Client::new()
        .post(&whep)
        .header("Content-Type", "application/sdp")
        .body(viewer.offer.clone())
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=20).contains(&retry_after), "retry after {retry_after} s");
    assert!(response.text().await.expect("text").contains("too many new sessions"));
    assert_eq!(daemon.health().await["sessions"], 1, "the live session is untouched");

    viewer.close().await;
    daemon.stop().await;
}
