//! With talkback off (the default), a viewer offering its microphone (sendrecv audio, as the page
//! does in a secure context) is answered sendonly and still gets its stream; asking for the floor
//! is 404 with the reason, and /api/status says talkback is disabled.

use camrtc_testkit as common;

use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_microphone_offer_is_declined_when_talkback_is_off() {
    init_logs();
    let daemon = Daemon::start(demo_config(320, 240)).await;
    let mut client = WhepClient::talking().await;
    assert!(client.offer.contains("a=sendrecv"), "the client offers its microphone");
    let created = client.post(&daemon.url("/whep")).await.expect("session created");
    let audio = &created.answer[created.answer.find("m=audio").expect("audio answered")..];
    let audio = audio.split("\nm=").next().expect("section");
    assert!(audio.contains("a=sendonly"), "audio answered sendonly:\n{audio}");
    assert!(!created.answer.contains("a=sendrecv"), "{}", created.answer);

    let received = client.collect(Duration::from_secs(10), Duration::from_secs(1)).await;
    assert!(!received.frames.is_empty(), "the viewer still gets pictures");

    let response = reqwest::Client::new()
        .post(daemon.url(&format!("{}/talk", created.location)))
        .send()
        .await
        .expect("daemon answers");
    assert_eq!(response.status().as_u16(), 404);
    let reason = response.text().await.unwrap_or_default();
    assert!(reason.contains("talkback.enabled = false"), "{reason}");
    let status: serde_json::Value =
        reqwest::get(daemon.url("/api/status")).await.expect("status").json().await.expect("JSON");
    assert_eq!(status["talkback"], serde_json::json!({ "enabled": false }));
    client.close().await;
    daemon.stop().await;
}
