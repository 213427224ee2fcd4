//! `camrtc-bench`: starts the release daemon with the test sources as a subprocess, drives real
//! viewers at it and prints a table and JSON: time to first frame, glass-to-glass latency, the
//! daemon's CPU and RSS (from /proc), per-viewer frame rate and losses, sender-side drops (from
//! /metrics).
//!
//! ```sh
//! cargo build --release --bins
//! cargo run --release --bin camrtc-bench -- --browser 1,4 --light 1,10 --scale 150 --json out.json
//! ```
//!
//! Two viewer kinds: headless Chromium through `tests/browser/viewer.mjs` (the real thing; it
//! reads the timecode back from rendered frames) and light WHEP clients (the tests' client in its
//! counting mode: decrypted RTP, sequence gaps, keyframes, no decoding) for the fan-out test.
//! A bench binary rather than an xtask: it needs the WebRTC stack the package already builds, and
//! `cargo run --bin` reuses those compiled crates instead of building a second workspace member.

mod browser;
mod daemon;
mod light;
#[allow(dead_code)] // the bench uses the light half of the tests' client
#[path = "../../../tests/common/whep_client.rs"]
mod whep_client;

use clap::Parser;
use daemon::{Daemon, Metrics, Stream};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// Why a benchmark run could not complete.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The daemon could not be started or read.
    #[error("daemon: {0}")]
    Daemon(String),
    /// The Chromium harness failed.
    #[error("browser: {0}")]
    Browser(String),
    /// A light viewer could not connect or saw no picture.
    #[error("viewer: {0}")]
    Viewer(String),
    /// The JSON report could not be written.
    #[error("cannot write {0}: {1}")]
    Output(PathBuf, std::io::Error),
}

#[derive(Parser, Debug)]
#[command(name = "camrtc-bench", about = "Benchmark camrtc with real viewers")]
struct Args {
    /// The daemon binary (default: `camrtc` next to this program).
    #[arg(long)]
    daemon: Option<PathBuf>,
    #[arg(long, default_value_t = 640)]
    width: u32,
    #[arg(long, default_value_t = 480)]
    height: u32,
    #[arg(long, default_value_t = 30)]
    fps: u32,
    #[arg(long, default_value_t = 1000)]
    bitrate_kbps: u32,
    /// Chromium runs, by number of pages (0 or empty: none).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    browser: Vec<usize>,
    /// Light-viewer runs, by number of viewers (0 or empty: none).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10])]
    light: Vec<usize>,
    /// Fan-out ramp: add light viewers in steps up to this many, until one is not held at full
    /// frame rate or the daemon drops frames (0: no ramp).
    #[arg(long, default_value_t = 0)]
    scale: usize,
    /// Seconds of steady streaming sampled per run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Write the JSON report here too (it is always printed last on stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// TOML lines appended to the daemon's configuration, which ends inside its `[pipeline]` table
    /// (e.g. "network_threads = 2"; start a table of their own for other keys).
    #[arg(long, default_value = "")]
    daemon_config: String,
}

/// A viewer is "held at full frame rate" at this share of the configured rate or more.
const FULL_RATE_SHARE: f64 = 0.95;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    match run(&args).await {
        Ok(report) => {
            let text = serde_json::to_string_pretty(&report).expect("JSON values always serialise");
            println!("{text}");
            if let Some(path) = &args.json
                && let Err(error) = std::fs::write(path, &text)
            {
                eprintln!("camrtc-bench: {}", BenchError::Output(path.clone(), error));
                std::process::exit(1);
            }
        }
        Err(error) => {
            eprintln!("camrtc-bench: {error}");
            std::process::exit(1);
        }
    }
}

fn daemon_binary(args: &Args) -> PathBuf {
    args.daemon.clone().unwrap_or_else(|| {
        let me = std::env::current_exe().unwrap_or_default();
        me.with_file_name("camrtc")
    })
}

