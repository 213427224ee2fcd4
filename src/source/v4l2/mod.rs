//! Cameras through Video4Linux2 (the `v4l` crate): open by path or stable name, negotiate the
//! mode closest to the config, set controls, and stream memory-mapped buffers.
//!
//! Frames carry the driver's buffer timestamp (CLOCK_MONOTONIC) mapped onto the pipeline's
//! clock, so capture time is when the sensor delivered, not when we got round to reading.

pub mod controls;
pub mod negotiate;

use super::clock::{MonotonicAnchor, timeval_duration};
use super::convert::{self, Layout};
use super::{AccessUnit, SourceError, VideoFrame, VideoOutput, VideoSource};
use crate::config::VideoConfig;
use bytes::Bytes;
use controls::{ControlInfo, ControlKind, control_key};
use negotiate::{CaptureFormat, Choice, OfferedMode, Wanted};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::buffer::Type as BufferType;
use v4l::capability::Flags as CapabilityFlags;
use v4l::control::{Control, MenuItem, Type as ControlType, Value};
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::{Device, Format, FourCC};

/// A camera that delivers nothing for this long is treated as gone and reopened.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(2);
/// Buffers queued with the driver: enough to ride out a slow encode without adding latency.
const BUFFERS: u32 = 4;
/// Asks an H.264 camera for an IDR, when it has the control.
pub const CID_FORCE_KEY_FRAME: u32 = v4l::v4l_sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME;

/// What a camera offers, read once per open.
#[derive(Debug, Clone)]
pub struct CameraInfo {
    pub path: PathBuf,
    pub driver: String,
    pub card: String,
    pub bus: String,
    pub modes: Vec<OfferedMode>,
    /// Fourccs the camera offers that camrtc cannot use, for `camrtc devices`.
    pub other_formats: Vec<String>,
    pub controls: Vec<ControlInfo>,
}

impl CameraInfo {
    pub fn has_h264(&self) -> bool {
        self.modes.iter().any(|m| m.format == CaptureFormat::H264)
    }
}

/// An error from an ioctl on `path`, classified: a vanished or busy device is worth retrying.
fn device_error(path: &Path, what: &str, error: io::Error) -> SourceError {
    let message = format!("{}: {what}: {error}", path.display());
    match error.raw_os_error() {
        Some(libc::ENOENT) => SourceError::Unavailable(format!(
            "{}: no such device (is the camera plugged in? `camrtc devices` lists cameras)",
            path.display()
        )),
        Some(
            libc::ENODEV | libc::ENXIO | libc::EIO | libc::EBUSY | libc::EAGAIN | libc::EACCES,
        ) => SourceError::Unavailable(message),
        _ => SourceError::Capture(message),
    }
}

/// Opens `path` and checks it is a streaming capture device.
pub fn open_device(path: &Path) -> Result<(Device, v4l::capability::Capabilities), SourceError> {
    let device = Device::with_path(path).map_err(|e| device_error(path, "cannot open", e))?;
    let caps = device.query_caps().map_err(|e| device_error(path, "QUERYCAP", e))?;
    let needed = CapabilityFlags::VIDEO_CAPTURE | CapabilityFlags::STREAMING;
    if !caps.capabilities.contains(needed) {
        let what = if caps.capabilities.contains(CapabilityFlags::VIDEO_CAPTURE_MPLANE) {
            // Raw Pi CSI sensors (unfed by libcamera) and some SoC ISPs only offer this API.
            "is a multi-planar capture device, which camrtc cannot capture from; for a \
             Raspberry Pi camera module use source = \"exec\" with rpicam-vid (see README \
             \"Hardware\")"
        } else {
            "is not a streaming capture device; `camrtc devices` lists the cameras"
        };
        return Err(SourceError::Config(format!(
            "{} ({}, {}) {what}",
            path.display(),
            caps.card,
            caps.driver
        )));
    }
    Ok((device, caps))
}

