//! A link with real `tc netem` between two network namespaces, for kernels without `sch_netem`
//! (this machine's has none). The VM of tests/vm/run.sh, whose Debian kernel has it, gets two
//! network cards wired to tap interfaces, bridges them, and shapes each direction with netem; the
//! taps are moved into the test's namespaces, so every packet between them crosses the guest.
//!
//! The guest forwards at TCG speed, which adds its own few milliseconds of varying delay: a UDP
//! round trip with 10 ms of netem delay one way took 15–30 ms while the machine was compiling.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The guest prints this once both directions are shaped and the bridge forwards.
const READY: &str = "CAMRTC_NETEM_READY";
const BOOT_LIMIT: Duration = Duration::from_secs(90);

/// One end of the link: the tap appears in `netns` as `ifname` with `address` (CIDR), up.
pub struct End<'a> {
    pub netns: &'a str,
    pub ifname: &'a str,
    pub address: &'a str,
}

/// The running link VM; dropping it kills the VM, which removes both taps.
pub struct NetemLink {
    vm: Child,
    link_ns: String,
    /// The guest's job, outside /tmp (which the guest replaces with its own).
    job: std::path::PathBuf,
    /// Console lines, for the failure message.
    console: mpsc::Receiver<String>,
}

/// Why this machine cannot run the link VM; `None` when it can.
pub fn unavailable() -> Option<String> {
    if let Some(reason) = super::netns::unavailable() {
        return Some(reason);
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun: the link VM needs tap interfaces".into());
    }
    // run.sh boots an installed Debian kernel; its modules must include netem.
    let guest_kernel = std::fs::read_dir("/lib/modules").is_ok_and(|releases| {
        releases.flatten().any(|release| {
            let netem = release.path().join("kernel/net/sched");
            let has_netem = std::fs::read_dir(netem).is_ok_and(|files| {
                files.flatten().any(|f| f.file_name().to_string_lossy().starts_with("sch_netem."))
            });
            let image = format!("/boot/vmlinuz-{}", release.file_name().to_string_lossy());
            has_netem && std::path::Path::new(&image).exists()
        })
    });
    if !guest_kernel || super::netns::which("qemu-system-x86_64").is_none() {
        return Some(
            "no guest kernel with sch_netem, or no qemu, for the link VM: run \
             scripts/install-deps.sh --test"
                .into(),
        );
    }
    None
}

impl NetemLink {
    /// Boots the link. `a_to_b` and `b_to_a` are netem arguments for what the guest sends out of
    /// each end (`"rate 300kbit loss 1% limit 50"`); an empty string leaves a direction unshaped.
    /// Panics with the guest's console when it does not come up within 90 s.
    pub fn start(a: End<'_>, b: End<'_>, a_to_b: &str, b_to_a: &str) -> NetemLink {
        static LINKS: AtomicU32 = AtomicU32::new(0);
        let serial = LINKS.fetch_add(1, Ordering::Relaxed);
        let link_ns = format!("camrtc-netem-{}-{serial}", std::process::id());
        super::netns::run(&["ip", "netns", "add", &link_ns]);
        // qemu makes the taps in its own namespace, under names that cannot clash with anything
        // in the namespaces they move to.
        let taps = ["netem-tap1", "netem-tap2"];
        let job = std::path::PathBuf::from(format!("/var/tmp/{link_ns}.sh"));
        std::fs::write(&job, guest_script(a_to_b, b_to_a)).expect("write the guest's job");
        let script = super::repo_path("tests/vm/run.sh");
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &link_ns])
            .arg(&script)
            .args(["--timeout", "3600", "--modules", "virtio_net bridge sch_netem"])
            .args(["--tap", taps[0], "--tap", taps[1], "--", "sh"])
            .arg(&job)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so dropping the link can end run.sh and qemu together.
            .process_group(0);
        let mut vm = command.spawn().expect("tests/vm/run.sh starts");
        let (lines, console) = mpsc::channel();
        for stream in [
            Box::new(vm.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(vm.stderr.take().expect("piped")),
        ] {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    // run.sh has already taken the serial console's carriage returns out.
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        // Only the readers hold senders now: the channel closes when the VM's output ends.
        drop(lines);
        let mut link = NetemLink { vm, link_ns, job, console };

        let started = Instant::now();
        while !taps.iter().all(|tap| link.has_tap(tap)) {
            assert!(started.elapsed() < Duration::from_secs(20), "qemu made no taps");
            std::thread::sleep(Duration::from_millis(50));
        }
        for (tap, end) in taps.iter().zip([&a, &b]) {
            let run = super::netns::run;
            run(&["ip", "-n", &link.link_ns, "link", "set", tap, "netns", end.netns]);
            run(&["ip", "-n", end.netns, "link", "set", tap, "name", end.ifname]);
            run(&["ip", "-n", end.netns, "addr", "add", end.address, "dev", end.ifname]);
            run(&["ip", "-n", end.netns, "link", "set", end.ifname, "up"]);
        }
        link.wait_ready();
        link
    }

    fn has_tap(&self, tap: &str) -> bool {
        let status = Command::new("ip")
            .args(["-n", &self.link_ns, "link", "show", tap])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        status.is_ok_and(|s| s.success())
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + BOOT_LIMIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.recv_timeout(left) {
                Ok(line) if line.contains(READY) => return,
                Ok(line) => seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "the netem link VM did not come up in {BOOT_LIMIT:?}:\n{}",
                        seen.join("\n")
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("the netem link VM ended:\n{}", seen.join("\n"))
                }
            }
        }
    }
}

impl Drop for NetemLink {
    fn drop(&mut self) {
        // The whole group: run.sh, its timeout and qemu. TERM first, so run.sh removes its job
        // folder; KILL if it is still there after that.
        let group = format!("-{}", self.vm.id());
        let kill = |signal: &str| {
            let _ =
                Command::new("kill").args([signal, "--", &group]).stderr(Stdio::null()).status();
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.vm.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("-KILL");
        let _ = self.vm.wait();
        let _ = Command::new("ip").args(["netns", "del", &self.link_ns]).status();
        let _ = std::fs::remove_file(&self.job);
    }
}

/// The guest's job: bridge the two cards (found by the MACs run.sh gives them) and shape each.
fn guest_script(a_to_b: &str, b_to_a: &str) -> String {
    let shape = |card: &str, netem: &str| {
        if netem.is_empty() {
            String::new()
        } else {
            format!("tc qdisc add dev ${card} root netem {netem} || exit 1\n")
        }
    };
    format!(
        "card() {{ for d in /sys/class/net/*; do \
             [ \"$(cat $d/address)\" = \"$1\" ] && [ -e $d/device ] && basename $d; done; \
             return 0; }}\n\
         a=$(card 52:54:00:00:00:01) b=$(card 52:54:00:00:00:02)\n\
         [ -n \"$a\" ] && [ -n \"$b\" ] || {{ echo \"netem: cards not found\"; exit 1; }}\n\
         ip link add br0 type bridge forward_delay 0 stp_state 0 || exit 1\n\
         for card in $a $b; do ip link set $card master br0 && ip link set $card up || exit 1; done\n\
         ip link set br0 up || exit 1\n\
         {}{}echo {READY}\n\
         exec sleep 3600\n",
        // What leaves the guest towards b went from a to b.
        shape("b", a_to_b),
        shape("a", b_to_a),
    )
}
