//! A minimal, append-only writer of minified JSON text.
//!
//! CloudTrail writes record keys in a fixed order and keeps number lexemes such as `1.50` or
//! `1e3` as the service sent them. A `serde_json::Value` (without `preserve_order`, which would
//! change map behaviour for every crate in the workspace) can do neither, so records are built
//! as text. Building text directly is also what keeps generation well above 100 MB/s.

/// Appends minified JSON to a `String`, inserting commas automatically.
///
/// The writer tracks a single "a value was just written" flag: keys, values and container
/// openers emit a comma first when that flag is set. That is enough for arbitrarily nested
/// objects and arrays because every container is closed before its parent continues.
#[derive(Debug, Default)]
pub(crate) struct Json {
    /// The text written so far.
    pub(crate) buf: String,
    comma: bool,
}

impl Json {
    /// An empty writer with room for `cap` bytes.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Json { buf: String::with_capacity(cap), comma: false }
    }

    /// Empties the buffer, keeping its allocation.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.comma = false;
    }

    #[inline]
    fn sep(&mut self) {
        if self.comma {
            self.buf.push(',');
        }
    }

    /// Writes `"k":`. `k` must not need escaping.
    #[inline]
    pub(crate) fn key(&mut self, k: &str) {
        self.sep();
        self.buf.push('"');
        self.buf.push_str(k);
        self.buf.push_str("\":");
        self.comma = false;
    }

    /// Opens an object (as a value or array element).
    #[inline]
    pub(crate) fn open(&mut self) {
        self.sep();
        self.buf.push('{');
        self.comma = false;
    }

    /// Closes the innermost object.
    #[inline]
    pub(crate) fn close(&mut self) {
        self.buf.push('}');
        self.comma = true;
    }

    /// Opens an array.
    #[inline]
    pub(crate) fn open_arr(&mut self) {
        self.sep();
        self.buf.push('[');
        self.comma = false;
    }

    /// Closes the innermost array.
    #[inline]
    pub(crate) fn close_arr(&mut self) {
        self.buf.push(']');
        self.comma = true;
    }

    /// `"k":{` — opens an object under a key.
    #[inline]
    pub(crate) fn obj(&mut self, k: &str) {
        self.key(k);
        self.open();
    }

    /// `"k":[` — opens an array under a key.
    #[inline]
    pub(crate) fn arr(&mut self, k: &str) {
        self.key(k);
        self.open_arr();
    }

    /// A string value, escaped as JSON requires.
    #[inline]
    pub(crate) fn str(&mut self, v: &str) {
        self.sep();
        self.buf.push('"');
        escape_into(&mut self.buf, v);
        self.buf.push('"');
        self.comma = true;
    }

    /// A string value whose text is already valid JSON string content (escapes included).
    #[inline]
    pub(crate) fn raw_str(&mut self, escaped: &str) {
        self.sep();
        self.buf.push('"');
        self.buf.push_str(escaped);
        self.buf.push('"');
        self.comma = true;
    }

    /// A string value whose content `f` appends; the content must not need escaping.
    #[inline]
    pub(crate) fn str_with(&mut self, f: impl FnOnce(&mut String)) {
        self.sep();
        self.buf.push('"');
        f(&mut self.buf);
        self.buf.push('"');
        self.comma = true;
    }

    /// An unsigned integer value.
    #[inline]
    pub(crate) fn uint(&mut self, v: u64) {
        self.sep();
        push_u64(&mut self.buf, v);
        self.comma = true;
    }

    /// A number written exactly as given (e.g. `1.50`, `1e3`).
    #[inline]
    pub(crate) fn raw_num(&mut self, lexeme: &str) {
        self.sep();
        self.buf.push_str(lexeme);
        self.comma = true;
    }

    /// A boolean value.
    #[inline]
    pub(crate) fn bool(&mut self, v: bool) {
        self.sep();
        self.buf.push_str(if v { "true" } else { "false" });
        self.comma = true;
    }

    /// A `null` value.
    #[inline]
    pub(crate) fn null(&mut self) {
        self.sep();
        self.buf.push_str("null");
        self.comma = true;
    }

    /// `"k":"v"` with `v` escaped.
    #[inline]
    pub(crate) fn kv(&mut self, k: &str, v: &str) {
        self.key(k);
        self.str(v);
    }

    /// `"k":"v"` with `v` already escaped.
    #[inline]
    pub(crate) fn kv_raw(&mut self, k: &str, escaped: &str) {
        self.key(k);
        self.raw_str(escaped);
    }

    /// `"k":"…"` with the content appended by `f` (no escaping).
    #[inline]
    pub(crate) fn kv_with(&mut self, k: &str, f: impl FnOnce(&mut String)) {
        self.key(k);
        self.str_with(f);
    }

    /// `"k":123`.
    #[inline]
    pub(crate) fn kv_u64(&mut self, k: &str, v: u64) {
        self.key(k);
        self.uint(v);
    }

    /// `"k":<lexeme>` for a number lexeme.
    #[inline]
    pub(crate) fn kv_num(&mut self, k: &str, lexeme: &str) {
        self.key(k);
        self.raw_num(lexeme);
    }

    /// `"k":true|false`.
    #[inline]
    pub(crate) fn kv_bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.bool(v);
    }

    /// `"k":null`.
    #[inline]
    pub(crate) fn kv_null(&mut self, k: &str) {
        self.key(k);
        self.null();
    }

    /// `"k":{}`.
    #[inline]
    pub(crate) fn kv_empty_obj(&mut self, k: &str) {
        self.key(k);
        self.open();
        self.close();
    }

    /// `"k":{…}` with the members `f` writes.
    #[inline]
    pub(crate) fn object(&mut self, k: &str, f: impl FnOnce(&mut Json)) {
        self.obj(k);
        f(self);
        self.close();
    }

    /// `"k":[…]` with the elements `f` writes.
    #[inline]
    pub(crate) fn array(&mut self, k: &str, f: impl FnOnce(&mut Json)) {
        self.arr(k);
        f(self);
        self.close_arr();
    }

    /// `{…}` (an array element or a value after [`Json::key`]) with the members `f` writes.
    #[inline]
    pub(crate) fn element(&mut self, f: impl FnOnce(&mut Json)) {
        self.open();
        f(self);
        self.close();
    }
}

