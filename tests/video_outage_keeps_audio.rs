//! A camera that keeps failing does not take the microphone with it: the viewer connects and
//! hears the tone while `/healthz` reports the camera as retrying with its reason.

use camrtc_testkit as common;

use camrtc::config::VideoSourceKind;
use common::whep_client::{Event, WhepClient};
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_flows_while_the_camera_is_retrying() {
    init_logs();
    let mut config = demo_config(640, 480);
    config.video.source = VideoSourceKind::Exec;
    config.video.command = "echo 'camera not detected' >&2; exit 1".to_owned();
    let daemon = Daemon::start(config).await;

    let mut client = WhepClient::new().await;
    client.post(&daemon.url("/whep")).await.expect("201 Created");
    let mut audio = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, client.events.recv()).await {
        match event {
            Event::Audio(pcm) => audio.extend(pcm),
            Event::Video(_) => panic!("no camera, so no picture"),
            Event::State(_) | Event::VideoTrack(_) => {}
        }
    }
    assert!(audio.len() >= 48_000, "at least a second of sound, got {} samples", audio.len());

    let health = daemon.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["video"]["state"], "retrying", "{health}");
    let error = health["video"]["error"].as_str().expect("the reason is shown");
    assert!(error.contains("camera not detected"), "{error}");
    assert_eq!(health["last_pipeline_error"], serde_json::Value::Null, "the pipeline itself runs");
    client.close().await;
    daemon.stop().await;
}
