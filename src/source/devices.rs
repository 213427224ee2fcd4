//! `camrtc devices`: what a user needs to fill in `[video]` and `[audio]`: every camera with
//! its driver, card, bus, stable names, formats, sizes, frame rates and controls, then the ALSA
//! devices (listed by `alsa::devices`).

use super::v4l2::controls::ControlKind;
use super::v4l2::{self, CameraInfo};
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// V4L2 device nodes, in numeric order (`/dev/video2` before `/dev/video10`).
pub fn video_nodes(dev: &Path) -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir(dev)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let number = name.strip_prefix("video")?.parse().ok()?;
                    Some((number, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes.into_iter().map(|(_, path)| path).collect()
}

/// The stable names (`/dev/v4l/by-id/…`, `/dev/v4l/by-path/…`) that point at `node`.
fn stable_names(node: &Path) -> Vec<PathBuf> {
    let target = std::fs::canonicalize(node).unwrap_or_else(|_| node.to_owned());
    ["/dev/v4l/by-id", "/dev/v4l/by-path"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().filter_map(Result::ok))
        .map(|e| e.path())
        .filter(|link| std::fs::canonicalize(link).is_ok_and(|t| t == target))
        .collect()
}

/// Every camera camrtc can capture from, described; nodes that are not capture devices
/// (metadata nodes, codecs) are skipped.
pub fn cameras() -> Vec<CameraInfo> {
    video_nodes(Path::new("/dev"))
        .into_iter()
        .filter_map(|node| {
            let (device, caps) = v4l2::open_device(&node).ok()?;
            Some(v4l2::describe(&node, &device, &caps))
        })
        .collect()
}

/// The text `camrtc devices` prints about cameras.
pub fn cameras_report(cameras: &[CameraInfo]) -> String {
    let mut out =
        String::from("Cameras (video.source = \"v4l2\", video.device = one of the paths):\n");
    if cameras.is_empty() {
        out.push_str("  none found (no /dev/video* capture device, or no permission to open it)\n");
    }
    for camera in cameras {
        let _ = writeln!(out, "\n  {}", camera.path.display());
        for name in stable_names(&camera.path) {
            let _ = writeln!(out, "    also: {}", name.display());
        }
        let _ = writeln!(
            out,
            "    card: {}  driver: {}  bus: {}",
            camera.card, camera.driver, camera.bus
        );
        let mut formats: Vec<_> = camera.modes.iter().map(|m| m.format).collect();
        formats.dedup();
        for format in formats {
            let _ =
                writeln!(out, "    format {format} (video.format = \"{}\"):", format_key(format));
            for mode in camera.modes.iter().filter(|m| m.format == format) {
                let rates: Vec<String> = mode
                    .rates
                    .iter()
                    .map(|r| {
                        format!("{r:.4}").trim_end_matches('0').trim_end_matches('.').to_owned()
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "      {}x{} @ {} fps",
                    mode.width,
                    mode.height,
                    rates.join(", ")
                );
            }
        }
        if !camera.other_formats.is_empty() {
            let _ = writeln!(
                out,
                "    other formats (not usable): {}",
                camera.other_formats.join(", ")
            );
        }
        if camera.controls.iter().any(|c| c.kind != ControlKind::Other) {
            let _ = writeln!(out, "    controls ([video.controls]):");
        }
        for control in camera.controls.iter() {
            let range = match &control.kind {
                ControlKind::Integer { min, max } => format!("{min} to {max}"),
                ControlKind::Boolean => "true or false".to_owned(),
                ControlKind::Menu(items) => items
                    .iter()
                    .map(|(i, label)| format!("{i} = {label:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                ControlKind::Other => continue,
            };
            let _ = writeln!(out, "      {}: {range}", control.key);
        }
    }
    out
}

fn format_key(format: v4l2::negotiate::CaptureFormat) -> &'static str {
    use super::convert::PixelFormat;
    use v4l2::negotiate::CaptureFormat;
    match format {
        CaptureFormat::Raw(PixelFormat::Yuyv) => "yuyv",
        CaptureFormat::Raw(PixelFormat::Uyvy) => "uyvy",
        CaptureFormat::Raw(PixelFormat::Nv12) => "nv12",
        CaptureFormat::Raw(PixelFormat::Yu12) => "yu12",
        CaptureFormat::Raw(PixelFormat::Mjpeg) => "mjpeg",
        CaptureFormat::H264 => "h264",
    }
}

/// Everything `camrtc devices` prints: cameras, the hardware encoder, then sound cards.
pub fn report() -> String {
    let sound = match super::alsa::devices::list() {
        Ok(devices) => super::alsa::devices::format(&devices),
        Err(error) => format!("ALSA sound cards: cannot list them: {error}\n"),
    };
    let encoder = match crate::encode::m2m::device::find_encoder() {
        Ok(path) => format!(
            "Hardware H.264 encoder (video.encoder = \"auto\" or \"v4l2m2m\"): {}\n",
            path.display()
        ),
        Err(_) => "Hardware H.264 encoder: none (video.encoder = \"auto\" uses openh264)\n".into(),
    };
    format!("{}\n{encoder}\n{sound}", cameras_report(&cameras()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::convert::PixelFormat;
    use crate::source::v4l2::controls::ControlInfo;
    use crate::source::v4l2::negotiate::{CaptureFormat, OfferedMode};

    #[test]
    fn nodes_sort_numerically_and_skip_other_files() {
        let dir = std::env::temp_dir().join(format!("camrtc-devices-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["video10", "video2", "videox", "media0"] {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        let names: Vec<String> = video_nodes(&dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(names, ["video2", "video10"]);
    }

    #[test]
    fn report_lists_formats_sizes_rates_and_controls() {
        let camera = CameraInfo {
            path: "/dev/video0".into(),
            driver: "vivid".into(),
            card: "vivid".into(),
            bus: "platform:vivid-000".into(),
            modes: vec![
                OfferedMode {
                    format: CaptureFormat::Raw(PixelFormat::Yuyv),
                    width: 320,
                    height: 240,
                    rates: vec![30.0, 15.0, 7.5],
                },
                OfferedMode {
                    format: CaptureFormat::Raw(PixelFormat::Yuyv),
                    width: 640,
                    height: 480,
                    rates: vec![30.0],
                },
                OfferedMode {
                    format: CaptureFormat::Raw(PixelFormat::Nv12),
                    width: 320,
                    height: 240,
                    rates: vec![15.0],
                },
            ],
            other_formats: vec!["RGB3".into()],
            controls: vec![
                ControlInfo {
                    id: 1,
                    key: "brightness".into(),
                    kind: ControlKind::Integer { min: 0, max: 255 },
                },
                ControlInfo { id: 2, key: "disconnect".into(), kind: ControlKind::Other },
            ],
        };
        let text = cameras_report(&[camera]);
        assert!(text.contains("card: vivid  driver: vivid  bus: platform:vivid-000"), "{text}");
        assert!(text.contains("format YUYV (video.format = \"yuyv\"):\n      320x240 @ 30, 15, 7.5 fps\n      640x480 @ 30 fps"), "{text}");
        assert!(text.contains("format NV12 (video.format = \"nv12\")"), "{text}");
        assert!(text.contains("other formats (not usable): RGB3"), "{text}");
        assert!(text.contains("      brightness: 0 to 255\n"), "{text}");
        assert!(!text.contains("disconnect"), "buttons cannot be configured: {text}");
        assert!(cameras_report(&[]).contains("none found"));
    }
}
