//! `RawObject`: a JSON object held as its members' own text, in the order given.
//!
//! An event crosses the backend once per check result: it is read from an agent's frame or
//! a request body, a few of its fields are checked, and it is written out again with
//! namespaces set and the fold appended. Building a `serde_json::Value` tree for that (an
//! allocation per string, number and object) and serialising it again was a fifth of the
//! backend's time under load. A `RawObject` parses one level (serde_json still checks that
//! every member is valid JSON), keeps each member's text as it came, and is written back by
//! copying that text: only the members that are looked at are parsed further.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// A JSON object as its members' text, in order. A repeated key replaces the earlier
/// member's value in its place, as serde_json's own map does.
///
/// The members are a list, looked up by scanning it: an event's objects have a handful of
/// members, and hashing each key cost more than the scan. (Reading an object with many
/// members switches to an index for finding repeated keys, so that a hostile frame of
/// many thousand keys costs no more than its size.)
#[derive(Debug, Clone, Default)]
pub struct RawObject(Vec<(String, Box<RawValue>)>);

/// Members up to which a repeated key is found by scanning while an object is read.
const SCAN: usize = 32;

/// Why bytes are not a `RawObject`.
#[derive(Debug)]
pub enum NotAnObject {
    /// Not JSON at all (syntax, trailing characters, not UTF-8…).
    Json(serde_json::Error),
    /// JSON, but not an object.
    Kind,
}

impl RawObject {
    /// Parses a JSON object from a peer's bytes: checked as thoroughly as parsing it into a
    /// `Value` would (nesting depth, string escapes, number range), its members kept as text.
    pub fn from_slice(bytes: &[u8]) -> Result<RawObject, NotAnObject> {
        // Keeping a member as text only skips over it, which lets through what serde_json
        // otherwise refuses (nesting beyond 128 levels, a lone surrogate in `\u` escapes, a
        // number out of range), and what PostgreSQL's json type or a later read of the
        // stored event would then fail on. So the whole text is read once first, keeping
        // nothing.
        serde_json::from_slice::<Checked>(bytes).map_err(NotAnObject::Json)?;
        serde_json::from_slice(bytes).map_err(|e| {
            if e.is_data() {
                NotAnObject::Kind
            } else {
                NotAnObject::Json(e)
            }
        })
    }

    /// A member's text parsed as an object; None when it is not one.
    pub fn parse(raw: &RawValue) -> Option<RawObject> {
        if !raw.get().starts_with('{') {
            return None;
        }
        serde_json::from_str(raw.get()).ok()
    }

    /// The object of a `Value` (None when it is not an object).
    pub fn from_value(v: &Value) -> Option<RawObject> {
        if !v.is_object() {
            return None;
        }
        serde_json::from_str(&v.to_string()).ok()
    }

    /// The object as a `Value`.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.to_json()).unwrap_or(Value::Null)
    }

    /// A member's text.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// Sets a member to a value's JSON text: replaced in its place, or added last.
    pub fn insert(&mut self, key: &str, value: &impl serde::Serialize) {
        // Serialising a number or a string cannot fail; anything else is the caller's bug,
        // and the member is left as it was rather than set to something that is not JSON.
        if let Ok(raw) = serde_json::value::to_raw_value(value) {
            match self.0.iter_mut().find(|(k, _)| k == key) {
                Some(m) => m.1 = raw,
                None => self.0.push((key.to_string(), raw)),
            }
        }
    }

    /// Removes a member; the others keep their order.
    pub fn remove(&mut self, key: &str) -> Option<Box<RawValue>> {
        let i = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(i).1)
    }

    /// The object's JSON text.
    pub fn to_json(&self) -> String {
        let mut s = String::with_capacity(
            self.0
                .iter()
                .map(|(k, v)| k.len() + v.get().len() + 4)
                .sum::<usize>()
                + 2,
        );
        self.write_json(&mut s);
        s
    }

    /// Appends the object's JSON text.
    pub fn write_json(&self, out: &mut String) {
        out.push('{');
        self.write_members(out, |_, v, out| out.push_str(v.get()));
        out.push('}');
    }

    /// Appends `"key":value` for each member, comma-separated; `write` writes the value (so
    /// that a caller can skip a member, by writing nothing, or write another value). Returns
    /// how many members were written.
    pub fn write_members(
        &self,
        out: &mut String,
        mut write: impl FnMut(&str, &RawValue, &mut String),
    ) -> usize {
        let mut n = 0;
        for (k, v) in &self.0 {
            let mark = out.len();
            if n > 0 {
                out.push(',');
            }
            write_key(out, k);
            let value_at = out.len();
            write(k, v, out);
            if out.len() == value_at {
                // Nothing written for this member: it is left out.
                out.truncate(mark);
            } else {
                n += 1;
            }
        }
        n
    }
}

/// Appends a key as a JSON string, followed by `:`.
pub fn write_key(out: &mut String, key: &str) {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        // serde_json escapes what needs escaping; a string always serialises.
        out.push_str(&serde_json::to_string(key).unwrap_or_default());
    }
    out.push(':');
}

/// A member's text as a string, when it is a JSON string.
pub fn as_string(raw: &RawValue) -> Option<String> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str(raw.get()).ok()
}

/// A member's text as a whole number ≥ 0; None for anything else (null included).
pub fn as_u64(raw: &RawValue) -> Option<u64> {
    serde_json::from_str(raw.get()).ok()
}

/// A member's text as a whole number; None for anything else (null included).
pub fn as_i64(raw: &RawValue) -> Option<i64> {
    serde_json::from_str(raw.get()).ok()
}

