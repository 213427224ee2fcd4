//! Under `Type=notify` the daemon tells systemd READY=1 once it serves, keeps STATUS= current with
//! the viewers and the capture state, pings the watchdog while idle on demand, and says STOPPING=1
//! on SIGTERM.

use camrtc_testkit as common;

use common::notify::NotifySocket;
use common::process::{free_port, spawn_run, wait_listening};
use common::whep_client::WhepClient;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_status_and_watchdog_pings_reach_systemd() {
    let socket = NotifySocket::bind("ready");
    let port = free_port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n[video]\nsource = \"test\"\nwidth = 320\nheight = 240\n\
         [audio]\nsource = \"test\"\n[webrtc]\ninclude_loopback_candidates = true\n\
         [auth]\nmode = \"none\"\n[pipeline]\nidle_stop_ms = 200\n"
    );
    let mut daemon = spawn_run("notify", &config, port, socket.command(Duration::from_millis(800)));

    let ready = socket.wait_for("READY=1", Duration::from_secs(20));
    // READY comes after the listener is bound: HTTP answers straight away.
    wait_listening(&daemon, Duration::from_millis(500)).await;
    assert!(ready.contains("STATUS=serving"), "{ready:?}");

    // Idle on demand counts as alive: pings keep coming, with the idle status.
    socket
        .wait_for("STATUS=0 viewers; capture idle until a viewer connects", Duration::from_secs(3));
    let idle = socket.collect(Duration::from_millis(1200));
    assert!(idle.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3, "{idle:?}");

    let mut viewer = WhepClient::new().await;
    viewer.post(&format!("{}/whep", daemon.base)).await.expect("201");
    let received = viewer.collect(Duration::from_secs(15), Duration::from_millis(300)).await;
    assert!(!received.frames.is_empty());
    socket.wait_for("STATUS=1 viewer; capture running", Duration::from_secs(3));
    let watching = socket.collect(Duration::from_millis(1200));
    assert!(watching.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3, "{watching:?}");

    let pid = daemon.child.id().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    socket.wait_for("STOPPING=1", Duration::from_secs(3));
    let status = daemon.child.wait().expect("daemon exits");
    assert!(status.success(), "{status}");
    viewer.close().await;
}
