//! Token authentication: without credentials every media and session endpoint answers 401; with
//! a valid token the stream plays; a session belongs to the token that created it.

use camrtc_testkit as common;

use camrtc::auth::token_digest_string;
use camrtc::config::AuthMode;
use common::whep_client::{WhepClient, delete_with_token};
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

const FRONT_DOOR: &str = "front-door-token-0123456789";
const NEIGHBOUR: &str = "neighbour-token-9876543210";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_token_holders_watch_and_only_owners_end_sessions() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.auth.mode = AuthMode::Token;
    config.auth.tokens = vec![token_digest_string(FRONT_DOOR), token_digest_string(NEIGHBOUR)];
    let daemon = Daemon::start(config).await;
    let client = reqwest::Client::new();

    // Without a token (or with a wrong one): 401 with a reason and a Bearer challenge.
    let viewer = WhepClient::new().await;
    for token in [None, Some("not-a-valid-token-at-all")] {
        let (status, reason) =
            viewer.post_with_token(&daemon.url("/whep"), token).await.expect_err("refused");
        assert_eq!(status, 401, "{reason}");
        assert!(!reason.trim().is_empty());
    }
    let health = client.get(daemon.url("/healthz")).send().await.expect("answers");
    assert_eq!(health.status().as_u16(), 401);
    let challenge = health.headers().get("www-authenticate").expect("challenge");
    assert!(challenge.to_str().expect("ascii").starts_with("Bearer"));

    // The page itself and CORS preflights stay public: they carry no media and no secrets.
    assert_eq!(client.get(daemon.url("/")).send().await.expect("answers").status().as_u16(), 200);
    let options = client.request(reqwest::Method::OPTIONS, daemon.url("/whep")).send().await;
    assert_eq!(options.expect("answers").status().as_u16(), 204);

    // With the token it plays.
    let mut viewer = viewer;
    let created =
        viewer.post_with_token(&daemon.url("/whep"), Some(FRONT_DOOR)).await.expect("201");
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(300)).await;
    assert_eq!((received.frames[0].width, received.frames[0].height), (320, 240));

    // The session's resource answers only to the token that made it.
    let resource = daemon.url(&created.location);
    let patch = client
        .patch(&resource)
        .header("Content-Type", "application/trickle-ice-sdpfrag")
        .body("a=ice-ufrag:x\r\n")
        .send()
        .await
        .expect("answers");
    assert_eq!(patch.status().as_u16(), 401);
    assert_eq!(delete_with_token(&resource, None).await, 401);
    assert_eq!(delete_with_token(&resource, Some(NEIGHBOUR)).await, 404, "not yours: not found");
    let health =
        client.get(daemon.url("/healthz")).bearer_auth(NEIGHBOUR).send().await.expect("answers");
    assert_eq!(health.status().as_u16(), 200);
    let health: serde_json::Value = health.json().await.expect("JSON");
    assert_eq!(health["sessions"], 1, "the neighbour's DELETE ended nothing");
    assert_eq!(delete_with_token(&resource, Some(FRONT_DOOR)).await, 200);

    viewer.close().await;
    daemon.stop().await;
}
