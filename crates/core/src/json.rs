//! Small JSON building blocks shared by the record model: borrowed object members, JSON Pointer
//! paths, whitespace compaction that keeps every lexeme, and an output tree that writes raw JSON
//! text verbatim (so numbers come back exactly as CloudTrail wrote them).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// A JSON object's members, in order, values left as raw text.
#[derive(Debug, Default)]
pub(crate) struct Members<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    out.push((key.0, map.next_value::<&'de RawValue>()?));
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string that borrows from the input when it has no escapes.
pub(crate) struct Key<'a>(pub Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Parses an object's members; `None` when the text is not an object.
pub(crate) fn members(raw: &RawValue) -> Option<Members<'_>> {
    let text = raw.get();
    if !text.starts_with('{') {
        return None;
    }
    serde_json::from_str(text).ok()
}

/// The string a raw value holds, borrowed when it has no escapes; `None` if it is not a string.
pub(crate) fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(text).ok().map(Cow::Owned)
}

/// A raw value's text without insignificant whitespace; every lexeme is kept as written.
pub fn compact(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    // JSON's whitespace are all bytes up to b' ', and so are the only bytes a string can hold
    // unescaped that are: text without any is compact. CloudTrail writes no whitespace between
    // tokens, and most bodies have no space in their strings either, so most end here, after a
    // check the compiler vectorises (32 bytes at a time), not the byte-by-byte scan below.
    if !has_byte_up_to_space(bytes) {
        return Cow::Borrowed(text);
    }
    compact_scan(text)
}

/// [`compact`] byte by byte.
fn compact_scan(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut in_string = false;
    let mut escaped = false;
    let first_ws = bytes.iter().position(|&b| {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            false
        } else if b == b'"' {
            in_string = true;
            false
        } else {
            matches!(b, b' ' | b'\n' | b'\r' | b'\t')
        }
    });
    let Some(first) = first_ws else {
        return Cow::Borrowed(text);
    };
    let mut out = Vec::with_capacity(text.len());
    out.extend_from_slice(&bytes[..first]);
    // `in_string` is false at `first`; continue from there.
    let mut in_string = false;
    let mut escaped = false;
    for &b in &bytes[first..] {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    // Only ASCII whitespace outside strings was removed, so the bytes are still UTF-8.
    Cow::Owned(String::from_utf8(out).expect("removing ASCII whitespace keeps UTF-8 valid"))
}

/// Where a value sits in a record, as an RFC 6901 JSON Pointer; built only when needed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    pub(crate) fn pointer(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(parent, key) => {
                parent.write(out);
                out.push('/');
                for c in key.chars() {
                    match c {
                        '~' => out.push_str("~0"),
                        '/' => out.push_str("~1"),
                        c => out.push(c),
                    }
                }
            }
            Path::Index(parent, i) => {
                parent.write(out);
                out.push('/');
                out.push_str(&i.to_string());
            }
        }
    }
}

/// Splits a JSON Pointer into its unescaped reference tokens.
pub(crate) fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect()
}

