//! keepalived's keyword walk (`process_stream`) for the parts floaty needs:
//! `vrrp_instance` (name, `interface`, `virtual_ipaddress[_excluded]`,
//! `native_ipv6`, `track_file`), `vrrp_sync_group` (`group`, `track_file`,
//! `sync_group_tracking_weight`) and `track_file` definitions (`file`,
//! `weight`), the last for `--check`'s word on floaty's health files.
//!
//! Everything else is skipped the way keepalived skips a block it does not
//! process: a keyword whose next line is `{` has its block skipped with the
//! braces counted; a `}` ends the current block.

use std::net::IpAddr;

use super::lexer::{lenient_unsigned, tokenize};
use super::state::Reader;
use super::KeepalivedError;
use crate::address::Vip;

#[derive(Debug, Default)]
pub(crate) struct RawInstance {
    pub name: Vec<u8>,
    pub interface: Option<Vec<u8>>,
    pub vips: Vec<Vip>,
    pub excluded: Vec<Vip>,
    pub location: String,
    /// keepalived's `vrrp->family`: set by the first VIP or `native_ipv6`.
    pub family_v6: Option<bool>,
    pub track_files: Vec<TrackUse>,
}

#[derive(Debug, Default)]
pub(crate) struct RawGroup {
    pub name: Vec<u8>,
    pub members: Option<Vec<Vec<u8>>>,
    pub location: String,
    pub track_files: Vec<TrackUse>,
    pub tracking_weight: bool,
}

/// A top-level `track_file NAME { file PATH; weight W [reverse] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackFileDef {
    pub name: String,
    pub file: Option<String>,
    /// keepalived's default is 1.
    pub weight: i64,
    pub reverse: bool,
}

/// One line of an instance's or group's `track_file { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackUse {
    pub name: String,
    pub weight: Option<i64>,
    pub reverse: Option<bool>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Instance,
    SyncGroup,
    TrackFile,
}

pub(crate) struct Parser<'a> {
    r: &'a mut Reader,
    skip_sublevel: i32,
    /// Set while skipping the block of a keyword floaty does not model:
    /// unlike a skip started by a keepalived handler (`skip_block`), its
    /// closing `}` does not end the enclosing block.
    generic_skip: bool,
    kw_level: i32,
    pub instances: Vec<RawInstance>,
    pub groups: Vec<RawGroup>,
    pub track_files: Vec<TrackFileDef>,
}

impl<'a> Parser<'a> {
    pub(crate) fn new(r: &'a mut Reader) -> Self {
        Parser {
            r,
            skip_sublevel: 0,
            generic_skip: false,
            kw_level: 0,
            instances: Vec::new(),
            groups: Vec::new(),
            track_files: Vec::new(),
        }
    }

    pub(crate) fn run(&mut self) -> Result<(), KeepalivedError> {
        self.process_stream(Level::Root, false)?;
        Ok(())
    }

    fn next_tokens(&mut self) -> Result<Option<Vec<Vec<u8>>>, KeepalivedError> {
        loop {
            let Some(line) = self.r.read_line()? else {
                return Ok(None);
            };
            let t = tokenize(&line);
            if !t.is_empty() {
                return Ok(Some(t));
            }
        }
    }

