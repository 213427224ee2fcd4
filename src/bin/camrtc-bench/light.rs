//! Light viewers: the shared test WHEP client in its counting mode, many per process.

use crate::BenchError;
use crate::whep_client::{LightStats, WhepClient};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub struct LightViewer {
    client: WhepClient,
    pub stats: Arc<LightStats>,
    posted: Instant,
}

/// Counters of one viewer at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    at: Instant,
    frames: u64,
    lost_packets: u64,
    keyframes: u64,
    broken_frames: u64,
}

/// One viewer over a window.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewerWindow {
    pub first_frame_ms: Option<f64>,
    pub fps: f64,
    pub lost_packets: u64,
    pub keyframes: u64,
    pub broken_frames: u64,
}

impl LightViewer {
    pub async fn connect(base: &str) -> Result<LightViewer, BenchError> {
        let stats = Arc::new(LightStats::default());
        let client = WhepClient::light(stats.clone()).await;
        let posted = Instant::now();
        client
            .post(&format!("{base}/whep"))
            .await
            .map_err(|(status, body)| BenchError::Viewer(format!("POST /whep: {status} {body}")))?;
        Ok(LightViewer { client, stats, posted })
    }

    pub fn first_frame(&self) -> Option<Duration> {
        self.stats.first_keyframe_at().map(|at| at.duration_since(self.posted))
    }

    pub fn read(&self) -> Reading {
        let s = &self.stats;
        Reading {
            at: Instant::now(),
            frames: s.frames.load(Ordering::Relaxed),
            lost_packets: s.lost_packets.load(Ordering::Relaxed),
            keyframes: s.keyframes.load(Ordering::Relaxed),
            broken_frames: s.broken_frames.load(Ordering::Relaxed),
        }
    }

    pub fn window(&self, start: &Reading) -> ViewerWindow {
        let end = self.read();
        let seconds = end.at.duration_since(start.at).as_secs_f64().max(1e-3);
        ViewerWindow {
            first_frame_ms: self.first_frame().map(|d| d.as_secs_f64() * 1000.0),
            fps: (end.frames - start.frames) as f64 / seconds,
            lost_packets: end.lost_packets - start.lost_packets,
            keyframes: end.keyframes - start.keyframes,
            broken_frames: end.broken_frames - start.broken_frames,
        }
    }

    pub async fn close(self) {
        self.client.close().await;
    }
}

/// Connects `count` more viewers, a few at a time (as people arrive, not all in one instant).
pub async fn connect_many(base: &str, count: usize) -> Result<Vec<LightViewer>, BenchError> {
    const AT_ONCE: usize = 10;
    let mut viewers = Vec::with_capacity(count);
    while viewers.len() < count {
        let batch = (count - viewers.len()).min(AT_ONCE);
        let joined = join_batch(base, batch).await;
        for viewer in joined {
            viewers.push(viewer?);
        }
    }
    Ok(viewers)
}

async fn join_batch(base: &str, batch: usize) -> Vec<Result<LightViewer, BenchError>> {
    let tasks: Vec<_> = (0..batch)
        .map(|_| {
            let base = base.to_owned();
            tokio::spawn(async move { LightViewer::connect(&base).await })
        })
        .collect();
    let mut results = Vec::with_capacity(batch);
    for task in tasks {
        results.push(
            task.await.unwrap_or_else(|e| Err(BenchError::Viewer(format!("viewer task: {e}")))),
        );
    }
    results
}

/// Waits until every viewer has shown a complete keyframe.
pub async fn wait_first_frames(viewers: &[LightViewer], limit: Duration) -> Result<(), BenchError> {
    let started = Instant::now();
    loop {
        let missing = viewers.iter().filter(|v| v.first_frame().is_none()).count();
        if missing == 0 {
            return Ok(());
        }
        if started.elapsed() > limit {
            return Err(BenchError::Viewer(format!(
                "{missing} of {} light viewers had no picture after {limit:?}",
                viewers.len()
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
