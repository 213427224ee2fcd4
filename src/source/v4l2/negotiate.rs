//! Choosing a capture mode from what a camera advertises: a pure function of the offered
//! formats, sizes and frame intervals and of the config, so it is tested without a camera.

use crate::config::{PixelFormatChoice, VideoEncoderKind};
use crate::source::convert::PixelFormat;
use std::fmt;

/// A format camrtc can capture: raw (converted, then encoded here) or the camera's H.264.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureFormat {
    Raw(PixelFormat),
    H264,
}

impl CaptureFormat {
    /// Raw formats in order of preference: least conversion work first, MJPEG (a full JPEG
    /// decode per frame) last.
    pub const RAW_PREFERENCE: [CaptureFormat; 5] = [
        CaptureFormat::Raw(PixelFormat::Yu12),
        CaptureFormat::Raw(PixelFormat::Nv12),
        CaptureFormat::Raw(PixelFormat::Yuyv),
        CaptureFormat::Raw(PixelFormat::Uyvy),
        CaptureFormat::Raw(PixelFormat::Mjpeg),
    ];

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            CaptureFormat::Raw(PixelFormat::Yuyv) => *b"YUYV",
            CaptureFormat::Raw(PixelFormat::Uyvy) => *b"UYVY",
            CaptureFormat::Raw(PixelFormat::Nv12) => *b"NV12",
            CaptureFormat::Raw(PixelFormat::Yu12) => *b"YU12",
            CaptureFormat::Raw(PixelFormat::Mjpeg) => *b"MJPG",
            CaptureFormat::H264 => *b"H264",
        }
    }

    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<Self> {
        let all = Self::RAW_PREFERENCE.into_iter().chain([CaptureFormat::H264]);
        // JPEG is what some cameras call their MJPEG.
        let fourcc = if &fourcc == b"JPEG" { *b"MJPG" } else { fourcc };
        all.into_iter().find(|f| f.fourcc() == fourcc)
    }

    pub fn from_config(choice: PixelFormatChoice) -> Option<Self> {
        Some(match choice {
            PixelFormatChoice::Auto => return None,
            PixelFormatChoice::Yuyv => CaptureFormat::Raw(PixelFormat::Yuyv),
            PixelFormatChoice::Uyvy => CaptureFormat::Raw(PixelFormat::Uyvy),
            PixelFormatChoice::Nv12 => CaptureFormat::Raw(PixelFormat::Nv12),
            PixelFormatChoice::Yu12 => CaptureFormat::Raw(PixelFormat::Yu12),
            PixelFormatChoice::Mjpeg => CaptureFormat::Raw(PixelFormat::Mjpeg),
            PixelFormatChoice::H264 => CaptureFormat::H264,
        })
    }
}

impl fmt::Display for CaptureFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.fourcc()))
    }
}

/// One size a camera offers in one format, with the frame rates it offers there.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferedMode {
    pub format: CaptureFormat,
    pub width: u32,
    pub height: u32,
    /// Frames per second, as the camera's frame intervals give them (1/interval).
    pub rates: Vec<f64>,
}

/// What the config asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

/// The mode to capture in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub format: CaptureFormat,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// The encoder once `auto` is resolved against the camera and the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    Openh264,
    Passthrough,
    V4l2m2m,
}

/// Resolves `video.encoder`: `auto` is passthrough when the camera offers H.264 (and the
/// picture need not be rotated or flipped), else the hardware encoder when there is one, else
/// openh264. Errors say why an explicit choice cannot work here.
pub fn choose_encoder(
    setting: VideoEncoderKind,
    format: PixelFormatChoice,
    camera_has_h264: bool,
    hardware_encoder: bool,
    reorients: bool,
) -> Result<Encoder, String> {
    let wants_h264 = matches!(format, PixelFormatChoice::Auto | PixelFormatChoice::H264);
    match setting {
        VideoEncoderKind::Auto if camera_has_h264 && wants_h264 && !reorients => {
            Ok(Encoder::Passthrough)
        }
        VideoEncoderKind::Auto if format == PixelFormatChoice::H264 => {
            Err("video.format = \"h264\", but the camera offers no H.264".into())
        }
        VideoEncoderKind::Auto if hardware_encoder => Ok(Encoder::V4l2m2m),
        VideoEncoderKind::Auto | VideoEncoderKind::Openh264 => Ok(Encoder::Openh264),
        VideoEncoderKind::Passthrough if camera_has_h264 => Ok(Encoder::Passthrough),
        VideoEncoderKind::Passthrough => Err(
            "video.encoder = \"passthrough\", but the camera offers no H.264; use \"auto\" or \"openh264\""
                .into(),
        ),
        VideoEncoderKind::V4l2m2m if hardware_encoder => Ok(Encoder::V4l2m2m),
        VideoEncoderKind::V4l2m2m => Err(
            "video.encoder = \"v4l2m2m\", but no V4L2 memory-to-memory H.264 encoder was found \
             (on a Raspberry Pi 4 it is /dev/video11, bcm2835-codec); use \"auto\" or \"openh264\""
                .into(),
        ),
    }
}