    /// Returns true when the block ended by skipping (keepalived's `ret_err`).
    fn process_stream(
        &mut self,
        level: Level,
        mut need_bob: bool,
    ) -> Result<bool, KeepalivedError> {
        while let Some(mut strvec) = self.next_tokens()? {
            let first = strvec[0].clone();
            if self.skip_sublevel == -1 {
                if first == b"{" {
                    self.skip_sublevel = 1;
                    need_bob = false;
                    continue;
                }
                self.skip_sublevel = 0;
            }
            if self.skip_sublevel != 0 {
                let mut last: &[u8] = &first;
                for tok in &strvec {
                    last = tok;
                    if tok == b"{" {
                        self.skip_sublevel += 1;
                    } else if tok == b"}" {
                        self.skip_sublevel -= 1;
                        if self.skip_sublevel == 0 {
                            break;
                        }
                    }
                }
                if last == b"}"
                    && self.skip_sublevel == 0
                    && self.kw_level > 0
                    && !self.generic_skip
                {
                    return Ok(true);
                }
                continue;
            }
            if need_bob {
                need_bob = false;
                if first == b"{" && self.kw_level > 0 {
                    continue;
                }
                self.r.warn("missing '{' at the beginning of the block");
            } else if first == b"{" {
                self.r.warn("unexpected '{' - keepalived ignores it");
                continue;
            }
            if first == b"}" && self.kw_level > 0 {
                return Ok(false);
            }

            let has_sub = matches!(
                (level, first.as_slice()),
                (Level::Root, b"vrrp_instance")
                    | (Level::Root, b"vrrp_sync_group")
                    | (Level::Root, b"track_file")
                    | (Level::Root, b"vrrp_track_file")
            );
            let mut bob_needed = false;
            if has_sub {
                if strvec.last().is_some_and(|t| t == b"{") {
                    strvec.pop();
                } else {
                    bob_needed = true;
                }
            }
            match (level, first.as_slice()) {
                (Level::Root, b"vrrp_instance") => self.vrrp_instance(&strvec),
                (Level::Root, b"vrrp_sync_group") => self.vrrp_sync_group(&strvec),
                (Level::Instance, b"interface") => self.interface(&strvec)?,
                (Level::Instance, b"virtual_ipaddress") => self.vips(&strvec, false)?,
                (Level::Instance, b"virtual_ipaddress_excluded") => self.vips(&strvec, true)?,
                (Level::Instance, b"native_ipv6") => {
                    if let Some(i) = self.instances.last_mut() {
                        if i.family_v6 != Some(false) {
                            i.family_v6 = Some(true);
                        }
                    }
                }
                (Level::SyncGroup, b"group") => self.group(&strvec)?,
                (Level::Root, b"track_file" | b"vrrp_track_file") => {
                    self.track_files.push(TrackFileDef {
                        name: strvec
                            .get(1)
                            .map(|n| String::from_utf8_lossy(n).into_owned())
                            .unwrap_or_default(),
                        weight: 1,
                        ..TrackFileDef::default()
                    })
                }
                (Level::TrackFile, b"file") => {
                    if let (Some(t), Some(path)) = (self.track_files.last_mut(), strvec.get(1)) {
                        t.file = Some(String::from_utf8_lossy(path).into_owned());
                    }
                }
                (Level::TrackFile, b"weight") => {
                    if let Some(t) = self.track_files.last_mut() {
                        let w = strvec.get(1).and_then(|w| std::str::from_utf8(w).ok());
                        t.weight = w.and_then(|w| w.parse().ok()).unwrap_or(t.weight);
                        t.reverse = strvec.get(2).is_some_and(|r| r == b"reverse");
                    }
                }
                (Level::Instance, b"track_file") => {
                    let uses = self.track_uses(&strvec)?;
                    if let Some(i) = self.instances.last_mut() {
                        i.track_files.extend(uses);
                    }
                }
                (Level::SyncGroup, b"track_file") => {
                    let uses = self.track_uses(&strvec)?;
                    if let Some(g) = self.groups.last_mut() {
                        g.track_files.extend(uses);
                    }
                }
                (Level::SyncGroup, b"sync_group_tracking_weight") => {
                    if let Some(g) = self.groups.last_mut() {
                        g.tracking_weight = true;
                    }
                }
                _ => {
                    // A keyword floaty does not model: if a block follows,
                    // skip it whole.
                    self.skip_sublevel = if strvec.last().is_some_and(|t| t == b"{") {
                        1
                    } else {
                        -1
                    };
                    self.generic_skip = true;
                }
            }
            if has_sub {
                let sub = match first.as_slice() {
                    b"vrrp_instance" => Level::Instance,
                    b"vrrp_sync_group" => Level::SyncGroup,
                    _ => Level::TrackFile,
                };
                self.kw_level += 1;
                let r = self.process_stream(sub, bob_needed);
                self.kw_level -= 1;
                r?;
            }
        }
        Ok(false)
    }

    fn vrrp_instance(&mut self, strvec: &[Vec<u8>]) {
        if strvec.len() != 2 {
            self.r
                .warn("vrrp_instance must have exactly one name - keepalived skips the block");
            self.skip_sublevel = -1;
            self.generic_skip = false;
            return;
        }
        let name = &strvec[1];
        if self.instances.iter().any(|i| &i.name == name) {
            self.r.warn(format_args!(
                "vrrp instance {} already defined - keepalived skips this block",
                String::from_utf8_lossy(name)
            ));
            self.skip_sublevel = -1;
            self.generic_skip = false;
            return;
        }
        self.instances.push(RawInstance {
            name: name.clone(),
            location: self.r.location().to_string(),
            ..RawInstance::default()
        });
    }

    fn vrrp_sync_group(&mut self, strvec: &[Vec<u8>]) {
        if strvec.len() != 2 {
            self.r
                .warn("vrrp_sync_group must have exactly one name - keepalived skips the block");
            self.skip_sublevel = -1;
            self.generic_skip = false;
            return;
        }
        let name = &strvec[1];
        if self.groups.iter().any(|g| &g.name == name) {
            self.r.warn(format_args!(
                "vrrp sync group {} already defined - keepalived skips this block",
                String::from_utf8_lossy(name)
            ));
            self.skip_sublevel = -1;
            self.generic_skip = false;
            return;
        }
        self.groups.push(RawGroup {
            name: name.clone(),
            members: None,
            location: self.r.location().to_string(),
            ..RawGroup::default()
        });
    }

