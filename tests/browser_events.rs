//! The viewer page hears events: Chromium's page shows the privacy switch's state and, for a
//! sound event, a banner. The sound detector re-arms when capture restarts, so switching privacy
//! on and off while the page watches makes a fresh sound event on cue.

use camrtc_testkit as common;

use common::{Daemon, browser, demo_config, init_logs};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_privacy_and_a_sound_banner() {
    init_logs();
    let dir = std::env::temp_dir().join(format!("camrtc-browser-events-{}", std::process::id()));
    let mut config = demo_config(320, 240);
    config.events.sound.enabled = true;
    config.events.sound.min_duration_ms = 300;
    config.privacy.state_file = dir.join("privacy").display().to_string();
    let daemon = Daemon::start(config).await;
    let url = daemon.url("/");
    let page = tokio::task::spawn_blocking(move || browser::view(&url, 1, 5));

    // Once the page watches: privacy on, then off again.
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let status: serde_json::Value = client
            .get(daemon.url("/api/status"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("JSON");
        if status["active_viewers"].as_u64() >= Some(1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the page never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for enabled in [true, false] {
        let answer = client
            .post(daemon.url("/api/privacy"))
            .body(format!("{{\"enabled\": {enabled}}}"))
            .send()
            .await
            .expect("answers");
        assert_eq!(answer.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let pages = page.await.expect("browser run finished");
    let page = &pages[0];
    assert_eq!(page.events, ["privacy", "privacy", "sound"], "{page:?}");
    assert!(!page.privacy && !page.privacy_cover, "privacy is off again: {page:?}");
    let banner = page.event_banner.as_deref().unwrap_or("");
    assert!(banner.starts_with("Sound detected"), "banner: {banner:?}");
    assert!(page.frames_decoded > 0, "the picture came back");
    daemon.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
