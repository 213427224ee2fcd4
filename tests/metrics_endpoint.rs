//! `/metrics` (Prometheus) and `/api/status` describe a live session: they need credentials like
//! every API, and their counters move when a viewer watches.

use camrtc_testkit as common;

use camrtc::auth::token_digest_string;
use camrtc::config::AuthMode;
use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use std::time::Duration;

const TOKEN: &str = "dashboard-token-0123456789";

/// The value of the sample line starting with `name` (labels included) in OpenMetrics text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_status_describe_a_watching_viewer() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.auth.mode = AuthMode::Token;
    config.auth.tokens = vec![token_digest_string(TOKEN)];
    let daemon = Daemon::start(config).await;
    let client = reqwest::Client::new();
    for path in ["/metrics", "/api/status"] {
        let refused = client.get(daemon.url(path)).send().await.expect("answers");
        assert_eq!(refused.status().as_u16(), 401, "{path} needs the token");
    }

    let mut viewer = WhepClient::new().await;
    viewer.post_with_token(&daemon.url("/whep"), Some(TOKEN)).await.expect("201");
    let received = viewer.collect(Duration::from_secs(10), Duration::from_millis(500)).await;
    assert!(received.frames.len() >= 5);

    let response = client.get(daemon.url("/metrics")).bearer_auth(TOKEN).send().await;
    let response = response.expect("answers");
    let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = response.text().await.expect("text");
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert_eq!(sample(&text, "camrtc_sessions"), 1.0);
    assert_eq!(sample(&text, "camrtc_viewers_active"), 1.0);
    assert_eq!(sample(&text, "camrtc_pipeline_running"), 1.0);
    assert_eq!(sample(&text, "camrtc_video_bitrate_target_bits_per_second"), 1_000_000.0);
    assert!(sample(&text, "camrtc_frames_total{track=\"video\"}") >= 5.0);
    assert!(sample(&text, "camrtc_frames_total{track=\"audio\"}") >= 5.0);
    assert!(sample(&text, "camrtc_frames_delivered_total") >= 10.0);
    // The first viewer starts the pipeline, whose first frame is a keyframe: nothing to request.
    for reason in ["join", "picture_loss", "resync"] {
        sample(&text, &format!("camrtc_keyframe_requests_total{{reason=\"{reason}\"}}"));
    }
    assert!(sample(&text, "camrtc_keyframes_total") >= 1.0);
    let encoded = sample(&text, "camrtc_capture_to_hub_seconds_count");
    assert!(encoded >= 5.0);
    assert_eq!(sample(&text, "camrtc_capture_to_hub_seconds_bucket{le=\"+Inf\"}"), encoded);
    // Every encoded picture was timed, the first keyframe came from the pipeline's start, and the
    // session reported sending frames.
    assert!(sample(&text, "camrtc_encode_time_seconds_count") >= encoded);
    assert!(sample(&text, "camrtc_capture_to_encoded_seconds_count") >= encoded);
    assert!(sample(&text, "camrtc_keyframes_produced_total{cause=\"start\"}") >= 1.0);
    assert!(sample(&text, "camrtc_capture_to_sent_seconds_count") >= 5.0);
    let drops = |reason: &str| sample(&text, &format!("camrtc_drops_total{{reason=\"{reason}\"}}"));
    assert_eq!(drops("video_queue_full") + drops("video_resync") + drops("send_error"), 0.0);
    // Present even when nothing was lost (a rate-control skip is legitimate, so only its presence).
    drops("encoder_skip");
    drops("cpu_pressure");
    drops("pipeline_overflow");

    let status: serde_json::Value = client
        .get(daemon.url("/api/status"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["status"], "ok");
    assert_eq!(status["sessions"], 1);
    assert_eq!(status["config"]["video"]["width"], 320);
    assert_eq!(status["config"]["video"]["source"], "test");
    assert_eq!(status["config"]["audio"]["source"], "test");
    assert_eq!(status["audio"]["state"], "running", "the live source state from /healthz");
    assert_eq!(status["auth"], "token");
    assert!(status["uptime_seconds"].is_u64());
    viewer.close().await;
    daemon.stop().await;
}
