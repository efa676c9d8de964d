//! Getting from a [`ConnectRequest`] to a WebSocket: the blocking preparation on a helper thread
//! (the broker's connect job, then the host name lookup), the non-blocking TCP connect, TLS, and the
//! upgrade request with the broker's headers. Shared by every broker.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{sync_channel, Receiver};

use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Request as HttpRequest;

use super::error::FeedError;
use super::protocol::{ConnectJob, ConnectRequest};

/// A prepared attempt: the request, where to dial, and the TLS server name.
#[derive(Debug)]
pub struct Prepared {
    /// The request (URL and headers).
    pub req: ConnectRequest,
    /// The address to dial.
    pub addr: SocketAddr,
    /// Host name, for TLS.
    pub host: String,
    /// `wss://`.
    pub tls: bool,
}

/// The parts of a `ws://` / `wss://` URL the dialler needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `wss://`.
    pub tls: bool,
    /// Host name or address literal, without brackets or port.
    pub host: String,
    /// `host:port`, the port defaulted from the scheme.
    pub host_port: String,
}

/// Splits a WebSocket URL; anything but `ws://` and `wss://` is a configuration error (stop).
pub fn target(url: &str) -> Result<Target, FeedError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(FeedError::stop(format!(
            "feed url {url:?} must start with ws:// or wss://"
        )));
    };
    let hostport = rest.split(['/', '?']).next().unwrap_or(rest);
    if hostport.is_empty() {
        return Err(FeedError::stop(format!("feed url {url:?} has no host")));
    }
    let host = hostport
        .rsplit_once(':')
        .map_or(hostport, |(h, _)| h)
        .to_string();
    let host_port = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{}", if tls { 443 } else { 80 })
    };
    Ok(Target {
        tls,
        host,
        host_port,
    })
}

/// Runs `job` and resolves the host it names on a helper thread (both may block for seconds; the
/// feed thread may be running the router inline). The answer arrives on the returned channel.
pub fn prepare(job: ConnectJob) -> io::Result<Receiver<Result<Prepared, FeedError>>> {
    let (tx, rx) = sync_channel(1);
    std::thread::Builder::new()
        .name("tickwire-dial".into())
        .spawn(move || {
            let r = job().and_then(|req| {
                let t = target(&req.url)?;
                let addr = resolve(&t.host_port)
                    .map_err(|e| FeedError::retry(format!("resolve {}: {e}", t.host_port)))?;
                Ok(Prepared {
                    req,
                    addr,
                    host: t.host,
                    tls: t.tls,
                })
            });
            let _ = tx.send(r); // the feed may have given up waiting
        })?;
    Ok(rx)
}

/// The first IPv4 address if there is one: brokers publish IPv4, and a host whose name also maps
/// to ::1 (localhost) may listen on IPv4 only. An address literal needs no lookup.
fn resolve(host_port: &str) -> io::Result<SocketAddr> {
    if let Ok(a) = host_port.parse::<SocketAddr>() {
        return Ok(a);
    }
    let all: Vec<SocketAddr> = host_port.to_socket_addrs()?.collect();
    all.iter()
        .find(|a| a.is_ipv4())
        .or(all.first())
        .copied()
        .ok_or_else(|| io::Error::other("no address"))
}

/// The upgrade request: the URL plus the broker's headers.
pub fn upgrade_request(req: &ConnectRequest) -> Result<HttpRequest, FeedError> {
    let mut r = req
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| FeedError::stop(format!("feed url {:?}: {e}", req.url)))?;
    for (k, v) in &req.headers {
        let name = tungstenite::http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| FeedError::stop(format!("header {k:?}: {e}")))?;
        let value = tungstenite::http::HeaderValue::from_str(v)
            .map_err(|e| FeedError::stop(format!("header {k:?}: {e}")))?;
        r.headers_mut().insert(name, value);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_with_default_ports() {
        let t = target("wss://ws.kite.trade?api_key=a").unwrap();
        assert_eq!((t.tls, t.host.as_str()), (true, "ws.kite.trade"));
        assert_eq!(t.host_port, "ws.kite.trade:443");
        let t = target("ws://127.0.0.1:9000/v3/feed").unwrap();
        assert_eq!((t.tls, t.host_port.as_str()), (false, "127.0.0.1:9000"));
        assert!(target("http://x").is_err());
        assert!(target("ws://").is_err());
    }

    #[test]
    fn headers_go_on_the_upgrade() {
        let req = ConnectRequest {
            url: "ws://127.0.0.1:1/x?a=b".into(),
            headers: vec![("Authorization".into(), "Bearer t".into())],
        };
        let r = upgrade_request(&req).unwrap();
        assert_eq!(r.headers()["authorization"], "Bearer t");
        assert_eq!(r.uri().query(), Some("a=b"));
    }
}
