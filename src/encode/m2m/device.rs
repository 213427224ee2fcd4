//! The real memory-to-memory encoder: raw multi-planar V4L2 ioctls (the `v4l` crate has no M2M
//! or multi-planar support), memory-mapped buffers, one plane per buffer (bcm2835-codec's YU12
//! and H.264 are both single-plane). Untested on hardware; see the module above.

use super::{M2mDevice, M2mError, Ready};
use crate::media::RawFrame;
use bytes::Bytes;
use std::os::raw::c_void;
use std::path::{Path, PathBuf};
use std::time::Duration;
use v4l::v4l_sys::*;
use v4l::v4l2;
use v4l::v4l2::vidioc;

const OUTPUT: u32 = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAPTURE: u32 = v4l2_buf_type_V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE;
const MMAP: u32 = v4l2_memory_V4L2_MEMORY_MMAP;
const BUFFERS: u32 = 4;
/// Room for one coded picture: generous for 1080p at sane bitrates.
const BITSTREAM_BYTES: u32 = 1024 * 1024;
const YU12: u32 = u32::from_le_bytes(*b"YU12");
const H264: u32 = u32::from_le_bytes(*b"H264");
const CAP_M2M_MPLANE: u32 = 0x0000_4000;
const CAP_STREAMING: u32 = 0x0400_0000;

/// What the encoder is asked to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct M2mSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    pub keyframe_interval_ms: u32,
}

struct Mapping {
    start: *mut c_void,
    length: usize,
}

// SAFETY: the mappings are plain memory owned by this device object; only its owner touches them.
unsafe impl Send for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `start`/`length` come from a successful mmap and are unmapped exactly once.
        let _ = unsafe { v4l2::munmap(self.start, self.length) };
    }
}

/// An open, configured and streaming M2M encoder.
pub struct V4l2M2m {
    fd: std::os::raw::c_int,
    path: PathBuf,
    pictures: Vec<Mapping>,
    bitstreams: Vec<Mapping>,
    /// Bytes per line of the luma plane and the rows the driver allots to it (height rounded
    /// up to its alignment); chroma follows at half both.
    bytes_per_line: usize,
    luma_rows: usize,
}

fn failed(path: &Path, what: &str, error: std::io::Error) -> M2mError {
    M2mError::Device { what: format!("{}: {what}", path.display()), error }
}

/// # Safety
/// `arg` must be the argument type `request` expects.
unsafe fn ioctl<T>(
    fd: std::os::raw::c_int,
    request: vidioc::_IOC_TYPE,
    arg: &mut T,
) -> std::io::Result<()> {
    // SAFETY: forwarded from the caller.
    unsafe { v4l2::ioctl(fd, request, arg as *mut T as *mut c_void) }
}

fn zeroed<T>() -> T {
    // SAFETY: only used for the kernel's plain-data ioctl structs, for which all-zero is valid.
    unsafe { std::mem::zeroed() }
}

/// Whether `path` is a multi-planar M2M device that turns YU12 into H.264.
pub fn is_h264_encoder(path: &Path) -> bool {
    let Ok(fd) = v4l2::open(path, libc::O_RDWR | libc::O_NONBLOCK) else { return false };
    let mut caps: v4l2_capability = zeroed();
    // SAFETY: QUERYCAP takes a v4l2_capability.
    let ok = unsafe { ioctl(fd, vidioc::VIDIOC_QUERYCAP, &mut caps) }.is_ok()
        && caps.device_caps & (CAP_M2M_MPLANE | CAP_STREAMING) == CAP_M2M_MPLANE | CAP_STREAMING
        && offers(fd, CAPTURE, H264)
        && offers(fd, OUTPUT, YU12);
    let _ = v4l2::close(fd);
    ok
}

fn offers(fd: std::os::raw::c_int, queue: u32, fourcc: u32) -> bool {
    (0..64)
        .map_while(|index| {
            let mut desc: v4l2_fmtdesc = zeroed();
            desc.index = index;
            desc.type_ = queue;
            // SAFETY: ENUM_FMT takes a v4l2_fmtdesc.
            unsafe { ioctl(fd, vidioc::VIDIOC_ENUM_FMT, &mut desc) }.ok().map(|()| desc.pixelformat)
        })
        .any(|f| f == fourcc)
}

