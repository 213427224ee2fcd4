//! Drives Debian's Chromium through tests/browser/viewer.mjs (playwright-core) against a daemon.
//! `scripts/install-deps.sh --test` installs Chromium, Node.js and the npm packages it needs.

use std::process::Command;

/// One page's report, as printed by viewer.mjs.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageReport {
    pub width: u32,
    pub height: u32,
    pub first_frame_ms: f64,
    pub frames_decoded: u64,
    pub fps: Option<f64>,
    /// Chromium's freezes over the window (webrtc-stats `freezeCount`, `totalFreezesDuration`).
    pub freezes: Freezes,
    /// Mean time a frame waited in the jitter buffer over the window; `None` without frames.
    pub jitter_buffer_ms: Option<f64>,
    pub audio: AudioReport,
    pub latency_ms: Option<Latency>,
    pub timecode_errors: Option<u64>,
    /// Whether the page was a secure context (HTTPS or localhost), where browsers allow the
    /// microphone.
    pub secure_context: bool,
    /// What the page sent in trickle PATCHes.
    pub trickled: Trickled,
    pub restarts: Restarts,
    /// WHEP sessions the page created (a reconnect creates one, an ICE restart does not).
    pub sessions: u64,
    /// The selected candidate pair when sampling ended.
    pub selected_pair: Option<SelectedPair>,
    /// Names of the events the page received from `/events` (the first `state` excepted).
    pub events: Vec<String>,
    /// The event banner's text, when it was showing as sampling ended.
    pub event_banner: Option<String>,
    /// Privacy mode as the page last heard, and whether its "camera off" cover was showing.
    pub privacy: bool,
    pub privacy_cover: bool,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trickled {
    /// `a=candidate` lines in the offer: the page waits briefly for its first candidate.
    pub in_offer: u64,
    /// PATCHes the daemon accepted.
    pub patches: u64,
    pub candidates: u64,
    pub end_of_candidates: u64,
    /// PATCHes refused or lost.
    pub refused: u64,
}

#[derive(Debug, serde::Deserialize)]
pub struct Restarts {
    pub tried: u64,
    pub succeeded: u64,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectedPair {
    /// Candidate types: host, srflx, prflx, relay.
    pub local: Option<String>,
    pub remote: Option<String>,
    /// "udp" or "tcp".
    pub protocol: Option<String>,
    pub local_address: String,
    pub remote_address: String,
    pub local_ufrag: Option<String>,
    /// With --restart-ice, the ufrag in use before the restart.
    pub ufrag_before: Option<String>,
    /// With --restart-ice or --network-change: from the trigger until a pair of the new ICE
    /// generation was selected (polled every 100 ms).
    pub restart_ms: Option<f64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioReport {
    pub packets_received: u64,
    pub total_audio_energy: f64,
}

#[derive(Debug, serde::Deserialize)]
pub struct Freezes {
    pub count: u64,
    pub seconds: f64,
}

#[derive(Debug, serde::Deserialize)]
pub struct Latency {
    pub n: u64,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

#[derive(Debug, serde::Deserialize)]
struct Report {
    pages: Vec<PageReport>,
}

/// Opens `pages` tabs of the viewer page at `url` in one headless Chromium for `seconds`.
/// Blocking: call it from `spawn_blocking` when a daemon runs on the same runtime.
pub fn view(url: &str, pages: u32, seconds: u32) -> Vec<PageReport> {
    view_with(url, pages, seconds, &[])
}

/// [`view`] with more viewer.mjs arguments (e.g. `--accept-any-certificate`).
pub fn view_with(url: &str, pages: u32, seconds: u32, extra: &[&str]) -> Vec<PageReport> {
    run(Command::new("node"), url, pages, seconds, extra)
}

/// [`view_with`] with Chromium inside network namespace `ns` (made with `ip netns`).
pub fn view_in_netns(
    ns: &str,
    url: &str,
    pages: u32,
    seconds: u32,
    extra: &[&str],
) -> Vec<PageReport> {
    let mut node = Command::new("ip");
    node.args(["netns", "exec", ns, "node"]);
    run(node, url, pages, seconds, extra)
}

fn run(mut node: Command, url: &str, pages: u32, seconds: u32, extra: &[&str]) -> Vec<PageReport> {
    let script = super::repo_path("tests/browser/viewer.mjs");
    let output = node
        .arg(script)
        .args(["--url", url, "--pages", &pages.to_string(), "--seconds", &seconds.to_string()])
        .arg("--timecode")
        .args(extra)
        .output()
        .expect("node runs (scripts/install-deps.sh --test installs Node.js, Chromium and npm packages)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "viewer.mjs failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Report =
        serde_json::from_str(stdout.trim()).expect("viewer.mjs prints one JSON line");
    report.pages
}
