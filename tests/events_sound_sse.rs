//! A steady sound above the threshold raises exactly one `sound` event on `GET /events`, with
//! nobody watching (the detector keeps the microphone open), and nothing more while it lasts.

use camrtc_testkit as common;

use common::sse::EventStream;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_tone_is_one_sound_event_on_the_stream() {
    common::init_logs();
    let mut config = common::demo_config(320, 240);
    // The test tone peaks at -12 dBFS (RMS about -15 dBFS).
    config.events.sound.enabled = true;
    config.events.sound.threshold_dbfs = -30.0;
    config.events.sound.min_duration_ms = 200;
    config.events.sound.hold_off_ms = 500;
    let daemon = common::Daemon::start(config).await;

    let mut events = EventStream::open(&daemon.url("/events"), None).await;
    let first = events.next(Duration::from_secs(5)).await.expect("the current state first");
    assert_eq!(first.event, "state");
    assert_eq!(first.data["privacy"], false);

    let sound = events.next(Duration::from_secs(5)).await.expect("a sound event");
    assert_eq!(sound.event, "sound", "{sound:?}");
    assert_eq!(sound.data["kind"], "sound");
    let level = sound.data["level_dbfs"].as_f64().expect("level");
    assert!((-18.0..=-12.0).contains(&level), "the tone's RMS level: {level}");
    assert_eq!(sound.data["snapshot_url"], "/snapshot.jpg");
    assert!(sound.data["time"].as_str().expect("time").ends_with('Z'));

    // The tone goes on: no more events (the detector re-arms only after quiet).
    let more = events.next(Duration::from_secs(2)).await;
    assert!(more.is_none(), "steady sound raised another event: {more:?}");
    let health = daemon.health().await;
    assert_eq!(health["viewers"], 0);
    assert_eq!(health["pipeline_running"], true, "capture runs for the detector alone");
    daemon.stop().await;
}
