//! A camera behind another program: Annex B H.264 read from a child process's stdout.
//!
//! This is how CSI cameras on Raspberry Pi OS work (`rpicam-vid -t 0 --inline -o -`), and how
//! anything ffmpeg can read becomes a camrtc source. The child runs in its own process group, so
//! a shell pipeline in `command` is stopped as a whole when the source closes.

use super::annexb::AccessUnitSplitter;
use super::{AccessUnit, SourceError, VideoFrame, VideoOutput, VideoSource};
use crate::media::CaptureTime;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child that writes nothing for this long is considered hung, and is restarted.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a child gets to exit after SIGTERM before it is killed.
const TERM_GRACE: Duration = Duration::from_millis(500);
const READ_CHUNK: usize = 64 * 1024;

/// H.264 from a command's standard output.
pub struct ExecSource {
    command: String,
    child: Child,
    stdout: ChildStdout,
    splitter: AccessUnitSplitter,
    ready: VecDeque<AccessUnit>,
    buffer: Vec<u8>,
    /// The child's last line on stderr, quoted when it exits: usually the reason.
    stderr_lines: mpsc::Receiver<String>,
    last_stderr: Option<String>,
    stall_timeout: Duration,
}

impl ExecSource {
    /// Starts `command` with `sh -c`.
    pub fn spawn(command: &str) -> Result<Self, SourceError> {
        Self::spawn_with_timeout(command, STALL_TIMEOUT)
    }

    /// As [`spawn`](Self::spawn), declaring the child hung after `stall_timeout` of silence.
    pub fn spawn_with_timeout(command: &str, stall_timeout: Duration) -> Result<Self, SourceError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| SourceError::Unavailable(format!("cannot run `{command}`: {e}")))?;
        let stdout = child.stdout.take().expect("stdout was configured as piped");
        let stderr = child.stderr.take().expect("stderr was configured as piped");
        let (lines_tx, stderr_lines) = mpsc::channel();
        let name = command.split_whitespace().next().unwrap_or("command").to_owned();
        // The reader ends by itself when the child's stderr closes.
        std::thread::Builder::new()
            .name("camrtc-exec-err".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    tracing::debug!(target: "camrtc::exec", "{name}: {line}");
                    if lines_tx.send(line).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| SourceError::Unavailable(format!("cannot start a thread: {e}")))?;
        tracing::debug!(command, pid = child.id(), "started video command");
        Ok(Self {
            command: command.to_owned(),
            child,
            stdout,
            splitter: AccessUnitSplitter::new(),
            ready: VecDeque::new(),
            buffer: vec![0; READ_CHUNK],
            stderr_lines,
            last_stderr: None,
            stall_timeout,
        })
    }

    fn exited(&mut self) -> SourceError {
        let status = match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(e) => format!("unknown status ({e})"),
        };
        // Give the stderr reader a moment to pass on the child's last words.
        let deadline = Instant::now() + Duration::from_millis(100);
        while let Ok(line) = self.stderr_lines.recv_timeout(deadline - Instant::now()) {
            self.last_stderr = Some(line);
        }
        let said = self.last_stderr.as_deref().map(|l| format!(": {l}")).unwrap_or_default();
        SourceError::Capture(format!("`{}` ended ({status}){said}", self.command))
    }

    /// Waits until stdout is readable; false after `stall_timeout` of silence.
    fn wait_readable(&self) -> Result<bool, SourceError> {
        let mut poll =
            libc::pollfd { fd: self.stdout.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let timeout = i32::try_from(self.stall_timeout.as_millis()).unwrap_or(i32::MAX);
        loop {
            // SAFETY: one valid pollfd for a descriptor we own, for the duration of the call.
            let ready = unsafe { libc::poll(&mut poll, 1, timeout) };
            if ready >= 0 {
                return Ok(ready > 0);
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(SourceError::Capture(format!("poll on `{}`: {error}", self.command)));
            }
        }
    }
}

impl VideoSource for ExecSource {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        loop {
            if let Some(unit) = self.ready.pop_front() {
                return Ok(VideoFrame::H264(unit));
            }
            if !self.wait_readable()? {
                return Err(SourceError::Capture(format!(
                    "`{}` wrote nothing for {} s",
                    self.command,
                    self.stall_timeout.as_secs_f32()
                )));
            }
            let read = match self.stdout.read(&mut self.buffer) {
                Ok(0) => return Err(self.exited()),
                Ok(read) => read,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(SourceError::Capture(format!("reading `{}`: {e}", self.command)));
                }
            };
            let now = CaptureTime::now();
            self.ready.extend(self.splitter.push(&self.buffer[..read], now)?);
            while let Ok(line) = self.stderr_lines.try_recv() {
                self.last_stderr = Some(line);
            }
        }
    }

    fn output(&self) -> VideoOutput {
        VideoOutput::H264
    }
}

impl Drop for ExecSource {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) with a negative pid signals the process group we created; no memory
        // is involved.
        unsafe { libc::kill(group, libc::SIGTERM) };
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_access_units_from_a_command() {
        // Two pictures in printf's octal escapes: SPS, PPS, IDR, then a P slice and an AUD that
        // closes it (seen whole once the next one starts). The trailing `sleep` keeps the pipe open so the last unit is not an exit.
        let mut source = ExecSource::spawn(
            r"printf '\0\0\0\1\147\102\300\37\0\0\0\1\150\316\0\0\0\1\145\210\0\0\0\1\101\232\0\0\0\1\11\360\0\0\0\1\11\360'; sleep 5",
        )
        .expect("sh runs");
        assert_eq!(source.output(), VideoOutput::H264);
        let Ok(VideoFrame::H264(first)) = source.next_frame() else { panic!("an access unit") };
        assert_eq!(crate::encode::h264::nal_units(&first.annex_b).count(), 3);
        let Ok(VideoFrame::H264(second)) = source.next_frame() else { panic!("an access unit") };
        assert_eq!(&second.annex_b[..], &[0, 0, 0, 1, 0x41, 0x9a]);
    }

    #[test]
    fn an_exiting_command_is_a_capture_error_quoting_its_last_words() {
        let mut source = ExecSource::spawn("echo 'camera not found' >&2; exit 3").expect("sh runs");
        let error = source.next_frame().expect_err("nothing to read").to_string();
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("camera not found"), "{error}");
    }

    #[test]
    fn a_silent_command_is_declared_stalled_and_stopped_on_drop() {
        let started = Instant::now();
        let mut source =
            ExecSource::spawn_with_timeout("sleep 30", Duration::from_millis(200)).expect("runs");
        let error = source.next_frame().expect_err("silence").to_string();
        assert!(error.contains("wrote nothing"), "{error}");
        drop(source);
        assert!(started.elapsed() < Duration::from_secs(5), "sleep was stopped, not waited for");
    }
}
