//! Network namespaces for tests, made and removed by the test itself (root and iproute2 only),
//! threads that run inside one, and labs for the NAT traversal tests: namespaces joined by veth
//! pairs, a daemon and coturn started inside them, and a WHEP viewer whose sockets live in a
//! namespace of its own.
//!
//! Everything a [`Lab`] creates (namespaces with their veths and addresses, processes, files) is
//! removed when it is dropped, even when the test fails; the logs are printed then.

use super::process::{DaemonProcess, spawn_run_logging};
use super::whep_client::{Event, Network, WhepClient};
use std::future::Future;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use webrtc::peer_connection::{
    RTCIceCandidate, RTCIceServer, RTCPeerConnectionState, RTCSessionDescription,
};

/// The daemon listens here inside its own namespace; signalling goes through that namespace.
pub const DAEMON_HTTP: &str = "http://127.0.0.1:8080";
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

/// Why this machine cannot run namespace tests; `None` when it can.
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

pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// Namespaces and what runs in them; dropping it removes everything.
pub struct Lab {
    tag: String,
    namespaces: Vec<String>,
    pub dir: PathBuf,
    daemon: Option<DaemonProcess>,
    servers: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first: a namespace goes away only when nothing is left inside it.
        drop(self.daemon.take());
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        for ns in &self.namespaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() {
            for log in ["turnserver.log", "camrtc.log"] {
                let text = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- last lines of {log} ---");
                tail.iter().rev().for_each(|line| eprintln!("{line}"));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// An empty lab; `tag` keeps concurrent tests' namespaces apart.
    pub fn new(tag: &str) -> Lab {
        let tag = format!("camrtc-{tag}-{}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{tag}-lab"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Lab { tag, namespaces: Vec::new(), dir, daemon: None, servers: Vec::new() }
    }

    /// A new namespace with its loopback up; returns its name.
    pub fn namespace(&mut self, role: &str) -> String {
        let ns = format!("{}-{role}", self.tag);
        run(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        self.ip(&ns, &["link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair between two namespaces, both ends up, each with `address` (CIDR) if given.
    /// Made directly inside the namespaces: no interface ever appears on the host.
    pub fn link(&self, a: (&str, &str, Option<&str>), b: (&str, &str, Option<&str>)) {
        run(&["ip", "link", "add", a.1, "netns", a.0, "type", "veth", "peer", b.1, "netns", b.0]);
        for (ns, name, address) in [a, b] {
            if let Some(address) = address {
                self.ip(ns, &["addr", "add", address, "dev", name]);
            }
            self.ip(ns, &["link", "set", name, "up"]);
        }
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, ns: &str, args: &[&str]) {
        run(&[&["ip", "-n", ns][..], args].concat());
    }

    /// Runs a command inside `ns` and waits for it.
    pub fn exec(&self, ns: &str, args: &[&str]) {
        run(&[&["ip", "netns", "exec", ns][..], args].concat());
    }

    /// Lets `ns` route between its interfaces (it is a router).
    pub fn forward(&self, ns: &str, on: bool) {
        let value = if on { "1" } else { "0" };
        self.exec(ns, &["sh", "-c", &format!("echo {value} > /proc/sys/net/ipv4/ip_forward")]);
    }

    /// Loads an nftables ruleset into `ns`.
    pub fn nft(&self, ns: &str, ruleset: &str) {
        let Some(nft) = which("nft") else {
            panic!("nftables' nft is not installed: run scripts/install-deps.sh --test");
        };
        let path = self.dir.join(format!("{ns}.nft"));
        std::fs::write(&path, ruleset).expect("write ruleset");
        let (nft, path) = (nft.display().to_string(), path.display().to_string());
        self.exec(ns, &[&nft, "-f", &path]);
    }

    pub fn log(&self, name: &str) -> Stdio {
        std::fs::File::create(self.dir.join(name)).expect("log file").into()
    }

    pub fn read_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// coturn in `ns`, listening on `ip`:3478 with `auth` (its config lines for credentials;
    /// empty for a STUN-only server, which coturn still is for Binding requests).
    pub fn start_coturn(&mut self, ns: &str, ip: &str, auth: &str) {
        let Some(turnserver) = which("turnserver") else {
            panic!("coturn's turnserver is not installed: run scripts/install-deps.sh --test");
        };
        let dir = self.dir.display();
        let config = format!(
            "listening-ip={ip}\nrelay-ip={ip}\nlistening-port=3478\nmin-port=49152\nmax-port=65535\n\
             realm=camrtc.test\nfingerprint\n{auth}no-tls\nno-dtls\nno-cli\nno-tcp-relay\n\
             pidfile={dir}/turnserver.pid\nuserdb={dir}/turndb\nlog-file={dir}/turnserver.log\n\
             simple-log\nno-stdout-log\nverbose\n"
        );
        let path = self.dir.join("turnserver.conf");
        std::fs::write(&path, config).expect("write coturn config");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(turnserver)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(self.log("turnserver.stderr"))
            .spawn()
            .expect("turnserver starts");
        self.servers.push(child);
        let started = Instant::now();
        let wanted = format!("{ip}:3478");
        loop {
            let listening = Command::new("ip").args(["netns", "exec", ns, "ss", "-Huln"]).output();
            if String::from_utf8_lossy(&listening.expect("ss runs").stdout).contains(&wanted) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "coturn did not listen on {wanted}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon (test sources, no auth) in `ns`, with `webrtc` as its `[webrtc]` section and
    /// its debug log in camrtc.log; returns once it answers HTTP.
    pub fn start_daemon(&mut self, ns: &str, webrtc: &str) {
        self.start_daemon_listening(ns, "127.0.0.1:8080", webrtc);
    }

    /// [`Lab::start_daemon`] with HTTP on `listen` (port 8080, so that [`DAEMON_HTTP`] still
    /// reaches it), for viewers in other namespaces that signal over the lab's links.
    pub fn start_daemon_listening(&mut self, ns: &str, listen: &str, webrtc: &str) {
        let config = format!(
            "[http]\nlisten = \"{listen}\"\n\
             [video]\nsource = \"test\"\nwidth = 320\nheight = 240\n\
             [audio]\nsource = \"test\"\n\
             [webrtc]\n{webrtc}\nconnect_timeout_ms = 15000\n\
             [auth]\nmode = \"none\"\n"
        );
        let mut program = Command::new("ip");
        program.args(["netns", "exec", ns]).arg(super::camrtc_binary());
        // Everything the daemon and its WebRTC stack log, for the assertions on it.
        program.env("CAMRTC_LOG", "debug");
        let name = format!("{ns}-daemon");
        // A daemon started before in the lab goes first: it holds the HTTP port.
        drop(self.daemon.take());
        self.daemon =
            Some(spawn_run_logging(&name, &config, 8080, program, self.log("camrtc.log")));
        in_netns(ns, || async {
            let started = Instant::now();
            while reqwest::get(format!("{DAEMON_HTTP}/healthz")).await.is_err() {
                assert!(started.elapsed() < Duration::from_secs(10), "daemon did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    /// A home network behind a router: namespaces "home" (10.97.<net>.2, default route via the
    /// router's 10.97.<net>.1), "router" (forwarding; public side "wan" 10.97.<net+1>.1) and
    /// "public" (10.97.<net+1>.2, no route into the home network). Returns their names; the
    /// router's NAT and firewall rules are the caller's.
    pub fn home_behind_router(&mut self, net: u8) -> (String, String, String) {
        let (home, router, public) =
            (self.namespace("home"), self.namespace("router"), self.namespace("public"));
        let (lan, wan) = (format!("10.97.{net}"), format!("10.97.{}", net + 1));
        self.link(
            (&router, "lan", Some(&format!("{lan}.1/24"))),
            (&home, "to-router", Some(&format!("{lan}.2/24"))),
        );
        self.link(
            (&router, "wan", Some(&format!("{wan}.1/24"))),
            (&public, "to-router", Some(&format!("{wan}.2/24"))),
        );
        self.ip(&home, &["route", "add", "default", "via", &format!("{lan}.1")]);
        self.forward(&router, true);
        (home, router, public)
    }

    /// Proves a premise: `from` has no route at all to `ip`.
    pub fn assert_no_route(&self, from: &str, ip: &str) {
        let output =
            Command::new("ip").args(["-n", from, "route", "get", ip]).output().expect("ip runs");
        assert!(
            !output.status.success(),
            "{from} has a route to {ip}: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
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

/// The ICE servers in WHEP `Link` headers, as a browser reads them.
pub fn parse_links(links: &[String]) -> Vec<RTCIceServer> {
    links
        .iter()
        .filter_map(|link| {
            let (url, params) = link.strip_prefix('<')?.split_once('>')?;
            let mut server = RTCIceServer { urls: vec![url.to_owned()], ..Default::default() };
            let mut ice = false;
            for param in params.split(';').map(str::trim).filter(|p| !p.is_empty()) {
                let (key, value) = param.split_once('=')?;
                let value = value.trim_matches('"').to_owned();
                match key {
                    "rel" => ice = value == "ice-server",
                    "username" => server.username = value,
                    "credential" => server.credential = value,
                    _ => {}
                }
            }
            ice.then_some(server)
        })
        .collect()
}

pub struct Response {
    pub status: u16,
    pub links: Vec<String>,
    pub location: String,
    pub body: String,
}

pub async fn http(method: reqwest::Method, path: String, offer: Option<String>) -> Response {
    let mut request = reqwest::Client::new().request(method, format!("{DAEMON_HTTP}{path}"));
    if let Some(offer) = offer {
        request = request.header("Content-Type", "application/sdp").body(offer);
    }
    let response = request.send().await.expect("daemon answers");
    let headers = response.headers();
    let links = headers.get_all("link").iter().filter_map(|v| v.to_str().ok().map(Into::into));
    let links = links.collect();
    let location = headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let status = response.status().as_u16();
    Response { status, links, location, body: response.text().await.expect("body") }
}

/// What one viewer saw.
pub struct Outcome {
    /// The selected pair, as the viewer's ICE agent describes it.
    pub pair: String,
    pub local: RTCIceCandidate,
    /// The daemon's candidate in the selected pair, as the viewer knows it.
    pub remote: RTCIceCandidate,
    /// POST sent → answer received (the daemon waits up to 1 s for its own candidates).
    pub answered_after: Duration,
    /// POST sent → connection state Connected.
    pub connected_after: Duration,
    /// Start (discovery, gathering, POST) → first decoded frame.
    pub first_frame_after: Duration,
    /// The offer as posted.
    pub offer: String,
    /// The daemon's SDP answer.
    pub answer: String,
    /// The WHEP `Link` headers of the discovery request.
    pub links: Vec<String>,
}

impl Outcome {
    pub fn print(&self, label: &str) {
        println!(
            "{label}: selected pair {}; answer {:?}, connected {:?} after POST; \
             first frame {:?} after start",
            self.pair, self.answered_after, self.connected_after, self.first_frame_after
        );
        for line in self.answer.lines().filter(|line| line.starts_with("a=candidate")) {
            println!("{label}: daemon offered {line}");
        }
    }

    /// The daemon's answer candidates of `typ` (" typ srflx" etc.) as (address, port).
    pub fn answered(&self, typ: &str) -> Vec<(String, u16)> {
        answered_candidates(&self.answer, typ)
    }
}

/// The candidates of `typ` in an SDP, as (address, port).
pub fn answered_candidates(sdp: &str, typ: &str) -> Vec<(String, u16)> {
    sdp.lines()
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .filter_map(|candidate| {
            let fields: Vec<&str> = candidate.split_whitespace().collect();
            let (address, port) = (fields.get(4)?, fields.get(5)?.parse().ok()?);
            (fields.get(7) == Some(&typ)).then(|| (address.to_string(), port))
        })
        .collect()
}

/// One viewer session: WHEP discovery, offer, answer, media; HTTP goes through `signal_ns`
/// (the daemon's), media through the namespace the caller runs in. `network` describes the
/// viewer's ICE agent; `ice_from_links` replaces its servers with the ones the daemon announces.
pub async fn watch(signal_ns: String, network: Network, ice_from_links: bool) -> Outcome {
    watch_editing(signal_ns, network, ice_from_links, |offer| offer).await
}

/// [`watch`] with the offer passed through `edit` before it is posted (as a browser's would
/// differ from the test client's).
pub async fn watch_editing(
    signal_ns: String,
    mut network: Network,
    ice_from_links: bool,
    edit: impl FnOnce(String) -> String,
) -> Outcome {
    let started = Instant::now();
    let ns = signal_ns.clone();
    let discovery =
        in_netns_async(&ns, || http(reqwest::Method::OPTIONS, "/whep".into(), None)).await;
    assert_eq!(discovery.status, 204);
    if ice_from_links {
        network.ice_servers = parse_links(&discovery.links);
    }
    let mut client = WhepClient::with_network(network).await;

    let offer = edit(client.offer.clone());
    let posted_at = Instant::now();
    let posted_offer = offer.clone();
    let posted =
        in_netns_async(&ns, move || http(reqwest::Method::POST, "/whep".into(), Some(offer))).await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let answered_after = posted_at.elapsed();
    let answer = RTCSessionDescription::answer(posted.body.clone()).expect("answer parses");
    client.pc.set_remote_description(answer).await.expect("answer applies");

    let mut connected_after = None;
    let first_frame_after = loop {
        match client.next_event(CONNECT_LIMIT).await {
            Event::State(RTCPeerConnectionState::Connected) => {
                connected_after.get_or_insert(posted_at.elapsed());
            }
            Event::State(RTCPeerConnectionState::Failed) => panic!("the connection failed"),
            Event::Video(frame) => {
                assert_eq!((frame.width, frame.height), (320, 240));
                break started.elapsed();
            }
            _ => {}
        }
    };
    let receiver = client.pc.get_receivers().await.into_iter().next().expect("a receiver");
    let transport = receiver.transport().await.expect("transport").expect("DTLS transport");
    let pair = transport
        .ice_transport()
        .get_selected_candidate_pair()
        .await
        .expect("ICE state")
        .expect("a selected pair");

    let location = posted.location.clone();
    let deleted = in_netns_async(&ns, move || http(reqwest::Method::DELETE, location, None)).await;
    assert_eq!(deleted.status, 200);
    client.close().await;
    Outcome {
        pair: format!("viewer {} <-> daemon {}", describe(pair.local()), describe(pair.remote())),
        local: pair.local().clone(),
        remote: pair.remote().clone(),
        answered_after,
        connected_after: connected_after.expect("Connected came before media"),
        first_frame_after,
        offer: posted_offer,
        answer: posted.body,
        links: discovery.links,
    }
}

pub fn describe(c: &RTCIceCandidate) -> String {
    let related = if c.related_address.is_empty() {
        String::new()
    } else {
        format!(" (base {}:{})", c.related_address, c.related_port)
    };
    format!("{} {}:{}{related}", c.typ, c.address, c.port)
}

/// The viewer's network with no ICE servers, its sockets on `ip`.
pub fn plain_network(ip: &str) -> Network {
    Network { udp_addr: format!("{ip}:0"), ..Network::default() }
}
