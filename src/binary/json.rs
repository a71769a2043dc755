//! The node JSON form used by the stanza inspector and the test vectors:
//! `{"tag": str, "attrs": {str: str}, "content": null | [node] | "text" | {"hex": "..."}}`.
//! Attribute order is kept (serde_json's `preserve_order`).

use serde_json::{Map, Value as Json};

use super::attrs::Attrs;
use super::compact::Text;
use super::decode::{ContentRef, NodeRef};
use super::node::{AttrValue, Content, Node};
use super::{MAX_DEPTH, Value};

/// Why a JSON line is not a node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Not JSON at all.
    #[error("invalid JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// JSON, but not of the node shape; `path` says where (`content[2].attrs.id`).
    #[error("{path}: {reason}")]
    Shape { path: String, reason: &'static str },
}

fn shape(path: &str, reason: &'static str) -> JsonError {
    JsonError::Shape {
        path: if path.is_empty() {
            "node".into()
        } else {
            path.into()
        },
        reason,
    }
}

/// Parses one JSON node.
pub fn from_json_str(s: &str) -> Result<Node, JsonError> {
    let v: Json = serde_json::from_str(s)?;
    from_json(&v)
}

/// Converts a JSON value into a node.
pub fn from_json(v: &Json) -> Result<Node, JsonError> {
    node(v, String::new(), 0)
}

fn node(v: &Json, path: String, depth: usize) -> Result<Node, JsonError> {
    if depth >= MAX_DEPTH {
        return Err(shape(&path, "nested too deep"));
    }
    let obj = v
        .as_object()
        .ok_or_else(|| shape(&path, "expected an object"))?;
    for k in obj.keys() {
        if !matches!(k.as_str(), "tag" | "attrs" | "content") {
            return Err(shape(&path, "unknown field (expected tag, attrs, content)"));
        }
    }
    let tag = obj
        .get("tag")
        .and_then(Json::as_str)
        .ok_or_else(|| shape(&path, "missing string field \"tag\""))?;
    let mut attrs = Attrs::with_capacity(
        obj.get("attrs")
            .and_then(Json::as_object)
            .map_or(0, Map::len),
    );
    match obj.get("attrs") {
        None | Some(Json::Null) => {}
        Some(Json::Object(m)) => {
            for (k, v) in m {
                let s = v
                    .as_str()
                    .ok_or_else(|| shape(&format!("{path}.attrs.{k}"), "expected a string"))?;
                attrs.push((Text::new(k), AttrValue::Str(Text::new(s))));
            }
        }
        Some(_) => return Err(shape(&path, "\"attrs\" must be an object")),
    }
    let content = match obj.get("content") {
        None | Some(Json::Null) => Content::None,
        Some(Json::String(s)) => Content::Str(Text::new(s)),
        Some(Json::Array(items)) => Content::Nodes(
            items
                .iter()
                .enumerate()
                .map(|(i, c)| node(c, format!("{path}content[{i}]."), depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Some(Json::Object(m)) => {
            let hex = m
                .get("hex")
                .and_then(Json::as_str)
                .filter(|_| m.len() == 1)
                .ok_or_else(|| shape(&path, "object content must be {\"hex\": \"...\"}"))?;
            Content::Bytes(
                decode_hex(hex)
                    .ok_or_else(|| shape(&path, "invalid hex content"))?
                    .into(),
            )
        }
        Some(_) => {
            return Err(shape(
                &path,
                "content must be null, a list, a string or {hex}",
            ));
        }
    };
    Ok(Node {
        tag: Text::new(tag),
        attrs,
        content,
    })
}

/// Lower-case hex.
pub fn encode_hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(DIGITS[(x >> 4) as usize] as char);
        s.push(DIGITS[(x & 15) as usize] as char);
    }
    s
}

/// Hex in either case; `None` if malformed.
pub fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 {
        return None;
    }
    fn val(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| Some((val(p[0])? << 4) | val(p[1])?))
        .collect()
}

/// The JSON form of a decoded node. JIDs become their text form, raw bytes `{"hex": ...}`.
pub fn to_json(n: NodeRef<'_, '_>) -> Json {
    let mut attrs = Map::new();
    for (k, v) in n.attrs() {
        attrs.insert(
            k.as_str().into_owned(),
            Json::String(v.as_str().into_owned()),
        );
    }
    let content = match n.content() {
        ContentRef::None => Json::Null,
        ContentRef::Bytes(b) => {
            let mut m = Map::new();
            m.insert("hex".into(), Json::String(encode_hex(b)));
            Json::Object(m)
        }
        ContentRef::Value(Value::Str(s)) => Json::String(s.as_str().into_owned()),
        ContentRef::Value(Value::Jid(j)) => Json::String(j.to_string()),
        ContentRef::Nodes(c) => Json::Array(c.map(to_json).collect()),
    };
    let mut m = Map::new();
    m.insert("tag".into(), Json::String(n.tag().as_str().into_owned()));
    m.insert("attrs".into(), Json::Object(attrs));
    m.insert("content".into(), content);
    Json::Object(m)
}
