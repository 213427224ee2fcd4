//! The viewer page trickles: it POSTs its offer once it has its first candidate (or after 30 ms)
//! and sends the candidates found afterwards in WHEP PATCHes (with If-Match and a final
//! end-of-candidates), and still plays.

use camrtc_testkit as common;

use common::{Daemon, browser, demo_config, init_logs};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_page_trickles_its_candidates_and_plays() {
    init_logs();
    let daemon = Daemon::start(demo_config(320, 240)).await;
    let url = daemon.url("/");
    let pages = tokio::task::spawn_blocking(move || browser::view(&url, 1, 2))
        .await
        .expect("browser run finished");
    let page = &pages[0];
    eprintln!("{page:?}");
    assert_eq!((page.width, page.height), (320, 240));
    assert!(page.frames_decoded >= 30, "frames decoded: {}", page.frames_decoded);
    let trickled = &page.trickled;
    // Which candidates make the offer depends on how fast the browser gathers; none is lost.
    assert!(trickled.in_offer + trickled.candidates >= 1, "no candidate sent: {trickled:?}");
    assert!(trickled.patches >= 1, "nothing trickled: {trickled:?}");
    assert_eq!(trickled.end_of_candidates, 1, "{trickled:?}");
    assert_eq!(trickled.refused, 0, "the daemon refused a PATCH: {trickled:?}");
    assert_eq!(page.sessions, 1);
    let pair = page.selected_pair.as_ref().expect("a selected candidate pair");
    eprintln!("selected pair: {pair:?}; first frame {} ms after POST", page.first_frame_ms);
    daemon.stop().await;
}
