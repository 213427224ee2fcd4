//! Two browser pages watching at once both play, from one encoder.

use camrtc_testkit as common;

use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chromium_pages_play_at_once() {
    init_logs();
    let daemon = Daemon::start(demo_config(480, 360)).await;
    let url = daemon.url("/");
    let pages = tokio::task::spawn_blocking(move || browser::view(&url, 2, 3))
        .await
        .expect("browser run finished");
    assert_eq!(pages.len(), 2);
    for page in &pages {
        eprintln!("{page:?}");
        assert_eq!((page.width, page.height), (480, 360));
        assert!(page.frames_decoded >= 45, "frames decoded: {}", page.frames_decoded);
        assert!(
            page.audio.packets_received >= 75,
            "audio packets: {}",
            page.audio.packets_received
        );
    }
    let health = daemon.health().await;
    // Encoded once: the pages together decoded more frames than the encoder ever produced.
    let encoded = health["video_frames"].as_u64().expect("a count");
    let decoded: u64 = pages.iter().map(|p| p.frames_decoded).sum();
    assert!(decoded > encoded, "decoded {decoded} in total from {encoded} encoded frames");
    assert_eq!(health["sessions"], 0, "closing the pages ended their sessions");
    daemon.stop().await;
}
