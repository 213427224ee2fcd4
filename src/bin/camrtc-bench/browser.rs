//! Headless Chromium viewers: `tests/browser/viewer.mjs` (Playwright) opens the daemon's own viewer
//! page in N windows and reads the burnt-in timecode back from every rendered frame.

use crate::BenchError;
use std::path::Path;
use std::process::Stdio;

/// What one page measured (the subset of viewer.mjs's JSON the bench reports).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    pub first_frame_ms: Option<f64>,
    /// From the start of the page's navigation: also counts what the page does before its POST.
    pub open_to_first_frame_ms: Option<f64>,
    pub fps: Option<f64>,
    pub frames_decoded: Option<u64>,
    pub latency_ms: Option<PageLatency>,
    pub timecode_errors: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PageLatency {
    pub n: u64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub max: Option<f64>,
}

#[derive(serde::Deserialize)]
struct Output {
    pages: Vec<Page>,
}

/// Runs `pages` Chromium windows against `url` for `seconds` of sampling after each showed a
/// frame. Needs Node.js, Chromium and `npm ci` in tests/browser (scripts/install-deps.sh --test).
pub async fn run(
    script: &Path,
    url: &str,
    pages: usize,
    seconds: u64,
) -> Result<Vec<Page>, BenchError> {
    let mut command = std::process::Command::new("node");
    command
        .arg(script)
        .args(["--url", url, "--pages", &pages.to_string(), "--seconds", &seconds.to_string()])
        .arg("--timecode")
        .stdin(Stdio::null());
    // The runtime has no process driver; a blocking thread waits for node instead.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| BenchError::Browser(format!("node runner: {e}")))?
        .map_err(|e| BenchError::Browser(format!("cannot run node {}: {e}", script.display())))?;
    if !output.status.success() {
        return Err(BenchError::Browser(format!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().rfind(|l| l.starts_with('{')).unwrap_or_default();
    let parsed: Output = serde_json::from_str(line)
        .map_err(|e| BenchError::Browser(format!("unreadable output {line:?}: {e}")))?;
    Ok(parsed.pages)
}
