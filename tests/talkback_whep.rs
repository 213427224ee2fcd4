//! Talkback end to end with no sound card: two in-process WHEP viewers offer their microphones
//! (sendrecv audio). The first takes the floor and its 600 Hz tone lands in the raw file behind
//! an ALSA `file` playback PCM at that frequency; the second is refused the floor (409) and its
//! 400 Hz tone, sent at the same time, is not played but counted as dropped. Once the first lets
//! go, the second may talk. A viewer that offered no microphone may not take the floor (400).
//! Also prints mouth-to-speaker latency (docs/PERFORMANCE.md).

use camrtc_testkit as common;

use common::alsa::{
    played_samples as samples, runtime, use_file_speaker, zero_crossing_hz as tone_hz,
};
use common::whep_client::{Event, WhepClient};
use common::{Daemon, demo_config, init_logs};
use std::path::Path;
use std::time::{Duration, Instant};
use webrtc::peer_connection::RTCPeerConnectionState;

fn samples_len(file: &Path) -> usize {
    std::fs::metadata(file).map_or(0, |m| m.len() as usize / 2)
}

/// A talking viewer whose connection is up.
async fn connected_talker(daemon: &Daemon) -> (WhepClient, String) {
    let mut client = WhepClient::talking().await;
    let created = client.post(&daemon.url("/whep")).await.expect("session created");
    assert!(
        created.answer.contains("a=sendrecv"),
        "talkback answers the microphone sendrecv:\n{}",
        created.answer
    );
    loop {
        if let Event::State(RTCPeerConnectionState::Connected) =
            client.next_event(Duration::from_secs(10)).await
        {
            break;
        }
    }
    (client, daemon.url(&created.location))
}

