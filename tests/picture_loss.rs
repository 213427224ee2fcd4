//! A viewer's PLI (RTCP picture loss indication) reaches the hub and brings an IDR at once,
//! long before the periodic keyframe would.

use camrtc_testkit as common;

use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use std::time::{Duration, Instant};

async fn keyframes(daemon: &Daemon) -> u64 {
    daemon.health().await["keyframes"].as_u64().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picture_loss_indication_brings_a_keyframe() {
    init_logs();
    let mut config = demo_config(320, 240);
    // Periodic keyframes a minute apart: any keyframe in this test answers the PLI.
    config.video.keyframe_interval_ms = 60_000;
    let daemon = Daemon::start(config).await;

    let mut viewer = WhepClient::new().await;
    viewer.post(&daemon.url("/whep")).await.expect("201");
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(600)).await;
    let track = received.video_track.expect("the video track arrived before its frames");
    let ssrc = *track.ssrcs().await.first().expect("the track has an SSRC");

    let before = keyframes(&daemon).await;
    track
        .write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc: ssrc })])
        .await
        .expect("PLI sent");
    let sent = Instant::now();
    while keyframes(&daemon).await == before {
        assert!(sent.elapsed() < Duration::from_secs(2), "no keyframe after the PLI");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("keyframe {:?} after the PLI", sent.elapsed());
    viewer.close().await;
    daemon.stop().await;
}
