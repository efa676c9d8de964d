//! A connection's first bytes: the HTTP request head, answered with a WebSocket upgrade or a plain
//! HTTP response (`/health`, `/metrics`, and the data endpoints `/status`, `/subscriptions`,
//! `/ticks/latest`; `docs/observability.md`).
//!
//! - The upgrade is checked by tungstenite's own server handshake (`create_response`): method,
//!   version, `Connection`/`Upgrade` headers, the key, and `Sec-WebSocket-Version: 13` (anything
//!   else gets `426 Upgrade Required` naming the version we speak, as RFC 6455 §4.4 asks).
//! - An `Origin` allow-list, when configured, refuses other browser origins with 403; a request
//!   without `Origin` (every non-browser client, OpenAlgo's included) and the gateway's own origin
//!   are always allowed.
//! - The data endpoints (`/status`, `/subscriptions`, `/ticks/latest`) need an API key
//!   (`X-API-Key` or `Authorization: Bearer`), 401 without; `/health` and `/metrics` do not (load
//!   balancers and Prometheus scrapers hold no key).
//! - A response is written as the socket drains, however large (`/status` with 20,000 instruments
//!   is over a megabyte): never cut at the first full socket buffer.

use std::io::{self, Read, Write};

use tungstenite::error::ProtocolError;
use tungstenite::handshake::server::{create_response, write_response, Request};
use tungstenite::http;
use tungstenite::protocol::Role;
use tungstenite::WebSocket;

use std::time::Instant;

use super::market::Counted;
use super::{Session, Ws};
use crate::gateway::endpoints::{self, Endpoint};
use crate::gateway::keys::{Auth, Check};
use crate::gateway::{GatewayConfig, Shared, View};
use crate::http::{parse_head, response, response_with, Head, MAX_HEAD};

