//! With Basic auth, Chromium asks for the password when the page opens (answered here as a
//! person would), then the page's WHEP requests carry it and the stream plays.

use camrtc_testkit as common;

use camrtc::auth::hash_password;
use camrtc::config::{AuthMode, BasicUser};
use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_after_the_password_prompt() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.auth.mode = AuthMode::Basic;
    config.auth.users =
        vec![BasicUser { name: "nanny".into(), password_hash: hash_password("lullaby-at-eight") }];
    let daemon = Daemon::start(config).await;
    let url = daemon.url("/");
    let pages = tokio::task::spawn_blocking(move || {
        browser::view_with(&url, 1, 2, &["--basic", "nanny:lullaby-at-eight"])
    })
    .await
    .expect("browser run finished");
    assert_eq!((pages[0].width, pages[0].height), (320, 240));
    assert!(pages[0].frames_decoded >= 30, "frames decoded: {}", pages[0].frames_decoded);
    daemon.stop().await;
}
