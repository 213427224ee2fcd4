//! Camera pixel formats to tightly packed I420, and rotation/mirroring of I420 pictures.
//!
//! The `yuv` crate does the pixel work (SIMD where the CPU has it); MJPEG is decoded by
//! zune-jpeg. Only NV12's interleaved chroma is split here, because `yuv` has no NV12-to-I420
//! path: a byte de-interleave the compiler vectorises.

use crate::media::{CaptureTime, RawFrame};
use yuv::{
    BufferStoreMut, MirrorMode, RotationMode, YuvConversionMode, YuvPackedImage, YuvPlanarImageMut,
    YuvRange, YuvStandardMatrix,
};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Why a captured buffer could not be turned into a picture.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The buffer is smaller than its format and size require (a truncated capture).
    #[error("{format} buffer of {got} bytes is too small for {width}x{height} (need {need})")]
    Truncated { format: &'static str, width: u32, height: u32, got: usize, need: usize },
    /// I420 needs even dimensions; cameras practically always deliver them.
    #[error("{width}x{height}: picture sizes must be even")]
    OddSize { width: u32, height: u32 },
    /// The MJPEG frame is corrupt (cameras do send the odd broken frame).
    #[error("MJPEG frame cannot be decoded: {0}")]
    Jpeg(String),
    /// The `yuv` crate refused the planes it was given.
    #[error("pixel conversion failed: {0}")]
    Yuv(String),
}

/// The raw formats camrtc can convert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuyv,
    /// Packed 4:2:2, U Y0 V Y1.
    Uyvy,
    /// Y plane, then interleaved UV at half resolution.
    Nv12,
    /// I420: Y, U, V planes (V4L2 calls it YU12).
    Yu12,
    /// Motion JPEG: each frame a JPEG picture.
    Mjpeg,
}

impl PixelFormat {
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Uyvy => "UYVY",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Yu12 => "YU12",
            PixelFormat::Mjpeg => "MJPG",
        }
    }
}

/// Where a captured buffer's picture is: its size and the bytes per line of its first plane
/// (drivers may pad lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Bytes per line of the first plane; 0 means tightly packed.
    pub stride: u32,
}

/// Converts one captured buffer into an I420 picture.
pub fn to_i420(
    layout: Layout,
    data: &[u8],
    captured: CaptureTime,
) -> Result<RawFrame, ConvertError> {
    if layout.format == PixelFormat::Mjpeg {
        return decode_mjpeg(data, captured);
    }
    let Layout { format, width, height, .. } = layout;
    if width % 2 != 0 || height % 2 != 0 || width == 0 || height == 0 {
        return Err(ConvertError::OddSize { width, height });
    }
    let (w, h) = (width as usize, height as usize);
    let packed = matches!(format, PixelFormat::Yuyv | PixelFormat::Uyvy);
    let min_stride = if packed { 2 * w } else { w };
    let stride =
        if layout.stride == 0 { min_stride } else { (layout.stride as usize).max(min_stride) };
    // Chroma planes of planar formats follow the luma plane with the same padding ratio.
    let need = if packed { stride * h } else { stride * h + stride * h / 2 };
    if data.len() < need {
        return Err(ConvertError::Truncated {
            format: format.name(),
            width,
            height,
            got: data.len(),
            need,
        });
    }
    let mut frame = RawFrame::black(width, height, captured);
    match format {
        PixelFormat::Yuyv | PixelFormat::Uyvy => {
            let source =
                YuvPackedImage { yuy: &data[..need], yuy_stride: stride as u32, width, height };
            let mut target = planar(&mut frame.i420, width, height);
            let converted = if format == PixelFormat::Yuyv {
                yuv::yuyv422_to_yuv420(&mut target, &source)
            } else {
                yuv::uyvy422_to_yuv420(&mut target, &source)
            };
            converted.map_err(|e| ConvertError::Yuv(e.to_string()))?;
        }
        PixelFormat::Yu12 => {
            let (y, chroma) = frame.i420.split_at_mut(w * h);
            let (u, v) = chroma.split_at_mut(w * h / 4);
            copy_plane(&data[..stride * h], stride, y, w);
            let chroma_stride = stride / 2;
            let u_start = stride * h;
            let v_start = u_start + chroma_stride * h / 2;
            copy_plane(&data[u_start..v_start], chroma_stride, u, w / 2);
            copy_plane(&data[v_start..need], chroma_stride, v, w / 2);
        }
        PixelFormat::Nv12 => {
            let (y, chroma) = frame.i420.split_at_mut(w * h);
            let (u, v) = chroma.split_at_mut(w * h / 4);
            copy_plane(&data[..stride * h], stride, y, w);
            let uv = &data[stride * h..need];
            for ((uv_row, u_row), v_row) in uv
                .chunks_exact(stride)
                .zip(u.chunks_exact_mut(w / 2))
                .zip(v.chunks_exact_mut(w / 2))
            {
                for ((pair, u), v) in uv_row[..w].chunks_exact(2).zip(u_row).zip(v_row) {
                    *u = pair[0];
                    *v = pair[1];
                }
            }
        }
        PixelFormat::Mjpeg => unreachable!("MJPEG returned above"),
    }
    Ok(frame)
}

