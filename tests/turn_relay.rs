//! A viewer with no route to the daemon still gets the stream, through a real TURN server.
//!
//! The test builds three network namespaces: the daemon's, the viewer's and the TURN server's
//! (coturn, started with a generated config). Only the TURN namespace touches the other two, and
//! it does not forward, so the only path is a relay. The viewer takes the ICE servers the daemon
//! announces in its WHEP `Link` headers and allows relay candidates only (as a browser with
//! `iceTransportPolicy: 'relay'`); the daemon's own agent allocates a relay with its own
//! credentials. Run once with TURN REST credentials (coturn `use-auth-secret`, minted per session
//! by camrtc) and once with static long-term credentials. Setup times with and without TURN are
//! printed (`cargo test --test turn_relay -- --nocapture`).
//!
//! Needs root and `ip netns`; without them the test says so and skips. Everything it creates
//! (namespaces, their veths and addresses, processes, files) is removed even when it fails.

mod common;

use common::netns::{in_netns, in_netns_async, run, unavailable};
use common::process::{DaemonProcess, spawn_run_logging};
use common::whep_client::{Event, Network, WhepClient};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use webrtc::peer_connection::{
    RTCIceCandidateType, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionState,
    RTCSessionDescription,
};

const TURN_REST_SECRET: &str = "doorbell-turn-rest-secret";
const STATIC_USER: (&str, &str) = ("doorbell", "static-password");
const DAEMON_HTTP: &str = "http://127.0.0.1:8080";
const CONNECT_LIMIT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy)]
enum Credentials {
    TurnRest,
    Static,
}

