//! Escaping of character data and attribute values for serialization.

/// Appends `s` as element character data.
pub fn escape_text(out: &mut Vec<u8>, s: &str) {
    escape(out, s, false)
}

/// Appends `s` as an attribute value to be placed between single quotes.
pub fn escape_attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, true)
}

fn escape(out: &mut Vec<u8>, s: &str, attr: bool) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let rep: &[u8] = match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\'' if attr => b"&apos;",
            b'"' if attr => b"&quot;",
            b'\r' => b"&#xD;",
            b'\n' if attr => b"&#xA;",
            b'\t' if attr => b"&#x9;",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        let mut out = Vec::new();
        escape_attr(&mut out, "a'b\"<&>\n");
        assert_eq!(out, b"a&apos;b&quot;&lt;&amp;&gt;&#xA;");
        out.clear();
        escape_text(&mut out, "x<y>'\"");
        assert_eq!(out, b"x&lt;y&gt;'\"");
    }
}