/// Copies `dst.len() / width` rows of `width` bytes from a plane with `stride` bytes per row.
fn copy_plane(src: &[u8], stride: usize, dst: &mut [u8], width: usize) {
    for (dst_row, src_row) in dst.chunks_exact_mut(width).zip(src.chunks(stride)) {
        dst_row.copy_from_slice(&src_row[..width]);
    }
}

/// The planes of a tightly packed I420 buffer, as the `yuv` crate addresses them.
fn planar(i420: &mut [u8], width: u32, height: u32) -> YuvPlanarImageMut<'_, u8> {
    let luma = (width * height) as usize;
    let (y, chroma) = i420.split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: width,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: width / 2,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: width / 2,
        width,
        height,
    }
}

/// Decodes an MJPEG frame to RGB (zune-jpeg) and then to I420 (yuv). Odd sizes lose their last
/// column or row, which I420 cannot represent.
pub fn decode_mjpeg(jpeg: &[u8], captured: CaptureTime) -> Result<RawFrame, ConvertError> {
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    let rgb = decoder.decode().map_err(|e| ConvertError::Jpeg(format!("{e:?}")))?;
    let (w, h) =
        decoder.dimensions().ok_or_else(|| ConvertError::Jpeg("no frame header".into()))?;
    let (width, height) = ((w & !1) as u32, (h & !1) as u32);
    if width == 0 || height == 0 || rgb.len() < w * h * 3 {
        return Err(ConvertError::Jpeg(format!("decoded {w}x{h} into {} bytes", rgb.len())));
    }
    let mut frame = RawFrame::black(width, height, captured);
    let mut target = planar(&mut frame.i420, width, height);
    yuv::rgb_to_yuv420(
        &mut target,
        &rgb[..w * 3 * height as usize],
        (w * 3) as u32,
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    )
    .map_err(|e| ConvertError::Yuv(e.to_string()))?;
    // An odd-sized JPEG is not the cropped picture; snapshots encode that one instead.
    if (width as usize, height as usize) == (w, h) {
        frame.jpeg = Some(std::sync::Arc::from(jpeg));
    }
    Ok(frame)
}

/// `video.rotate`, `video.hflip` and `video.vflip`: mirroring first, then clockwise rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Orientation {
    /// Clockwise degrees: 0, 90, 180 or 270.
    pub rotate: u32,
    pub hflip: bool,
    pub vflip: bool,
}

impl Orientation {
    pub fn is_identity(&self) -> bool {
        self.rotate.is_multiple_of(360) && !self.hflip && !self.vflip
    }

    /// The picture size after this orientation is applied to a `width` x `height` picture.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        if self.rotate % 180 == 90 { (height, width) } else { (width, height) }
    }

    /// Applies the orientation, plane by plane (the `yuv` crate's transposes and mirrors).
    pub fn apply(&self, frame: RawFrame) -> Result<RawFrame, ConvertError> {
        if self.is_identity() {
            return Ok(frame);
        }
        let mut frame = frame;
        for (wanted, mode) in
            [(self.hflip, MirrorMode::Horizontal), (self.vflip, MirrorMode::Vertical)]
        {
            if wanted {
                frame = map_planes(&frame, frame.width, frame.height, |src, dst, w, h| {
                    yuv::mirror_plane(src, w, dst, w, w, h, mode)
                })?;
            }
        }
        // The crate's names turn counter-clockwise; `video.rotate` is clockwise like rpicam-vid's.
        // A clockwise 270 is a clockwise 90 and a half turn, not the crate's single
        // counter-clockwise turn: on arm64 that one's NEON 16x16 transpose (fast_transpose 0.2.7)
        // puts the wrong source column into half of every block (shown under qemu-aarch64
        // against a per-pixel reference; x86 is right, and so are these two on every target).
        let quarter_clockwise = |frame: &RawFrame| {
            let (width, height) = self.output_size(frame.width, frame.height);
            map_planes(frame, width, height, |src, dst, w, h| {
                yuv::rotate_plane(src, w, dst, h, w, h, RotationMode::Rotate270)
            })
        };
        let half_turn = |frame: &RawFrame| {
            map_planes(frame, frame.width, frame.height, |src, dst, w, h| {
                yuv::rotate_plane(src, w, dst, w, w, h, RotationMode::Rotate180)
            })
        };
        match self.rotate % 360 {
            90 => quarter_clockwise(&frame),
            180 => half_turn(&frame),
            270 => half_turn(&quarter_clockwise(&frame)?),
            _ => Ok(frame),
        }
    }
}

/// Builds a `width` x `height` frame whose three planes are `op(source plane, target plane,
/// source plane width, source plane height)`.
fn map_planes(
    source: &RawFrame,
    width: u32,
    height: u32,
    op: impl Fn(&[u8], &mut [u8], usize, usize) -> Result<(), yuv::YuvError>,
) -> Result<RawFrame, ConvertError> {
    let mut out = RawFrame::black(width, height, source.captured);
    let (sw, sh) = (source.width as usize, source.height as usize);
    let luma = (width * height) as usize;
    let (y, chroma) = out.i420.split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    let planes =
        [(source.y(), y, sw, sh), (source.u(), u, sw / 2, sh / 2), (source.v(), v, sw / 2, sh / 2)];
    for (src, dst, w, h) in planes {
        op(src, dst, w, h).map_err(|e| ConvertError::Yuv(e.to_string()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
