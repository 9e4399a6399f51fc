//! Comparing a mock's answer with a published example: the same fields,
//! recursively, with values of the same JSON kinds, so that a mock that
//! drops, renames or retypes a field fails; the values themselves differ
//! (ids, times) and are checked one by one in the tests.

use serde_json::Value;

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "float",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Panics with the path of the first difference. An empty object in the
/// example stands for one the publication elides (`"region":{…}`): any
/// object matches it. Array items are compared with the example's first.
pub fn assert_same_shape(published: &Value, ours: &Value, path: &str) {
    match (published, ours) {
        (Value::Object(p), Value::Object(_)) if p.is_empty() => {}
        (Value::Object(p), Value::Object(o)) => {
            let mut pk: Vec<&String> = p.keys().collect();
            let mut ok: Vec<&String> = o.keys().collect();
            pk.sort();
            ok.sort();
            assert_eq!(pk, ok, "fields of {path}");
            for (k, v) in p {
                assert_same_shape(v, &o[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(p), Value::Array(o)) => {
            if let Some(first) = p.first() {
                assert!(!o.is_empty(), "{path} is empty, the example's is not");
                for (i, item) in o.iter().enumerate() {
                    assert_same_shape(first, item, &format!("{path}[{i}]"));
                }
            }
        }
        _ => assert_eq!(kind(published), kind(ours), "kind of {path}: {ours}"),
    }
}

/// The same text layout: digits where the example has digits, every other
/// character equal (`2016-01-30T23:55:00+00:00` vs a time of ours).
pub fn assert_same_format(published: &str, ours: &str) {
    let same = published.len() == ours.len()
        && published
            .chars()
            .zip(ours.chars())
            .all(|(p, o)| (p.is_ascii_digit() && o.is_ascii_digit()) || p == o);
    assert!(same, "{ours:?} is not laid out as {published:?}");
}
