//! Sessions end without a DELETE too: when the viewer closes its connection, and when it never
//! connects at all. Either way every trace of it goes, and capture stops once nobody watches.

use camrtc_testkit as common;

use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use std::time::{Duration, Instant};

/// Polls /healthz until `done` holds, failing after `limit`.
async fn wait_for(daemon: &Daemon, limit: Duration, done: impl Fn(&serde_json::Value) -> bool) {
    let start = Instant::now();
    loop {
        let status = daemon.health().await;
        if done(&status) {
            return;
        }
        assert!(start.elapsed() < limit, "still {status} after {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_and_never_connected_viewers_are_cleaned_up() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.webrtc.connect_timeout_ms = 1000;
    config.pipeline.idle_stop_ms = 200;
    let daemon = Daemon::start(config).await;

    // A viewer that streams, then closes its peer connection without telling WHEP.
    let mut viewer = WhepClient::new().await;
    viewer.post(&daemon.url("/whep")).await.expect("201");
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(300)).await;
    assert!(!received.frames.is_empty());
    viewer.close().await;
    // Well before ICE would time out (12 s): the viewer's DTLS close_notify ends the session.
    wait_for(&daemon, Duration::from_secs(3), |s| s["sessions"] == 0 && s["viewers"] == 0).await;

    // A viewer that posts an offer and then vanishes before ICE even starts.
    let ghost = WhepClient::new().await;
    ghost.post(&daemon.url("/whep")).await.expect("201");
    ghost.close().await;
    wait_for(&daemon, Duration::from_secs(5), |s| s["sessions"] == 0 && s["viewers"] == 0).await;
    wait_for(&daemon, Duration::from_secs(5), |s| s["pipeline_running"] == false).await;
    daemon.stop().await;
}