    fn interface(&mut self, strvec: &[Vec<u8>]) -> Result<(), KeepalivedError> {
        let Some(name) = strvec.get(1) else {
            return Err(KeepalivedError::MissingParameter {
                location: self.r.location().clone(),
                keyword: "interface".into(),
            });
        };
        if let Some(i) = self.instances.last_mut() {
            i.interface = Some(name.clone());
        }
        Ok(())
    }

    fn group(&mut self, strvec: &[Vec<u8>]) -> Result<(), KeepalivedError> {
        if self.groups.last().is_some_and(|g| g.members.is_some()) {
            self.r.warn(
                "group list already specified for this sync group - keepalived skips this one",
            );
            self.skip_sublevel = -1;
            self.generic_skip = false;
            return Ok(());
        }
        let mut words = Vec::new();
        self.value_block(strvec, |_, v| words.extend(v))?;
        if words.is_empty() {
            self.r.warn("empty group block");
        }
        if let Some(g) = self.groups.last_mut() {
            g.members = if words.is_empty() { None } else { Some(words) };
        }
        Ok(())
    }

    /// `track_file { NAME [weight W [reverse|noreverse]] ... }`.
    fn track_uses(&mut self, strvec: &[Vec<u8>]) -> Result<Vec<TrackUse>, KeepalivedError> {
        let mut uses = Vec::new();
        self.value_block(strvec, |_, v| {
            let word = |i: usize| v.get(i).map(|w| String::from_utf8_lossy(w).into_owned());
            let Some(name) = word(0) else { return };
            let weight = (word(1).as_deref() == Some("weight"))
                .then(|| word(2).and_then(|w| w.parse().ok()))
                .flatten();
            let reverse = match word(3).as_deref() {
                Some("reverse") => Some(true),
                Some("noreverse") => Some(false),
                _ => None,
            };
            uses.push(TrackUse {
                name,
                weight,
                reverse,
            });
        })?;
        Ok(uses)
    }

    fn vips(&mut self, strvec: &[Vec<u8>], excluded: bool) -> Result<(), KeepalivedError> {
        let mut found: Vec<Vip> = Vec::new();
        let mut warnings = Vec::new();
        self.value_block(strvec, |_, v| match parse_vip(&v) {
            Ok(vip) => found.push(vip),
            Err(msg) => warnings.push(msg),
        })?;
        for w in warnings {
            self.r.warn(w);
        }
        let Some(inst) = self.instances.last_mut() else {
            return Ok(());
        };
        for vip in found {
            if excluded {
                inst.excluded.push(vip);
                continue;
            }
            let v6 = vip.addr.is_ipv6();
            match inst.family_v6 {
                None => inst.family_v6 = Some(v6),
                Some(f) if f != v6 => {
                    let msg = format!(
                        "({}): address family must match VRRP instance [{}] - keepalived ignores it",
                        String::from_utf8_lossy(&inst.name),
                        vip
                    );
                    self.r.warn(msg);
                    continue;
                }
                Some(_) => {}
            }
            inst.vips.push(vip);
        }
        Ok(())
    }

    /// keepalived's `alloc_value_block`: every line up to the first `}` is
    /// one entry; nested braces are not counted.
    fn value_block(
        &mut self,
        strvec: &[Vec<u8>],
        mut each: impl FnMut(&mut Self, Vec<Vec<u8>>),
    ) -> Result<(), KeepalivedError> {
        let mut need_bob = true;
        let mut first_vec: Option<Vec<Vec<u8>>> = None;
        let mut had_eob = false;
        if strvec.len() > 1 {
            if strvec[1] == b"{" {
                need_bob = false;
                if strvec.len() > 2 {
                    let mut v: Vec<Vec<u8>> = strvec[2..].to_vec();
                    if v.last().is_some_and(|t| t == b"}") {
                        v.pop();
                        had_eob = true;
                    }
                    first_vec = Some(v);
                }
            } else {
                self.r.warn("block has extra parameters");
            }
        }
        loop {
            let mut vec = match first_vec.take() {
                Some(v) => v,
                None => {
                    let Some(v) = self.next_tokens()? else {
                        break;
                    };
                    let mut v = v;
                    if need_bob {
                        need_bob = false;
                        if v[0] == b"{" {
                            if v.len() == 1 {
                                continue;
                            }
                            v.remove(0);
                        } else {
                            self.r.warn("'{' missing from beginning of block");
                        }
                    }
                    if v.last().is_some_and(|t| t == b"}") {
                        if v.len() == 1 {
                            break;
                        }
                        had_eob = true;
                        v.pop();
                    }
                    v
                }
            };
            if !vec.is_empty() {
                each(self, std::mem::take(&mut vec));
            }
            if had_eob {
                break;
            }
        }
        Ok(())
    }
}

