//! Viewers whose offers carry the playout-delay extension (Chromium, Safari and Firefox do) are
//! asked to play frames out at once: the answer maps the extension and the first packet of every
//! frame carries minimum 0 and `webrtc.playout_delay_max_ms`. With the key at 0 neither happens.

use camrtc_testkit as common;

use camrtc::peer::sdp::PLAYOUT_DELAY_URI;
use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

/// The id the answer's video section maps the playout-delay extension to, if it does.
fn answered_id(answer: &str) -> Option<u8> {
    let video = &answer[answer.find("m=video")?..];
    let video = &video[..video.find("\nm=").unwrap_or(video.len())];
    video.lines().find_map(|line| {
        let (id, uri) = line.trim_end().strip_prefix("a=extmap:")?.split_once(' ')?;
        (uri == PLAYOUT_DELAY_URI).then(|| id.parse().expect("a numeric extmap id"))
    })
}

/// The (min, max) playout delay, in 10 ms units, on each frame's first packet under `id`.
async fn delays_of_frames(daemon: &Daemon) -> (Option<u8>, Vec<Option<(u16, u16)>>) {
    let mut viewer = WhepClient::new().await;
    let created = viewer.post(&daemon.url("/whep")).await.expect("201");
    let id = answered_id(&created.answer);
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(500)).await;
    viewer.close().await;
    let delays = received
        .frames
        .iter()
        .map(|frame| {
            let (_, value) = frame.first_packet_extensions.iter().find(|(e, _)| Some(*e) == id)?;
            let value: [u8; 3] = value.as_ref().try_into().expect("the extension is 3 bytes");
            let packed = u32::from_be_bytes([0, value[0], value[1], value[2]]);
            Some(((packed >> 12) as u16, (packed & 0xfff) as u16))
        })
        .collect();
    (id, delays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_asks_for_the_configured_playout_delay_and_none_when_off() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.webrtc.playout_delay_max_ms = 250;
    let daemon = Daemon::start(config).await;
    let (id, delays) = delays_of_frames(&daemon).await;
    assert!(id.is_some(), "the answer maps the extension the offer carried");
    assert!(delays.len() >= 5, "{} frames", delays.len());
    assert!(delays.iter().all(|d| *d == Some((0, 25))), "{delays:?}");
    daemon.stop().await;

    let mut config = demo_config(320, 240);
    config.webrtc.playout_delay_max_ms = 0;
    let daemon = Daemon::start(config).await;
    let (id, delays) = delays_of_frames(&daemon).await;
    assert_eq!(id, None, "the answer leaves the extension out");
    assert!(delays.len() >= 5, "{} frames", delays.len());
    daemon.stop().await;
}
