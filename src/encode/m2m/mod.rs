//! H.264 on a V4L2 memory-to-memory encoder: the Raspberry Pi 4's bcm2835-codec
//! (`/dev/video11`), through the multi-planar API.
//!
//! A memory-to-memory encoder has two queues: raw pictures go in on the OUTPUT queue, H.264
//! comes back on the CAPTURE queue, each from a small pool of driver buffers. [`M2mEncoder`] is
//! the bookkeeping between them (which buffers are ours, which the driver holds, which capture
//! time each coded picture belongs to) written against the [`M2mDevice`] trait, so it is tested
//! with a fake device; [`device::V4l2M2m`] is the real one (raw ioctls). The real device has
//! not been run on hardware: these machines have no such encoder, and Debian's kernel has no
//! virtual one.

pub mod device;

use super::passthrough::Passthrough;
use super::{EncodeError, Encoded};
use crate::media::{CaptureTime, RawFrame};
use crate::source::AccessUnit;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

const CODEC: &str = "V4L2 M2M H.264";
/// How long one call waits for the hardware: a picture normally takes a few milliseconds.
const HARDWARE_WAIT: Duration = Duration::from_millis(100);

/// Why the hardware encoder cannot be used or failed.
#[derive(Debug, thiserror::Error)]
pub enum M2mError {
    /// No memory-to-memory H.264 encoder on this machine (or not the kind camrtc drives).
    #[error("no V4L2 memory-to-memory H.264 encoder found: {0}")]
    NotFound(String),
    /// The device refused a setting or an ioctl failed.
    #[error("{what}: {error}")]
    Device { what: String, error: std::io::Error },
    /// The device hands back something impossible (an unknown buffer, a picture too big).
    #[error("encoder protocol error: {0}")]
    Protocol(String),
}

impl From<M2mError> for EncodeError {
    fn from(error: M2mError) -> Self {
        EncodeError::Encode { codec: CODEC, reason: error.to_string() }
    }
}

/// Which queues have finished buffers after a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ready {
    /// A raw picture buffer has been consumed and can be taken back.
    pub picture: bool,
    /// A coded picture is waiting.
    pub bitstream: bool,
}

/// The operations the encoder needs from a memory-to-memory device.
pub trait M2mDevice: Send {
    /// How many raw-picture (OUTPUT) and bitstream (CAPTURE) buffers the driver allocated.
    fn buffer_counts(&self) -> (usize, usize);
    /// Copies `frame` into raw buffer `index` and hands it to the driver.
    fn queue_picture(&mut self, index: usize, frame: &RawFrame) -> Result<(), M2mError>;
    /// Hands empty bitstream buffer `index` to the driver.
    fn queue_bitstream(&mut self, index: usize) -> Result<(), M2mError>;
    /// Waits up to `timeout` for a finished buffer on either queue.
    fn wait(&mut self, timeout: Duration) -> Result<Ready, M2mError>;
    /// Takes back a consumed raw buffer, if one is finished.
    fn reclaim_picture(&mut self) -> Result<Option<usize>, M2mError>;
    /// Takes a filled bitstream buffer, if one is ready: its index and its bytes (copied).
    fn take_bitstream(&mut self) -> Result<Option<(usize, Bytes)>, M2mError>;
    /// Makes the next coded picture an IDR.
    fn force_keyframe(&mut self) -> Result<(), M2mError>;
}

/// One coded picture out of the hardware, ready for the hub.
#[derive(Debug)]
pub struct CodedPicture {
    pub encoded: Encoded,
    pub captured: CaptureTime,
    /// The Annex B bytes sent, with SPS/PPS in front of IDRs (to read the profile from).
    pub annex_b: Vec<u8>,
}

/// Drives an [`M2mDevice`]: every buffer is either ours (free) or the driver's, never both.
pub struct M2mEncoder<D: M2mDevice> {
    device: D,
    free_pictures: Vec<usize>,
    /// Capture times of pictures the driver holds, oldest first: without B-frames the coded
    /// pictures come back in the order they went in.
    in_flight: VecDeque<CaptureTime>,
    picture_buffers: usize,
    bitstream_buffers: usize,
    /// Cached SPS/PPS ahead of every IDR, and RTP packetisation, exactly as for a camera's H.264.
    packetiser: Passthrough,
    /// Pictures dropped because the hardware still held every raw buffer.
    pub dropped: u64,
}

