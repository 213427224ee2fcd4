//! `/metrics` for Prometheus and `/api/status` for people and pages.
//!
//! Both are rendered from one snapshot of the hub's counters taken at request time: the hub owns
//! the numbers and nothing else keeps a second copy that could drift from them.

use crate::hub::{HubStatus, LATENCY_BOUNDS_MS, LatencyHistogram};
use crate::source::health::{SourceHealth, SourceState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// What one scrape reports.
#[derive(Debug)]
pub struct Snapshot {
    pub hub: HubStatus,
    pub sessions: usize,
    /// Source states by track name.
    pub sources: Vec<(&'static str, SourceHealth)>,
}

/// One counter family: `name{label="…"}` for each of `values`.
fn counter_family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'static str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value_name, value) in values {
        ConstCounter::new(value).encode(family.encode_family(&[(label, value_name)])?)?;
    }
    Ok(())
}

/// The OpenMetrics text of `snapshot`.
pub fn render(snapshot: Snapshot) -> String {
    let mut registry = Registry::with_prefix("camrtc");
    registry.register_collector(Box::new(snapshot));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)
        .expect("writing to a String cannot fail");
    text
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let hub = &self.hub;
        let gauge = |encoder: &mut DescriptorEncoder, name, help, value: i64| {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Gauge,
            )?)
        };
        gauge(
            &mut encoder,
            "sessions",
            "WHEP sessions, connected or connecting.",
            count(self.sessions),
        )?;
        gauge(&mut encoder, "viewers", "Viewers joined to the hub.", count(hub.viewers))?;
        gauge(
            &mut encoder,
            "viewers_active",
            "Viewers whose connection is up and who receive media.",
            count(hub.active_viewers),
        )?;
        gauge(
            &mut encoder,
            "pipeline_running",
            "1 while capture and encoding run (on demand: while someone watches).",
            i64::from(hub.pipeline_running),
        )?;
        gauge(
            &mut encoder,
            "video_bitrate_target_bits_per_second",
            "The H.264 encoder's target bitrate, as bandwidth adaptation last set it.",
            i64::from(hub.video_bitrate_target_kbps) * 1000,
        )?;
        let mut estimates = encoder.encode_descriptor(
            "viewer_bandwidth_estimate_bits_per_second",
            "Each connected viewer's congestion-control (GCC) estimate of its path.",
            None,
            MetricType::Gauge,
        )?;
        for estimate in &hub.bandwidth_estimates {
            let value = i64::try_from(estimate.bits_per_second).unwrap_or(i64::MAX);
            let viewer = estimate.viewer.to_string();
            ConstGauge::new(value).encode(estimates.encode_family(&[("viewer", viewer)])?)?;
        }

        let mut up = encoder.encode_descriptor(
            "source_up",
            "1 while a source delivers; 0 while it is retrying or stopped.",
            None,
            MetricType::Gauge,
        )?;
        for (track, health) in &self.sources {
            let value = i64::from(health.state == SourceState::Running);
            ConstGauge::new(value).encode(up.encode_family(&[("track", *track)])?)?;
        }

        let counter = |encoder: &mut DescriptorEncoder, name, help, value: u64| {
            ConstCounter::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                MetricType::Counter,
            )?)
        };
        counter_family(
            &mut encoder,
            "frames",
            "Encoded frames from the pipeline (video access units, 20 ms audio packets).",
            "track",
            [("video", hub.video_frames), ("audio", hub.audio_frames)],
        )?;
        counter(
            &mut encoder,
            "frames_delivered",
            "Frames queued to viewers, summed over viewers.",
            hub.frames_delivered,
        )?;
        let video_dropped = hub.dropped_frames.saturating_sub(hub.dropped_audio_frames);
        counter_family(
            &mut encoder,
            "frames_dropped",
            "Frames dropped because a viewer's queue was full (that viewer resumes at the next keyframe).",
            "track",
            [("video", video_dropped), ("audio", hub.dropped_audio_frames)],
        )?;
        counter(
            &mut encoder,
            "pipeline_overflow",
            "Frames the pipeline could not hand to the hub because it was behind.",
            hub.pipeline_overflow,
        )?;
        counter(&mut encoder, "keyframes", "IDR frames encoded.", hub.keyframes)?;
        let reasons = hub.keyframe_requests;
        counter_family(
            &mut encoder,
            "keyframe_requests",
            "Keyframe requests by reason, before coalescing.",
            "reason",
            [
                ("join", reasons.join),
                ("picture_loss", reasons.picture_loss),
                ("resync", reasons.resync),
            ],
        )?;
        counter(
            &mut encoder,
            "keyframe_requests_sent",
            "Keyframe requests passed to the encoder (at most one per 250 ms).",
            hub.keyframe_requests_sent,
        )?;
        counter(
            &mut encoder,
            "gop_replays",
            "Viewers started from a recent keyframe instead of a new one.",
            hub.gop_replays,
        )?;

        let causes = hub.keyframe_causes;
        counter_family(
            &mut encoder,
            "keyframes_produced",
            "IDR frames encoded, by cause: start (source opened), requested (by the hub), periodic.",
            "cause",
            [
                ("start", causes.start),
                ("requested", causes.requested),
                ("periodic", causes.periodic),
            ],
        )?;
        let d = hub.drops;
        counter_family(
            &mut encoder,
            "drops",
            "Frames lost before reaching a viewer, by reason: a viewer's queue full (video or \
             audio), video skipped until a keyframe after such a loss, the encoder's rate control \
             skipping a picture, pictures left out unencoded under CPU pressure, the hub behind \
             the pipeline, a transport write failing.",
            "reason",
            [
                ("video_queue_full", d.video_queue_full),
                ("video_resync", d.video_resync),
                ("audio_queue_full", d.audio_queue_full),
                ("encoder_skip", d.encoder_skip),
                ("cpu_pressure", d.cpu_pressure),
                ("pipeline_overflow", hub.pipeline_overflow),
                ("send_error", d.send_error),
            ],
        )?;

        for (name, help, histogram) in [
            (
                "encode_time",
                "Time the video thread spent per picture in orientation and encoding.",
                &hub.encode_time,
            ),
            (
                "capture_to_encoded",
                "Video frames' time from capture until the encoder returned.",
                &hub.capture_to_encoded,
            ),
            (
                "capture_to_hub",
                "Video frames' time from capture to the hub: conversion and encoding.",
                &hub.capture_to_hub,
            ),
            (
                "capture_to_sent",
                "Video frames' time from capture until a viewer's session handed their packets \
                 to its transport (one observation per frame per viewer).",
                &hub.capture_to_sent,
            ),
        ] {
            histogram_metric(&mut encoder, name, help, histogram)?;
        }
        Ok(())
    }
}

