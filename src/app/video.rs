//! Video wiring: which source to open, and the profile-level-id to advertise before it streams.

use super::{AppError, blocking};
use crate::config::{PixelFormatChoice, VideoConfig, VideoEncoderKind, VideoSourceKind};
use crate::encode::h264::{H264Settings, probe_profile, sps_profile};
use crate::encode::m2m;
use crate::hub::BitrateLimits;
use crate::peer::sdp::ProfileLevelId;
use crate::pipeline::{RawEncoder, VideoOpener, VideoTrack};
use crate::source::convert::Orientation;
use crate::source::exec::ExecSource;
use crate::source::test_video::TestVideoSource;
use crate::source::v4l2::V4l2Source;
use crate::source::{VideoFrame, VideoOutput, VideoSource};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long start-up waits for an H.264 source's first SPS to learn its profile.
const STREAM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The video track and the channel its real profile-level-id is published on.
pub(super) struct VideoSetup {
    pub track: VideoTrack,
    pub profile: watch::Receiver<ProfileLevelId>,
    /// The latest raw picture, for snapshots.
    pub still: watch::Receiver<Option<Arc<crate::media::RawFrame>>>,
}

pub(super) fn h264_settings(video: &VideoConfig) -> H264Settings {
    H264Settings {
        width: video.width,
        height: video.height,
        fps: video.fps,
        bitrate_kbps: video.bitrate_kbps,
        keyframe_interval_ms: video.keyframe_interval_ms,
    }
}

/// Where bandwidth adaptation may move the bitrate. Only openh264 takes a new target at run
/// time: with a hardware encoder, or H.264 from the camera or a command, the range collapses
/// to the configured bitrate so the reported target stays true.
pub(super) fn bitrate_limits(video: &VideoConfig, raw_encoder: &RawEncoder) -> BitrateLimits {
    let fixed = *raw_encoder != RawEncoder::Openh264
        || video.source == VideoSourceKind::Exec
        || video.encoder == VideoEncoderKind::Passthrough
        || video.format == PixelFormatChoice::H264;
    let start_kbps = video.bitrate_kbps;
    if fixed {
        BitrateLimits { start_kbps, min_kbps: start_kbps, max_kbps: start_kbps }
    } else {
        BitrateLimits {
            start_kbps,
            min_kbps: video.min_bitrate_kbps,
            max_kbps: video.max_bitrate_kbps,
        }
    }
}

fn orientation(video: &VideoConfig) -> Orientation {
    Orientation { rotate: video.rotate, hflip: video.hflip, vflip: video.vflip }
}

/// Builds the video track for `video`; blocking work (encoder and stream probes) runs off the
/// async runtime.
pub(super) async fn setup(video: &VideoConfig) -> Result<VideoSetup, AppError> {
    let orientation = orientation(video);
    let h264 = h264_settings(video);
    let raw_encoder = blocking({
        let kind = video.encoder;
        move || raw_encoder(kind)
    })
    .await??;
    let (open, may_encode_itself): (VideoOpener, bool) = match video.source {
        VideoSourceKind::Test => {
            let (width, height, fps) = (video.width, video.height, video.fps);
            (Arc::new(move || Ok(Box::new(TestVideoSource::new(width, height, fps)) as _)), false)
        }
        VideoSourceKind::Exec => {
            let command = video.command.clone();
            (Arc::new(move || Ok(Box::new(ExecSource::spawn(&command)?) as _)), true)
        }
        VideoSourceKind::V4l2 => {
            let video = video.clone();
            let hardware = matches!(raw_encoder, RawEncoder::V4l2m2m(_));
            (Arc::new(move || Ok(Box::new(V4l2Source::open(&video, hardware)?) as _)), true)
        }
    };
    // What openh264 would produce: the profile for raw sources, and the stand-in for a stream
    // that cannot be probed yet.
    let (width, height) = orientation.output_size(h264.width, h264.height);
    let settings = H264Settings { width, height, ..h264 };
    let sps = blocking(move || probe_profile(settings)).await??;
    let ours = ProfileLevelId {
        profile_idc: sps.profile_idc,
        profile_iop: sps.constraint_flags,
        level_idc: sps.level_idc,
    };
    let initial = if may_encode_itself {
        let open = open.clone();
        blocking(move || probe_stream(&open, ours)).await?
    } else {
        ours
    };
    let (profile_tx, profile) = watch::channel(initial);
    let (stills, still) = watch::channel(None);
    let track = VideoTrack {
        open,
        h264,
        orientation,
        raw_encoder,
        profile: Arc::new(profile_tx),
        stills: Arc::new(stills),
        motion: None,
    };
    Ok(VideoSetup { track, profile, still })
}

/// The runtime capability check for the hardware encoder: `auto` uses it when present,
/// `v4l2m2m` insists on it.
fn raw_encoder(kind: VideoEncoderKind) -> Result<RawEncoder, AppError> {
    match kind {
        VideoEncoderKind::Openh264 | VideoEncoderKind::Passthrough => Ok(RawEncoder::Openh264),
        VideoEncoderKind::Auto => Ok(m2m::device::find_encoder()
            .map(|path| {
                tracing::info!(device = %path.display(), "hardware H.264 encoder found");
                RawEncoder::V4l2m2m(path)
            })
            .unwrap_or(RawEncoder::Openh264)),
        VideoEncoderKind::V4l2m2m => m2m::device::find_encoder()
            .map(RawEncoder::V4l2m2m)
            .map_err(|e| AppError::Unsupported(format!("video.encoder = \"v4l2m2m\": {e}"))),
    }
}

/// Opens a source that may deliver H.264 briefly to read the profile from its first SPS. A
/// source that turns out raw gets `ours` (openh264's); one that is not there yet gets `ours` as
/// a stand-in, and the video thread publishes the real profile when it streams.
fn probe_stream(open: &VideoOpener, ours: ProfileLevelId) -> ProfileLevelId {
    let deadline = Instant::now() + STREAM_PROBE_TIMEOUT;
    let found = open().and_then(|mut source: Box<dyn VideoSource>| {
        if source.output() == VideoOutput::Raw {
            return Ok(Some(None));
        }
        while Instant::now() < deadline {
            if let VideoFrame::H264(unit) = source.next_frame()?
                && let Some(sps) = sps_profile(&unit.annex_b)
            {
                return Ok(Some(Some(sps)));
            }
        }
        Ok(None)
    });
    match found {
        Ok(Some(None)) => ours,
        Ok(Some(Some(sps))) => {
            let profile = ProfileLevelId {
                profile_idc: sps.profile_idc,
                profile_iop: sps.constraint_flags,
                level_idc: sps.level_idc,
            };
            tracing::info!(profile_level_id = %profile, "video stream probed");
            profile
        }
        Ok(None) => {
            tracing::warn!(
                assumed = %ours,
                "the video stream sent no SPS within {} s; advertising an assumed profile until it does",
                STREAM_PROBE_TIMEOUT.as_secs()
            );
            ours
        }
        Err(error) => {
            tracing::warn!(
                %error, assumed = %ours,
                "cannot probe the camera; advertising openh264's profile until it streams"
            );
            ours
        }
    }
}