/// keepalived's `alloc_ipaddress` for a VIP line: `ADDR[/LEN] [options]`.
/// Returns why keepalived drops the entry, or the address it keeps.
pub(crate) fn parse_vip(words: &[Vec<u8>]) -> Result<Vip, String> {
    let Some(word) = words.first() else {
        return Err("empty address line".into());
    };
    let text = String::from_utf8_lossy(word).into_owned();
    let v6 = word.contains(&b':');
    let full: u32 = if v6 { 128 } else { 32 };
    let (addr_part, mut prefix) = match word.iter().position(|b| *b == b'/') {
        Some(slash) => {
            let len =
                lenient_unsigned(word.get(slash + 1..).unwrap_or_default(), full).unwrap_or(full);
            (&word[..slash], len)
        }
        None => (&word[..], full),
    };
    let addr: IpAddr = std::str::from_utf8(addr_part)
        .ok()
        .and_then(|s| {
            if v6 {
                s.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
            } else {
                s.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
            }
        })
        .ok_or_else(|| format!("VRRP parsed invalid IP {text} - keepalived skips it"))?;

    let mut have_dev = false;
    let mut i = 1;
    while i < words.len() {
        let opt = words[i].as_slice();
        let param = words.get(i + 1);
        let needs_param = matches!(
            opt,
            b"dev" | b"scope" | b"broadcast" | b"brd" | b"label" | b"peer" | b"preferred_lft"
        );
        if needs_param && param.is_none() {
            return Err(format!(
                "no {} parameter specified for {text} - keepalived skips it",
                String::from_utf8_lossy(opt)
            ));
        }
        match (opt, param) {
            (b"dev", Some(_)) => {
                if have_dev {
                    return Err(format!(
                        "cannot specify ipaddress device more than once for {text} - keepalived skips it"
                    ));
                }
                have_dev = true;
                i += 1;
            }
            (b"broadcast" | b"brd", Some(p)) => {
                if v6 {
                    return Err(format!(
                        "broadcast on IPv6 address {text} - keepalived skips it"
                    ));
                }
                let ok = p == b"-"
                    || p == b"+"
                    || std::str::from_utf8(p)
                        .is_ok_and(|s| s.parse::<std::net::Ipv4Addr>().is_ok());
                if !ok {
                    return Err(format!(
                        "invalid broadcast {} for {text} - keepalived skips it",
                        String::from_utf8_lossy(p)
                    ));
                }
                i += 1;
            }
            (b"peer", Some(p)) => {
                // A valid peer of the same family replaces the prefix with the
                // peer's (always full length: keepalived reads it without /LEN).
                let peer_v6 = p.contains(&b':');
                let valid = std::str::from_utf8(p).is_ok_and(|s| {
                    if peer_v6 {
                        s.parse::<std::net::Ipv6Addr>().is_ok()
                    } else {
                        s.parse::<std::net::Ipv4Addr>().is_ok()
                    }
                });
                if valid && peer_v6 == v6 {
                    prefix = full;
                }
                i += 1;
            }
            (b"scope" | b"label" | b"preferred_lft", Some(_)) => i += 1,
            _ => {}
        }
        i += 1;
    }
    Ok(Vip {
        addr,
        prefix: if prefix == full {
            None
        } else {
            u8::try_from(prefix).ok()
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(line: &str) -> Result<String, String> {
        parse_vip(&tokenize(line.as_bytes())).map(|v| v.to_string())
    }

    #[test]
    fn vip_lines_like_keepalived() {
        assert_eq!(
            vip("192.0.2.1/24 dev eth0 label eth0:1").unwrap(),
            "192.0.2.1/24"
        );
        assert_eq!(vip("192.0.2.1/32").unwrap(), "192.0.2.1");
        assert_eq!(vip("192.0.2.1/24x").unwrap(), "192.0.2.1/24");
        assert_eq!(vip("192.0.2.1/33").unwrap(), "192.0.2.1");
        assert_eq!(vip("2001:db8::1/64 no_track").unwrap(), "2001:db8::1/64");
        assert!(vip("192.0.2.1 dev").is_err());
        assert!(vip("192.0.2.1 dev a dev b").is_err());
        assert!(vip("2001:db8::1 brd +").is_err());
        assert!(vip("192.0.2.1-5").is_err());
        assert!(vip("300.0.0.1").is_err());
        assert_eq!(vip("192.0.2.1 unknown_opt").unwrap(), "192.0.2.1");
    }
}
