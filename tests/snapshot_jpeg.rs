//! `GET /snapshot.jpg` with nobody watching: it needs the token, starts capture for the picture,
//! answers a JPEG of the configured size showing the test pattern, and lets capture stop again.

use camrtc_testkit as common;

use camrtc::auth::token_digest_string;
use camrtc::config::AuthMode;
use common::{Daemon, demo_config, init_logs};
use std::time::{Duration, Instant};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;

const TOKEN: &str = "snapshot-token-0123456789";

/// Whether some pixel of `rgb` is within 40 per channel of `colour`.
fn has_colour(rgb: &[u8], colour: [u8; 3]) -> bool {
    rgb.chunks_exact(3).any(|p| p.iter().zip(colour).all(|(&a, b)| a.abs_diff(b) <= 40))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_is_a_jpeg_of_the_test_pattern_without_a_viewer() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.auth.mode = AuthMode::Token;
    config.auth.tokens = vec![token_digest_string(TOKEN)];
    config.pipeline.idle_stop_ms = 200;
    let daemon = Daemon::start(config).await;
    let client = reqwest::Client::new();

    let refused = client.get(daemon.url("/snapshot.jpg")).send().await.expect("answers");
    assert_eq!(refused.status().as_u16(), 401, "the snapshot needs the token");
    let health =
        |client: &reqwest::Client| client.get(daemon.url("/healthz")).bearer_auth(TOKEN).send();
    let idle: serde_json::Value =
        health(&client).await.expect("answers").json().await.expect("JSON");
    assert_eq!(idle["pipeline_running"], false, "nobody watches: capture is idle");

    for round in 0..2 {
        let asked = Instant::now();
        let response = client.get(daemon.url("/snapshot.jpg")).bearer_auth(TOKEN).send().await;
        let response = response.expect("answers");
        let elapsed = asked.elapsed();
        println!("snapshot {round}: {} in {elapsed:?}", response.status());
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        let jpeg = response.bytes().await.expect("body");
        assert!(jpeg.len() > 1000, "{} bytes", jpeg.len());

        let mut decoder = JpegDecoder::new(ZCursor::new(&jpeg[..]));
        let rgb = decoder.decode().expect("a decodable JPEG");
        assert_eq!(decoder.dimensions(), Some((320, 240)));
        // 75% colour bars in RGB: yellow, cyan, magenta and blue are all on screen.
        for colour in [[191, 191, 0], [0, 191, 191], [191, 0, 191], [0, 0, 191]] {
            assert!(has_colour(&rgb, colour), "no bar near {colour:?} in the snapshot");
        }

        // The hold ends with the request: capture stops after idle_stop_ms.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status: serde_json::Value =
                health(&client).await.expect("answers").json().await.expect("JSON");
            if status["pipeline_running"] == false {
                break;
            }
            assert!(Instant::now() < deadline, "capture still running: {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    daemon.stop().await;
}
