//! WHEP discovery: OPTIONS and POST tell clients the accepted body type and the ICE servers
//! (STUN, and TURN with credentials), and CORS lets pages from other origins use the endpoint.

use camrtc_testkit as common;

use camrtc::config::{Config, IceServer};
use common::whep_client::WhepClient;
use common::{Daemon, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_and_post_announce_ice_servers_and_allow_other_origins() {
    init_logs();
    let mut config = Config::demo("127.0.0.1:0".parse().expect("literal"));
    // Nothing listens on the discard port: the daemon's own gathering fails fast and harmlessly.
    config.webrtc.ice_servers = vec![
        IceServer { urls: vec!["stun:127.0.0.1:9".into()], username: None, credential: None },
        IceServer {
            urls: vec!["turn:127.0.0.1:9".into()],
            username: Some("doorbell".into()),
            credential: Some("s3cret".into()),
        },
    ];
    let daemon = Daemon::start(config).await;
    let client = reqwest::Client::new();

    let response = client
        .request(reqwest::Method::OPTIONS, daemon.url("/whep"))
        .header("Origin", "http://dashboard.test")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .expect("daemon answers");
    assert_eq!(response.status().as_u16(), 204);
    let header = |name: &str| {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    assert_eq!(header("accept-post"), "application/sdp");
    assert_eq!(header("access-control-allow-origin"), "*");
    assert!(header("access-control-allow-methods").contains("POST"));
    assert!(header("access-control-allow-headers").contains("Content-Type"));
    let links: Vec<&str> =
        response.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).collect();
    assert_eq!(
        links,
        vec![
            "<stun:127.0.0.1:9>; rel=\"ice-server\"",
            "<turn:127.0.0.1:9>; rel=\"ice-server\"; username=\"doorbell\"; credential=\"s3cret\"; credential-type=\"password\"",
        ]
    );

    let viewer = WhepClient::new().await;
    let created = viewer.post(&daemon.url("/whep")).await.expect("201");
    assert_eq!(created.links, links, "the POST answer carries the same ICE servers");

    let response = client
        .request(reqwest::Method::OPTIONS, daemon.url(&created.location))
        .send()
        .await
        .expect("daemon answers");
    assert_eq!(response.status().as_u16(), 204);
    let allowed = response.headers().get("access-control-allow-methods").expect("methods listed");
    assert!(allowed.to_str().expect("ascii").contains("PATCH"));
    let exposed = response.headers().get("access-control-expose-headers").expect("exposed");
    assert!(exposed.to_str().expect("ascii").contains("Location"));

    viewer.close().await;
    daemon.stop().await;
}
