//! Clients that open connections and never finish a request (slowloris) are cut off after the
//! request timeout, connections beyond the cap are closed at once, and a viewer already
//! streaming notices none of it.

use camrtc_testkit as common;

use common::whep_client::WhepClient;
use common::{Daemon, demo_config, init_logs};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the server closes the connection; returns how long that took.
async fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Duration {
    let start = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {} // a 408 may come first; keep reading until the close
            Err(_) => panic!("connection still open after {limit:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_excess_connections_are_closed_without_hurting_viewers() {
    init_logs();
    let mut config = demo_config(320, 240);
    config.http.request_timeout_ms = 1000;
    config.http.max_connections = 4;
    let daemon = Daemon::start(config).await;

    let mut viewer = WhepClient::new().await;
    viewer.post(&daemon.url("/whep")).await.expect("201");
    viewer.collect(Duration::from_secs(10), Duration::from_millis(100)).await;

    // Half a request, then silence.
    let mut slow = TcpStream::connect(daemon.address).await.expect("connects");
    slow.write_all(b"GET / HTTP/1.1\r\nHost: camera\r\n").await.expect("writes");
    let closed_after = time_until_closed(&mut slow, Duration::from_secs(5)).await;
    assert!(closed_after >= Duration::from_millis(900), "not before the timeout: {closed_after:?}");

    // Fill every connection slot with idle connections; the next one is closed at once.
    let mut idle = Vec::new();
    for _ in 0..4 {
        idle.push(TcpStream::connect(daemon.address).await.expect("connects"));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut excess = TcpStream::connect(daemon.address).await.expect("the kernel accepts");
    let refused_after = time_until_closed(&mut excess, Duration::from_secs(1)).await;
    assert!(refused_after < Duration::from_millis(500), "closed at once: {refused_after:?}");

    // The idle ones time out too, and then the daemon serves again.
    for stream in &mut idle {
        time_until_closed(stream, Duration::from_secs(5)).await;
    }
    assert_eq!(daemon.health().await["sessions"], 1);
    let after = viewer.collect(Duration::from_secs(5), Duration::from_millis(500)).await;
    assert!(after.frames.len() >= 10, "the viewer kept streaming: {} frames", after.frames.len());

    viewer.close().await;
    daemon.stop().await;
}
