//! The IPv4 subnet containers are addressed from (`[network] subnet`): parsing and its
//! addresses. Pure, below both the config that validates it and the network that uses it.

use std::net::Ipv4Addr;

/// A parsed `a.b.c.d/len` IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or("subnet must look like 10.89.0.0/24")?;
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .map_err(|_| format!("{p:?} is not a prefix length"))?;
        if !(8..=28).contains(&prefix) {
            return Err("subnet prefix must be between /8 and /28".into());
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet {
            network: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        })
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Container addresses: after the gateway, before the broadcast address.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network) + 2;
        let last = u32::from(self.network) + (1u32 << (32 - self.prefix)) - 2;
        (first..=last).map(Ipv4Addr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_list_their_hosts() {
        let s = Subnet::parse("10.89.3.7/24").expect("subnet");
        assert_eq!(s.network, Ipv4Addr::new(10, 89, 3, 0));
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 89, 3, 1));
        let hosts: Vec<Ipv4Addr> = s.hosts().collect();
        assert_eq!(hosts.first(), Some(&Ipv4Addr::new(10, 89, 3, 2)));
        assert_eq!(hosts.last(), Some(&Ipv4Addr::new(10, 89, 3, 254)));
        assert!(Subnet::parse("10.0.0.0").is_err());
        assert!(Subnet::parse("10.0.0.0/31").is_err());
    }
}
