//! serialgate's browser console: the page, its static assets, and the WebSocket protocol
//! between the page and the server.
//!
//! The page is served at `/console/<instance>/<port>` and loads its assets from
//! `/console/assets/<name>`; it talks to the server over a WebSocket at
//! `/console/<instance>/<port>/ws` (see [`protocol`]). It uses no inline script, so it runs
//! under `Content-Security-Policy: default-src 'self'; script-src 'self'`; styles must be
//! allowed inline (`style-src 'self' 'unsafe-inline'`), since xterm.js sets the terminal's
//! colours and cursor through style elements and attributes it creates.
//!
//! The terminal is xterm.js, which the build script fetches with npm (`npm ci` on the pinned
//! `web/package-lock.json`) and this crate embeds. A build without npm still succeeds; then
//! [`BUNDLED`] is false, [`page`] is a page saying how to enable the browser console, and the
//! xterm.js assets are absent.

pub mod protocol;

/// A file to send to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub body: &'static [u8],
    pub content_type: &'static str,
}

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Whether xterm.js was bundled at build time.
pub const BUNDLED: bool = cfg!(xterm_bundled);

/// The page for a console: the terminal, or when xterm.js is not bundled a page that says so.
pub fn page() -> Asset {
    let body: &[u8] = if BUNDLED {
        include_bytes!("../static/console.html")
    } else {
        include_bytes!("../static/console_unavailable.html")
    };
    Asset {
        body,
        content_type: HTML,
    }
}

/// A static asset by file name (`xterm.js`, `console.js`, ...); `None` for anything else,
/// including every name with a path in it. The xterm.js files exist only when [`BUNDLED`].
pub fn asset(name: &str) -> Option<Asset> {
    let (body, content_type): (&[u8], _) = match name {
        "console.js" => (include_bytes!("../static/console.js"), JAVASCRIPT),
        "console.css" => (include_bytes!("../static/console.css"), CSS),
        _ => return xterm_asset(name),
    };
    Some(Asset { body, content_type })
}

#[cfg(xterm_bundled)]
fn xterm_asset(name: &str) -> Option<Asset> {
    let (body, content_type): (&[u8], _) = match name {
        "xterm.js" => (
            include_bytes!(concat!(env!("OUT_DIR"), "/xterm.js")),
            JAVASCRIPT,
        ),
        "xterm.css" => (include_bytes!(concat!(env!("OUT_DIR"), "/xterm.css")), CSS),
        "addon-fit.js" => (
            include_bytes!(concat!(env!("OUT_DIR"), "/addon-fit.js")),
            JAVASCRIPT,
        ),
        _ => return None,
    };
    Some(Asset { body, content_type })
}

#[cfg(not(xterm_bundled))]
fn xterm_asset(_name: &str) -> Option<Asset> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const XTERM: [&str; 3] = ["xterm.js", "xterm.css", "addon-fit.js"];

    fn text(asset: Asset) -> &'static str {
        std::str::from_utf8(asset.body).unwrap()
    }

    #[test]
    fn our_assets_are_always_there() {
        let js = asset("console.js").unwrap();
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert!(text(js).contains("new WebSocket"));
        let css = asset("console.css").unwrap();
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        assert!(!css.body.is_empty());
    }

    #[test]
    fn xterm_assets_are_there_when_bundled() {
        for name in XTERM {
            assert_eq!(asset(name).is_some(), BUNDLED, "{name}");
        }
        if BUNDLED {
            assert!(text(asset("xterm.js").unwrap()).contains("Terminal"));
            assert!(text(asset("addon-fit.js").unwrap()).contains("FitAddon"));
            assert!(text(asset("xterm.css").unwrap()).contains(".xterm"));
            assert_eq!(asset("xterm.css").unwrap().content_type, CSS);
            assert_eq!(asset("addon-fit.js").unwrap().content_type, JAVASCRIPT);
        }
    }

    #[test]
    fn other_names_are_refused() {
        for name in [
            "",
            ".",
            "..",
            "../x",
            "../console.js",
            "../../Cargo.toml",
            "/console.js",
            "assets/console.js",
            "./console.js",
            "console.js/",
            "console.js?v=1",
            "console.js%00",
            "console.js\0",
            "CONSOLE.JS",
            "console.html",
            "console_unavailable.html",
            "xterm.js.map",
            "package.json",
            "package-lock.json",
            "node_modules/@xterm/xterm/lib/xterm.js",
            "..\\console.js",
        ] {
            assert_eq!(asset(name), None, "{name:?}");
        }
    }

    #[test]
    fn the_page_matches_the_build() {
        let page = page();
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        let html = text(page);
        if BUNDLED {
            for name in [
                "xterm.js",
                "xterm.css",
                "addon-fit.js",
                "console.js",
                "console.css",
            ] {
                assert!(html.contains(&format!("/console/assets/{name}")), "{name}");
            }
        } else {
            assert!(html.contains("npm"));
            assert!(!html.contains("/console/assets/xterm.js"));
        }
    }

    #[test]
    fn the_script_speaks_the_protocol() {
        use protocol::{MAX_INPUT, from_browser as up, to_browser as down};
        let js = text(asset("console.js").unwrap());
        let types = |names: [&str; 4], values: [u8; 4]| {
            let consts: Vec<String> = names
                .iter()
                .zip(values)
                .map(|(name, value)| format!("{name} = {value:#04x}"))
                .collect();
            format!("const {};", consts.join(", "))
        };
        let server = types(
            ["OUTPUT", "NOTICE", "STATUS", "END"],
            [down::OUTPUT, down::NOTICE, down::STATUS, down::END],
        );
        let browser = types(
            ["INPUT", "RESIZE", "BREAK", "ACK"],
            [up::INPUT, up::RESIZE, up::BREAK, up::ACK],
        );
        assert!(js.contains(&server), "{server}");
        assert!(js.contains(&browser), "{browser}");
        assert_eq!(MAX_INPUT, 64 * 1024);
        assert!(js.contains("const MAX_INPUT = 64 * 1024;"));
    }

    /// Whether the markup has an ` onsomething=` attribute.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name > 0 && rest[name..].trim_start().starts_with('=')
        })
    }

    #[test]
    fn pages_have_no_inline_script_or_style() {
        // The server's Content-Security-Policy allows neither.
        for html in [
            include_str!("../static/console.html"),
            include_str!("../static/console_unavailable.html"),
        ] {
            let lower = html.to_ascii_lowercase();
            for script in lower.split("<script").skip(1) {
                let tag_end = script.find('>').unwrap();
                assert!(script[..tag_end].contains("src="), "inline script");
                assert!(
                    script[tag_end + 1..].starts_with("</script>"),
                    "inline script"
                );
            }
            assert!(!lower.contains("<style"), "inline style element");
            assert!(!lower.contains(" style="), "style attribute");
            assert!(!has_event_handler(&lower), "event handler attribute");
            assert!(!lower.contains("javascript:"), "javascript: URL");
        }
    }
}