/// Appends `s` escaped for a JSON string (quotes, backslash and control characters).
/// Non-ASCII characters are kept as UTF-8, as CloudTrail does.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Appends the decimal digits of `v`.
#[inline]
pub(crate) fn push_u64(out: &mut String, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &tmp[i..] {
        out.push(d as char);
    }
}

/// Appends `v` zero-padded to `width` digits.
#[inline]
pub(crate) fn push_padded(out: &mut String, v: u64, width: usize) {
    let mut tmp = [b'0'; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let start = (tmp.len() - width).min(i);
    for &d in &tmp[start..] {
        out.push(d as char);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_produces_valid_minified_json() {
        let mut j = Json::default();
        j.open();
        j.kv("a", "x\"y\n\u{1}é");
        j.arr("b");
        j.uint(1);
        j.raw_num("1.50");
        j.open();
        j.kv_null("n");
        j.close();
        j.close_arr();
        j.kv_empty_obj("e");
        j.kv_bool("t", true);
        j.close();
        assert_eq!(j.buf, r#"{"a":"x\"y\n\u0001é","b":[1,1.50,{"n":null}],"e":{},"t":true}"#);
        let v: serde_json::Value = serde_json::from_str(&j.buf).unwrap();
        assert_eq!(v["a"], "x\"y\n\u{1}é");
    }

    #[test]
    fn closures_write_the_same_text_as_open_and_close() {
        let mut j = Json::default();
        j.element(|j| {
            j.object("o", |j| j.kv("k", "v"));
            j.array("a", |j| {
                j.element(|j| j.kv_u64("n", 1));
                j.element(|_| {});
            });
            j.object("e", |_| {});
            j.kv_bool("t", false);
        });
        assert_eq!(j.buf, r#"{"o":{"k":"v"},"a":[{"n":1},{}],"e":{},"t":false}"#);
    }

    #[test]
    fn numbers() {
        let mut s = String::new();
        push_u64(&mut s, 0);
        s.push(' ');
        push_u64(&mut s, u64::MAX);
        s.push(' ');
        push_padded(&mut s, 7, 2);
        s.push(' ');
        push_padded(&mut s, 2024, 4);
        assert_eq!(s, "0 18446744073709551615 07 2024");
    }
}
