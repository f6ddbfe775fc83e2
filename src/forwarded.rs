//! The client address of a call behind reverse proxies: `X-Forwarded-For` is believed only
//! when the TCP peer is a configured trusted proxy (`trusted_proxies`), and then only as far
//! as the chain of trusted proxies reaches.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// One `trusted_proxies` entry: an address (`10.0.0.7`, `::1`) or a CIDR network
/// (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet(IpNet);

impl ProxyNet {
    fn contains(&self, ip: &IpAddr) -> bool {
        self.0.contains(ip)
    }
}

impl FromStr for ProxyNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(net) = t.parse::<IpNet>() {
            return Ok(ProxyNet(net.trunc()));
        }
        if let Ok(ip) = t.parse::<IpAddr>() {
            return Ok(ProxyNet(IpNet::from(ip.to_canonical())));
        }
        Err(format!(
            "trusted_proxies: {t:?} is neither an IP address nor a CIDR network (like 10.0.0.0/8)"
        ))
    }
}

impl fmt::Display for ProxyNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The reverse proxies whose `X-Forwarded-For` is believed. Empty (the default): the header
/// is never read. In configuration a list of strings, or one string of entries separated by
/// commas (convenient in `PROVD_TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ProxyNet>);

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: &IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The address a call comes from. `peer` is the TCP peer; `forwarded_for` the values of
    /// every `X-Forwarded-For` header in order (each a comma-separated list, the nearest hop
    /// last). An untrusted peer is the client, whatever the header says. Behind a trusted
    /// peer the client is the right-most address that is not itself a trusted proxy (if every
    /// address is trusted, the left-most). A hop that is not an address (garbage, `unknown`,
    /// an empty item) ends the trust: the peer is the client then.
    pub fn client_addr(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(&peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for.iter().rev().flat_map(|v| v.rsplit(',')) {
            let Some(ip) = parse_hop(hop) else {
                return peer;
            };
            client = ip;
            if !self.trusts(&ip) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` item: an address, possibly with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.split(',')
            .filter(|e| !e.trim().is_empty())
            .map(ProxyNet::from_str)
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|n| n.to_string()))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListOrString;

        impl<'de> Visitor<'de> for ListOrString {
            type Value = TrustedProxies;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of IP addresses or CIDR networks")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<TrustedProxies, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TrustedProxies, A::Error> {
                let mut nets = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    nets.push(entry.parse().map_err(de::Error::custom)?);
                }
                Ok(TrustedProxies(nets))
            }
        }

        deserializer.deserialize_any(ListOrString)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_header_says() {
        let t = trusted("10.0.0.0/8");
        assert_eq!(
            t.client_addr(ip("192.0.2.1"), &["203.0.113.9"]),
            ip("192.0.2.1")
        );
        // Nothing trusted at all: the header is never read.
        assert_eq!(
            TrustedProxies::default().client_addr(ip("127.0.0.1"), &["203.0.113.9"]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_forwards_the_client_address() {
        let t = trusted("10.0.0.1");
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &["203.0.113.9"]),
            ip("203.0.113.9")
        );
        // No header: the peer itself.
        assert_eq!(t.client_addr(ip("10.0.0.1"), &[]), ip("10.0.0.1"));
        // Ports and IPv6 are understood.
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &["203.0.113.9:5555"]),
            ip("203.0.113.9")
        );
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &["[2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
        // An IPv4-mapped IPv6 peer (a dual-stack listener) matches the IPv4 entry.
        assert_eq!(
            t.client_addr(ip("::ffff:10.0.0.1"), &["203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_chain_is_followed_only_through_trusted_proxies() {
        let t = trusted("10.0.0.0/8, 192.168.1.1");
        // client, then two trusted hops; the peer is a third.
        assert_eq!(
            t.client_addr(ip("10.1.1.1"), &["203.0.113.9, 192.168.1.1, 10.2.2.2"]),
            ip("203.0.113.9")
        );
        // A forged left-most entry is not believed: the right-most untrusted hop wins.
        assert_eq!(
            t.client_addr(ip("10.1.1.1"), &["198.51.100.66, 203.0.113.9, 10.2.2.2"]),
            ip("203.0.113.9")
        );
        // Several headers are one list, in order.
        assert_eq!(
            t.client_addr(ip("10.1.1.1"), &["198.51.100.66", "203.0.113.9, 10.2.2.2"]),
            ip("203.0.113.9")
        );
        // Every hop trusted: the left-most.
        assert_eq!(
            t.client_addr(ip("10.1.1.1"), &["10.3.3.3, 10.2.2.2"]),
            ip("10.3.3.3")
        );
    }

    #[test]
    fn garbage_in_the_header_falls_back_to_the_peer() {
        let t = trusted("10.0.0.0/8");
        for header in ["unknown", "not an address", "203.0.113.9, , 10.2.2.2", ""] {
            assert_eq!(
                t.client_addr(ip("10.1.1.1"), &[header]),
                ip("10.1.1.1"),
                "{header:?}"
            );
        }
        // Garbage beyond the first untrusted hop is never read.
        assert_eq!(
            t.client_addr(ip("10.1.1.1"), &["garbage, 203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn entries_parse_as_addresses_or_networks_and_bad_ones_are_named() {
        let t = trusted("127.0.0.1, ::1, 10.0.0.0/8, fd00::/8, 172.16.5.4/12");
        assert!(t.trusts(&ip("127.0.0.1")));
        assert!(!t.trusts(&ip("127.0.0.2")));
        assert!(t.trusts(&ip("::1")));
        assert!(t.trusts(&ip("10.255.0.1")));
        assert!(t.trusts(&ip("fd12::1")));
        assert!(t.trusts(&ip("172.31.0.1")), "host bits are dropped");
        assert!(!t.trusts(&ip("172.32.0.1")));
        let e = "10.0.0.0/8, 10.0.0.300"
            .parse::<TrustedProxies>()
            .unwrap_err();
        assert!(e.contains("\"10.0.0.300\""), "{e}");
        let e = "10.0.0.0/33".parse::<TrustedProxies>().unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
    }
}
