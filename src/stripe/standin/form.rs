//! Stripe's form encoding (`line_items[0][price_data][currency]=usd`) read into a JSON tree.

use serde_json::{Map, Value};

/// Parses a form body or query string. Numeric path segments make arrays.
pub fn parse(input: &[u8]) -> Result<Value, String> {
    let mut root = Value::Object(Map::new());
    for (key, value) in url::form_urlencoded::parse(input) {
        let mut path: Vec<String> = Vec::new();
        let (head, mut rest) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (&key[..], ""),
        };
        path.push(head.to_string());
        while !rest.is_empty() {
            let end = rest
                .find(']')
                .ok_or_else(|| format!("unbalanced brackets in {key}"))?;
            path.push(rest[1..end].to_string());
            rest = &rest[end + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("malformed key {key}"));
            }
        }
        insert(&mut root, &path, Value::String(value.into_owned()))?;
    }
    Ok(root)
}

fn insert(node: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let (first, rest) = path.split_first().expect("path is never empty");
    let map = match node {
        Value::Object(m) => m,
        _ => return Err(format!("conflicting keys at {first}")),
    };
    if rest.is_empty() {
        map.insert(first.clone(), value);
        return Ok(());
    }
    // Arrays are kept as objects keyed by index while parsing, then turned into arrays.
    let child = map
        .entry(first.clone())
        .or_insert_with(|| Value::Object(Map::new()));
    insert(child, rest, value)
}

/// Turns objects whose keys are all 0..n into arrays, recursively.
pub fn normalize(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let is_array = !m.is_empty() && (0..m.len()).all(|i| m.contains_key(&i.to_string()));
            if is_array {
                let mut items: Vec<(usize, Value)> = m
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), normalize(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(m.into_iter().map(|(k, v)| (k, normalize(v))).collect())
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_brackets_become_objects_and_arrays() {
        let v = normalize(
            parse(b"mode=payment&line_items[0][price_data][currency]=usd&line_items[0][quantity]=1&metadata[gift_id]=g")
                .unwrap(),
        );
        assert_eq!(v["mode"], "payment");
        assert_eq!(v["line_items"][0]["price_data"]["currency"], "usd");
        assert_eq!(v["metadata"]["gift_id"], "g");
    }
}
