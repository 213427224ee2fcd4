//! Send-side congestion control per session: the webrtc crate's GCC fed by TWCC feedback.
//!
//! The crate boxes the estimator inside the interceptor chain, so the estimate is pushed out
//! (as in its bandwidth-estimation-from-disk example): a wrapper publishes the target into an
//! atomic after each call that can move it, and the session forwards it to the hub.
//!
//! The crate's pacer is left out on purpose. It paces each viewer to that viewer's estimate,
//! but with one shared encoder the stream may exceed a weak viewer's estimate (the bitrate floor,
//! or while the encoder is still coming down), and then the pacer's queue (4096 packets, tens of
//! seconds at 300 kbit/s) would turn the excess into unbounded latency instead of the hub's
//! drop-and-resync at a keyframe. Without it a frame leaves as a burst, which GCC's arrival
//! grouping (packets within 5 ms count as one group) is built to tolerate.

use crate::hub::{AUDIO_ALLOWANCE_BPS, BitrateLimits, ESTIMATE_SHARE};
use rtc::interceptor::{
    BandwidthEstimator, CongestionControlBuilder, EstimatorStats, Gcc, PacketReport, Registry,
    Slot, TwccSenderBuilder,
};
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpHeaderExtensionCapability, RtpCodecKind, TYPE_RTCP_FB_TRANSPORT_CC,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// GCC's floor, bits per second: below the video floor on purpose, so a very poor path shows
/// up in `/metrics` as what it is.
const GCC_MIN_BPS: f64 = 30_000.0;

/// The session's view of its estimate.
#[derive(Clone)]
pub struct Estimate(Arc<AtomicU64>);

impl Estimate {
    /// The latest target, bits per second.
    pub fn bits_per_second(&self) -> u64 {
        f64::from_bits(self.0.load(Ordering::Relaxed)) as u64
    }
}

/// Delegates to GCC and publishes its target after each call that can move it.
struct Reporting {
    inner: Gcc,
    target: Arc<AtomicU64>,
}

impl Reporting {
    fn publish(&self) {
        self.target.store(self.inner.target_bitrate().to_bits(), Ordering::Relaxed);
    }
}

impl BandwidthEstimator for Reporting {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        self.inner.on_reports(now, reports);
        self.publish();
    }

    fn target_bitrate(&self) -> f64 {
        self.inner.target_bitrate()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
        self.publish();
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn stats(&self) -> EstimatorStats {
        self.inner.stats()
    }
}

/// Adds GCC over TWCC to `registry` and advertises transport-cc to the viewer. The estimate
/// starts where the shared encoder stands, so a joining viewer does not move it by itself.
pub fn configure(
    registry: Registry,
    engine: &mut MediaEngine,
    limits: BitrateLimits,
    current_kbps: u32,
) -> Result<(Registry, Estimate), rtc::shared::error::Error> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        engine.register_feedback(
            RTCPFeedback { typ: TYPE_RTCP_FB_TRANSPORT_CC.to_owned(), parameter: String::new() },
            kind,
        );
        engine.register_header_extension(
            RTCRtpHeaderExtensionCapability { uri: rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned() },
            kind,
            None,
        )?;
    }
    // The inverse of the hub's policy: the path estimate at which video gets `kbps`.
    let to_bps = |kbps: u32| f64::from(kbps) * 1000.0 / ESTIMATE_SHARE + AUDIO_ALLOWANCE_BPS as f64;
    let max = to_bps(limits.max_kbps);
    let gcc = Gcc::new(to_bps(current_kbps), GCC_MIN_BPS, max);
    let target = Arc::new(AtomicU64::new(gcc.target_bitrate().to_bits()));
    let estimator = Reporting { inner: gcc, target: target.clone() };
    let registry = registry
        .with(Slot::CongestionControl, CongestionControlBuilder::new(estimator).build())
        .with(Slot::TwccSender, TwccSenderBuilder::new().build());
    Ok((registry, Estimate(target)))
}
