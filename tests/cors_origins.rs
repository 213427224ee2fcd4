//! `http.cors_origins` limits which other web pages a browser lets use the API.

use camrtc_testkit as common;

use common::{Daemon, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_listed_origins_get_cors_headers() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.http.cors_origins = vec!["http://dashboard.test:8123".to_owned()];
    let daemon = Daemon::start(config).await;
    let client = reqwest::Client::new();
    let allowed_origin = |origin: &'static str| {
        let request = client
            .request(reqwest::Method::OPTIONS, daemon.url("/whep"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST");
        async move {
            let response = request.send().await.expect("answers");
            assert_eq!(response.status().as_u16(), 204, "discovery works for everyone");
            response
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().expect("ascii").to_owned())
        }
    };
    assert_eq!(
        allowed_origin("http://dashboard.test:8123").await.as_deref(),
        Some("http://dashboard.test:8123")
    );
    assert_eq!(allowed_origin("http://elsewhere.test").await, None);
    daemon.stop().await;
}
