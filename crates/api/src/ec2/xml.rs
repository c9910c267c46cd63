//! A tiny XML writer for EC2 Query responses: element names are fixed by the code, text is
//! escaped, and the output is always well-formed XML 1.0.
//!
//! EC2 bodies are small and flat, so a string builder is all that is needed. The only XML crates
//! in the tree (`aws-smithy-xml`, `xmlparser`) are internals of the AWS SDK, not meant for use
//! outside it.

use std::fmt::Write as _;

/// EC2's namespace for API version 2016-11-15, on every success body.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// The declaration EC2 starts every body with.
const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Builds one response body. Element names are `&'static str` on purpose: only text (which may
/// come from configuration or the client) goes through [`escape_into`].
#[derive(Debug)]
pub struct Xml {
    buf: String,
}

impl Xml {
    /// `<{action}Response xmlns=…><requestId>…</requestId>`, to be completed by the caller and
    /// closed with [`finish`](Self::finish).
    pub fn response(action: &str, request_id: &str) -> Self {
        let mut buf = String::with_capacity(512);
        buf.push_str(DECLARATION);
        // `action` is one of our own action names, never client text.
        let _ = write!(buf, "<{action}Response xmlns=\"{NAMESPACE}\">");
        let mut xml = Self { buf };
        xml.leaf("requestId", request_id);
        xml
    }

    /// EC2's error document (no namespace, `RequestID` in capitals, as EC2 sends it).
    pub fn error(code: &str, message: &str, request_id: &str) -> String {
        let mut xml = Self {
            buf: String::with_capacity(256),
        };
        xml.buf.push_str(DECLARATION);
        xml.open("Response");
        xml.open("Errors");
        xml.open("Error");
        xml.leaf("Code", code);
        xml.leaf("Message", message);
        xml.close("Error");
        xml.close("Errors");
        xml.leaf("RequestID", request_id);
        xml.close("Response");
        xml.buf
    }

    pub fn open(&mut self, name: &'static str) {
        let _ = write!(self.buf, "<{name}>");
    }

    pub fn close(&mut self, name: &'static str) {
        let _ = write!(self.buf, "</{name}>");
    }

    /// `<name>text</name>`, or `<name/>` when `text` is empty (how EC2 writes empty strings).
    pub fn leaf(&mut self, name: &'static str, text: &str) {
        if text.is_empty() {
            let _ = write!(self.buf, "<{name}/>");
        } else {
            self.open(name);
            escape_into(text, &mut self.buf);
            self.close(name);
        }
    }

    /// A leaf whose text is a number or a boolean.
    pub fn leaf_display(&mut self, name: &'static str, value: impl std::fmt::Display) {
        let _ = write!(self.buf, "<{name}>{value}</{name}>");
    }

    /// Closes the response element opened by [`response`](Self::response).
    pub fn finish(mut self, action: &str) -> String {
        let _ = write!(self.buf, "</{action}Response>");
        self.buf
    }
}

/// Appends `text` escaped for element content or an attribute value. The five predefined
/// entities cover markup; a carriage return becomes a character reference so parsers do not
/// normalise it away; characters XML 1.0 cannot carry at all (most C0 controls, U+FFFE, U+FFFF)
/// become U+FFFD, since a client's junk echoed in an error must not make the document invalid.
pub fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// EC2's timestamp form, ISO 8601 in UTC with milliseconds: `2016-11-15T09:30:00.000Z`.
pub use console::clock::iso8601;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn escape(text: &str) -> String {
        let mut out = String::new();
        escape_into(text, &mut out);
        out
    }

    #[test]
    fn escapes_markup_quotes_and_controls() {
        assert_eq!(
            escape(r#"a<b & "c" 'd'>"#),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;"
        );
        assert_eq!(escape("x\r\ny\tz"), "x&#xD;\ny\tz");
        assert_eq!(
            escape("\u{0}\u{1b}\u{FFFF}ok"),
            "\u{FFFD}\u{FFFD}\u{FFFD}ok"
        );
        assert_eq!(escape("ünïcødé ✓"), "ünïcødé ✓");
        // Already-escaped text is escaped again: the writer never trusts its input.
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn response_and_error_documents() {
        let mut x = Xml::response("RebootInstances", "rid");
        x.leaf_display("return", true);
        x.leaf("empty", "");
        assert_eq!(
            x.finish("RebootInstances"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<RebootInstancesResponse \
             xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>rid</requestId>\
             <return>true</return><empty/></RebootInstancesResponse>"
        );
        assert_eq!(
            Xml::error("InvalidAction", "bad <x>", "r-1"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidAction\
             </Code><Message>bad &lt;x&gt;</Message></Error></Errors><RequestID>r-1</RequestID>\
             </Response>"
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_479_202_200_123), "2016-11-15T09:30:00.123Z");
        assert_eq!(iso8601(u64::MAX), "1970-01-01T00:00:00.000Z");
    }
}