fn histogram_metric(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    histogram: &LatencyHistogram,
) -> Result<(), std::fmt::Error> {
    // Per-bucket counts: the encoder accumulates them, and writes f64::MAX as "+Inf".
    let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_MS
        .iter()
        .map(|&bound| bound as f64 / 1000.0)
        .chain([f64::MAX])
        .zip(histogram.counts)
        .collect();
    encoder
        .encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?
        .encode_histogram::<Vec<(String, String)>>(
            histogram.sum.as_secs_f64(),
            histogram.count(),
            &buckets,
            None,
        )
}

fn count(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::ViewerEstimate;
    use std::time::Duration;

    #[test]
    fn a_snapshot_renders_as_openmetrics() {
        let mut hub = HubStatus {
            viewers: 3,
            active_viewers: 2,
            pipeline_running: true,
            video_frames: 90,
            audio_frames: 150,
            dropped_frames: 7,
            dropped_audio_frames: 2,
            video_bitrate_target_kbps: 1000,
            bandwidth_estimates: vec![
                ViewerEstimate { viewer: 3, bits_per_second: 2_500_000 },
                ViewerEstimate { viewer: 7, bits_per_second: 310_000 },
            ],
            ..HubStatus::default()
        };
        hub.keyframe_requests.picture_loss = 4;
        hub.keyframe_causes.periodic = 6;
        hub.drops.encoder_skip = 3;
        hub.drops.cpu_pressure = 9;
        hub.encode_time.observe(Duration::from_micros(4500));
        hub.capture_to_sent.observe(Duration::from_millis(12));
        for millis in [1, 3, 3, 40, 2000] {
            hub.capture_to_hub.observe(Duration::from_millis(millis));
        }
        let text = render(Snapshot {
            hub,
            sessions: 3,
            sources: vec![
                ("video", SourceHealth::running()),
                ("audio", SourceHealth::retrying("gone")),
            ],
        });
        for line in [
            "camrtc_viewers_active 2",
            "camrtc_pipeline_running 1",
            "camrtc_video_bitrate_target_bits_per_second 1000000",
            "camrtc_viewer_bandwidth_estimate_bits_per_second{viewer=\"3\"} 2500000",
            "camrtc_viewer_bandwidth_estimate_bits_per_second{viewer=\"7\"} 310000",
            "camrtc_source_up{track=\"video\"} 1",
            "camrtc_source_up{track=\"audio\"} 0",
            "camrtc_frames_total{track=\"audio\"} 150",
            "camrtc_frames_dropped_total{track=\"video\"} 5",
            "camrtc_frames_dropped_total{track=\"audio\"} 2",
            "camrtc_keyframe_requests_total{reason=\"picture_loss\"} 4",
            "camrtc_capture_to_hub_seconds_bucket{le=\"0.001\"} 1",
            "camrtc_capture_to_hub_seconds_bucket{le=\"0.005\"} 3",
            "camrtc_capture_to_hub_seconds_bucket{le=\"0.05\"} 4",
            "camrtc_capture_to_hub_seconds_bucket{le=\"+Inf\"} 5",
            "camrtc_capture_to_hub_seconds_count 5",
            "camrtc_keyframes_produced_total{cause=\"periodic\"} 6",
            "camrtc_drops_total{reason=\"encoder_skip\"} 3",
            "camrtc_drops_total{reason=\"cpu_pressure\"} 9",
            "camrtc_encode_time_seconds_bucket{le=\"0.002\"} 0",
            "camrtc_encode_time_seconds_bucket{le=\"0.005\"} 1",
            "camrtc_capture_to_sent_seconds_bucket{le=\"0.02\"} 1",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }
}
