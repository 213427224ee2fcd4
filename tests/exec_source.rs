//! `video.source = "exec"`: H.264 that ffmpeg writes to stdout reaches a WHEP viewer untouched,
//! at the stream's own size, with the stream's real profile-level-id in the answer; when the
//! command exits it is restarted and the same viewer keeps getting pictures.

use camrtc_testkit as common;

use camrtc::config::VideoSourceKind;
use camrtc::encode::h264::sps_profile;
use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use std::process::Command;
use std::time::Duration;

/// A small x264 stream the way a camera pipeline would produce it: no B-frames, an IDR every
/// second, SPS/PPS in front of each; `-re` paces it in real time and `-t` ends it after 2 s.
fn ffmpeg(output: &str, extra: &str) -> String {
    format!(
        "ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=320x240:rate=15 {extra} \
         -c:v libx264 -profile:v baseline -tune zerolatency -bf 0 -g 15 -f h264 {output}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_decodes_a_command_stream_across_restarts() {
    init_logs();
    // What profile-level-id the stream really has, read from one frame of it.
    let one_frame = Command::new("sh")
        .arg("-c")
        .arg(ffmpeg("-", "-frames:v 1").replace(" -re", ""))
        .output()
        .expect("ffmpeg runs (scripts/install-deps.sh --test installs it)");
    assert!(one_frame.status.success(), "{}", String::from_utf8_lossy(&one_frame.stderr));
    let expected = sps_profile(&one_frame.stdout).expect("x264 writes an SPS").to_hex();
    let fallback = camrtc::encode::h264::probe_profile(camrtc::encode::h264::H264Settings {
        width: 640,
        height: 480,
        fps: 30,
        bitrate_kbps: 1000,
        keyframe_interval_ms: 2000,
    })
    .expect("openh264 probe");
    assert_ne!(
        expected,
        fallback.to_hex(),
        "differs from the stand-in, so the answer proves a probe"
    );

    let mut config = demo_config(640, 480);
    config.video.source = VideoSourceKind::Exec;
    config.video.command = ffmpeg("-", "-t 2");
    config.audio.source = camrtc::config::AudioSourceKind::None;
    let daemon = Daemon::start(config).await;

    let mut client = WhepClient::new().await;
    let created = client.post(&daemon.url("/whep")).await.expect("201 Created");
    let advertised = format!("profile-level-id={expected}");
    assert!(created.answer.contains(&advertised), "answer advertises {advertised}");

    // Each ffmpeg run lasts 2 s, so 6 s of watching spans at least two restarts.
    let received = client.collect(Duration::from_secs(10), Duration::from_secs(6)).await;
    let sizes: Vec<_> = received.frames.iter().map(|f| (f.width, f.height)).collect();
    assert!(sizes.iter().all(|&s| s == (320, 240)), "the stream's own size: {sizes:?}");
    // 15 fps for 6 s is 90; restarts cost a few frames each (backoff plus ffmpeg start-up).
    assert!(received.frames.len() >= 50, "{} frames in 6 s", received.frames.len());
    eprintln!(
        "first frame {:?} after POST; {} frames in 6 s across restarts",
        received.first_frame_after.expect("a frame arrived"),
        received.frames.len()
    );

    let health = daemon.health().await;
    let state = health["video"]["state"].as_str().expect("video state");
    assert!(["running", "retrying"].contains(&state), "{health}");
    client.close().await;
    daemon.stop().await;
}