/// The first M2M H.264 encoder among /dev/video*: the runtime capability check.
pub fn find_encoder() -> Result<PathBuf, M2mError> {
    crate::source::devices::video_nodes(Path::new("/dev"))
        .into_iter()
        .find(|node| is_h264_encoder(node))
        .ok_or_else(|| {
            M2mError::NotFound(
                "no /dev/video* is a multi-planar memory-to-memory device turning YU12 into H.264 \
                 (on a Raspberry Pi 4 it is /dev/video11 from the bcm2835-codec driver)"
                    .into(),
            )
        })
}

impl V4l2M2m {
    /// Opens `path` and configures it: level before S_FMT (bcm2835-codec sizes its buffers
    /// from it), formats on both queues, frame rate, bitrate, keyframe interval, SPS/PPS
    /// repeated before every IDR; then allocates, maps and starts both queues.
    pub fn open(path: &Path, settings: M2mSettings) -> Result<Self, M2mError> {
        if !is_h264_encoder(path) {
            return Err(M2mError::NotFound(format!(
                "{} is not an H.264 M2M encoder",
                path.display()
            )));
        }
        let fd = v4l2::open(path, libc::O_RDWR | libc::O_NONBLOCK)
            .map_err(|e| failed(path, "open", e))?;
        let mut device = V4l2M2m {
            fd,
            path: path.to_owned(),
            pictures: Vec::new(),
            bitstreams: Vec::new(),
            bytes_per_line: 0,
            luma_rows: 0,
        };
        let (level, _) = super::h264_level(settings.width, settings.height, settings.fps);
        device.set_control(V4L2_CID_MPEG_VIDEO_H264_LEVEL, level as i32, "H.264 level")?;
        device.set_control(
            V4L2_CID_MPEG_VIDEO_H264_PROFILE,
            v4l2_mpeg_video_h264_profile_V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE as i32,
            "H.264 profile",
        )?;
        device.set_format(CAPTURE, H264, settings, BITSTREAM_BYTES)?;
        let (bytes_per_line, size) = device.set_format(OUTPUT, YU12, settings, 0)?;
        device.bytes_per_line = bytes_per_line as usize;
        // Single-plane I420: size = bpl * rows * 3/2, so the rows include the driver's padding.
        device.luma_rows = (size as usize * 2 / 3) / device.bytes_per_line.max(1);
        device.set_frame_rate(settings.fps)?;
        let bitrate = settings.bitrate_kbps.saturating_mul(1000) as i32;
        device.set_control(V4L2_CID_MPEG_VIDEO_BITRATE, bitrate, "bitrate")?;
        let period =
            (u64::from(settings.fps) * u64::from(settings.keyframe_interval_ms) / 1000).max(1);
        device.set_control(V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, period as i32, "keyframe period")?;
        device.set_control(V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1, "repeat sequence header")?;
        device.pictures = device.map_buffers(OUTPUT)?;
        device.bitstreams = device.map_buffers(CAPTURE)?;
        for queue in [OUTPUT, CAPTURE] {
            let mut kind = queue as i32;
            // SAFETY: STREAMON takes the buffer type as an int.
            unsafe { ioctl(device.fd, vidioc::VIDIOC_STREAMON, &mut kind) }
                .map_err(|e| failed(path, "STREAMON", e))?;
        }
        tracing::info!(
            device = %path.display(), width = settings.width, height = settings.height,
            fps = settings.fps, level, "hardware H.264 encoder started"
        );
        Ok(device)
    }

    fn set_control(&self, id: u32, value: i32, what: &str) -> Result<(), M2mError> {
        let mut control = v4l2_control { id, value };
        // SAFETY: S_CTRL takes a v4l2_control.
        unsafe { ioctl(self.fd, vidioc::VIDIOC_S_CTRL, &mut control) }
            .map_err(|e| failed(&self.path, &format!("setting the {what}"), e))
    }

