//! Bad WHEP requests get the right 4xx and a readable reason, and never disturb a live viewer.

use camrtc_testkit as common;

use common::whep_client::{WhepClient, delete, post_raw};
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

const VP8_ONLY: &str = include_str!("fixtures/offers/vp8_only.sdp");
const CHROME: &str = include_str!("fixtures/offers/chrome.sdp");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_and_unknown_sessions_are_refused_with_reasons() {
    init_logs();
    let daemon = Daemon::start(demo_config(320, 240)).await;
    let whep = daemon.url("/whep");

    // A live viewer first: everything below must leave it streaming.
    let mut viewer = WhepClient::new().await;
    let created = viewer.post(&whep).await.expect("201");
    let before = viewer.collect(Duration::from_secs(10), Duration::from_millis(200)).await;
    assert!(!before.frames.is_empty());

    let huge = "v=0\r\n".repeat(100_000);
    let half_chrome = &CHROME[..CHROME.len() / 2];
    let hundreds_of_mlines = format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n{}",
        "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n".repeat(300)
    );
    let candidate_flood = CHROME.replacen(
        "a=mid:0\r\n",
        &format!(
            "a=mid:0\r\n{}",
            (0..300)
                .map(|i| format!(
                    "a=candidate:{i} 1 udp 2122260223 192.0.2.1 {} typ host\r\n",
                    10000 + i
                ))
                .collect::<String>()
        ),
        1,
    );
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("wrong content type", "text/plain", CHROME.into(), 415, "application/sdp"),
        ("empty body", "application/sdp", vec![], 400, "empty"),
        ("garbage", "application/sdp", b"hello, camera".to_vec(), 400, "not valid SDP"),
        ("not UTF-8", "application/sdp", vec![0xff, 0xfe, 0xfd], 400, "UTF-8"),
        ("VP8 only", "application/sdp", VP8_ONLY.into(), 406, "H.264"),
        // Cut before its H.264 lines: still SDP, but nothing we can send.
        ("truncated", "application/sdp", half_chrome.into(), 406, "H.264"),
        (
            "hundreds of m-lines",
            "application/sdp",
            hundreds_of_mlines.into_bytes(),
            400,
            "300 media sections",
        ),
        (
            "hundreds of candidates",
            "application/sdp",
            candidate_flood.into_bytes(),
            400,
            "300 ICE candidates",
        ),
        ("huge", "application/sdp", huge.into_bytes(), 413, ""),
    ];
    for (name, content_type, body, status, reason) in cases {
        let (got, text) = post_raw(&whep, content_type, body).await;
        assert_eq!(got, status, "{name}: {text}");
        assert!(text.contains(reason), "{name}: reason {text:?} should mention {reason:?}");
        assert!(!text.trim().is_empty(), "{name}: every refusal says why");
    }

    let client = reqwest::Client::new();
    let unknown = daemon.url("/whep/0123456789abcdef0123456789abcdef");
    assert_eq!(delete(&unknown).await, 404);
    let patch = |url: String, content_type: &'static str, if_match: Option<&'static str>| {
        let mut request = client
            .patch(url)
            .header("Content-Type", content_type)
            .body("a=ice-ufrag:abcd\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n");
        if let Some(tag) = if_match {
            request = request.header("If-Match", tag);
        }
        async move { request.send().await.expect("daemon answers").status().as_u16() }
    };
    let resource = daemon.url(&created.location);
    assert_eq!(patch(unknown.clone(), "application/trickle-ice-sdpfrag", None).await, 404);
    assert_eq!(patch(resource.clone(), "application/sdp", None).await, 415);
    assert_eq!(
        patch(resource.clone(), "application/trickle-ice-sdpfrag", Some("\"nope\"")).await,
        412
    );

    // Discovery for WHEP clients: the POST body type, CORS for pages served elsewhere.
    let options = client
        .request(reqwest::Method::OPTIONS, &whep)
        .header("Origin", "http://example.test")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("daemon answers");
    assert!(options.status().is_success());
    let allowed =
        options.headers().get("access-control-allow-origin").map(|v| v.as_bytes().to_vec());
    assert_eq!(allowed.as_deref(), Some(&b"*"[..]));

    let after = viewer.collect(Duration::from_secs(5), Duration::from_millis(500)).await;
    assert!(
        after.frames.len() >= 5,
        "the live viewer kept streaming: {} frames",
        after.frames.len()
    );
    assert_eq!(delete(&resource).await, 200);
    viewer.close().await;
    daemon.stop().await;
}
