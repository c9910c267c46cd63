//! The text of `--send` / `--send-raw`: backslash escapes `\r`, `\n`, `\t`, `\e`, `\\` and
//! `\xHH`; everything else is sent as its UTF-8 bytes.

/// Decodes the escapes in `text`.
pub fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let byte = match chars.next().map(|(_, c)| c) {
            Some('r') => b'\r',
            Some('n') => b'\n',
            Some('t') => b'\t',
            Some('e') => 0x1b,
            Some('\\') => b'\\',
            Some('x') => {
                let hex: String = chars.by_ref().take(2).map(|(_, c)| c).collect();
                if hex.len() != 2 {
                    return Err(format!("`\\x` at {at} needs two hex digits in `{text}`"));
                }
                u8::from_str_radix(&hex, 16)
                    .map_err(|_| format!("`\\x{hex}` at {at} is not hex in `{text}`"))?
            }
            Some(other) => {
                return Err(format!(
                    "unknown escape `\\{other}` at {at} in `{text}` \
                     (use \\r \\n \\t \\e \\\\ or \\xHH)"
                ));
            }
            None => return Err(format!("`{text}` ends with a lone backslash (use \\\\)")),
        };
        out.push(byte);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(decode("uname -r").unwrap(), b"uname -r");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode(r"a\r\n\tb").unwrap(), b"a\r\n\tb");
        assert_eq!(decode(r"\\r").unwrap(), b"\\r");
        assert_eq!(decode(r"\x1b[A\x00\xFF").unwrap(), b"\x1b[A\x00\xff");
        assert_eq!(decode(r"\e").unwrap(), b"\x1b");
        assert_eq!(decode(r"\r~B").unwrap(), b"\r~B");
        assert_eq!(decode("caf\u{e9}").unwrap(), "caf\u{e9}".as_bytes());
    }

    #[test]
    fn errors() {
        for bad in [r"\", r"ab\", r"\q", r"\x", r"\x1", r"\xzz", r"\x\x"] {
            assert!(decode(bad).is_err(), "{bad}");
        }
        assert!(decode(r"\q").unwrap_err().contains("unknown escape"));
    }
}