    /// S_FMT on one queue; returns the driver's bytes per line and image size.
    fn set_format(
        &self,
        queue: u32,
        fourcc: u32,
        s: M2mSettings,
        size: u32,
    ) -> Result<(u32, u32), M2mError> {
        let mut format: v4l2_format = zeroed();
        format.type_ = queue;
        // SAFETY: `pix_mp` is the union member for multi-planar queues.
        let set = unsafe {
            let pix = &mut format.fmt.pix_mp;
            pix.width = s.width;
            pix.height = s.height;
            pix.pixelformat = fourcc;
            pix.num_planes = 1;
            pix.plane_fmt[0].sizeimage = size;
            ioctl(self.fd, vidioc::VIDIOC_S_FMT, &mut format)
                .map(|()| (format.fmt.pix_mp.pixelformat, format.fmt.pix_mp.plane_fmt[0]))
        };
        let (got, plane) = set.map_err(|e| failed(&self.path, "S_FMT", e))?;
        if got != fourcc {
            return Err(M2mError::Protocol(format!(
                "the driver replaced {fourcc:#x} with {got:#x}"
            )));
        }
        Ok((plane.bytesperline, plane.sizeimage))
    }

    fn set_frame_rate(&self, fps: u32) -> Result<(), M2mError> {
        let mut parm: v4l2_streamparm = zeroed();
        parm.type_ = OUTPUT;
        // SAFETY: `output` is the union member for output queues; S_PARM takes v4l2_streamparm.
        unsafe {
            parm.parm.output.timeperframe = v4l2_fract { numerator: 1, denominator: fps.max(1) };
            ioctl(self.fd, vidioc::VIDIOC_S_PARM, &mut parm)
        }
        .map_err(|e| failed(&self.path, "S_PARM", e))
    }

    fn map_buffers(&self, queue: u32) -> Result<Vec<Mapping>, M2mError> {
        let mut request: v4l2_requestbuffers = zeroed();
        request.count = BUFFERS;
        request.type_ = queue;
        request.memory = MMAP;
        // SAFETY: REQBUFS takes a v4l2_requestbuffers.
        unsafe { ioctl(self.fd, vidioc::VIDIOC_REQBUFS, &mut request) }
            .map_err(|e| failed(&self.path, "REQBUFS", e))?;
        (0..request.count)
            .map(|index| {
                let mut plane: v4l2_plane = zeroed();
                let mut buffer = self.buffer(queue, index, &mut plane);
                // SAFETY: QUERYBUF takes a v4l2_buffer whose `planes` points at one plane.
                unsafe { ioctl(self.fd, vidioc::VIDIOC_QUERYBUF, &mut buffer) }
                    .map_err(|e| failed(&self.path, "QUERYBUF", e))?;
                let length = plane.length as usize;
                // SAFETY: maps the plane the driver just described, at its offset.
                let start = unsafe {
                    v4l2::mmap(
                        std::ptr::null_mut(),
                        length,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_SHARED,
                        self.fd,
                        plane.m.mem_offset as libc::off_t,
                    )
                }
                .map_err(|e| failed(&self.path, "mmap", e))?;
                Ok(Mapping { start, length })
            })
            .collect()
    }

    fn buffer(&self, queue: u32, index: u32, plane: &mut v4l2_plane) -> v4l2_buffer {
        let mut buffer: v4l2_buffer = zeroed();
        buffer.index = index;
        buffer.type_ = queue;
        buffer.memory = MMAP;
        buffer.length = 1;
        buffer.m.planes = plane;
        buffer
    }

    fn queue(&self, queue: u32, index: usize, bytes_used: u32) -> Result<(), M2mError> {
        let mut plane: v4l2_plane = zeroed();
        plane.bytesused = bytes_used;
        let mut buffer = self.buffer(queue, index as u32, &mut plane);
        // SAFETY: QBUF takes a v4l2_buffer whose `planes` points at one plane.
        unsafe { ioctl(self.fd, vidioc::VIDIOC_QBUF, &mut buffer) }
            .map_err(|e| failed(&self.path, "QBUF", e))
    }

    /// DQBUF without blocking (the fd is non-blocking): None when nothing is finished.
    fn dequeue(&self, queue: u32) -> Result<Option<(usize, usize)>, M2mError> {
        let mut plane: v4l2_plane = zeroed();
        let mut buffer = self.buffer(queue, 0, &mut plane);
        // SAFETY: DQBUF takes a v4l2_buffer whose `planes` points at one plane.
        match unsafe { ioctl(self.fd, vidioc::VIDIOC_DQBUF, &mut buffer) } {
            Ok(()) => Ok(Some((buffer.index as usize, plane.bytesused as usize))),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
            Err(e) => Err(failed(&self.path, "DQBUF", e)),
        }
    }
}

