//! `GET /snapshot.jpg`: the latest picture the video thread produced, as a JPEG.
//!
//! The video thread publishes every oriented I420 picture it encodes into a watch channel (an
//! `Arc` swap, no copy); a snapshot request holds capture running (see
//! [`crate::hub::HubHandle::hold_capture`]) until a fresh picture is there and encodes it on the
//! blocking pool, never on the runtime. An MJPEG camera's picture needs no encoding: its own JPEG
//! is the snapshot, unless the picture was rotated or mirrored.

use crate::media::RawFrame;
use jpeg_encoder::{Encoder, ImageBuffer, JpegColorType, SamplingFactor};
use std::sync::Arc;
use tokio::sync::watch;

/// Where the video thread leaves its latest picture.
pub type StillSender = Arc<watch::Sender<Option<Arc<RawFrame>>>>;

/// Why a snapshot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The JPEG encoder refused the picture (a size JPEG cannot hold).
    #[error("JPEG encoding failed: {0}")]
    Encode(String),
}

/// An I420 picture as the JPEG encoder reads it: full-resolution Y, Cb and Cr rows (the encoder
/// subsamples chroma again for 4:2:0), converted from video's limited range to JPEG's full range.
struct I420Image<'a>(&'a RawFrame);

/// Limited-range (16–235 luma, 16–240 chroma) to full-range, as JFIF expects.
fn full_range_luma(y: u8) -> u8 {
    ((i32::from(y) - 16) * 255 / 219).clamp(0, 255) as u8
}

fn full_range_chroma(c: u8) -> u8 {
    ((i32::from(c) - 128) * 255 / 224 + 128).clamp(0, 255) as u8
}

impl ImageBuffer for I420Image<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.0.width as u16
    }

    fn height(&self) -> u16 {
        self.0.height as u16
    }

    fn fill_buffers(&self, row: u16, buffers: &mut [Vec<u8>; 4]) {
        let frame = self.0;
        let width = frame.width as usize;
        let row = usize::from(row);
        let y = &frame.y()[row * width..(row + 1) * width];
        let chroma_row = row / 2 * (width / 2);
        let u = &frame.u()[chroma_row..chroma_row + width / 2];
        let v = &frame.v()[chroma_row..chroma_row + width / 2];
        buffers[0].extend(y.iter().map(|&y| full_range_luma(y)));
        for x in 0..width {
            buffers[1].push(full_range_chroma(u[x / 2]));
            buffers[2].push(full_range_chroma(v[x / 2]));
        }
    }
}

/// The snapshot of `frame`: the camera's own JPEG when it is exactly this picture (MJPEG, not
/// rotated or mirrored), which costs nothing and loses nothing; otherwise [`encode_jpeg`].
/// CPU-bound: call it from a blocking thread.
pub fn jpeg_of(frame: &RawFrame, quality: u8) -> Result<Vec<u8>, SnapshotError> {
    match &frame.jpeg {
        Some(camera_jpeg) => Ok(camera_jpeg.to_vec()),
        None => encode_jpeg(frame, quality),
    }
}

/// Encodes `frame` as a baseline 4:2:0 JPEG at `quality` (1–100). CPU-bound: call it from a
/// blocking thread.
pub fn encode_jpeg(frame: &RawFrame, quality: u8) -> Result<Vec<u8>, SnapshotError> {
    if frame.width > u32::from(u16::MAX) || frame.height > u32::from(u16::MAX) {
        return Err(SnapshotError::Encode(format!("{}x{}", frame.width, frame.height)));
    }
    let mut jpeg = Vec::with_capacity(frame.i420.len() / 8);
    let mut encoder = Encoder::new(&mut jpeg, quality.clamp(1, 100));
    encoder.set_sampling_factor(SamplingFactor::F_2_2);
    encoder.encode_image(I420Image(frame)).map_err(|e| SnapshotError::Encode(e.to_string()))?;
    Ok(jpeg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;

    #[test]
    fn a_grey_picture_decodes_back_to_its_size_and_brightness() {
        let mut frame = RawFrame::black(64, 48, CaptureTime::now());
        let luma = 64 * 48;
        frame.i420[..luma].fill(126); // mid grey in limited range
        let jpeg = encode_jpeg(&frame, 90).expect("encodes");
        assert_eq!(&jpeg[..2], &[0xff, 0xd8], "JPEG SOI marker");
        let mut decoder =
            zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(&jpeg));
        let pixels = decoder.decode().expect("decodes");
        assert_eq!(decoder.dimensions(), Some((64, 48)));
        let mean = pixels.iter().map(|&p| u32::from(p)).sum::<u32>() / pixels.len() as u32;
        assert!((125..=131).contains(&mean), "mid grey comes back as {mean}");
    }

    #[test]
    fn an_mjpeg_cameras_own_jpeg_is_the_snapshot_unless_the_picture_was_turned() {
        use crate::source::convert::{Orientation, decode_mjpeg};
        let mut picture = RawFrame::black(64, 48, CaptureTime::now());
        picture.i420[..64 * 24].fill(200); // top half bright, so a half turn shows
        let camera_jpeg = encode_jpeg(&picture, 75).expect("encodes");

        let decoded = decode_mjpeg(&camera_jpeg, CaptureTime::now()).expect("decodes");
        assert_eq!(jpeg_of(&decoded, 90).expect("snapshot"), camera_jpeg, "passed through");
        let upright = Orientation::default().apply(decoded.clone()).expect("identity");
        assert_eq!(jpeg_of(&upright, 90).expect("snapshot"), camera_jpeg);

        let turned = Orientation { rotate: 180, ..Orientation::default() };
        let turned = turned.apply(decoded).expect("half turn");
        assert!(turned.jpeg.is_none(), "a turned picture is not the camera's JPEG");
        let snapshot = jpeg_of(&turned, 90).expect("snapshot");
        assert_ne!(snapshot, camera_jpeg);
        let mut decoder =
            zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(&snapshot));
        let pixels = decoder.decode().expect("decodes");
        let (top, bottom) = (pixels[0], pixels[pixels.len() - 1]);
        assert!(bottom > top + 100, "bright half now at the bottom: top {top}, bottom {bottom}");
    }

    #[test]
    fn an_odd_sized_camera_jpeg_is_re_encoded_at_the_cropped_size() {
        let mut buffer = Vec::new();
        let encoder = jpeg_encoder::Encoder::new(&mut buffer, 80);
        let rgb = vec![90u8; 65 * 49 * 3];
        encoder.encode(&rgb, 65, 49, jpeg_encoder::ColorType::Rgb).expect("encodes");
        let decoded =
            crate::source::convert::decode_mjpeg(&buffer, CaptureTime::now()).expect("decodes");
        assert_eq!((decoded.width, decoded.height), (64, 48));
        assert!(decoded.jpeg.is_none(), "the camera's JPEG is 65x49, the picture 64x48");
    }
}
