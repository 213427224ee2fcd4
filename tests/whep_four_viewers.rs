//! Four viewers at once share one encoder: each gets the full picture rate, and one leaving does
//! not disturb the others.

use camrtc_testkit as common;

use common::whep_client::{WhepClient, delete};
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_viewers_stream_at_once_and_leave_independently() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.video.fps = 20;
    let daemon = Daemon::start(config).await;

    let mut viewers = Vec::new();
    for _ in 0..4 {
        let client = WhepClient::new().await;
        let created = client.post(&daemon.url("/whep")).await.expect("201");
        viewers.push((client, created.location));
    }
    let health = daemon.health().await;
    assert_eq!(health["sessions"], 4);

    let mut counts = Vec::new();
    for (client, _) in &mut viewers {
        let received = client.collect(Duration::from_secs(10), Duration::from_secs(2)).await;
        assert_eq!((received.frames[0].width, received.frames[0].height), (320, 240));
        counts.push(received.frames.len());
    }
    // 20 fps over 2 s after the first frame: every viewer gets (nearly) all of them.
    assert!(counts.iter().all(|&n| n >= 34), "frames per viewer: {counts:?}");

    let (leaving, location) = viewers.remove(0);
    assert_eq!(delete(&daemon.url(&location)).await, 200);
    leaving.close().await;
    for (client, _) in &mut viewers {
        let received = client.collect(Duration::from_secs(5), Duration::from_secs(1)).await;
        assert!(received.frames.len() >= 15, "still streaming: {}", received.frames.len());
    }
    let health = daemon.health().await;
    assert_eq!(health["sessions"], 3);
    assert_eq!(health["pipeline_running"], true);
    for (client, _) in &viewers {
        client.close().await;
    }
    daemon.stop().await;
}