/// Reads the formats, sizes, rates and controls a camera offers.
pub fn describe(path: &Path, device: &Device, caps: &v4l::capability::Capabilities) -> CameraInfo {
    let mut modes = Vec::new();
    let mut other_formats = Vec::new();
    for description in device.enum_formats().unwrap_or_default() {
        let Some(format) = CaptureFormat::from_fourcc(description.fourcc.repr) else {
            let name = description.fourcc.to_string();
            if !name.trim().is_empty() {
                other_formats.push(name.trim().to_owned());
            }
            continue;
        };
        for size in device.enum_framesizes(description.fourcc).unwrap_or_default() {
            let sizes: Vec<(u32, u32)> = match size.size {
                FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
                // Continuous ranges: offer the sizes a viewer is likely to want.
                FrameSizeEnum::Stepwise(s) => [(640, 480), (1280, 720), (1920, 1080), (320, 240)]
                    .iter()
                    .map(|&(w, h)| {
                        (
                            negotiate::nearest_in_steps(w, s.min_width, s.max_width, s.step_width),
                            negotiate::nearest_in_steps(
                                h,
                                s.min_height,
                                s.max_height,
                                s.step_height,
                            ),
                        )
                    })
                    .collect(),
            };
            for (width, height) in sizes {
                let rates = frame_rates(device, description.fourcc, width, height);
                modes.push(OfferedMode { format, width, height, rates });
            }
        }
    }
    CameraInfo {
        path: path.to_owned(),
        driver: caps.driver.clone(),
        card: caps.card.clone(),
        bus: caps.bus.clone(),
        modes,
        other_formats,
        controls: device
            .query_controls()
            .unwrap_or_default()
            .into_iter()
            .map(control_info)
            .collect(),
    }
}

fn frame_rates(device: &Device, fourcc: FourCC, width: u32, height: u32) -> Vec<f64> {
    let fps = |f: v4l::Fraction| {
        (f.numerator > 0).then(|| f64::from(f.denominator) / f64::from(f.numerator))
    };
    device
        .enum_frameintervals(fourcc, width, height)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|interval| match interval.interval {
            FrameIntervalEnum::Discrete(f) => fps(f).into_iter().collect::<Vec<_>>(),
            // Min interval is the max rate; offering the ends and common rates is enough.
            FrameIntervalEnum::Stepwise(s) => {
                let (fastest, slowest) = (fps(s.min).unwrap_or(30.0), fps(s.max).unwrap_or(1.0));
                [fastest, 30.0, 15.0, slowest]
                    .into_iter()
                    .filter(|r| (slowest..=fastest).contains(r))
                    .collect()
            }
        })
        .collect()
}

fn control_info(description: v4l::control::Description) -> ControlInfo {
    let kind = match description.typ {
        ControlType::Integer | ControlType::Integer64 => {
            ControlKind::Integer { min: description.minimum, max: description.maximum }
        }
        ControlType::Boolean => ControlKind::Boolean,
        ControlType::Menu | ControlType::IntegerMenu => ControlKind::Menu(
            description
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|(index, item)| match item {
                    MenuItem::Name(name) => (index, name),
                    MenuItem::Value(value) => (index, value.to_string()),
                })
                .collect(),
        ),
        _ => ControlKind::Other,
    };
    ControlInfo { id: description.id, key: control_key(&description.name), kind }
}

struct Settings {
    wanted: Wanted,
    formats: Vec<CaptureFormat>,
}

/// A streaming camera.
pub struct V4l2Source {
    // Field order matters: the stream must be dropped (STREAMOFF, unmap) before the device.
    stream: Option<Stream<'static>>,
    device: Device,
    path: PathBuf,
    layout: Layout,
    format: CaptureFormat,
    can_force_keyframe: bool,
}