/// An output JSON tree whose leaves are written verbatim.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node<'a> {
    /// JSON text, written as is.
    Raw(Cow<'a, str>),
    Str(Cow<'a, str>),
    Bool(bool),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
    Array(Vec<Node<'a>>),
}

impl<'a> Node<'a> {
    pub(crate) fn write(&self, out: &mut String) {
        match self {
            Node::Raw(text) => out.push_str(text),
            Node::Str(s) => write_str(out, s),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
            Node::Array(items) => {
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write(out);
                }
                out.push(']');
            }
        }
    }

    /// Sets the value at `tokens` (creating objects on the way), or removes it when `value` is
    /// `None`. Array indexes address existing items; an index one past the end appends.
    pub(crate) fn apply(&mut self, tokens: &[String], value: Option<Node<'a>>) {
        let Some((first, rest)) = tokens.split_first() else {
            if let Some(v) = value {
                *self = v;
            }
            return;
        };
        match self {
            Node::Object(members) => {
                let pos = members.iter().position(|(k, _)| k == first);
                match (pos, rest.is_empty(), value) {
                    (Some(i), true, None) => {
                        members.remove(i);
                    }
                    (Some(i), _, value) => members[i].1.apply(rest, value),
                    (None, _, None) => {}
                    (None, _, Some(v)) => {
                        let mut child = Node::Object(Vec::new());
                        child.apply(rest, Some(v));
                        members.push((Cow::Owned(first.clone()), child));
                    }
                }
            }
            Node::Array(items) => {
                if let Ok(i) = first.parse::<usize>() {
                    if i < items.len() {
                        items[i].apply(rest, value);
                    } else if i == items.len()
                        && let Some(v) = value
                    {
                        let mut child = Node::Object(Vec::new());
                        child.apply(rest, Some(v));
                        items.push(child);
                    }
                }
            }
            other => {
                // A scalar where the pointer expects a container: the pointer's value wins.
                if value.is_some() {
                    *other = Node::Object(Vec::new());
                    other.apply(tokens, value);
                }
            }
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    // serde_json's escaping, so the output is standard JSON.
    out.push_str(&serde_json::to_string(s).expect("a str always serializes"));
}

/// Whether any byte of `bytes` is b' ' or below.
fn has_byte_up_to_space(bytes: &[u8]) -> bool {
    let (blocks, rest) = bytes.as_chunks::<32>();
    blocks.iter().any(|block| block.iter().fold(false, |found, &b| found | (b <= b' ')))
        || rest.iter().any(|&b| b <= b' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_lexemes() {
        let cases = [
            (r#"{"a":1}"#, r#"{"a":1}"#),
            ("{ \"a b\" : [ 1.50 , -2e3 ,\n\t\"x \\\" y\" ] }", r#"{"a b":[1.50,-2e3,"x \" y"]}"#),
            (r#"{"k":"\\" , "n": null}"#, r#"{"k":"\\","n":null}"#),
        ];
        for (input, want) in cases {
            assert_eq!(compact(input), want, "{input}");
        }
        assert!(matches!(compact(r#"{"a":"x y"}"#), Cow::Borrowed(_)));
    }

    /// The check before the scan changes nothing: whitespace anywhere (in a 32-byte block or in
    /// the bytes after the last, inside strings or between tokens) gives what the scan gives.
    #[test]
    fn compact_is_the_scan_wherever_whitespace_is() {
        let long = r#"{"bucketName":"amzn-s3-demo-bucket","Host":"amzn-s3-demo-bucket.s3.amazonaws.com","acl":[""],"n":[1.50,-2e3,true,null],"e":"a\"b\\"}"#;
        assert!(matches!(compact(long), Cow::Borrowed(_)));
        // Whether each byte is inside a string (its quotes included).
        let (mut inside, mut in_string, mut escaped) = (Vec::new(), false, false);
        for &b in long.as_bytes() {
            let quote = b == b'"' && !escaped;
            escaped = in_string && !escaped && b == b'\\';
            in_string ^= quote;
            inside.push(in_string || quote);
        }
        let mut checked = [0, 0];
        for ws in [" ", "\n", "\t", "\r", " \n\t "] {
            for at in 1..long.len() {
                let text = format!("{}{ws}{}", &long[..at], &long[at..]);
                assert_eq!(compact(&text), compact_scan(&text), "{text:?}");
                // Inside a string whitespace is kept; between tokens it goes.
                let (before, here) = (long.as_bytes()[at - 1], long.as_bytes()[at]);
                if inside[at] && here != b'"' {
                    assert_ne!(compact(&text), long, "{text:?}");
                    checked[0] += 1;
                } else if !inside[at - 1] || (before == b'"' && !inside[at]) {
                    assert_eq!(compact(&text), long, "{text:?}");
                    checked[1] += 1;
                }
            }
        }
        assert!(checked[0] > 100 && checked[1] > 50, "{checked:?}");
    }

    #[test]
    fn pointers_escape_and_split() {
        let root = Path::Root;
        let a = Path::Key(&root, "a/b~c");
        let b = Path::Index(&a, 3);
        let c = Path::Key(&b, "");
        assert_eq!(c.pointer(), "/a~1b~0c/3/");
        assert_eq!(pointer_tokens(&c.pointer()), ["a/b~c", "3", ""]);
    }

    #[test]
    fn strings_borrow_unless_escaped() {
        let raw: &RawValue = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(string(raw), Some(Cow::Borrowed("plain"))));
        let raw: &RawValue = serde_json::from_str(r#""a\nb\u00e9""#).unwrap();
        assert_eq!(string(raw).unwrap(), "a\nbé");
        let raw: &RawValue = serde_json::from_str("12").unwrap();
        assert!(string(raw).is_none());
    }
}
