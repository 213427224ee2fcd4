//! TURN REST credentials expire, coturn refuses expired ones, and camrtc hands out fresh ones.
//!
//! In one network namespace (coturn on an address of its own, a daemon with `turn_secret`, an
//! in-process viewer): a relay allocation with an expired `<expiry>:camrtc` credential is refused
//! by coturn (no relay candidate, 401 in its log); the credentials camrtc hands out at that moment
//! allocate and the session plays through the relay; a session started later gets credentials
//! with a later expiry; and an ICE restart keeps the daemon's allocation on the credentials it
//! was made with (coturn answers a refresh signed with other credentials 441 Wrong Credentials,
//! which is why camrtc does not rotate them). Needs root and `ip netns`; skips without.

use camrtc_testkit as common;

use camrtc::ice::turn_rest_credentials;
use common::netns::{DAEMON_HTTP, Lab, in_netns, parse_links, unavailable};
use common::whep_client::{Event, Network, WhepClient};
use std::time::{Duration, SystemTime};
use webrtc::peer_connection::{RTCIceTransportPolicy, RTCPeerConnectionState};

const SECRET: &str = "renewal-turn-rest-secret";
const TURN_IP: &str = "10.99.62.1";
const VIEWER_IP: &str = "10.99.63.2";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// The usernames coturn logged a successful `method` for.
fn users_with_success(log: &str, method: &str) -> Vec<String> {
    log.lines()
        .filter(|line| line.contains(&format!("{method} processed, success")))
        .filter_map(|line| line.split("user <").nth(1)?.split('>').next().map(str::to_owned))
        .collect()
}

fn relay_network(servers: Vec<webrtc::peer_connection::RTCIceServer>) -> Network {
    Network {
        ice_servers: servers,
        policy: RTCIceTransportPolicy::Relay,
        udp_addr: format!("{VIEWER_IP}:0"),
        ..Network::default()
    }
}

async fn options_links() -> Vec<String> {
    let response = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{DAEMON_HTTP}/whep"))
        .send()
        .await
        .expect("daemon answers");
    let links = response.headers().get_all("link").iter();
    links.filter_map(|v| v.to_str().ok().map(str::to_owned)).collect()
}

#[test]
fn expired_credentials_are_refused_and_camrtc_renews_its_own() {
    if let Some(reason) = unavailable() {
        println!("SKIPPED turn_credentials_renewed: {reason}");
        return;
    }
    let mut lab = Lab::new("renew");
    let ns = lab.namespace("all");
    // A non-loopback address for everyone's host candidates: a veth pair with both ends here.
    lab.link((&ns, "lan0", Some(&format!("{VIEWER_IP}/24"))), (&ns, "lan1", None));
    lab.ip(&ns, &["addr", "add", &format!("{TURN_IP}/32"), "dev", "lo"]);
    lab.start_coturn(&ns, TURN_IP, &format!("use-auth-secret\nstatic-auth-secret={SECRET}\n"));
    lab.start_daemon(
        &ns,
        &format!(
            "turn_secret = \"{SECRET}\"\nturn_ttl_s = 60\n\
             ice_servers = [{{ urls = [\"turn:{TURN_IP}:3478\"] }}]"
        ),
    );

    let (first_user, later_user, restart_fragment) = in_netns(&ns, || async {
        let fresh = parse_links(&options_links().await);
        assert_eq!(fresh.len(), 1, "one TURN server announced");

        // A credential that expired a minute ago, correctly signed with the shared secret.
        let ttl = Duration::from_secs(60);
        let expired = turn_rest_credentials(
            SECRET.as_bytes(),
            ttl,
            SystemTime::now() - Duration::from_secs(120),
        );
        let mut stale = fresh.clone();
        stale[0].username = expired.username.clone();
        stale[0].credential = expired.credential.clone();
        let refused = WhepClient::with_network(relay_network(stale)).await;
        assert!(
            !refused.offer.contains(" typ relay"),
            "coturn allocated with an expired credential"
        );
        refused.close().await;

        // The credentials camrtc hands out now allocate, and the session plays through the relay.
        let mut client = WhepClient::with_network(relay_network(fresh.clone())).await;
        assert!(client.offer.contains(" typ relay"), "no relay with camrtc's fresh credentials");
        let created = client.post(&format!("{DAEMON_HTTP}/whep")).await.expect("201");
        loop {
            match client.next_event(Duration::from_secs(10)).await {
                Event::Video(_) => break,
                Event::State(RTCPeerConnectionState::Failed) => panic!("the connection failed"),
                _ => {}
            }
        }

        // Later (expiry usernames have one-second resolution), the viewer restarts ICE.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let offer = client.ice_restart_offer().await;
        let attribute = |sdp: &str, name: &str| {
            let prefix = format!("a={name}:");
            sdp.lines().find_map(|l| l.trim_end().strip_prefix(&prefix).map(str::to_owned))
        };
        let fragment = format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            attribute(&offer, "ice-ufrag").expect("ufrag"),
            attribute(&offer, "ice-pwd").expect("pwd")
        );
        let response = reqwest::Client::new()
            .patch(format!("{DAEMON_HTTP}{}", created.location))
            .header("Content-Type", SDPFRAG)
            .header("If-Match", "*")
            .body(fragment)
            .send()
            .await
            .expect("daemon answers");
        assert_eq!(response.status().as_u16(), 200);
        let answer = response.text().await.expect("body");
        let later = parse_links(&options_links().await);
        // Give the refresh a moment to reach coturn and be logged.
        tokio::time::sleep(Duration::from_millis(500)).await;
        client.close().await;
        (fresh[0].username.clone(), later[0].username.clone(), answer)
    });
    println!("restart answer:\n{restart_fragment}");
    assert!(restart_fragment.contains(" typ relay"), "the daemon's relay survives the restart");

    let log = lab.read_log("turnserver.log");
    let refused = "Cannot find credentials of user <";
    assert!(log.contains(refused), "coturn logged no refusal of the expired credential");
    let expiry = |user: &str| user.split(':').next().and_then(|e| e.parse::<u64>().ok());
    assert!(expiry(&later_user) > expiry(&first_user), "{first_user} then {later_user}");
    assert!(
        !log.contains("441"),
        "a refresh was signed with other credentials than its allocation's"
    );
    let allocations = users_with_success(&log, "ALLOCATE");
    println!("coturn allocations by {allocations:?}; a session 1.1 s later gets {later_user}");
    assert!(allocations.contains(&first_user), "{allocations:?}");
}
