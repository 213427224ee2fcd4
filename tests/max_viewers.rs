//! `http.max_viewers` caps sessions: one more viewer gets 503 with Retry-After and a reason, and
//! a place freed by a leaving viewer can be taken again.

use camrtc_testkit as common;

use common::whep_client::{WhepClient, delete};
use common::{Daemon, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_beyond_the_limit_are_told_to_retry() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.http.max_viewers = 2;
    let daemon = Daemon::start(config).await;
    let whep = daemon.url("/whep");

    let first = WhepClient::new().await;
    let second = WhepClient::new().await;
    let third = WhepClient::new().await;
    let created = first.post(&whep).await.expect("first of two");
    // Refused offers must not keep the places they were briefly given.
    for _ in 0..5 {
        let (status, _) = common::whep_client::post_raw(&whep, "application/sdp", "junk").await;
        assert_eq!(status, 400);
    }
    second.post(&whep).await.expect("second of two");

    let response = reqwest::Client::new()
        .post(&whep)
        .header("Content-Type", "application/sdp")
        .body(third.offer.clone())
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("retry-after").map(|v| v.as_bytes()), Some(&b"10"[..]));
    let reason = response.text().await.expect("text");
    assert!(reason.contains("too many viewers"), "{reason}");
    assert_eq!(daemon.health().await["sessions"], 2);

    assert_eq!(delete(&daemon.url(&created.location)).await, 200);
    third.post(&whep).await.expect("a freed place can be taken");

    for client in [first, second, third] {
        client.close().await;
    }
    daemon.stop().await;
}
