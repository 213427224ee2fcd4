//! Shared by the integration tests: start a daemon in-process, and a WHEP client built on the
//! webrtc crate that receives, depacketises and decodes what a browser would.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod alsa;
pub mod browser;
pub mod netem;
pub mod netns;
pub mod notify;
pub mod process;
pub mod sse;
pub mod tls;
pub mod vm;
pub mod whep_client;

use camrtc::config::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// A daemon running in this process on an ephemeral loopback port.
pub struct Daemon {
    pub address: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), camrtc::app::AppError>>,
}

impl Daemon {
    pub async fn start(mut config: Config) -> Daemon {
        config.http.listen = "127.0.0.1:0".parse().expect("literal address");
        config.webrtc.include_loopback_candidates = true;
        let listener = tokio::net::TcpListener::bind(config.http.listen).await.expect("bind");
        let address = listener.local_addr().expect("bound");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(camrtc::app::run(config, listener, shutdown.clone(), |_| {}));
        Daemon { address, shutdown, task }
    }

    /// The daemon's /healthz document.
    pub async fn health(&self) -> serde_json::Value {
        let response = reqwest::get(self.url("/healthz")).await.expect("healthz answers");
        response.json().await.expect("healthz is JSON")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        let result = tokio::time::timeout(std::time::Duration::from_secs(5), self.task)
            .await
            .expect("daemon stops within 5 s")
            .expect("daemon task did not panic");
        result.expect("daemon ran without error");
    }
}

/// A file of the repository (this crate is `tests/common`).
pub fn repo_path(relative: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2);
    root.expect("tests/common sits two levels below the repository root").join(relative)
}

/// The `camrtc` binary cargo built for this test run. Only integration tests get
/// `CARGO_BIN_EXE_camrtc` at compile time, and this library is not one; their executables live
/// in `target/<profile>/deps/`, the package's binaries one directory up.
pub fn camrtc_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("a running test can name its own executable");
    let binary = exe.parent().and_then(Path::parent).map(|profile| profile.join("camrtc"));
    let binary = binary.expect("test executables live in target/<profile>/deps");
    assert!(
        binary.is_file(),
        "{} is missing: cargo builds it before integration tests",
        binary.display()
    );
    binary
}

/// The demo configuration (test pattern and tone) at another picture size.
pub fn demo_config(width: u32, height: u32) -> Config {
    let mut config = Config::demo("127.0.0.1:0".parse().expect("literal address"));
    config.video.width = width;
    config.video.height = height;
    config
}

/// Logs from the daemon under test, when `CAMRTC_LOG` asks for them.
pub fn init_logs() {
    if let Ok(filter) = std::env::var("CAMRTC_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}