impl<D: M2mDevice> M2mEncoder<D> {
    /// Takes a configured, streaming device and gives it every bitstream buffer.
    pub fn new(mut device: D) -> Result<Self, M2mError> {
        let (pictures, bitstreams) = device.buffer_counts();
        if pictures == 0 || bitstreams == 0 {
            return Err(M2mError::Protocol(format!(
                "the driver allocated {pictures} picture and {bitstreams} bitstream buffers"
            )));
        }
        for index in 0..bitstreams {
            device.queue_bitstream(index)?;
        }
        Ok(Self {
            device,
            free_pictures: (0..pictures).rev().collect(),
            in_flight: VecDeque::new(),
            picture_buffers: pictures,
            bitstream_buffers: bitstreams,
            packetiser: Passthrough::new(),
            dropped: 0,
        })
    }

    pub fn force_keyframe(&mut self) -> Result<(), M2mError> {
        self.device.force_keyframe()
    }

    /// Queues `frame` and returns whatever coded pictures the hardware has finished, waiting
    /// briefly for this one. A frame that finds every raw buffer still busy is dropped (and
    /// counted): blocking would only build latency behind a slow encoder.
    pub fn encode(&mut self, frame: &RawFrame) -> Result<Vec<CodedPicture>, M2mError> {
        self.reclaim()?;
        if self.free_pictures.is_empty() && self.device.wait(HARDWARE_WAIT)?.picture {
            self.reclaim()?;
        }
        match self.free_pictures.pop() {
            Some(index) => {
                self.device.queue_picture(index, frame)?;
                self.in_flight.push_back(frame.captured);
            }
            None => self.dropped += 1,
        }
        let mut coded = self.collect()?;
        if coded.is_empty() && !self.in_flight.is_empty() {
            self.device.wait(HARDWARE_WAIT)?;
            self.reclaim()?;
            coded = self.collect()?;
        }
        Ok(coded)
    }

    fn reclaim(&mut self) -> Result<(), M2mError> {
        while let Some(index) = self.device.reclaim_picture()? {
            if index >= self.picture_buffers || self.free_pictures.contains(&index) {
                return Err(M2mError::Protocol(format!("picture buffer {index} was not queued")));
            }
            self.free_pictures.push(index);
        }
        Ok(())
    }

    fn collect(&mut self) -> Result<Vec<CodedPicture>, M2mError> {
        let mut coded = Vec::new();
        while let Some((index, bytes)) = self.device.take_bitstream()? {
            if index >= self.bitstream_buffers {
                return Err(M2mError::Protocol(format!("unknown bitstream buffer {index}")));
            }
            self.device.queue_bitstream(index)?;
            // A bitstream with no picture in flight is the driver's own header buffer (some
            // drivers send SPS/PPS alone first): it belongs to the next picture.
            let captured = self.in_flight.pop_front().unwrap_or_else(CaptureTime::now);
            let unit = AccessUnit { annex_b: bytes, captured };
            let encoded =
                self.packetiser.encode(&unit).map_err(|e| M2mError::Protocol(e.to_string()))?;
            if let Some(encoded) = encoded {
                let annex_b = self.packetiser.last_annex_b().to_vec();
                coded.push(CodedPicture { encoded, captured, annex_b });
            }
        }
        Ok(coded)
    }
}

/// The H.264 level to ask for: the lowest whose macroblock rate covers the picture (Table A-1),
/// set before S_FMT because bcm2835-codec sizes its buffers from it.
pub fn h264_level(width: u32, height: u32, fps: u32) -> (u32, &'static str) {
    let macroblocks = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let rate = macroblocks * u64::from(fps);
    // (max macroblocks per second, max frame size in macroblocks, V4L2 enum, name)
    const LEVELS: [(u64, u64, u32, &str); 6] = [
        (40_500, 1_620, 8, "3.0"),
        (108_000, 3_600, 9, "3.1"),
        (216_000, 5_120, 10, "3.2"),
        (245_760, 8_192, 11, "4.0"),
        (522_240, 8_704, 13, "4.2"),
        (589_824, 22_080, 14, "5.0"),
    ];
    LEVELS
        .iter()
        .find(|(max_rate, max_frame, ..)| rate <= *max_rate && macroblocks <= *max_frame)
        .map_or((14, "5.0"), |&(.., value, name)| (value, name))
}

#[cfg(test)]
mod tests;