async fn run(args: &Args) -> Result<Value, BenchError> {
    let binary = daemon_binary(args);
    let stream = Stream {
        width: args.width,
        height: args.height,
        fps: args.fps,
        bitrate_kbps: args.bitrate_kbps,
    };
    let window = Duration::from_secs(args.seconds.max(1));
    let mut runs = Vec::new();
    println!(
        "| kind | viewers | first frame ms (median / max) | latency p50 / p95 ms | fps (min / median) \
         | capture → sent ms | daemon CPU cores | RSS MB | threads | sender drops (video / audio) \
         | lost packets |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for &pages in args.browser.iter().filter(|&&n| n > 0) {
        let daemon = Daemon::start(&binary, stream, &args.daemon_config).await?;
        let result = browser_run(&daemon, pages, window).await?;
        print_row(&result);
        runs.push(result);
    }
    for &viewers in args.light.iter().filter(|&&n| n > 0) {
        let daemon = Daemon::start(&binary, stream, &args.daemon_config).await?;
        let result = light_run(&daemon, viewers, window).await?;
        print_row(&result);
        runs.push(result);
    }
    let scale = if args.scale > 0 {
        let daemon = Daemon::start(&binary, stream, &args.daemon_config).await?;
        Some(scale_run(&daemon, args.scale, f64::from(args.fps), window.min(SCALE_WINDOW)).await?)
    } else {
        None
    };
    let per_viewer = cpu_per_extra_viewer(&runs);
    if let Some(cost) = per_viewer {
        println!("\nCPU per additional light viewer: {cost:.4} cores");
    }
    Ok(json!({
        "stream": stream,
        "window_s": window.as_secs(),
        "runs": runs,
        "cpu_per_extra_viewer_cores": per_viewer,
        "scale": scale,
    }))
}

/// The mean of a `/metrics` histogram's observations between two samples, in milliseconds: the
/// daemon's own share of the glass-to-glass figure.
fn mean_ms(before: &Metrics, after: &Metrics, histogram: &str) -> Option<f64> {
    let count = after.delta(before, &format!("{histogram}_count"));
    let sum = after.delta(before, &format!("{histogram}_sum"));
    (count > 0.0).then(|| round(sum / count * 1000.0, 2))
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

const VIDEO_DROPS: &str = "camrtc_frames_dropped_total{track=\"video\"}";
const AUDIO_DROPS: &str = "camrtc_frames_dropped_total{track=\"audio\"}";
const OVERFLOW: &str = "camrtc_pipeline_overflow_total";

/// Daemon figures over a window: CPU, memory, drops.
async fn daemon_window(
    daemon: &Daemon,
    window: Duration,
) -> Result<(Value, Metrics, Metrics), BenchError> {
    let (proc0, metrics0) = (daemon.sample()?, daemon.metrics().await?);
    tokio::time::sleep(window).await;
    let (proc1, metrics1) = (daemon.sample()?, daemon.metrics().await?);
    let figures = json!({
        "cpu_cores": round(proc1.cores_since(&proc0), 4),
        "rss_mb": round(proc1.rss_kib as f64 / 1024.0, 1),
        "threads": proc1.threads,
        "capture_to_sent_ms": mean_ms(&metrics0, &metrics1, "camrtc_capture_to_sent_seconds"),
    });
    Ok((figures, metrics0, metrics1))
}

fn drops(before: &Metrics, after: &Metrics) -> Value {
    json!({
        "video": after.delta(before, VIDEO_DROPS),
        "audio": after.delta(before, AUDIO_DROPS),
        "pipeline_overflow": after.delta(before, OVERFLOW),
    })
}

async fn browser_run(daemon: &Daemon, pages: usize, window: Duration) -> Result<Value, BenchError> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser/viewer.mjs");
    let url = format!("{}/", daemon.base);
    // Chromium samples for two seconds longer than the daemon window, which starts a second after
    // every page is watching, so both cover the same steady stretch.
    let seconds = window.as_secs() + 2;
    let viewers = tokio::spawn(async move { browser::run(&script, &url, pages, seconds).await });
    let active = wait_active(daemon, pages, Duration::from_secs(30)).await;
    let daemon_figures = match active {
        Ok(()) => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Some(daemon_window(daemon, window).await?)
        }
        Err(_) => None,
    };
    let pages_seen = viewers.await.map_err(|e| BenchError::Browser(e.to_string()))??;
    let (figures, before, after) = daemon_figures
        .ok_or_else(|| BenchError::Browser(format!("{pages} pages never all watched")))?;
    let mut first: Vec<f64> = pages_seen.iter().filter_map(|p| p.first_frame_ms).collect();
    let mut from_open: Vec<f64> =
        pages_seen.iter().filter_map(|p| p.open_to_first_frame_ms).collect();
    let mut fps: Vec<f64> = pages_seen.iter().filter_map(|p| p.fps).collect();
    let latency = |pick: fn(&browser::PageLatency) -> Option<f64>| {
        let mut values: Vec<f64> =
            pages_seen.iter().filter_map(|p| p.latency_ms.as_ref().and_then(pick)).collect();
        median(&mut values)
    };
    Ok(json!({
        "kind": "chromium",
        "viewers": pages,
        "first_frame_ms": {
            "median": median(&mut first),
            "max": first.iter().copied().reduce(f64::max),
        },
        "open_to_first_frame_ms": {
            "median": median(&mut from_open),
            "max": from_open.iter().copied().reduce(f64::max),
        },
        "latency_ms": {
            "p50": latency(|l| l.p50),
            "p95": latency(|l| l.p95),
            "max": latency(|l| l.max),
        },
        "fps": { "min": fps.iter().copied().reduce(f64::min), "median": median(&mut fps) },
        "daemon": figures,
        "sender_drops": drops(&before, &after),
        "per_viewer": pages_seen,
    }))
}

