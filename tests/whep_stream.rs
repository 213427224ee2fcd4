//! One external WHEP viewer, at a size, rate and tone other than the defaults, receives the right
//! picture, a readable timecode and the right tone; DELETE ends the session.

use camrtc_testkit as common;

use common::whep_client::{WhepClient, delete};
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_receives_the_configured_picture_timecode_and_tone() {
    init_logs();
    let mut config = demo_config(480, 270);
    config.video.fps = 15;
    config.audio.test_tone_hz = 1000;
    let daemon = Daemon::start(config).await;

    let mut client = WhepClient::new().await;
    let created = client.post(&daemon.url("/whep")).await.expect("201 Created");
    assert!(created.location.starts_with("/whep/"), "Location {}", created.location);
    assert!(created.location.len() >= "/whep/".len() + 32, "resource id is unguessable");
    assert!(created.etag.is_some(), "ETag present");
    let produced = camrtc::encode::h264::probe_profile(camrtc::encode::h264::H264Settings {
        width: 480,
        height: 270,
        fps: 15,
        bitrate_kbps: 1000,
        keyframe_interval_ms: 2000,
    })
    .expect("encoder probe");
    let advertised = format!("profile-level-id={}", produced.to_hex());
    assert!(created.answer.contains(&advertised), "answer advertises {advertised}");

    let received = client.collect(Duration::from_secs(10), Duration::from_secs(3)).await;
    let first = &received.frames[0];
    assert_eq!((first.width, first.height), (480, 270));
    let readable: Vec<_> = received.frames.iter().filter_map(|f| f.latency_ms()).collect();
    assert!(
        readable.len() * 10 >= received.frames.len() * 9,
        "timecode readable in most frames: {} of {}",
        readable.len(),
        received.frames.len()
    );
    assert!(readable.iter().all(|&ms| ms < 2000), "timecodes are recent: {readable:?}");
    // 15 fps for 3 s; generous bounds, this only proves the stream keeps flowing at about that rate.
    assert!((30..=60).contains(&received.frames.len()), "{} frames", received.frames.len());

    let tone = received.tone_hz();
    let mut sorted = readable.clone();
    sorted.sort_unstable();
    eprintln!(
        "first frame {:?} after POST; {} frames; capture-to-decode p50 {} ms; tone {tone:.1} Hz",
        received.first_frame_after.expect("a frame arrived"),
        received.frames.len(),
        sorted[sorted.len() / 2]
    );
    assert!((tone - 1000.0).abs() < 5.0, "tone measured at {tone:.1} Hz");
    let peak = received.audio_peak();
    assert!((6000..=11000).contains(&peak), "about -12 dBFS, peak {peak}");

    let resource = daemon.url(&created.location);
    assert_eq!(delete(&resource).await, 200);
    assert_eq!(delete(&resource).await, 404, "a deleted session is gone");
    client.close().await;
    daemon.stop().await;
}
