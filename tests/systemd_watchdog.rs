//! A capture thread that stops delivering frames (wedged with the test-only trigger) stops the
//! watchdog pings, and STATUS= says why, so systemd's WatchdogSec= restarts the daemon. The HTTP
//! server keeps answering meanwhile: only the watchdog notices.

use camrtc_testkit as common;

use common::notify::NotifySocket;
use common::process::{free_port, spawn_run, wait_listening};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wedged_capture_thread_stops_the_watchdog_pings() {
    let socket = NotifySocket::bind("wedge");
    let port = free_port();
    // Always-on capture so the pipeline runs without a viewer.
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n[video]\nsource = \"test\"\nwidth = 320\nheight = 240\n\
         fps = 10\n[audio]\nsource = \"none\"\n[auth]\nmode = \"none\"\n[pipeline]\non_demand = false\n"
    );
    let mut command = socket.command(Duration::from_millis(800));
    command.env("CAMRTC_TEST_WEDGE_VIDEO_AFTER_FRAMES", "20");
    let daemon = spawn_run("wedge", &config, port, command);

    socket.wait_for("READY=1", Duration::from_secs(20));
    let started = Instant::now();
    socket.wait_for("STATUS=0 viewers; capture running", Duration::from_secs(3));
    socket.wait_for("WATCHDOG=1", Duration::from_secs(1));

    // 20 frames at 10 fps, then the 5 s stall limit: the pings must stop within ~8 s.
    let unhealthy = socket.wait_for("STATUS=unhealthy: capture is stuck", Duration::from_secs(12));
    assert!(!unhealthy.contains("WATCHDOG=1"), "{unhealthy:?}");
    let stalled_after = started.elapsed();
    assert!(stalled_after > Duration::from_secs(5), "declared stuck too early: {stalled_after:?}");
    let after = socket.collect(Duration::from_secs(2));
    assert!(after.iter().all(|m| !m.contains("WATCHDOG=1")), "pinged while stuck: {after:?}");

    // Only the pipeline is stuck; the server still answers (so the withheld ping is the signal).
    wait_listening(&daemon, Duration::from_secs(1)).await;
    let health: serde_json::Value = reqwest::get(format!("{}/healthz", daemon.base))
        .await
        .expect("healthz answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["pipeline_running"], true, "{health}");
}