impl Session {
    /// Reads the request head without blocking; once complete, upgrades or queues the answer.
    /// Any path is accepted for the upgrade, as OpenAlgo accepts any.
    pub(super) fn read_head(&mut self, shared: &Shared, view: &View, auth: &mut Auth) {
        let Ws::Head(stream, buf, _) = &mut self.ws else {
            return;
        };
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => {
                    self.ws = Ws::Closed;
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.ws = Ws::Closed;
                    return;
                }
            }
            if buf.len() > MAX_HEAD {
                break;
            }
        }
        let (head, len) = match parse_head(buf) {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                self.respond(response("400 Bad Request", "text/plain", &format!("{e}\n")));
                return;
            }
        };
        if head.upgrade {
            self.upgrade(&head, len, &shared.cfg);
            return;
        }
        // The head keeps the query as a map, not decoded; the endpoints decode what they read.
        let query: Vec<String> = head.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let query = query.join("&");
        let reply = match (head.method.as_str(), head.path.as_str()) {
            ("GET", "/health") => endpoints::health_reply(shared, false),
            ("HEAD", "/health") => endpoints::health_reply(shared, true),
            ("GET", "/metrics") => response(
                "200 OK",
                crate::gateway::metrics::CONTENT_TYPE,
                &crate::gateway::metrics::exposition(shared, view),
            ),
            ("GET", p) if Endpoint::of(p, &query).is_some() => {
                let ep = Endpoint::of(p, &query).unwrap_or(Endpoint::Status);
                match self.data_key(&head, auth, &ep) {
                    Some(ok) => endpoints::answer(&ep, ok, shared, view),
                    // A keys-file key with the verifier: answered with its verdict.
                    None => return,
                }
            }
            // The operator's dashboard: static, no key (the page asks for one and sends it).
            ("GET", "/") => response(
                "200 OK",
                "text/html; charset=utf-8",
                include_str!("../dashboard.html"),
            ),
            _ => response(
                "404 Not Found",
                "text/plain",
                "not found: try a WebSocket upgrade, /health, /metrics, /status, /subscriptions \
                 or /ticks/latest?symbols=EXCHANGE:SYMBOL\n",
            ),
        };
        self.respond(reply);
    }

    /// Answers an upgrade request: 101 and the WebSocket, or why not.
    fn upgrade(&mut self, head: &Head, len: usize, cfg: &GatewayConfig) {
        let checked = to_request(head).and_then(|r| {
            create_response(&r).map_err(|e| match e {
                tungstenite::Error::Protocol(ProtocolError::MissingSecWebSocketVersionHeader) => {
                    Refusal::Version
                }
                e => Refusal::Bad(e.to_string()),
            })
        });
        let answer = match checked {
            Ok(_) if !origin_allowed(head, cfg) => response(
                "403 Forbidden",
                "text/plain",
                "origin not allowed (see --allow-origin)\n",
            ),
            Ok(resp) => {
                let Ws::Head(mut stream, buf, wcfg) = std::mem::replace(&mut self.ws, Ws::Closed)
                else {
                    return;
                };
                let mut bytes = Vec::with_capacity(160);
                // A fresh socket's send buffer takes the ~130-byte answer whole.
                if write_response(&mut bytes, &resp).is_ok() && stream.write_all(&bytes).is_ok() {
                    let rest = buf[len..].to_vec();
                    self.ws = Ws::Open(WebSocket::from_partially_read(
                        Counted::new(stream),
                        rest,
                        Role::Server,
                        Some(wcfg),
                    ));
                }
                return;
            }
            Err(Refusal::Version) => response_with(
                "426 Upgrade Required",
                "Sec-WebSocket-Version: 13\r\n",
                "text/plain",
                "unsupported WebSocket version: this server speaks version 13 (RFC 6455)\n",
            ),
            Err(Refusal::Bad(why)) => response(
                "400 Bad Request",
                "text/plain",
                &format!("bad WebSocket upgrade: {why}\n"),
            ),
        };
        self.respond(answer);
    }

    /// Queues a complete HTTP response; it is written as the socket takes it, then the connection
    /// closes.
    pub(super) fn respond(&mut self, reply: String) {
        if let Ws::Head(stream, ..) = std::mem::replace(&mut self.ws, Ws::Closed) {
            self.ws = Ws::Respond(stream, reply.into_bytes(), 0);
        }
    }

    /// Writes what the socket takes of a queued response; closes once all of it went.
    pub(super) fn write_response(&mut self) {
        let Ws::Respond(stream, bytes, at) = &mut self.ws else {
            return;
        };
        while *at < bytes.len() {
            match stream.write(&bytes[*at..]) {
                Ok(0) => break,
                Ok(n) => *at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.write_blocked = true;
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        self.ws = Ws::Closed;
    }
}

enum Refusal {
    /// Not `Sec-WebSocket-Version: 13`.
    Version,
    /// Any other handshake error.
    Bad(String),
}

/// The head as the `http` request tungstenite's handshake checks.
fn to_request(head: &Head) -> Result<Request, Refusal> {
    let version = match head.version {
        0 => http::Version::HTTP_10,
        _ => http::Version::HTTP_11,
    };
    let mut b = http::Request::builder()
        .method(head.method.as_str())
        .uri(head.path.as_str())
        .version(version);
    for (k, v) in &head.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(()).map_err(|e| Refusal::Bad(e.to_string()))
}

impl Session {
    /// Whether the request carries a valid API key (`X-API-Key` or `Authorization: Bearer`):
    /// Some(answer), or None when a keys-file key went to the verifier (`http_pending` remembers
    /// `ep`, answered with the verdict). An address past its failure limit is refused without
    /// verifying anything.
    fn data_key(&mut self, head: &Head, auth: &mut Auth, ep: &Endpoint) -> Option<bool> {
        let bearer = head.header("authorization").and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
        let keys: Vec<&str> = [head.header("x-api-key"), bearer]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .collect();
        if keys.is_empty() || auth.blocked(self.peer, Instant::now()).is_some() {
            return Some(false);
        }
        for k in keys {
            match auth.check(k, self.consumer, self.serial) {
                Check::Valid { .. } => return Some(true),
                Check::Pending => {
                    self.http_pending = Some(ep.clone());
                    return None;
                }
                Check::Invalid | Check::Busy => {}
            }
        }
        auth.failed(self.peer, Instant::now());
        Some(false)
    }
}

/// True unless an allow-list is configured and a browser's `Origin` is neither on it nor the
/// gateway's own (`http(s)://` + the request's `Host`).
fn origin_allowed(head: &Head, cfg: &GatewayConfig) -> bool {
    let Some(origin) = head.header("origin") else {
        return true;
    };
    if cfg.allowed_origins.is_empty() {
        return true;
    }
    let origin = origin.trim_end_matches('/');
    let own = head.header("host").is_some_and(|host| {
        ["http://", "https://"]
            .iter()
            .any(|s| origin.eq_ignore_ascii_case(&format!("{s}{host}")))
    });
    own || cfg
        .allowed_origins
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(extra: &str) -> Head {
        let raw = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:8765\r\n{extra}\r\n");
        parse_head(raw.as_bytes()).unwrap().unwrap().0
    }

    #[test]
    fn origins() {
        let mut cfg = GatewayConfig::default();
        assert!(
            origin_allowed(&head("Origin: https://evil.example\r\n"), &cfg),
            "default: allow"
        );
        cfg.allowed_origins = vec!["https://desk.example/".into()];
        assert!(origin_allowed(&head(""), &cfg), "no Origin: not a browser");
        assert!(origin_allowed(
            &head("Origin: https://DESK.example\r\n"),
            &cfg
        ));
        assert!(!origin_allowed(
            &head("Origin: https://evil.example\r\n"),
            &cfg
        ));
        assert!(
            origin_allowed(&head("Origin: http://127.0.0.1:8765\r\n"), &cfg),
            "own origin"
        );
    }

    #[test]
    fn upgrade_checks_are_tungstenites() {
        let up = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let ok = head(&format!("{up}Sec-WebSocket-Version: 13\r\n"));
        assert!(to_request(&ok).is_ok_and(|r| create_response(&r).is_ok()));
        let v8 = head(&format!("{up}Sec-WebSocket-Version: 8\r\n"));
        let err = create_response(&to_request(&v8).ok().unwrap()).unwrap_err();
        assert!(matches!(
            err,
            tungstenite::Error::Protocol(ProtocolError::MissingSecWebSocketVersionHeader)
        ));
    }
}