/// Three namespaces and what runs in them; dropping it removes everything.
struct Lab {
    /// 10.99.<net>.0/24 daemon–TURN link, <net+1> viewer–TURN link, 10.99.<net+2>.1 the server.
    net: u8,
    turn_ns: String,
    daemon_ns: String,
    viewer_ns: String,
    dir: PathBuf,
    daemon: Option<DaemonProcess>,
    turn_server: Option<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        // Processes first: a namespace goes away only when nothing is left inside it.
        drop(self.daemon.take());
        if let Some(mut turn_server) = self.turn_server.take() {
            let _ = turn_server.kill();
            let _ = turn_server.wait();
        }
        for ns in [&self.turn_ns, &self.daemon_ns, &self.viewer_ns] {
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
    fn new(tag: &str, net: u8) -> Lab {
        let pid = std::process::id();
        let name = |role: &str| format!("camrtc-{tag}-{pid}-{role}");
        let dir = std::env::temp_dir().join(name("lab"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let lab = Lab {
            net,
            turn_ns: name("turn"),
            daemon_ns: name("daemon"),
            viewer_ns: name("viewer"),
            dir,
            daemon: None,
            turn_server: None,
        };
        for ns in [&lab.turn_ns, &lab.daemon_ns, &lab.viewer_ns] {
            run(&["ip", "netns", "add", ns]);
        }
        let (t, d, v) = (&lab.turn_ns, &lab.daemon_ns, &lab.viewer_ns);
        // Made directly inside the namespaces: no interface ever appears on the host.
        for (side, other) in [("to-daemon", d), ("to-viewer", v)] {
            let link = ["ip", "link", "add", side, "netns", t, "type", "veth"];
            run(&[&link[..], &["peer", "to-turn", "netns", other]].concat());
        }
        let ns_ip = |ns: &str, args: &[&str]| {
            let mut full = vec!["ip", "-n", ns];
            full.extend_from_slice(args);
            run(&full);
        };
        let (dnet, vnet) = (format!("10.99.{net}"), format!("10.99.{}", net + 1));
        let server = lab.turn_ip();
        ns_ip(t, &["addr", "add", &format!("{dnet}.1/24"), "dev", "to-daemon"]);
        ns_ip(t, &["addr", "add", &format!("{vnet}.1/24"), "dev", "to-viewer"]);
        // The server's one address, reached by both sides, like a public TURN server's.
        ns_ip(t, &["addr", "add", &format!("{server}/32"), "dev", "lo"]);
        ns_ip(d, &["addr", "add", &format!("{dnet}.2/24"), "dev", "to-turn"]);
        ns_ip(v, &["addr", "add", &format!("{vnet}.2/24"), "dev", "to-turn"]);
        for (ns, links) in [
            (t, &["lo", "to-daemon", "to-viewer"][..]),
            (d, &["lo", "to-turn"]),
            (v, &["lo", "to-turn"]),
        ] {
            for link in links {
                ns_ip(ns, &["link", "set", link, "up"]);
            }
        }
        ns_ip(d, &["route", "add", &format!("{server}/32"), "via", &format!("{dnet}.1")]);
        ns_ip(v, &["route", "add", &format!("{server}/32"), "via", &format!("{vnet}.1")]);
        // The webrtc crate joins the mDNS multicast group when building every peer connection and
        // fails with ENODEV where no route covers 224.0.0.251 (normally the default route does).
        for ns in [d, v] {
            ns_ip(ns, &["route", "add", "224.0.0.0/4", "dev", "to-turn"]);
        }
        run(&["ip", "netns", "exec", t, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"]);
        lab
    }

    fn turn_ip(&self) -> String {
        format!("10.99.{}.1", self.net + 2)
    }

    fn daemon_ip(&self) -> String {
        format!("10.99.{}.2", self.net)
    }

    fn viewer_ip(&self) -> String {
        format!("10.99.{}.2", self.net + 1)
    }

    fn log(&self, name: &str) -> Stdio {
        std::fs::File::create(self.dir.join(name)).expect("log file").into()
    }

    fn start_turn_server(&mut self, credentials: Credentials) {
        let Ok(turnserver) = which("turnserver") else {
            panic!("coturn's turnserver is not installed: run scripts/install-deps.sh --test");
        };
        let auth = match credentials {
            Credentials::TurnRest => {
                format!("use-auth-secret\nstatic-auth-secret={TURN_REST_SECRET}\n")
            }
            Credentials::Static => {
                format!("lt-cred-mech\nuser={}:{}\n", STATIC_USER.0, STATIC_USER.1)
            }
        };
        let dir = self.dir.display();
        let ip = self.turn_ip();
        let config = format!(
            "listening-ip={ip}\nrelay-ip={ip}\nlistening-port=3478\nmin-port=49152\nmax-port=65535\n\
             realm=camrtc.test\nfingerprint\n{auth}no-tls\nno-dtls\nno-cli\nno-tcp-relay\n\
             pidfile={dir}/turnserver.pid\nuserdb={dir}/turndb\nlog-file={dir}/turnserver.log\n\
             simple-log\nno-stdout-log\nverbose\n"
        );
        let path = self.dir.join("turnserver.conf");
        std::fs::write(&path, config).expect("write coturn config");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.turn_ns])
            .arg(turnserver)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(self.log("turnserver.stderr"))
            .spawn()
            .expect("turnserver starts");
        self.turn_server = Some(child);
        let started = Instant::now();
        let wanted = format!("{ip}:3478");
        loop {
            let listening = Command::new("ip")
                .args(["netns", "exec", &self.turn_ns, "ss", "-Huln"])
                .output()
                .expect("ss runs");
            if String::from_utf8_lossy(&listening.stdout).contains(&wanted) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "coturn did not listen on {wanted}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start_daemon(&mut self, credentials: Credentials) {
        let turn = format!("turn:{}:3478", self.turn_ip());
        let servers = match credentials {
            Credentials::TurnRest => format!(
                "turn_secret = \"{TURN_REST_SECRET}\"\nice_servers = [{{ urls = [\"{turn}\"] }}]"
            ),
            Credentials::Static => format!(
                "ice_servers = [{{ urls = [\"{turn}\"], username = \"{}\", credential = \"{}\" }}]",
                STATIC_USER.0, STATIC_USER.1
            ),
        };
        let config = format!(
            "[http]\nlisten = \"127.0.0.1:8080\"\n\
             [video]\nsource = \"test\"\nwidth = 320\nheight = 240\n\
             [audio]\nsource = \"test\"\n\
             [webrtc]\n{servers}\nconnect_timeout_ms = 15000\n\
             [auth]\nmode = \"none\"\n"
        );
        let mut program = Command::new("ip");
        program.args(["netns", "exec", &self.daemon_ns, env!("CARGO_BIN_EXE_camrtc")]);
        // Everything the daemon and its WebRTC stack log, to check no secret is among it.
        program.env("CAMRTC_LOG", "debug");
        let name = format!("{}-daemon", self.daemon_ns);
        self.daemon =
            Some(spawn_run_logging(&name, &config, 8080, program, self.log("camrtc.log")));
        let ns = self.daemon_ns.clone();
        in_netns(&ns, || async {
            let started = Instant::now();
            while reqwest::get(format!("{DAEMON_HTTP}/healthz")).await.is_err() {
                assert!(started.elapsed() < Duration::from_secs(10), "daemon did not start");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }

    /// Proves the premise: the viewer has no route at all to the daemon.
    fn assert_viewer_cannot_reach_daemon(&self) {
        let output = Command::new("ip")
            .args(["-n", &self.viewer_ns, "route", "get", &self.daemon_ip()])
            .output()
            .expect("ip runs");
        assert!(
            !output.status.success(),
            "the viewer has a route to the daemon: {}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

fn which(program: &str) -> Result<PathBuf, ()> {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}

/// The ICE servers in WHEP `Link` headers, as a browser reads them.
fn parse_links(links: &[String]) -> Vec<RTCIceServer> {
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

struct Posted {
    status: u16,
    links: Vec<String>,
    location: String,
    body: String,
}

async fn http(method: reqwest::Method, path: String, offer: Option<String>) -> Posted {
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
    Posted { status, links, location, body: response.text().await.expect("body") }
}

/// What one viewer saw.
struct Outcome {
    /// The selected pair, as the viewer's ICE agent describes it.
    pair: String,
    local_type: RTCIceCandidateType,
    /// POST sent → answer received (the daemon waits up to 1 s for its own candidates).
    answered_after: Duration,
    /// POST sent → connection state Connected.
    connected_after: Duration,
    /// Start (discovery, gathering, POST) → first decoded frame.
    first_frame_after: Duration,
    /// The daemon's answer carried a relay candidate of its own.
    daemon_offered_relay: bool,
    /// The TURN credential the viewer was given (empty without TURN).
    turn_credential: String,
}

impl Outcome {
    fn print(&self, label: &str) {
        println!(
            "turn_relay ({label}): selected pair {}; answer {:?}, connected {:?} after POST; \
             first frame {:?} after start",
            self.pair, self.answered_after, self.connected_after, self.first_frame_after
        );
    }
}

/// One viewer session: WHEP discovery, offer, answer, media; HTTP goes through `signal_ns`.
/// `relay`: use the announced ICE servers and relay candidates only; otherwise no ICE servers.
async fn watch(signal_ns: String, udp_addr: String, relay: bool) -> Outcome {
    let started = Instant::now();
    let ns = signal_ns.clone();
    let discovery =
        in_netns_async(&ns, || http(reqwest::Method::OPTIONS, "/whep".into(), None)).await;
    assert_eq!(discovery.status, 204);
    let credential = parse_links(&discovery.links).first().map(|s| s.credential.clone());
    let (ice_servers, policy) = if relay {
        let servers = parse_links(&discovery.links);
        assert_eq!(servers.len(), 1, "one TURN server announced: {:?}", discovery.links);
        assert!(!servers[0].credential.is_empty(), "{:?}", discovery.links);
        (servers, RTCIceTransportPolicy::Relay)
    } else {
        (Vec::new(), RTCIceTransportPolicy::All)
    };
    let mut client = WhepClient::with_network(Network { ice_servers, policy, udp_addr }).await;

    let offer = client.offer.clone();
    let posted_at = Instant::now();
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
    let describe = |c: &webrtc::peer_connection::RTCIceCandidate| {
        let related = if c.related_address.is_empty() {
            String::new()
        } else {
            format!(" (base {}:{})", c.related_address, c.related_port)
        };
        format!("{} {}:{}{related}", c.typ, c.address, c.port)
    };
    Outcome {
        pair: format!("viewer {} <-> daemon {}", describe(pair.local()), describe(pair.remote())),
        local_type: pair.local().typ,
        answered_after,
        connected_after: connected_after.expect("Connected came before media"),
        first_frame_after,
        turn_credential: credential.unwrap_or_default(),
        daemon_offered_relay: posted.body.lines().any(|line| line.contains(" typ relay")),
    }
}

fn relays_with(credentials: Credentials, tag: &str, net: u8) -> Option<Lab> {
    if let Some(reason) = unavailable() {
        println!("SKIPPED turn_relay ({tag}): {reason}");
        return None;
    }
    let mut lab = Lab::new(tag, net);
    lab.assert_viewer_cannot_reach_daemon();
    lab.start_turn_server(credentials);
    lab.start_daemon(credentials);

    let (viewer_ns, daemon_ns, viewer_udp) =
        (lab.viewer_ns.clone(), lab.daemon_ns.clone(), format!("{}:0", lab.viewer_ip()));
    let relayed = in_netns(&viewer_ns, move || watch(daemon_ns, viewer_udp, true));
    relayed.print(tag);
    assert_eq!(relayed.local_type, RTCIceCandidateType::Relay, "{}", relayed.pair);
    assert!(relayed.daemon_offered_relay, "the daemon's answer has no relay candidate");
    let log = std::fs::read_to_string(lab.dir.join("camrtc.log")).expect("daemon log");
    assert!(log.contains("viewer connected"), "the log is the daemon's debug log");
    for secret in [TURN_REST_SECRET, STATIC_USER.1, &relayed.turn_credential] {
        assert!(!log.contains(secret), "the daemon logged the TURN secret or a credential");
    }
    Some(lab)
}

#[test]
fn relays_with_turn_rest_credentials() {
    let Some(lab) = relays_with(Credentials::TurnRest, "rest", 10) else { return };
    // The same daemon, with a viewer beside it: host candidates, no relay, for comparison.
    let (daemon_ns, udp) = (lab.daemon_ns.clone(), format!("{}:0", lab.daemon_ip()));
    let direct = in_netns(&lab.daemon_ns.clone(), move || watch(daemon_ns, udp, false));
    direct.print("no TURN, viewer in the daemon's namespace");
    assert_eq!(direct.local_type, RTCIceCandidateType::Host, "{}", direct.pair);
    drop(lab);
}

#[test]
fn relays_with_static_credentials() {
    relays_with(Credentials::Static, "static", 20);
}
