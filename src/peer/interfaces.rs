//! Which local addresses a session's ICE sockets bind, from `webrtc.interfaces`,
//! `webrtc.exclude_interfaces` and `webrtc.ipv6`.
//!
//! webrtc 0.21 keeps interface and IP filters in its settings but never reads them; what it does
//! read is the list of bind addresses, resolved through `ToSocketAddrs` at every bind (start-up
//! and each ICE-restart rebind). [`BindAddrs`] is that list, so a filter is applied to the
//! interfaces that exist at bind time, as the crate's own wildcard expansion would be.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// What the config asks for; the same for every session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceChoice {
    /// Only these interfaces (by name); empty: all.
    pub only: Vec<String>,
    /// Never these.
    pub exclude: Vec<String>,
    /// Also bind IPv6 addresses.
    pub ipv6: bool,
    /// Also bind loopback addresses (`webrtc.include_loopback_candidates`).
    pub loopback: bool,
}

impl InterfaceChoice {
    fn filters(&self) -> bool {
        !self.only.is_empty() || !self.exclude.is_empty()
    }
}

/// One session's bind addresses: `port` (0: any) on the chosen interfaces.
#[derive(Debug, Clone)]
pub struct BindAddrs {
    pub choice: Arc<InterfaceChoice>,
    pub port: u16,
}

impl ToSocketAddrs for BindAddrs {
    type Iter = std::vec::IntoIter<SocketAddr>;

    fn to_socket_addrs(&self) -> io::Result<Self::Iter> {
        if !self.choice.filters() {
            // Wildcards: the crate binds the port on every interface address of the family.
            let mut all = vec![SocketAddr::from((Ipv4Addr::UNSPECIFIED, self.port))];
            if self.choice.ipv6 {
                all.push(SocketAddr::from((Ipv6Addr::UNSPECIFIED, self.port)));
            }
            return Ok(all.into_iter());
        }
        let interfaces = rtc::shared::ifaces::ifaces()?;
        let addresses: Vec<(String, IpAddr)> = interfaces
            .into_iter()
            .filter_map(|interface| Some((interface.name, interface.addr?.ip())))
            .collect();
        let chosen = choose(&addresses, &self.choice, self.port);
        if chosen.is_empty() {
            tracing::warn!(
                interfaces = ?addresses,
                "no interface address matches webrtc.interfaces/exclude_interfaces/ipv6: this \
                 viewer gets no host candidates"
            );
        }
        Ok(chosen.into_iter())
    }
}

/// The addresses of `interfaces` (name, address) that `choice` allows, with `port`. Link-local
/// addresses are skipped as the crate skips them: a candidate cannot carry an IPv6 scope.
pub fn choose(
    interfaces: &[(String, IpAddr)],
    choice: &InterfaceChoice,
    port: u16,
) -> Vec<SocketAddr> {
    let mut chosen = Vec::new();
    for (name, ip) in interfaces {
        let named = choice.only.is_empty() || choice.only.contains(name);
        let family = ip.is_ipv4() || choice.ipv6;
        let usable =
            !ip.is_unspecified() && !is_link_local(ip) && (choice.loopback || !ip.is_loopback());
        let address = SocketAddr::new(*ip, port);
        if named && !choice.exclude.contains(name) && family && usable && !chosen.contains(&address)
        {
            chosen.push(address);
        }
    }
    chosen
}

fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Vec<(String, IpAddr)> {
        [
            ("lo", "127.0.0.1"),
            ("lo", "::1"),
            ("eth0", "192.168.1.20"),
            ("eth0", "fe80::1"),
            ("eth0", "2001:db8::20"),
            ("wlan0", "10.0.0.5"),
            ("docker0", "172.17.0.1"),
        ]
        .iter()
        .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
        .collect()
    }

    fn chosen(choice: InterfaceChoice) -> Vec<String> {
        choose(&host(), &choice, 40_000).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn allow_and_deny_lists_pick_interfaces_by_name() {
        let only = InterfaceChoice { only: vec!["eth0".into()], ..Default::default() };
        assert_eq!(chosen(only), ["192.168.1.20:40000"]);
        let exclude = InterfaceChoice { exclude: vec!["docker0".into()], ..Default::default() };
        assert_eq!(chosen(exclude), ["192.168.1.20:40000", "10.0.0.5:40000"]);
        let both = InterfaceChoice {
            only: vec!["eth0".into(), "wlan0".into()],
            exclude: vec!["wlan0".into()],
            ..Default::default()
        };
        assert_eq!(chosen(both), ["192.168.1.20:40000"]);
        let unknown = InterfaceChoice { only: vec!["eth9".into()], ..Default::default() };
        assert!(chosen(unknown).is_empty());
    }

    #[test]
    fn ipv6_and_loopback_only_when_asked_and_never_link_local() {
        let v6 =
            InterfaceChoice { exclude: vec!["docker0".into()], ipv6: true, ..Default::default() };
        assert_eq!(chosen(v6), ["192.168.1.20:40000", "[2001:db8::20]:40000", "10.0.0.5:40000"]);
        let looped = InterfaceChoice {
            only: vec!["lo".into()],
            ipv6: true,
            loopback: true,
            ..Default::default()
        };
        assert_eq!(chosen(looped), ["127.0.0.1:40000", "[::1]:40000"]);
    }

    #[test]
    fn without_filters_the_crate_gets_wildcards() {
        let resolve = |choice: InterfaceChoice| -> Vec<String> {
            let addrs = BindAddrs { choice: Arc::new(choice), port: 7 };
            addrs.to_socket_addrs().unwrap().map(|a| a.to_string()).collect()
        };
        assert_eq!(resolve(InterfaceChoice::default()), ["0.0.0.0:7"]);
        let v6 = InterfaceChoice { ipv6: true, ..Default::default() };
        assert_eq!(resolve(v6), ["0.0.0.0:7", "[::]:7"]);
        // With a filter, this machine's own interfaces: loopback is there, and excluded here.
        let filtered = InterfaceChoice { only: vec!["lo".into()], ..Default::default() };
        assert!(resolve(filtered).is_empty());
    }
}
