//! IP addresses: IPv4 mostly from the documentation ranges (192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24), sometimes a public-looking one or a network in CIDR form; IPv6 from
//! 2001:db8::/32, written as RFC 5952 says (lowercase, the longest run of zero groups as ::).

use rand::seq::IndexedRandom;
use rand::Rng;

/// An IPv4 address, or with probability `cidr` a network (`198.51.100.128/25`).
pub fn ipv4(rng: &mut impl Rng, cidr: f64) -> String {
    let mut octets = if rng.random_bool(0.85) {
        let net = [[192u8, 0, 2], [198, 51, 100], [203, 0, 113]]
            .choose(rng)
            .copied()
            .unwrap_or([192, 0, 2]);
        [net[0], net[1], net[2], rng.random_range(1..=254)]
    } else {
        public_octets(rng)
    };
    if rng.random_bool(cidr.clamp(0.0, 1.0)) {
        let prefix: u32 = rng.random_range(24..=29);
        let host_bits = 32 - prefix;
        octets[3] &= !((1u32 << host_bits) - 1) as u8;
        return format!(
            "{}.{}.{}.{}/{prefix}",
            octets[0], octets[1], octets[2], octets[3]
        );
    }
    format!("{}.{}.{}.{}", octets[0], octets[1], octets[2], octets[3])
}

/// Outside the private, loopback, link-local, shared and multicast ranges.
fn public_octets(rng: &mut impl Rng) -> [u8; 4] {
    loop {
        let first = rng.random_range(5..=223u8);
        if matches!(first, 10 | 100 | 127 | 169 | 172 | 192 | 198 | 203) {
            continue;
        }
        return [first, rng.random(), rng.random(), rng.random_range(1..=254)];
    }
}

/// An address in 2001:db8::/32 with some zero groups, compressed.
pub fn ipv6(rng: &mut impl Rng) -> String {
    let mut groups = [0x2001u16, 0x0db8, 0, 0, 0, 0, 0, 0];
    for g in groups.iter_mut().skip(2) {
        *g = match rng.random_range(0..10) {
            0..=2 => 0,
            3..=4 => rng.random_range(1..=0xff),
            _ => rng.random(),
        };
    }
    compress(&groups)
}

/// RFC 5952 text: lowercase hex without leading zeros, the first longest run of two or more
/// zero groups as `::`.
pub fn compress(groups: &[u16; 8]) -> String {
    let (mut best, mut run) = ((0usize, 0usize), (0usize, 0usize));
    for (i, &g) in groups.iter().enumerate() {
        if g == 0 {
            run = if run.1 == 0 {
                (i, 1)
            } else {
                (run.0, run.1 + 1)
            };
            if run.1 > best.1 {
                best = run;
            }
        } else {
            run = (0, 0);
        }
    }
    let hex = |gs: &[u16]| gs.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>();
    if best.1 < 2 {
        return hex(groups).join(":");
    }
    let head = hex(&groups[..best.0]).join(":");
    let tail = hex(&groups[best.0 + best.1..]).join(":");
    format!("{head}::{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn addresses_parse_and_ipv6_is_in_canonical_form() {
        let mut rng = StdRng::seed_from_u64(5);
        for _ in 0..2000 {
            let v4 = ipv4(&mut rng, 0.2);
            let (addr, prefix) = v4.split_once('/').unwrap_or((&v4, "32"));
            let parsed: Ipv4Addr = addr.parse().unwrap();
            let prefix: u32 = prefix.parse().unwrap();
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            assert_eq!(u32::from(parsed) & !mask, 0, "{v4}: host bits set");
            assert!(!parsed.is_private() && !parsed.is_loopback(), "{v4}");
            let v6 = ipv6(&mut rng);
            let parsed: Ipv6Addr = v6.parse().unwrap();
            // std's Display is RFC 5952's canonical form.
            assert_eq!(parsed.to_string(), v6);
            assert!(v6.starts_with("2001:db8:"), "{v6}");
        }
    }
}
