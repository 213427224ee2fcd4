//! Several viewers watch for a long time and nothing grows: the daemon's memory stays on its
//! plateau and capture-to-decode latency stays where it started (a queue that slowly backs up
//! would show as latency climbing window after window). The short version runs in CI; set
//! CAMRTC_SOAK_SECONDS=600 (and CAMRTC_SOAK_VIEWERS, default 3) for the long one.

use camrtc_testkit as common;

use common::process::{proc_status, start_daemon};
use common::whep_client::WhepClient;
use std::time::Duration;

/// Measurement window: long enough for a stable median, short enough for many windows.
const WINDOW: Duration = Duration::from_secs(5);

fn median(values: &mut [u32]) -> u32 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(u32::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_watching_grows_neither_memory_nor_latency() {
    let env = |name: &str, default: u64| {
        std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
    };
    let seconds = env("CAMRTC_SOAK_SECONDS", 20);
    let viewers = env("CAMRTC_SOAK_VIEWERS", 3) as usize;
    let windows = (seconds / WINDOW.as_secs()).max(3) as usize;
    let daemon = start_daemon().await;
    let pid = daemon.child.id();

    let mut clients = Vec::new();
    for _ in 0..viewers {
        let mut client = WhepClient::new().await;
        client.post(&format!("{}/whep", daemon.base)).await.expect("201");
        client.collect(Duration::from_secs(10), Duration::ZERO).await;
        clients.push(client);
    }

    // Per window: daemon RSS, then every viewer's median latency and frame count.
    let mut rows: Vec<(u64, Vec<(u32, usize)>)> = Vec::new();
    for window in 0..windows {
        let results = collect_window(&mut clients).await;
        let rss_kb = proc_status(pid, "VmRSS:");
        eprintln!(
            "window {window:>3}: RSS {:>6.1} MB; per viewer (median latency ms, frames): {results:?}",
            rss_kb as f64 / 1024.0
        );
        rows.push((rss_kb, results));
    }

    // The first window includes warm-up (allocator growth, jitter buffers settling); compare the
    // last window with the second.
    let (baseline_rss, baseline) = &rows[1];
    let (last_rss, last) = &rows[rows.len() - 1];
    let growth_mb = (*last_rss as f64 - *baseline_rss as f64) / 1024.0;
    eprintln!("RSS growth after warm-up: {growth_mb:+.1} MB over {} windows", rows.len() - 2);
    assert!(growth_mb < 8.0, "memory grows while watching: {growth_mb:+.1} MB");
    for (viewer, ((base_latency, _), (last_latency, frames))) in
        baseline.iter().zip(last).enumerate()
    {
        // Generous: a noisy 2-core machine moves a median by tens of ms; a backlog grows without
        // bound (seconds after a few minutes).
        assert!(
            *last_latency <= base_latency + 100,
            "viewer {viewer}: latency grew from {base_latency} ms to {last_latency} ms"
        );
        // 320x240 at 30 fps: at least half the frames in every window, or the viewer starved.
        let expected = 30 * WINDOW.as_secs() as usize;
        assert!(*frames >= expected / 2, "viewer {viewer}: {frames} frames in a window");
    }
    for client in &clients {
        client.close().await;
    }
}

/// Collects one window from every viewer at once (each on its own task, as separate browsers
/// would), keeping the viewers' order.
async fn collect_window(clients: &mut Vec<WhepClient>) -> Vec<(u32, usize)> {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, mut client) in clients.drain(..).enumerate() {
        tasks.spawn(async move {
            let received = client.collect(Duration::from_secs(5), WINDOW).await;
            let mut latencies: Vec<u32> =
                received.frames.iter().filter_map(|f| f.latency_ms()).collect();
            (index, client, (median(&mut latencies), received.frames.len()))
        });
    }
    let mut done = tasks.join_all().await;
    done.sort_by_key(|(index, _, _)| *index);
    done.into_iter()
        .map(|(_, client, result)| {
            clients.push(client);
            result
        })
        .collect()
}
