//! With token auth on, the viewer URL that carries the token (`/#token=…`) plays in Chromium:
//! the page moves the token from the fragment into its requests.

use camrtc_testkit as common;

use camrtc::auth::token_digest_string;
use camrtc::config::AuthMode;
use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_url_with_a_token_plays() {
    init_logs();
    let token = "kitchen-tablet-0123456789abcdef";
    let mut config = demo_config(320, 240);
    config.auth.mode = AuthMode::Token;
    config.auth.tokens = vec![token_digest_string(token)];
    let daemon = Daemon::start(config).await;
    let url = daemon.url(&format!("/#token={token}"));
    let pages = tokio::task::spawn_blocking(move || browser::view(&url, 1, 2))
        .await
        .expect("browser run finished");
    assert_eq!((pages[0].width, pages[0].height), (320, 240));
    assert!(pages[0].frames_decoded >= 30, "frames decoded: {}", pages[0].frames_decoded);
    daemon.stop().await;
}
