//! The address type shared by floaty's config and the keepalived.conf reader.
//!
//! A VIP is written `ADDR[/LEN]`. The prefix length only describes how
//! keepalived puts the address on an interface; the cloud API always wants
//! the host address itself (`192.0.2.10/24` means 192.0.2.10, never the
//! network 192.0.2.0 — a bug of vshn/floaty we do not repeat).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// One managed address as written in a config: host address plus optional prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Vip {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "`{0}` is not an IP address (write e.g. 192.0.2.10, 192.0.2.10/24 or 2001:db8::10/64)"
    )]
    BadAddress(String),
    #[error("`{0}` has a prefix length out of range (0-32 for IPv4, 0-128 for IPv6)")]
    BadPrefix(String),
}

impl FromStr for Vip {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| AddressError::BadAddress(s.to_string()))?;
        let prefix = match prefix {
            None => None,
            Some(p) => {
                let max = if addr.is_ipv4() { 32 } else { 128 };
                match p.parse::<u8>() {
                    Ok(n) if n <= max && !p.starts_with('+') => Some(n),
                    _ => return Err(AddressError::BadPrefix(s.to_string())),
                }
            }
        };
        Ok(Vip { addr, prefix })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.prefix {
            Some(p) => write!(f, "{}/{}", self.addr, p),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// Each host address once, whatever prefix it was written with: what the
/// cloud API is asked to move, and what the split-brain guard looks for.
pub fn host_addresses(vips: &[Vip]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    for v in vips {
        if !out.contains(&v.addr) {
            out.push(v.addr);
        }
    }
    out
}

/// Addresses comma-separated, as every log line that lists them shows them.
pub fn comma_list(addrs: &[IpAddr]) -> String {
    let v: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    v.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_address_is_kept_with_prefix() {
        let v: Vip = "192.0.2.10/24".parse().unwrap();
        assert_eq!(v.addr.to_string(), "192.0.2.10");
        assert_eq!(v.prefix, Some(24));
        assert_eq!(v.to_string(), "192.0.2.10/24");
    }

    #[test]
    fn ipv6_is_printed_compressed() {
        let v: Vip = "2001:0db8:0:0::cafe/64".parse().unwrap();
        assert_eq!(v.to_string(), "2001:db8::cafe/64");
    }

    #[test]
    fn rejects_bad_input() {
        assert!("192.0.2.300".parse::<Vip>().is_err());
        assert!("192.0.2.1/33".parse::<Vip>().is_err());
        assert!("2001:db8::1/129".parse::<Vip>().is_err());
        assert!("192.0.2.1/".parse::<Vip>().is_err());
        assert!("192.0.2.1/+4".parse::<Vip>().is_err());
        assert!("".parse::<Vip>().is_err());
    }
}
