//! Just enough XML to read a DescribeInstances answer: elements, text, entities; no DTD (an
//! answer with one is refused, so no entity can expand), depth and input bounded.

/// Nesting deeper than this is refused (EC2's answers stay under 12).
const MAX_DEPTH: usize = 64;

/// What DescribeInstances said about the instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Described {
    /// Its public (`ipAddress`) and private (`privateIpAddress`) IPv4 addresses, when it has
    /// them.
    Found {
        public: Option<String>,
        private: Option<String>,
    },
    NotFound,
    /// An EC2 error answer (`<Response><Errors><Error><Code>`, `<Message>`).
    Error {
        code: String,
        message: String,
    },
}

#[derive(Debug, Default)]
struct InstanceItem {
    id: String,
    public: Option<String>,
    private: Option<String>,
}

/// Reads `xml` (a DescribeInstances or EC2 error answer) for `instance_id`.
pub fn describe_answer(xml: &str, instance_id: &str) -> Result<Described, String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut items: Vec<InstanceItem> = Vec::new();
    let mut current: Option<InstanceItem> = None;
    let mut error: Option<(String, String)> = None;
    let mut text = String::new();
    for token in Tokens::new(xml) {
        match token? {
            Token::Open(name) => {
                if stack.len() == MAX_DEPTH {
                    return Err("the answer nests too deep".to_owned());
                }
                stack.push(name);
                text.clear();
                if stack.ends_with(&["instancesSet", "item"]) {
                    current = Some(InstanceItem::default());
                }
            }
            Token::Text(raw) => text.push_str(&decode(raw)?),
            Token::Close(name) => {
                if stack.last() != Some(&name) {
                    return Err(format!("the answer closes <{name}> out of order"));
                }
                // A field of the instance item itself, not of its network interfaces.
                if let Some(item) = current.as_mut()
                    && stack.ends_with(&["instancesSet", "item", name])
                {
                    let value = text.trim().to_owned();
                    match name {
                        "instanceId" => item.id = value,
                        "ipAddress" if !value.is_empty() => item.public = Some(value),
                        "privateIpAddress" if !value.is_empty() => item.private = Some(value),
                        _ => {}
                    }
                }
                if stack.ends_with(&["Errors", "Error", name]) {
                    let (code, message) = error.get_or_insert_default();
                    match name {
                        "Code" => *code = text.trim().to_owned(),
                        "Message" => *message = text.trim().to_owned(),
                        _ => {}
                    }
                }
                if stack.ends_with(&["instancesSet", "item"])
                    && let Some(item) = current.take()
                {
                    items.push(item);
                }
                stack.pop();
                text.clear();
            }
        }
    }
    if !stack.is_empty() {
        return Err("the answer ends inside an element".to_owned());
    }
    if let Some((code, message)) = error {
        return Ok(Described::Error { code, message });
    }
    Ok(items
        .into_iter()
        .find(|i| i.id == instance_id)
        .map_or(Described::NotFound, |i| Described::Found {
            public: i.public,
            private: i.private,
        }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A start tag's local name (namespace prefix dropped); `<a/>` is an Open then a Close.
    Open(&'a str),
    Close(&'a str),
    /// Text as written (entities not yet decoded).
    Text(&'a str),
}

struct Tokens<'a> {
    rest: &'a str,
    /// The Close of a self-closing tag.
    pending: Option<&'a str>,
    failed: bool,
}

impl<'a> Tokens<'a> {
    fn new(xml: &'a str) -> Self {
        Self {
            rest: xml,
            pending: None,
            failed: false,
        }
    }

    fn next_token(&mut self) -> Result<Option<Token<'a>>, String> {
        if let Some(name) = self.pending.take() {
            return Ok(Some(Token::Close(name)));
        }
        loop {
            if self.rest.is_empty() {
                return Ok(None);
            }
            if !self.rest.starts_with('<') {
                let end = self.rest.find('<').unwrap_or(self.rest.len());
                let (text, rest) = self.rest.split_at(end);
                self.rest = rest;
                return Ok(Some(Token::Text(text)));
            }
            if let Some(after) = self.rest.strip_prefix("<?") {
                self.rest = skip_past(after, "?>")?;
                continue;
            }
            if let Some(after) = self.rest.strip_prefix("<!--") {
                self.rest = skip_past(after, "-->")?;
                continue;
            }
            if self.rest.starts_with("<!") {
                return Err("the answer has a DTD or CDATA section".to_owned());
            }
            let end = tag_end(self.rest)?;
            let inner = &self.rest[1..end];
            self.rest = &self.rest[end + 1..];
            if let Some(name) = inner.strip_prefix('/') {
                return Ok(Some(Token::Close(local_name(name.trim_end())?)));
            }
            let (inner, self_closing) = match inner.strip_suffix('/') {
                Some(i) => (i, true),
                None => (inner, false),
            };
            let name_end = inner
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(inner.len());
            let name = local_name(&inner[..name_end])?;
            if self_closing {
                self.pending = Some(name);
            }
            return Ok(Some(Token::Open(name)));
        }
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Result<Token<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_token().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

fn skip_past<'a>(text: &'a str, end: &str) -> Result<&'a str, String> {
    text.find(end)
        .map(|at| &text[at + end.len()..])
        .ok_or_else(|| format!("the answer ends before {end}"))
}

/// The index of the `>` that ends the tag starting at `tag[0]`, skipping quoted attribute
/// values.
fn tag_end(tag: &str) -> Result<usize, String> {
    let mut quote: Option<u8> = None;
    for (i, b) in tag.bytes().enumerate() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(b),
            (None, b'>') => return Ok(i),
            (None, b'<') if i > 0 => break,
            _ => {}
        }
    }
    Err("the answer has an unterminated tag".to_owned())
}

