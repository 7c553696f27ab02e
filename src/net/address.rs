//! Which addresses the scanner may contact: a supplier's DNS must not make it probe the network
//! it runs in (loopback, private, link-local, CGNAT, multicast, documentation, benchmarking and
//! other special-purpose ranges of the IANA registries).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What the policy fetch may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    /// Allow every address (`--allow-private-addresses`: labs, the demo, tests).
    pub allow_private: bool,
    /// Allow loopback only (tests of the in-process test internet that still want the
    /// non-loopback special ranges refused).
    pub allow_loopback: bool,
}

impl AddressPolicy {
    /// Whether the fetch may connect to `address`.
    pub fn permits(&self, address: IpAddr) -> bool {
        if self.allow_private {
            return true;
        }
        if self.allow_loopback && address.to_canonical().is_loopback() {
            return true;
        }
        is_public(address)
    }
}

/// A globally reachable unicast address (not in any special-purpose range).
pub fn is_public(address: IpAddr) -> bool {
    match address.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [b0, b1, b2, _] = a.octets();
    !(b0 == 0                                   // "this network" 0.0.0.0/8
        || b0 == 10                             // private 10/8
        || b0 == 127                            // loopback
        || (b0 == 100 && (64..128).contains(&b1)) // CGNAT 100.64/10
        || (b0 == 169 && b1 == 254)             // link-local
        || (b0 == 172 && (16..32).contains(&b1)) // private 172.16/12
        || (b0 == 192 && b1 == 0 && b2 == 0)    // IETF protocol assignments 192.0.0/24
        || (b0 == 192 && b1 == 0 && b2 == 2)    // TEST-NET-1
        || (b0 == 192 && b1 == 88 && b2 == 99)  // 6to4 relay anycast (deprecated)
        || (b0 == 192 && b1 == 168)             // private 192.168/16
        || (b0 == 198 && (b1 == 18 || b1 == 19)) // benchmarking 198.18/15
        || (b0 == 198 && b1 == 51 && b2 == 100) // TEST-NET-2
        || (b0 == 203 && b1 == 0 && b2 == 113)  // TEST-NET-3
        || b0 >= 224) // multicast 224/4, reserved 240/4, broadcast
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    !(a.is_unspecified()
        || a.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00                // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80                // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0                // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00                // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8)       // documentation 2001:db8::/32
        || (s[0] == 0x3fff && s[1] < 0x1000)        // documentation 3fff::/20
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking 2001:2::/48
        || (s[0] == 0x2001 && s[1] < 0x0200)        // IETF protocol assignments 2001::/23
        || (s[0] == 0x0064 && s[1] == 0xff9b)       // NAT64 64:ff9b::/96 and /48
        || s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0 // discard-only 100::/64
        || (s[0] == 0x2002)                         // 6to4: embeds an IPv4 address
        || (s[0] & 0xe000) != 0x2000) // outside global unicast 2000::/3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_special_purpose_ranges() {
        for (address, public) in [
            ("8.8.8.8", true),
            ("1.1.1.1", true),
            ("93.184.216.34", true),
            ("127.0.0.1", false),
            ("127.5.5.5", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.31.255.255", false),
            ("172.32.0.1", true),
            ("192.168.1.1", false),
            ("169.254.169.254", false), // cloud metadata endpoint
            ("100.64.0.1", false),
            ("100.128.0.1", true),
            ("0.0.0.0", false),
            ("192.0.2.10", false),
            ("198.51.100.1", false),
            ("203.0.113.5", false),
            ("198.18.0.1", false),
            ("224.0.0.1", false),
            ("255.255.255.255", false),
            ("2606:4700::1111", true),
            ("::1", false),
            ("::", false),
            ("fd00::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
            ("2001:db8::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("64:ff9b::a00:1", false),
            ("2002:a00:1::", false),
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(is_public(ip), public, "{address}");
        }
    }

    #[test]
    fn policy_switches() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let private: IpAddr = "10.0.0.1".parse().unwrap();
        let strict = AddressPolicy::default();
        assert!(!strict.permits(loopback) && !strict.permits(private));
        let lab = AddressPolicy {
            allow_loopback: true,
            ..AddressPolicy::default()
        };
        assert!(lab.permits(loopback) && !lab.permits(private));
        let all = AddressPolicy {
            allow_private: true,
            ..AddressPolicy::default()
        };
        assert!(all.permits(loopback) && all.permits(private));
    }
}
