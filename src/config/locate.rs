//! Where a node sits in the YAML, by the parser's own marks.
//!
//! serde_yaml has no spans, but it marks every error with the position of
//! the node being read when the error was raised. So to find a node, read
//! the file once more with a walker that raises an error exactly there: the
//! position comes from the same parser that read the config, never from
//! searching the text. Only error paths pay for this second read.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// One step of a key path, as serde_path_to_error reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    Key(String),
    Index(usize),
}

/// A key path (`cloudscale.token`, `rules[1].exec`), typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct KeyPath(pub(super) Vec<Step>);

impl KeyPath {
    pub(super) fn from_serde(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment;
        KeyPath(
            path.iter()
                .filter_map(|s| match s {
                    Segment::Map { key } => Some(Step::Key(key.clone())),
                    Segment::Seq { index } => Some(Step::Index(*index)),
                    Segment::Enum { .. } | Segment::Unknown => None,
                })
                .collect(),
        )
    }

    pub(super) fn parent(&self) -> KeyPath {
        KeyPath(self.0[..self.0.len().saturating_sub(1)].to_vec())
    }

    /// N for a path inside `rules[N]`.
    pub(super) fn rule_index(&self) -> Option<usize> {
        match self.0.as_slice() {
            [Step::Key(k), Step::Index(i), ..] if k == "rules" => Some(*i),
            _ => None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn child(&self, step: Step) -> KeyPath {
        let mut steps = self.0.clone();
        steps.push(step);
        KeyPath(steps)
    }
}

/// The same spelling serde_yaml uses in its messages.
impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(k) if i == 0 => f.write_str(k)?,
                Step::Key(k) => write!(f, ".{k}")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// What to find below a path.
#[derive(Debug, Clone)]
pub(super) enum Target {
    /// The `nth` (from 0) occurrence of key `name` in the mapping at the path
    /// (serde_yaml marks a duplicate at its mapping's first key instead).
    Key { name: String, nth: usize },
    /// The first scalar at or below the path whose text contains this.
    Containing(String),
}

/// Line and column (from 1) of `target` below `path`, or None when the
/// text does not hold it (or does not parse).
pub(super) fn locate(text: &str, path: &KeyPath, target: &Target) -> Option<(usize, usize)> {
    let found = Cell::new(false);
    let root = KeyPath::default();
    let probe = Probe {
        at: &root,
        path,
        target,
        found: &found,
    };
    let de = serde_yaml::Deserializer::from_str(text);
    let err = probe.deserialize(de).err()?;
    let location = err.location()?;
    found.get().then(|| (location.line(), location.column()))
}

#[derive(Clone, Copy)]
struct Probe<'a> {
    at: &'a KeyPath,
    path: &'a KeyPath,
    target: &'a Target,
    found: &'a Cell<bool>,
}

impl Probe<'_> {
    fn hit<E: de::Error>(&self) -> E {
        self.found.set(true);
        E::custom("found")
    }

    /// Whether what sits at `at` may still lead to the target.
    fn on_the_way(&self) -> bool {
        self.path.0.starts_with(&self.at.0) || self.at.0.starts_with(&self.path.0)
    }

    fn scalar<E: de::Error>(&self, text: &str) -> Result<(), E> {
        match self.target {
            Target::Containing(needle)
                if self.at.0.starts_with(&self.path.0) && text.contains(needle.as_str()) =>
            {
                Err(self.hit())
            }
            _ => Ok(()),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.on_the_way() {
            d.deserialize_any(self)
        } else {
            d.deserialize_ignored_any(de::IgnoredAny).map(drop)
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.scalar(&v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.scalar(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.scalar(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.scalar(&v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.scalar(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let at = self.at.child(Step::Index(index));
            let element = Probe { at: &at, ..self };
            if seq.next_element_seed(element)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = 0;
        let wanted = match self.target {
            Target::Key { name, nth } if self.at == self.path => Some((name.as_str(), *nth)),
            _ => None,
        };
        while let Some(key) = map.next_key_seed(KeySeed {
            wanted,
            seen: &mut seen,
            probe: self,
        })? {
            let at = self.at.child(Step::Key(key));
            map.next_value_seed(Probe { at: &at, ..self })?;
        }
        Ok(())
    }
}

/// Reads a key as text, raising the probe's error at the wanted occurrence
/// from inside the key's own visitor, so the key's mark is the one taken.
struct KeySeed<'a, 'p> {
    wanted: Option<(&'a str, usize)>,
    seen: &'a mut usize,
    probe: Probe<'p>,
}

impl KeySeed<'_, '_> {
    fn key<E: de::Error>(self, key: String) -> Result<String, E> {
        if let Some((name, nth)) = self.wanted {
            if key == name {
                if *self.seen == nth {
                    return Err(self.probe.hit());
                }
                *self.seen += 1;
            }
        }
        Ok(key)
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_, '_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

/// Keys that are themselves lists or mappings read as "".
impl<'de> Visitor<'de> for KeySeed<'_, '_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.key(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(String::new())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(String::new())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<String, A::Error> {
        while map
            .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
            .is_some()
        {}
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(steps: &[&str]) -> KeyPath {
        KeyPath(
            steps
                .iter()
                .map(|s| match s.parse() {
                    Ok(n) => Step::Index(n),
                    Err(_) => Step::Key(s.to_string()),
                })
                .collect(),
        )
    }

    #[test]
    fn finds_the_second_occurrence_of_a_key() {
        let text = "a: 1\nb:\n  # c\n  x: 1\n\n  'x': 2\n";
        let key = |nth| Target::Key {
            name: "x".into(),
            nth,
        };
        assert_eq!(locate(text, &path(&["b"]), &key(1)), Some((6, 3)));
        assert_eq!(locate(text, &path(&["b"]), &key(0)), Some((4, 3)));
        assert_eq!(locate(text, &path(&["b"]), &key(2)), None);
        assert_eq!(locate(text, &path(&["a"]), &key(0)), None);
        let flow = "b: {x: 1, x: 2}\n";
        assert_eq!(locate(flow, &path(&["b"]), &key(1)), Some((1, 11)));
    }

    #[test]
    fn finds_a_scalar_inside_a_list_item() {
        let text = "rules:\n  - name: a\n    exec: x\n  - name: b\n    exec:\n      - echo\n      - '{context.port}'\n";
        let needle = Target::Containing("{context.port}".into());
        assert_eq!(locate(text, &path(&["rules", "1"]), &needle), Some((7, 9)));
        assert_eq!(locate(text, &path(&["rules", "0"]), &needle), None);
        let name = Target::Key {
            name: "name".into(),
            nth: 0,
        };
        assert_eq!(locate(text, &path(&["rules", "1"]), &name), Some((4, 5)));
    }

    #[test]
    fn broken_yaml_is_no_position() {
        let needle = Target::Containing("x".into());
        assert_eq!(locate("a: [\n", &KeyPath::default(), &needle), None);
    }

    #[test]
    fn spelled_like_serde_yaml() {
        assert_eq!(path(&["rules", "1", "exec"]).to_string(), "rules[1].exec");
        assert_eq!(
            path(&["cloudscale", "token"]).to_string(),
            "cloudscale.token"
        );
    }
}
