//! The HTTP/1.1 request head that starts every connection on a tickwire port: a WebSocket upgrade,
//! or a plain `GET` (`/status`, `/health`, the mock's `/instruments`). One parser for the client
//! gateway and the mock broker, kept apart from IO as tungstenite keeps its frame parser:
//! [`parse_head`] takes bytes and says complete, need more, or reject.

use std::collections::HashMap;
use std::io::{self, Write};

/// Largest request head accepted: checked before buffering more.
pub const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Method (`GET`).
    pub method: String,
    /// HTTP minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Path without the query.
    pub path: String,
    /// Query parameters (no percent-decoding: Kite's keys and tokens are plain).
    pub query: HashMap<String, String>,
    /// `Sec-WebSocket-Key`, if any.
    pub ws_key: Option<String>,
    /// `Upgrade: websocket` present (names and values compared case-insensitively).
    pub upgrade: bool,
    /// Every header, names lower-cased, values trimmed (`Authorization`, `Content-Length`, …).
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Length`, 0 when absent or unreadable.
    pub fn content_length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// `Ok(Some((head, len)))`: a complete head of `len` bytes; `Ok(None)`: need more bytes;
/// `Err`: not HTTP, or a head over [`MAX_HEAD`].
pub fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => {
            let target = req.path.unwrap_or("/");
            let (path, q) = target.split_once('?').unwrap_or((target, ""));
            // Header names compare case-insensitively (RFC 9110); real clients vary them.
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
            };
            let head = Head {
                method: req.method.unwrap_or("").to_string(),
                version: req.version.unwrap_or(1),
                path: path.to_string(),
                query: q
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ws_key: header("sec-websocket-key"),
                upgrade: header("upgrade").is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        let v = String::from_utf8_lossy(h.value).trim().to_string();
                        (h.name.to_ascii_lowercase(), v)
                    })
                    .collect(),
            };
            Ok(Some((head, len)))
        }
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(format!("request head over {MAX_HEAD} bytes")),
        Err(e) => Err(format!("bad request: {e}")),
    }
}

/// The `101 Switching Protocols` answer to a WebSocket upgrade with `key`.
pub fn switching_protocols(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    )
}

/// A complete response with a body; the connection closes after it.
pub fn response(status: &str, content_type: &str, body: &str) -> String {
    response_with(status, "", content_type, body)
}

/// [`response`] with `extra` header lines (each ending in `\r\n`).
pub fn response_with(status: &str, extra: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Writes `response(...)` and flushes.
pub fn respond(
    stream: &mut impl Write,
    status: &str,
    content_type: &str,
    body: &str,
) -> io::Result<()> {
    stream.write_all(response(status, content_type, body).as_bytes())?;
    stream.flush()
}

/// The value of `name` in a query string (`a=1&b=2`), percent-decoded (`+` is a space; an
/// escape that is cut or not hex stays as it is; bytes that are not UTF-8 become U+FFFD).
pub fn query_param(query: &str, name: &str) -> Option<String> {
    let decode = |s: &str| {
        let spaced = s.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8_lossy()
            .into_owned()
    };
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_outcomes() {
        let req = b"GET /?api_key=k&access_token=t HTTP/1.1\r\nHost: x\r\nupgrade: WebSocket\r\nSEC-WEBSOCKET-KEY: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\nrest";
        let (h, len) = parse_head(req).unwrap().unwrap();
        assert_eq!(len, req.len() - 4);
        assert!(h.upgrade);
        assert_eq!(h.query["api_key"], "k");
        assert_eq!(h.ws_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(parse_head(&req[..20]).unwrap(), None, "need more");
        assert!(parse_head(b"\x16\x03\x01 not http\r\n\r\n").is_err());
        assert!(
            parse_head(&vec![b'a'; MAX_HEAD + 1]).is_err(),
            "over the limit"
        );
        // RFC 6455's example key
        assert!(switching_protocols("dGhlIHNhbXBsZSBub25jZQ==")
            .contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    #[test]
    fn query_params_are_decoded() {
        let q = "symbols=NSE%3ASBIN%2CNSE:INFY&mode=Depth&x=a+b%2&y=%zz";
        assert_eq!(
            query_param(q, "symbols").as_deref(),
            Some("NSE:SBIN,NSE:INFY")
        );
        assert_eq!(query_param(q, "mode").as_deref(), Some("Depth"));
        assert_eq!(query_param(q, "other"), None);
        assert_eq!(
            query_param(q, "x").as_deref(),
            Some("a b%2"),
            "a cut escape stays"
        );
        assert_eq!(query_param(q, "y").as_deref(), Some("%zz"));
    }
}