async fn wait_active(daemon: &Daemon, viewers: usize, limit: Duration) -> Result<(), BenchError> {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if daemon.metrics().await?.get("camrtc_viewers_active") >= viewers as f64 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(BenchError::Viewer(format!("{viewers} viewers were not all active after {limit:?}")))
}

/// Light viewers' picture wait: generous, a hundred peers connect on two busy cores.
const FIRST_FRAME_LIMIT: Duration = Duration::from_secs(30);
/// Settling after the last viewer's first frame, before a window starts.
const SETTLE: Duration = Duration::from_secs(2);
const SCALE_WINDOW: Duration = Duration::from_secs(5);

async fn light_run(daemon: &Daemon, count: usize, window: Duration) -> Result<Value, BenchError> {
    let viewers = light::connect_many(&daemon.base, count).await?;
    light::wait_first_frames(&viewers, FIRST_FRAME_LIMIT).await?;
    tokio::time::sleep(SETTLE).await;
    let start: Vec<_> = viewers.iter().map(light::LightViewer::read).collect();
    let (figures, before, after) = daemon_window(daemon, window).await?;
    let per_viewer: Vec<_> = viewers.iter().zip(&start).map(|(v, s)| v.window(s)).collect();
    for viewer in viewers {
        viewer.close().await;
    }
    let mut first: Vec<f64> = per_viewer.iter().filter_map(|v| v.first_frame_ms).collect();
    let mut fps: Vec<f64> = per_viewer.iter().map(|v| v.fps).collect();
    Ok(json!({
        "kind": "light",
        "viewers": count,
        "first_frame_ms": {
            "median": median(&mut first).map(|v| round(v, 1)),
            "max": first.iter().copied().reduce(f64::max).map(|v| round(v, 1)),
        },
        "latency_ms": null,
        "fps": {
            "min": fps.iter().copied().reduce(f64::min).map(|v| round(v, 2)),
            "median": median(&mut fps).map(|v| round(v, 2)),
        },
        "daemon": figures,
        "sender_drops": drops(&before, &after),
        "lost_packets": per_viewer.iter().map(|v| v.lost_packets).sum::<u64>(),
        "per_viewer": per_viewer,
    }))
}

/// Adds light viewers step by step; a step holds if every viewer got at least
/// [`FULL_RATE_SHARE`] of the frame rate and the daemon dropped nothing.
async fn scale_run(
    daemon: &Daemon,
    max: usize,
    fps: f64,
    window: Duration,
) -> Result<Value, BenchError> {
    let mut steps: Vec<usize> = [10, 25, 50, 75, 100, 125, 150, 200, 250, 300, 400, 500]
        .into_iter()
        .filter(|&n| n < max)
        .collect();
    steps.push(max);
    let mut viewers = Vec::new();
    let mut results = Vec::new();
    let mut held = 0;
    for n in steps {
        let more = light::connect_many(&daemon.base, n - viewers.len()).await;
        let step = match more {
            Ok(more) => {
                viewers.extend(more);
                match light::wait_first_frames(&viewers, FIRST_FRAME_LIMIT).await {
                    Ok(()) => scale_step(daemon, &viewers, fps, window).await?,
                    Err(error) => {
                        json!({ "viewers": n, "held": false, "error": error.to_string() })
                    }
                }
            }
            Err(error) => json!({ "viewers": n, "held": false, "error": error.to_string() }),
        };
        let ok = step["held"] == true;
        println!("fan-out {n:>4} light viewers: {step}");
        results.push(step);
        if !ok {
            break;
        }
        held = n;
    }
    for viewer in viewers {
        viewer.close().await;
    }
    Ok(json!({ "held_viewers": held, "full_rate_share": FULL_RATE_SHARE, "steps": results }))
}