impl M2mDevice for V4l2M2m {
    fn buffer_counts(&self) -> (usize, usize) {
        (self.pictures.len(), self.bitstreams.len())
    }

    fn queue_picture(&mut self, index: usize, frame: &RawFrame) -> Result<(), M2mError> {
        let mapping = self
            .pictures
            .get(index)
            .ok_or_else(|| M2mError::Protocol(format!("no picture buffer {index}")))?;
        // SAFETY: the mapping is `length` bytes of writable shared memory we own while the
        // buffer is dequeued, which the state machine guarantees here.
        let target =
            unsafe { std::slice::from_raw_parts_mut(mapping.start as *mut u8, mapping.length) };
        let (width, height) = (frame.width as usize, frame.height as usize);
        let (bpl, rows) = (self.bytes_per_line, self.luma_rows);
        let needed = bpl * rows + 2 * (bpl / 2) * (rows / 2);
        if width > bpl || height > rows || target.len() < needed {
            return Err(M2mError::Protocol(format!(
                "a {width}x{height} picture does not fit the driver's {bpl}x{rows} buffer"
            )));
        }
        let planes = [
            (frame.y(), width, 0, bpl),
            (frame.u(), width / 2, bpl * rows, bpl / 2),
            (frame.v(), width / 2, bpl * rows + (bpl / 2) * (rows / 2), bpl / 2),
        ];
        for (plane, row_bytes, offset, stride) in planes {
            for (row, src) in plane.chunks_exact(row_bytes).enumerate() {
                target[offset + row * stride..][..row_bytes].copy_from_slice(src);
            }
        }
        self.queue(OUTPUT, index, needed as u32)
    }

    fn queue_bitstream(&mut self, index: usize) -> Result<(), M2mError> {
        self.queue(CAPTURE, index, 0)
    }

    fn wait(&mut self, timeout: Duration) -> Result<Ready, M2mError> {
        // POLLOUT: an OUTPUT buffer is done; POLLIN: a CAPTURE buffer is filled.
        let mut poll =
            libc::pollfd { fd: self.fd, events: libc::POLLIN | libc::POLLOUT, revents: 0 };
        let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, millis) };
        if ready < 0 {
            return Err(failed(&self.path, "poll", std::io::Error::last_os_error()));
        }
        Ok(Ready {
            picture: poll.revents & libc::POLLOUT != 0,
            bitstream: poll.revents & libc::POLLIN != 0,
        })
    }

    fn reclaim_picture(&mut self) -> Result<Option<usize>, M2mError> {
        Ok(self.dequeue(OUTPUT)?.map(|(index, _)| index))
    }

    fn take_bitstream(&mut self) -> Result<Option<(usize, Bytes)>, M2mError> {
        let Some((index, used)) = self.dequeue(CAPTURE)? else { return Ok(None) };
        let mapping = self
            .bitstreams
            .get(index)
            .ok_or_else(|| M2mError::Protocol(format!("no bitstream buffer {index}")))?;
        // SAFETY: the driver filled `used` bytes of this mapping and handed the buffer back.
        let bytes = unsafe {
            std::slice::from_raw_parts(mapping.start as *const u8, used.min(mapping.length))
        };
        Ok(Some((index, Bytes::copy_from_slice(bytes))))
    }

    fn force_keyframe(&mut self) -> Result<(), M2mError> {
        self.set_control(V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1, "keyframe request")
    }
}

impl Drop for V4l2M2m {
    fn drop(&mut self) {
        for queue in [OUTPUT, CAPTURE] {
            let mut kind = queue as i32;
            // SAFETY: STREAMOFF takes the buffer type as an int; failure only means it was off.
            let _ = unsafe { ioctl(self.fd, vidioc::VIDIOC_STREAMOFF, &mut kind) };
        }
        self.pictures.clear();
        self.bitstreams.clear();
        let _ = v4l2::close(self.fd);
    }
}
