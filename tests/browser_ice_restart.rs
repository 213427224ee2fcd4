//! The viewer page restarts ICE on its live session (what it does after a network change): the
//! restart PATCH is answered with the daemon's new credentials, a pair of the new ICE generation
//! takes over, and the picture keeps coming on the same session.

use camrtc_testkit as common;

use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_page_restarts_ice_and_keeps_playing() {
    init_logs();
    let daemon = Daemon::start(demo_config(320, 240)).await;
    let url = daemon.url("/");
    let pages =
        tokio::task::spawn_blocking(move || browser::view_with(&url, 1, 2, &["--restart-ice"]))
            .await
            .expect("browser run finished");
    let page = &pages[0];
    eprintln!("{page:?}");
    assert_eq!((page.restarts.tried, page.restarts.succeeded), (1, 1), "{:?}", page.restarts);
    let pair = page.selected_pair.as_ref().expect("a selected candidate pair");
    assert!(pair.ufrag_before.is_some() && pair.local_ufrag != pair.ufrag_before, "{pair:?}");
    // Sampled after the restart: media flows over the new generation.
    assert!(page.frames_decoded >= 30, "frames decoded: {}", page.frames_decoded);
    assert!(page.fps.is_some_and(|fps| fps > 15.0), "fps after the restart: {:?}", page.fps);
    assert_eq!(page.trickled.refused, 0, "{:?}", page.trickled);
    assert_eq!(page.sessions, 1, "the same session, not a reconnect");
    daemon.stop().await;
}
