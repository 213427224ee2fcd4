//! ICE restart over WHEP PATCH (RFC 9725 §4.3.2): a fragment with new ICE credentials restarts
//! ICE on the live session; the daemon answers 200 with its own new credentials and candidates
//! and a new ETag, the media keeps flowing over the new generation, and the old ETag is stale
//! (412) from then on, for trickle and restart alike.

use camrtc_testkit as common;

use common::whep_client::{Event, WhepClient};
use common::{Daemon, demo_config, init_logs};
use std::time::{Duration, Instant};
use webrtc::peer_connection::{RTCPeerConnectionState, RTCSessionDescription};

const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

fn attribute<'a>(sdp: &'a str, name: &str) -> &'a str {
    let prefix = format!("a={name}:");
    sdp.lines()
        .find_map(|line| line.trim_end().strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no a={name} in {sdp}"))
}

/// The viewer's restart fragment: its new credentials and candidates, as RFC 8840 lays out.
fn fragment_of(offer: &str) -> String {
    let mut fragment = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n",
        attribute(offer, "ice-ufrag"),
        attribute(offer, "ice-pwd")
    );
    for line in offer.lines().filter(|line| line.starts_with("a=candidate:")) {
        fragment.push_str(line.trim_end());
        fragment.push_str("\r\n");
    }
    fragment + "a=end-of-candidates\r\n"
}

/// The previous answer with the daemon's new credentials and candidates.
fn restarted_answer(previous: &str, fragment: &str) -> String {
    let candidates: Vec<&str> =
        fragment.lines().filter(|line| line.starts_with("a=candidate:")).collect();
    let mut answer = String::new();
    for line in previous.lines().map(str::trim_end) {
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        let line = if line.starts_with("a=ice-ufrag:") {
            format!("a=ice-ufrag:{}", attribute(fragment, "ice-ufrag"))
        } else if line.starts_with("a=ice-pwd:") {
            format!("a=ice-pwd:{}", attribute(fragment, "ice-pwd"))
        } else {
            line.to_owned()
        };
        answer.push_str(&line);
        answer.push_str("\r\n");
        if line == "a=mid:0" {
            candidates.iter().for_each(|c| answer.push_str(&format!("{c}\r\n")));
        }
    }
    answer
}

async fn patch(url: &str, if_match: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .patch(url)
        .header("Content-Type", SDPFRAG)
        .header("If-Match", if_match)
        .body(body)
        .send()
        .await
        .expect("daemon answers")
}

async fn frames_within(client: &mut WhepClient, wanted: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut frames = 0;
    while frames < wanted && Instant::now() < deadline {
        match client.next_event(limit).await {
            Event::Video(_) => frames += 1,
            Event::State(RTCPeerConnectionState::Failed) => panic!("the connection failed"),
            _ => {}
        }
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_with_new_credentials_restarts_ice_on_the_live_session() {
    init_logs();
    let daemon = Daemon::start(demo_config(320, 240)).await;
    let mut client = WhepClient::new().await;
    let created = client.post(&daemon.url("/whep")).await.expect("201");
    let resource = daemon.url(&created.location);
    let first_etag = created.etag.clone().expect("ETag");
    assert_eq!(frames_within(&mut client, 5, Duration::from_secs(5)).await, 5);

    let offer = client.ice_restart_offer().await;
    assert_ne!(attribute(&offer, "ice-ufrag"), attribute(&client.offer, "ice-ufrag"));
    let started = Instant::now();
    let response = patch(&resource, &first_etag, fragment_of(&offer)).await;
    let took = started.elapsed();
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
    };
    assert_eq!(header("content-type"), SDPFRAG);
    let second_etag = header("etag");
    assert!(!second_etag.is_empty() && second_etag != first_etag, "new ETag: {second_etag}");
    let fragment = response.text().await.expect("body");
    assert_ne!(attribute(&fragment, "ice-ufrag"), attribute(&created.answer, "ice-ufrag"));
    assert!(fragment.contains("a=candidate:"), "the daemon's new candidates: {fragment}");
    println!("ICE restart PATCH answered in {took:?}:\n{fragment}");

    let answer = restarted_answer(&created.answer, &fragment);
    let answer = RTCSessionDescription::answer(answer).expect("answer parses");
    client.pc.set_remote_description(answer).await.expect("restarted answer applies");
    // The old generation's checks fail with the new credentials: frames after this point come
    // over the restarted one.
    let started = Instant::now();
    assert_eq!(frames_within(&mut client, 30, Duration::from_secs(5)).await, 30);
    println!("30 frames after the restart in {:?}", started.elapsed());

    // The first ETag is stale now, for trickle and for restart.
    let trickle =
        format!("a=ice-ufrag:{}\r\na=end-of-candidates\r\n", attribute(&offer, "ice-ufrag"));
    assert_eq!(patch(&resource, &first_etag, trickle.clone()).await.status().as_u16(), 412);
    assert_eq!(patch(&resource, &first_etag, fragment_of(&offer)).await.status().as_u16(), 412);
    assert_eq!(patch(&resource, &second_etag, trickle).await.status().as_u16(), 204);
    assert_eq!(daemon.health().await["sessions"], 1);
    client.close().await;
    daemon.stop().await;
}