impl V4l2Source {
    /// Opens `video.device`, resolves `video.encoder` against what it offers (H.264 for
    /// passthrough, or a raw format), negotiates the mode, applies the controls and starts
    /// streaming. `hardware_encoder` says whether `auto` may choose the M2M encoder (which
    /// needs raw pictures).
    pub fn open(video: &VideoConfig, hardware_encoder: bool) -> Result<Self, SourceError> {
        let path = &PathBuf::from(&video.device);
        let (device, caps) = open_device(path)?;
        let info = describe(path, &device, &caps);
        let reorients = video.rotate != 0 || video.hflip || video.vflip;
        let encoder = negotiate::choose_encoder(
            video.encoder,
            video.format,
            info.has_h264(),
            hardware_encoder,
            reorients,
        )
        .map_err(|e| SourceError::Config(format!("{}: {e}", path.display())))?;
        let settings = Settings {
            wanted: Wanted { width: video.width, height: video.height, fps: video.fps },
            formats: negotiate::candidate_formats(encoder, video.format),
        };
        let Some(choice) = negotiate::choose_mode(&info.modes, &settings.formats, settings.wanted)
        else {
            let offered: Vec<String> = info.modes.iter().map(|m| m.format.to_string()).collect();
            let mut offered = offered;
            offered.dedup();
            let wanted: Vec<String> = settings.formats.iter().map(|f| f.to_string()).collect();
            return Err(SourceError::Config(format!(
                "{} offers none of {} (it offers {}); set video.format to one it has",
                path.display(),
                wanted.join(", "),
                if offered.is_empty() { "no formats".into() } else { offered.join(", ") }
            )));
        };
        let applied = controls::resolve(&video.controls, &info.controls)
            .map_err(|e| SourceError::Config(format!("{}: {e}", path.display())))?;
        for (id, value) in applied {
            device
                .set_control(Control { id, value: Value::Integer(value) })
                .map_err(|e| device_error(path, &format!("setting control {id:#x}"), e))?;
        }
        let format = set_mode(&device, path, choice)?;
        let fps = device
            .set_params(&v4l::video::capture::Parameters::new(v4l::Fraction::new(
                1000,
                (choice.fps * 1000.0).round() as u32,
            )))
            .map(|p| f64::from(p.interval.denominator) / f64::from(p.interval.numerator.max(1)))
            .unwrap_or(choice.fps);
        tracing::info!(
            device = %path.display(),
            card = %info.card,
            driver = %info.driver,
            format = %choice.format,
            width = format.width,
            height = format.height,
            fps,
            wanted = format!("{}x{}@{}", settings.wanted.width, settings.wanted.height, settings.wanted.fps),
            "camera mode chosen"
        );
        let mut stream = Stream::with_buffers(&device, BufferType::VideoCapture, BUFFERS)
            .map_err(|e| device_error(path, "REQBUFS/mmap", e))?;
        stream.set_timeout(FRAME_TIMEOUT);
        let layout = Layout {
            format: match choice.format {
                CaptureFormat::Raw(pixel) => pixel,
                // Unused for H.264, whose buffers are passed on whole.
                CaptureFormat::H264 => convert::PixelFormat::Mjpeg,
            },
            width: format.width,
            height: format.height,
            stride: format.stride,
        };
        let can_force_keyframe = info.controls.iter().any(|c| c.id == CID_FORCE_KEY_FRAME);
        Ok(Self {
            stream: Some(stream),
            device,
            path: path.clone(),
            layout,
            format: choice.format,
            can_force_keyframe,
        })
    }
}

/// S_FMT with the chosen mode; the driver may adjust it, so the result is what it really set.
fn set_mode(device: &Device, path: &Path, choice: Choice) -> Result<Format, SourceError> {
    let fourcc = FourCC::new(&choice.format.fourcc());
    let set = device
        .set_format(&Format::new(choice.width, choice.height, fourcc))
        .map_err(|e| device_error(path, "S_FMT", e))?;
    if set.fourcc != fourcc {
        return Err(SourceError::Config(format!(
            "{}: the driver refused {} and set {}",
            path.display(),
            choice.format,
            set.fourcc
        )));
    }
    Ok(set)
}

impl VideoSource for V4l2Source {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        let stream = self.stream.as_mut().expect("the stream lives as long as the source");
        let (buffer, meta) = CaptureStream::next(stream).map_err(|e| {
            let what = if e.kind() == io::ErrorKind::TimedOut {
                format!("no frame within {} s", FRAME_TIMEOUT.as_secs())
            } else {
                "capture".to_owned()
            };
            match e.raw_os_error() {
                Some(libc::ENODEV | libc::EIO) => {
                    SourceError::Capture(format!("{}: device vanished: {e}", self.path.display()))
                }
                _ => SourceError::Capture(format!("{}: {what}: {e}", self.path.display())),
            }
        })?;
        let used = (meta.bytesused as usize).min(buffer.len());
        let stamp = timeval_duration(meta.timestamp.sec, meta.timestamp.usec);
        // A driver without timestamps (zero) gets "now".
        let captured = if stamp.is_zero() {
            crate::media::CaptureTime::now()
        } else {
            // Read right after the dequeue, so the frame's age is measured against now.
            MonotonicAnchor::now().capture_time(stamp)
        };
        match self.format {
            CaptureFormat::H264 => Ok(VideoFrame::H264(AccessUnit {
                annex_b: Bytes::copy_from_slice(&buffer[..used]),
                captured,
            })),
            CaptureFormat::Raw(_) => convert::to_i420(self.layout, &buffer[..used], captured)
                .map(VideoFrame::Raw)
                .map_err(|e| SourceError::Capture(format!("{}: {e}", self.path.display()))),
        }
    }

    fn output(&self) -> VideoOutput {
        match self.format {
            CaptureFormat::H264 => VideoOutput::H264,
            CaptureFormat::Raw(_) => VideoOutput::Raw,
        }
    }

    fn request_keyframe(&mut self) -> bool {
        self.can_force_keyframe
            && self
                .device
                .set_control(Control { id: CID_FORCE_KEY_FRAME, value: Value::None })
                .is_ok()
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        // The crate's stream panics if STREAMOFF fails with anything but ENODEV; a camera that
        // died some other way must not take the video thread with it.
        if let Some(stream) = self.stream.take() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(stream)));
        }
    }
}
