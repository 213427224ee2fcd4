//! Network namespaces for tests: made and removed by the test itself (root and iproute2 only),
//! and threads that run inside one.

use std::future::Future;
use std::process::Command;

/// Why this machine cannot run the test; `None` when it can.
pub fn unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("?");
    if euid != "0" {
        return Some(format!("not root (euid {euid}): network namespaces need root"));
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(output) if output.status.success() => None,
        Ok(output) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Some(format!("`ip` (iproute2) cannot run: {error}")),
    }
}

pub fn run(args: &[&str]) {
    let output = Command::new(args[0]).args(&args[1..]).output().expect("command runs");
    assert!(
        output.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Runs `work` on a fresh thread that has entered network namespace `ns`, with its own
/// current-thread runtime: every socket it opens (HTTP, ICE) lives in that namespace.
pub fn in_netns<T, F>(ns: &str, work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let handle = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(work())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// [`in_netns`] from async code, without blocking the caller's runtime.
pub async fn in_netns_async<T, F>(ns: &str, work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T>,
{
    let ns = ns.to_owned();
    tokio::task::spawn_blocking(move || in_netns(&ns, work)).await.unwrap_or_else(|panic| {
        std::panic::resume_unwind(panic.into_panic());
    })
}