async fn scale_step(
    daemon: &Daemon,
    viewers: &[light::LightViewer],
    fps: f64,
    window: Duration,
) -> Result<Value, BenchError> {
    tokio::time::sleep(SETTLE).await;
    let start: Vec<_> = viewers.iter().map(light::LightViewer::read).collect();
    let (figures, before, after) = daemon_window(daemon, window).await?;
    let rates: Vec<f64> = viewers.iter().zip(&start).map(|(v, s)| v.window(s).fps).collect();
    let min_fps = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let below = rates.iter().filter(|&&r| r < fps * FULL_RATE_SHARE).count();
    let sender_drops = drops(&before, &after);
    let dropped = after.delta(&before, VIDEO_DROPS) + after.delta(&before, OVERFLOW);
    Ok(json!({
        "viewers": viewers.len(),
        "held": below == 0 && dropped == 0.0,
        "min_fps": round(min_fps, 2),
        "viewers_below_full_rate": below,
        "daemon": figures,
        "sender_drops": sender_drops,
    }))
}

/// The slope of daemon CPU over light-viewer count, from the smallest to the largest light run.
fn cpu_per_extra_viewer(runs: &[Value]) -> Option<f64> {
    let light: Vec<(f64, f64)> = runs
        .iter()
        .filter(|r| r["kind"] == "light")
        .filter_map(|r| Some((r["viewers"].as_f64()?, r["daemon"]["cpu_cores"].as_f64()?)))
        .collect();
    let low = light.iter().copied().min_by(|a, b| a.0.total_cmp(&b.0))?;
    let high = light.iter().copied().max_by(|a, b| a.0.total_cmp(&b.0))?;
    (high.0 > low.0).then(|| round((high.1 - low.1) / (high.0 - low.0), 5))
}

fn print_row(run: &Value) {
    let num = |v: &Value| v.as_f64().map_or("–".to_owned(), |x| format!("{x:.1}"));
    println!(
        "| {} | {} | {} / {} | {} / {} | {} / {} | {} | {:.3} | {} | {} | {} / {} | {} |",
        run["kind"].as_str().unwrap_or("?"),
        run["viewers"],
        num(&run["first_frame_ms"]["median"]),
        num(&run["first_frame_ms"]["max"]),
        num(&run["latency_ms"]["p50"]),
        num(&run["latency_ms"]["p95"]),
        num(&run["fps"]["min"]),
        num(&run["fps"]["median"]),
        num(&run["daemon"]["capture_to_sent_ms"]),
        run["daemon"]["cpu_cores"].as_f64().unwrap_or(f64::NAN),
        num(&run["daemon"]["rss_mb"]),
        run["daemon"]["threads"],
        run["sender_drops"]["video"],
        run["sender_drops"]["audio"],
        run.get("lost_packets").map_or("–".to_owned(), Value::to_string),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_slope_uses_the_smallest_and_largest_light_runs() {
        let runs = [
            json!({"kind": "light", "viewers": 1, "daemon": {"cpu_cores": 0.06}}),
            json!({"kind": "chromium", "viewers": 4, "daemon": {"cpu_cores": 0.5}}),
            json!({"kind": "light", "viewers": 10, "daemon": {"cpu_cores": 0.087}}),
        ];
        assert_eq!(cpu_per_extra_viewer(&runs), Some(0.003));
        assert_eq!(cpu_per_extra_viewer(&runs[..2]), None);
    }

    #[test]
    fn mean_covers_only_the_observations_inside_the_window() {
        let sample = |count: f64, sum: f64| {
            Metrics(
                [("h_count".to_owned(), count), ("h_sum".to_owned(), sum)].into_iter().collect(),
            )
        };
        // 100 observations averaging 50 ms before the window; 300 averaging 2 ms inside it.
        let (before, after) = (sample(100.0, 5.0), sample(400.0, 5.6));
        assert_eq!(mean_ms(&before, &after, "h"), Some(2.0));
        assert_eq!(mean_ms(&after, &after, "h"), None, "nothing observed in the window");
        assert_eq!(mean_ms(&before, &after, "missing"), None);
    }
}