fn local_name(name: &str) -> Result<&str, String> {
    let local = name.rsplit(':').next().unwrap_or(name);
    if local.is_empty() {
        return Err("the answer has a tag without a name".to_owned());
    }
    Ok(local)
}

/// Text with its entities decoded (the five predefined ones and character references).
fn decode(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after
            .find(';')
            .filter(|&e| e <= 10)
            .ok_or("the answer has an unterminated entity")?;
        let entity = &after[..end];
        let c = match entity {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = entity.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = entity.strip_prefix('#') {
                    dec.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("the answer has an unknown entity &{entity};"))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of EC2's answer, with a network interface whose private address must not be
    /// taken for the instance's.
    const ANSWER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>8f7724cf-496f-496e-8fe3-example</requestId>
    <reservationSet>
        <item>
            <reservationId>r-1234567890abcdef0</reservationId>
            <groupSet/>
            <instancesSet>
                <item>
                    <instanceId>i-0000000000000000a</instanceId>
                    <privateIpAddress>10.0.0.9</privateIpAddress>
                </item>
                <item>
                    <instanceId>i-1234567890abcdef0</instanceId>
                    <instanceState><code>16</code><name>running</name></instanceState>
                    <networkInterfaceSet><item>
                        <privateIpAddress>10.0.9.9</privateIpAddress>
                        <association><publicIp>3.3.3.3</publicIp></association>
                    </item></networkInterfaceSet>
                    <privateIpAddress>192.168.1.88</privateIpAddress>
                    <ipAddress>54.194.252.215</ipAddress>
                    <tagSet><item><key>Note</key><value>a&lt;b &amp; &#x41;&#66;</value></item></tagSet>
                </item>
            </instancesSet>
        </item>
    </reservationSet>
</DescribeInstancesResponse>"#;

    #[test]
    fn reads_the_instances_own_addresses() {
        assert_eq!(
            describe_answer(ANSWER, "i-1234567890abcdef0"),
            Ok(Described::Found {
                public: Some("54.194.252.215".into()),
                private: Some("192.168.1.88".into())
            })
        );
        assert_eq!(
            describe_answer(ANSWER, "i-0000000000000000a"),
            Ok(Described::Found {
                public: None,
                private: Some("10.0.0.9".into())
            })
        );
        assert_eq!(
            describe_answer(ANSWER, "i-ffffffffffffffff0"),
            Ok(Described::NotFound)
        );
    }

    #[test]
    fn an_empty_answer_is_not_found() {
        let xml = "<DescribeInstancesResponse><requestId>r</requestId><reservationSet/></DescribeInstancesResponse>";
        assert_eq!(describe_answer(xml, "i-1"), Ok(Described::NotFound));
    }

    #[test]
    fn reads_an_ec2_error() {
        let xml = "<?xml version=\"1.0\"?>\n<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code>\
                   <Message>The instance ID 'i-1' does not exist &amp; never did</Message></Error></Errors>\
                   <RequestID>x</RequestID></Response>";
        assert_eq!(
            describe_answer(xml, "i-1"),
            Ok(Described::Error {
                code: "InvalidInstanceID.NotFound".into(),
                message: "The instance ID 'i-1' does not exist & never did".into()
            })
        );
    }

    #[test]
    fn entities_decode() {
        assert_eq!(
            decode("a&lt;b&gt;&amp;&quot;&apos;&#65;&#x42;").unwrap(),
            "a<b>&\"'AB"
        );
        assert!(decode("&bogus;").is_err());
        assert!(decode("&#xZZ;").is_err());
        assert!(decode("& no end").is_err());
    }

    #[test]
    fn malformed_or_hostile_answers_are_refused() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<a><![CDATA[x]]></a>",
            "<a><!-- never closed </a>",
            "</>",
            deep.as_str(),
        ] {
            assert!(describe_answer(bad, "i-1").is_err(), "{bad}");
        }
    }

    #[test]
    fn attributes_may_hold_angle_brackets() {
        let xml = "<r a='x>y' b=\"<\"><reservationSet/></r>";
        assert_eq!(describe_answer(xml, "i-1"), Ok(Described::NotFound));
    }
}
