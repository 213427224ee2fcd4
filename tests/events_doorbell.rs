//! The doorbell: one event per press however much the contacts bounce, none for a release or a
//! button held down, through the same task the daemon runs on a GPIO line (here a line fed from
//! a channel; the kernel here has no gpio-sim), with tokio's clock paused.

use camrtc::events::doorbell::{self, ChannelLine};
use camrtc::events::{EventKind, Fanout};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn each_press_is_one_event() {
    let shutdown = CancellationToken::new();
    let bus = camrtc::events::spawn(Fanout::streams_only(), shutdown.clone());
    let mut events = bus.subscribe().await.expect("subscribes");
    let (levels, rx) = mpsc::channel(64);
    let line = ChannelLine::new(false, rx);
    tokio::spawn(doorbell::run(line, Duration::from_millis(50), bus.clone(), shutdown.clone()));
    let wait = |ms| tokio::time::sleep(Duration::from_millis(ms));

    // A press with 8 ms of contact bounce, held for a second.
    for level in [true, false, true, false, true] {
        levels.send(Ok(level)).await.expect("line open");
        wait(2).await;
    }
    wait(1000).await;
    let event = events.try_recv().expect("one press");
    assert_eq!(event.kind, EventKind::Doorbell);
    assert_eq!(event.snapshot_url.as_deref(), Some("/snapshot.jpg"));
    assert!(events.try_recv().is_err(), "held down: still one event");

    // Released with bounce: nothing.
    for level in [false, true, false] {
        levels.send(Ok(level)).await.expect("line open");
        wait(3).await;
    }
    wait(500).await;
    assert!(events.try_recv().is_err(), "a release is not a press");

    // A 20 ms glitch (interference on a long wire) is shorter than the debounce: nothing.
    levels.send(Ok(true)).await.expect("line open");
    wait(20).await;
    levels.send(Ok(false)).await.expect("line open");
    wait(500).await;
    assert!(events.try_recv().is_err(), "a glitch is not a press");

    // The next real press is the second event.
    levels.send(Ok(true)).await.expect("line open");
    wait(100).await;
    assert_eq!(events.try_recv().expect("second press").kind, EventKind::Doorbell);
    assert!(events.try_recv().is_err());
    shutdown.cancel();
}