/// The formats worth capturing for `encoder`, best first; `format` narrows them to one.
pub fn candidate_formats(encoder: Encoder, format: PixelFormatChoice) -> Vec<CaptureFormat> {
    match (CaptureFormat::from_config(format), encoder) {
        (Some(one), _) => vec![one],
        (None, Encoder::Passthrough) => vec![CaptureFormat::H264],
        (None, _) => CaptureFormat::RAW_PREFERENCE.to_vec(),
    }
}

/// Picks the mode closest to `wanted`: nearest size first (a wrong size costs more than a
/// slower conversion), then nearest frame rate (a higher one on a tie), then the earlier format
/// in `formats`. None when the camera offers none of `formats`.
pub fn choose_mode(
    offered: &[OfferedMode],
    formats: &[CaptureFormat],
    wanted: Wanted,
) -> Option<Choice> {
    let size_distance = |m: &OfferedMode| {
        u64::from(m.width.abs_diff(wanted.width)) + u64::from(m.height.abs_diff(wanted.height))
    };
    let best_rate = |m: &OfferedMode| {
        m.rates.iter().copied().filter(|r| r.is_finite() && *r > 0.0).min_by(|a, b| {
            let (da, db) = ((a - f64::from(wanted.fps)).abs(), (b - f64::from(wanted.fps)).abs());
            da.total_cmp(&db).then(b.total_cmp(a))
        })
    };
    offered
        .iter()
        .filter_map(|m| {
            let rank = formats.iter().position(|f| *f == m.format)?;
            // A camera that lists no intervals for a size still streams at some rate.
            let fps = best_rate(m).unwrap_or(f64::from(wanted.fps));
            Some((m, rank, fps))
        })
        .min_by(|(a, rank_a, fps_a), (b, rank_b, fps_b)| {
            let rate_gap = |fps: f64| (fps - f64::from(wanted.fps)).abs();
            size_distance(a)
                .cmp(&size_distance(b))
                // Of two sizes equally far, the larger keeps more detail.
                .then((b.width * b.height).cmp(&(a.width * a.height)))
                .then(rate_gap(*fps_a).total_cmp(&rate_gap(*fps_b)))
                .then(fps_b.total_cmp(fps_a))
                .then(rank_a.cmp(rank_b))
        })
        .map(|(m, _, fps)| Choice { format: m.format, width: m.width, height: m.height, fps })
}