pub fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// Any JSON value, read with all of serde_json's checks and kept nowhere.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Checked;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_unit<E>(self) -> Result<Checked, E> {
                Ok(Checked)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<Checked, A::Error> {
                while s.next_element::<Checked>()?.is_some() {}
                Ok(Checked)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Checked, A::Error> {
                while m.next_key::<Checked>()?.is_some() {
                    m.next_value::<Checked>()?;
                }
                Ok(Checked)
            }
        }
        d.deserialize_any(V)
    }
}

impl PartialEq for RawObject {
    fn eq(&self, other: &RawObject) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|((k1, v1), (k2, v2))| k1 == k2 && v1.get() == v2.get())
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawObject, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawObject, A::Error> {
                let mut o: Vec<(String, Box<RawValue>)> = Vec::with_capacity(8);
                let mut index: Option<HashMap<String, usize>> = None;
                while let Some(k) = m.next_key::<String>()? {
                    let v = m.next_value::<Box<RawValue>>()?;
                    let seen = if o.len() < SCAN {
                        o.iter().position(|(s, _)| *s == k)
                    } else {
                        let index = index.get_or_insert_with(|| {
                            o.iter()
                                .enumerate()
                                .map(|(i, (s, _))| (s.clone(), i))
                                .collect()
                        });
                        let seen = index.get(&k).copied();
                        if seen.is_none() {
                            index.insert(k.clone(), o.len());
                        }
                        seen
                    };
                    match seen {
                        Some(i) => o[i].1 = v,
                        None => o.push((k, v)),
                    }
                }
                Ok(RawObject(o))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keep_their_text_and_order() {
        let text = r#"{"b": 1.50, "a": {"x" : [1, 2]}, "s": "é\u00e9\"", "b": 2}"#;
        let o = RawObject::from_slice(text.as_bytes()).unwrap();
        assert_eq!(o.keys().collect::<Vec<_>>(), ["b", "a", "s"]);
        assert_eq!(o.get("a").unwrap().get(), r#"{"x" : [1, 2]}"#);
        assert_eq!(
            o.get("b").unwrap().get(),
            "2",
            "a repeated key replaces in place"
        );
        assert_eq!(as_string(o.get("s").unwrap()).unwrap(), "éé\"");
        assert_eq!(o.to_json(), r#"{"b":2,"a":{"x" : [1, 2]},"s":"é\u00e9\""}"#);
        let v: Value = serde_json::from_str(&o.to_json()).unwrap();
        assert_eq!(v, o.to_value());
        assert_eq!(RawObject::from_value(&v).unwrap().to_value(), v);
        assert!(RawObject::from_value(&Value::Null).is_none());
    }

    #[test]
    fn writing_can_skip_and_replace_members() {
        let mut o = RawObject::from_slice(br#"{"a":1,"b":2,"c":3}"#).unwrap();
        o.insert("d\"q", &"x");
        let mut s = String::from("{");
        let n = o.write_members(&mut s, |k, v, out| match k {
            "a" => {}
            "b" => out.push_str("20"),
            _ => out.push_str(v.get()),
        });
        s.push('}');
        assert_eq!(n, 3);
        assert_eq!(s, r#"{"b":20,"c":3,"d\"q":"x"}"#);
        assert!(o.remove("b").is_some());
        assert_eq!(o.to_json(), r#"{"a":1,"c":3,"d\"q":"x"}"#);
    }

    #[test]
    fn a_repeated_key_replaces_in_place_however_many_members() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{i}\":{i},"));
        }
        text.push_str("\"k5\":\"five\",\"k70\":\"seventy\",\"last\":0}");
        let o = RawObject::from_slice(text.as_bytes()).unwrap();
        assert_eq!(o.keys().count(), 101);
        assert_eq!(o.get("k5").unwrap().get(), "\"five\"");
        assert_eq!(o.get("k70").unwrap().get(), "\"seventy\"");
        assert_eq!(o.keys().nth(70), Some("k70"));
        assert_eq!(o.keys().last(), Some("last"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(o.to_value(), v, "the same members as serde_json's own map");
    }

    #[test]
    fn what_is_not_an_object_is_told_apart_from_what_is_not_json() {
        assert!(matches!(
            RawObject::from_slice(b"[1]"),
            Err(NotAnObject::Kind)
        ));
        assert!(matches!(
            RawObject::from_slice(b"5"),
            Err(NotAnObject::Kind)
        ));
        for bad in [&b"{"[..], b"{\"a\":}", b"{} x", b"\xff", b""] {
            assert!(
                matches!(RawObject::from_slice(bad), Err(NotAnObject::Json(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        // What skipping over a member would let through is refused as a Value parse would.
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let shallow = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        for bad in [
            deep.as_str(),
            r#"{"a":"\ud800"}"#,
            r#"{"a":1e400}"#,
            r#"{"a":{"b":[1,"\udc00x"]}}"#,
        ] {
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
            assert!(
                matches!(
                    RawObject::from_slice(bad.as_bytes()),
                    Err(NotAnObject::Json(_))
                ),
                "{bad}"
            );
        }
        assert!(RawObject::from_slice(shallow.as_bytes()).is_ok());
        let raw: Box<RawValue> = serde_json::from_str("[1]").unwrap();
        assert!(RawObject::parse(&raw).is_none());
        assert_eq!(as_u64(&RawValue::from_string("-1".into()).unwrap()), None);
        assert_eq!(as_u64(&RawValue::from_string("2.0".into()).unwrap()), None);
        assert_eq!(
            as_i64(&RawValue::from_string("-1".into()).unwrap()),
            Some(-1)
        );
        assert!(is_null(&RawValue::from_string("null".into()).unwrap()));
    }
}
