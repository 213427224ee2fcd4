//! The built-in viewer page plays in a real browser (Debian's headless Chromium): the test
//! pattern's size, a readable timecode, and sound.

use camrtc_testkit as common;

use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_page_plays_video_and_audio_in_chromium() {
    init_logs();
    let daemon = Daemon::start(demo_config(640, 480)).await;
    let url = daemon.url("/");
    let pages = tokio::task::spawn_blocking(move || browser::view(&url, 1, 4))
        .await
        .expect("browser run finished");
    let page = &pages[0];
    eprintln!("{page:?}");
    assert_eq!((page.width, page.height), (640, 480));
    assert!(page.frames_decoded >= 60, "frames decoded: {}", page.frames_decoded);
    assert!(page.audio.packets_received >= 100, "audio packets: {}", page.audio.packets_received);
    assert!(page.audio.total_audio_energy > 0.0, "the tone is audible, not silence");
    let latency = page.latency_ms.as_ref().expect("timecode sampled");
    assert!(latency.n >= 30, "timecode read from rendered frames: {latency:?}");
    // A frame caught mid-update can fail the check row; more than a few would mean a broken code.
    let errors = page.timecode_errors.expect("timecode sampled");
    assert!(errors * 20 <= latency.n, "{errors} unreadable timecodes of {}", latency.n);
    assert!(page.first_frame_ms < 5000.0, "first frame after {} ms", page.first_frame_ms);
    daemon.stop().await;
}