async fn talk(session: &str, method: reqwest::Method) -> (u16, String) {
    let response = reqwest::Client::new()
        .request(method, format!("{session}/talk"))
        .send()
        .await
        .expect("daemon answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn status(daemon: &Daemon) -> serde_json::Value {
    reqwest::get(daemon.url("/api/status")).await.expect("status").json().await.expect("JSON")
}

/// Waits until the speaker file stops growing for `quiet`, returns its samples.
async fn settled(file: &Path, quiet: Duration) -> Vec<i16> {
    let mut last = usize::MAX;
    loop {
        let now = samples(file);
        if now.len() == last {
            return now;
        }
        last = now.len();
        tokio::time::sleep(quiet).await;
    }
}

#[test]
fn the_floor_holders_tone_is_played_and_the_others_is_not() {
    let dir = std::env::temp_dir().join(format!("camrtc-talkback-whep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("speaker.raw");
    use_file_speaker(&dir, &file);
    runtime().block_on(run(&file));
    let _ = std::fs::remove_dir_all(&dir);
}

async fn run(file: &Path) {
    init_logs();
    let mut config = demo_config(320, 240);
    config.talkback.enabled = true;
    config.talkback.device = "camrtc_speaker".to_owned();
    let daemon = Daemon::start(config).await;
    assert_eq!(status(&daemon).await["talkback"]["enabled"], true);

    let (mut first, first_session) = connected_talker(&daemon).await;
    let (mut second, second_session) = connected_talker(&daemon).await;

    let (code, body) = talk(&first_session, reqwest::Method::POST).await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = talk(&second_session, reqwest::Method::POST).await;
    assert_eq!(code, 409, "the second viewer is refused: {body}");
    assert!(body.contains("someone else is talking"), "{body}");
    let listener = WhepClient::new().await;
    let created = listener.post(&daemon.url("/whep")).await.expect("session created");
    let (code, body) = talk(&daemon.url(&created.location), reqwest::Method::POST).await;
    assert_eq!(code, 400, "a viewer without a microphone may not take the floor: {body}");
    listener.close().await;
    let talking = status(&daemon).await;
    assert_eq!(talking["talkback"]["talking"], true, "{talking}");

    // Both speak at once for a second; only the holder is heard.
    let mut first_mic = first.talk.take().expect("talking client");
    let mut second_mic = second.talk.take().expect("talking client");
    tokio::join!(first_mic.send_tone(600.0, 0.25, 50), second_mic.send_tone(400.0, 0.25, 50));
    let played = settled(file, Duration::from_millis(300)).await;
    // The file plugin writes what leaves its buffer: the last buffer's worth of samples (10
    // periods of 20 ms) reaches the file only when more follows or the device closes.
    let talkback = status(&daemon).await["talkback"].clone();
    let handed = talkback["played_packets"].as_u64().expect("count") as usize * 960;
    let lag = handed - played.len();
    eprintln!("{talkback}; {} samples in the file, {lag} still in the device buffer", played.len());
    assert_eq!(handed, 50 * 960, "every packet of the holder went to the speaker");
    assert!(played.len() >= 35 * 960, "{} samples played", played.len());
    // The decoder's first 100 ms are left out of the measurement.
    let hz = tone_hz(&played[4800..]);
    assert!((hz - 600.0).abs() < 5.0, "the speaker played {hz:.1} Hz, expected the holder's 600");
    let dropped = status(&daemon).await["talkback"]["dropped_packets"].as_u64().expect("count");
    assert!(dropped >= 45, "the other viewer's packets were dropped and counted: {dropped}");

    // The holder lets go; the other viewer's sound still does not play until it takes the floor.
    let (code, body) = talk(&first_session, reqwest::Method::DELETE).await;
    assert_eq!((code, body.trim()), (200, r#"{"held":true}"#));
    let before = played.len();
    second_mic.send_tone(400.0, 0.25, 10).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(samples(file).len(), before, "nothing plays without the floor");
    let (code, body) = talk(&second_session, reqwest::Method::POST).await;
    assert_eq!(code, 200, "free again: {body}");
    second_mic.send_tone(400.0, 0.25, 30).await;
    let played = settled(file, Duration::from_millis(300)).await;
    // The first phase's last buffer comes first.
    let hz = tone_hz(&played[before + lag + 4800..]);
    assert!((hz - 400.0).abs() < 5.0, "the new holder is heard: {hz:.1} Hz");

    // Mouth to speaker: the holder sends 500 ms of silence, then a tone from a known instant;
    // the tone's first loud sample reaches the file `lag` samples after the player wrote it to
    // the device, so that much later audio is taken off what the file shows.
    let mut latencies = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let (onset_tx, onset) = tokio::sync::oneshot::channel();
        let speaker = file.to_path_buf();
        let sender = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            let mut onset_tx = Some(onset_tx);
            for i in 0..40 {
                tick.tick().await;
                if i == 25 {
                    let _ = onset_tx
                        .take()
                        .expect("once")
                        .send((Instant::now(), samples_len(&speaker)));
                }
                second_mic.send_packet(600.0, if i < 25 { 0.0 } else { 0.25 }).await;
            }
            second_mic
        });
        let (sent, start) = onset.await.expect("onset");
        let arrived = loop {
            let now = samples(file);
            if now.get(start..).is_some_and(|new| new.iter().any(|s| s.unsigned_abs() > 2000)) {
                break sent.elapsed();
            }
            assert!(sent.elapsed() < Duration::from_secs(2), "the tone never played");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push((arrived.as_secs_f64() - lag as f64 / 48_000.0) * 1000.0);
        second_mic = sender.await.expect("tone sent");
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "client send to ALSA write: min {:.1} ms, median {:.1} ms, max {:.1} ms over {} bursts",
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    );

    // A session that ends lets go of the floor.
    second.close().await;
    let mut freed = false;
    for _ in 0..100 {
        if status(&daemon).await["talkback"]["talking"] == false {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "the floor was released when its holder's session ended");
    first.close().await;
    daemon.stop().await;
}