/// The size a stepwise (continuous) range offers closest to `wanted`: clamped into range and
/// rounded to the step.
pub fn nearest_in_steps(wanted: u32, min: u32, max: u32, step: u32) -> u32 {
    let clamped = wanted.clamp(min, max.max(min));
    let step = step.max(1);
    let steps = (clamped - min + step / 2) / step;
    (min + steps * step).min(max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(format: CaptureFormat, width: u32, height: u32, rates: &[f64]) -> OfferedMode {
        OfferedMode { format, width, height, rates: rates.to_vec() }
    }

    const YUYV: CaptureFormat = CaptureFormat::Raw(PixelFormat::Yuyv);
    const NV12: CaptureFormat = CaptureFormat::Raw(PixelFormat::Nv12);
    const MJPG: CaptureFormat = CaptureFormat::Raw(PixelFormat::Mjpeg);

    /// A typical UVC webcam: YUYV is slow at large sizes, MJPEG and H.264 are not.
    fn webcam() -> Vec<OfferedMode> {
        vec![
            mode(YUYV, 640, 480, &[30.0, 15.0]),
            mode(YUYV, 1280, 720, &[10.0, 5.0]),
            mode(MJPG, 640, 480, &[30.0]),
            mode(MJPG, 1280, 720, &[30.0, 15.0]),
            mode(CaptureFormat::H264, 1280, 720, &[30.0]),
            mode(CaptureFormat::H264, 1920, 1080, &[30.0]),
        ]
    }

    fn raw() -> Vec<CaptureFormat> {
        candidate_formats(Encoder::Openh264, PixelFormatChoice::Auto)
    }

    #[test]
    fn size_first_then_rate_then_format_preference() {
        let wanted = Wanted { width: 1280, height: 720, fps: 30 };
        let choice = choose_mode(&webcam(), &raw(), wanted).expect("a mode");
        assert_eq!(choice, Choice { format: MJPG, width: 1280, height: 720, fps: 30.0 });

        let wanted = Wanted { width: 640, height: 480, fps: 30 };
        let choice = choose_mode(&webcam(), &raw(), wanted).expect("a mode");
        assert_eq!(choice.format, YUYV, "YUYV beats MJPEG when both fit");

        let wanted = Wanted { width: 1280, height: 720, fps: 12 };
        let choice = choose_mode(&webcam(), &[YUYV], wanted).expect("a mode");
        assert_eq!((choice.width, choice.fps), (1280, 10.0), "closest rate");

        let wanted = Wanted { width: 1920, height: 1080, fps: 30 };
        let h264 = candidate_formats(Encoder::Passthrough, PixelFormatChoice::Auto);
        let choice = choose_mode(&webcam(), &h264, wanted).expect("a mode");
        assert_eq!((choice.format, choice.width), (CaptureFormat::H264, 1920));
        let choice = choose_mode(&webcam(), &raw(), wanted).expect("a mode");
        assert_eq!((choice.format, choice.width, choice.height), (MJPG, 1280, 720), "closest raw");

        assert_eq!(choose_mode(&webcam(), &[NV12], wanted), None, "not offered");
    }

    #[test]
    fn equal_distances_prefer_larger_sizes_and_higher_rates() {
        let offered = [mode(NV12, 320, 240, &[10.0, 20.0]), mode(NV12, 480, 360, &[15.0])];
        let choice = choose_mode(&offered, &[NV12], Wanted { width: 400, height: 300, fps: 15 });
        assert_eq!(choice.map(|c| (c.width, c.fps)), Some((480, 15.0)));
        let choice =
            choose_mode(&offered[..1], &[NV12], Wanted { width: 320, height: 240, fps: 15 });
        assert_eq!(choice.map(|c| c.fps), Some(20.0));
    }

    #[test]
    fn stepwise_ranges_round_to_their_step() {
        assert_eq!(nearest_in_steps(1280, 16, 1920, 16), 1280);
        assert_eq!(nearest_in_steps(1000, 48, 4096, 64), 1008);
        assert_eq!(nearest_in_steps(4000, 48, 1920, 2), 1920);
        assert_eq!(nearest_in_steps(10, 48, 1920, 2), 48);
        assert_eq!(nearest_in_steps(321, 2, 640, 0), 321, "a zero step is treated as 1");
    }

    #[test]
    fn encoder_auto_prefers_passthrough_then_hardware_then_software() {
        use PixelFormatChoice as F;
        use VideoEncoderKind as K;
        assert_eq!(choose_encoder(K::Auto, F::Auto, true, true, false), Ok(Encoder::Passthrough));
        assert_eq!(choose_encoder(K::Auto, F::Auto, true, true, true), Ok(Encoder::V4l2m2m));
        assert_eq!(choose_encoder(K::Auto, F::Yuyv, true, false, false), Ok(Encoder::Openh264));
        assert_eq!(choose_encoder(K::Auto, F::Auto, false, false, false), Ok(Encoder::Openh264));
        assert_eq!(choose_encoder(K::Openh264, F::Auto, true, true, false), Ok(Encoder::Openh264));
        let error = choose_encoder(K::Passthrough, F::Auto, false, true, false).unwrap_err();
        assert!(error.contains("offers no H.264"), "{error}");
        let error = choose_encoder(K::V4l2m2m, F::Auto, true, false, false).unwrap_err();
        assert!(error.contains("/dev/video11"), "{error}");
        let error = choose_encoder(K::Auto, F::H264, false, true, false).unwrap_err();
        assert!(error.contains("offers no H.264"), "{error}");
    }

    #[test]
    fn fourcc_names_round_trip() {
        for format in CaptureFormat::RAW_PREFERENCE.into_iter().chain([CaptureFormat::H264]) {
            assert_eq!(CaptureFormat::from_fourcc(format.fourcc()), Some(format));
        }
        assert_eq!(CaptureFormat::from_fourcc(*b"JPEG"), Some(MJPG));
        assert_eq!(CaptureFormat::from_fourcc(*b"RGB3"), None);
        assert_eq!(CaptureFormat::H264.to_string(), "H264");
    }
}
