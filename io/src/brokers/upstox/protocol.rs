//! Upstox Market Data Feed V3 on the broker seam.
//!
//! - Connect: `GET {api}/v3/feed/market-data-feed/authorize` with the Bearer token returns a
//!   single-use `wss://…` URI; a new one is fetched before every dial (on the dial helper thread).
//!   HTTP 401 stops the feed (a bad or expired token is never retried). An upgrade answered with a
//!   redirect (302/307, as the direct `/v3/feed/market-data-feed` endpoint answers) is followed:
//!   the next dial goes to its `Location`.
//! - Requests: JSON in **binary** frames, `{"guid","method":"sub"|"unsub"|"change_mode",
//!   "data":{"mode","instrumentKeys"}}`. Client modes map LTP → `ltpc`, Quote and Depth → `full`.
//! - Data: one protobuf `FeedResponse` per binary frame ([`super::decode`]); `market_info` gives the
//!   segments' status.
//! - Keepalive: the server pings an idle connection; tickwire also pings every 10 s, and 30 s with
//!   no frame at all (pongs included) is a dead connection.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickwire_engine::router::Mode;
use tickwire_engine::symbols::SymbolId;
use tungstenite::Message;

use super::decode;
use crate::feed::protocol::{
    BrokerProtocol, ConnectJob, ConnectRequest, Incoming, Limits, Liveness, ModeLimits, Request,
};
use crate::feed::{FeedError, TickSink};

/// Upstox credentials and endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstoxConfig {
    /// REST base: `https://api.upstox.com`, or the mock's `http://127.0.0.1:PORT`.
    pub api_base: String,
    /// OAuth access token (rolled daily by Upstox).
    pub access_token: String,
}

impl Default for UpstoxConfig {
    fn default() -> Self {
        Self {
            api_base: "https://api.upstox.com".into(),
            access_token: String::new(),
        }
    }
}

/// Instrument keys ↔ symbol ids, shared by every connection of the feed.
#[derive(Debug, Default)]
pub struct Keys {
    /// `NSE_EQ|INE062A01020` → id.
    pub by_key: crate::brokers::keymap::KeyMap<Box<[u8]>>,
    /// Id → key (empty: not an Upstox instrument).
    pub of_id: Vec<Box<str>>,
}

impl Keys {
    /// Adds `key` for `id`.
    pub fn insert(&mut self, id: SymbolId, key: &str) {
        let i = id as usize;
        if self.of_id.len() <= i {
            self.of_id.resize(i + 1, Box::from(""));
        }
        self.of_id[i] = key.into();
        self.by_key.insert(key.as_bytes().into(), id);
    }
}

/// One Upstox connection's protocol.
pub struct Upstox {
    cfg: UpstoxConfig,
    keys: Arc<Keys>,
    /// Where a redirected upgrade pointed: the next dial goes there instead of authorizing.
    redirect: Arc<Mutex<Option<String>>>,
    guid: u64,
}

impl Upstox {
    /// A protocol for `cfg` with the master's keys.
    pub fn new(cfg: UpstoxConfig, keys: Arc<Keys>) -> Self {
        Self {
            cfg,
            keys,
            redirect: Arc::default(),
            guid: 0,
        }
    }

    fn request(&mut self, method: &str, mode: Option<Mode>, symbols: &[SymbolId]) -> Message {
        self.guid += 1;
        let keys: Vec<&str> = symbols
            .iter()
            .filter_map(|&s| self.keys.of_id.get(s as usize))
            .map(|k| &**k)
            .filter(|k| !k.is_empty())
            .collect();
        let mut data = serde_json::json!({ "instrumentKeys": keys });
        if let Some(m) = mode {
            data["mode"] = mode_name(m).into();
        }
        let v = serde_json::json!({
            "guid": format!("tickwire-{:012}", self.guid),
            "method": method,
            "data": data,
        });
        Message::Binary(v.to_string().into_bytes().into())
    }
}

/// Upstox's mode for a client mode.
pub fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Ltp => "ltpc",
        Mode::Quote | Mode::Depth => "full",
    }
}

/// The `MarketStatus` enum's names.
pub fn market_status_name(n: u64) -> &'static str {
    match n {
        0 => "PRE_OPEN_START",
        1 => "PRE_OPEN_END",
        2 => "NORMAL_OPEN",
        3 => "NORMAL_CLOSE",
        4 => "CLOSING_START",
        5 => "CLOSING_END",
        _ => "UNKNOWN",
    }
}

/// Fetches a single-use feed URI (blocking: runs on the dial helper thread).
fn authorize(cfg: &UpstoxConfig) -> Result<String, FeedError> {
    let url = format!(
        "{}/v3/feed/market-data-feed/authorize",
        cfg.api_base.trim_end_matches('/')
    );
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    let mut resp = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {}", cfg.access_token))
        .header("Accept", "application/json")
        .call()
        .map_err(|e| FeedError::retry(format!("authorize {url}: {e}")))?;
    let code = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    match code {
        200 => {}
        401 | 403 => {
            return Err(FeedError::credentials(format!(
                "Upstox refused the access token (HTTP {code} from authorize); a new token is \
                 needed (they expire daily): {}",
                &body[..body.len().min(200)]
            )))
        }
        _ => {
            return Err(FeedError::retry(format!(
                "authorize: HTTP {code} {}",
                &body[..body.len().min(200)]
            )))
        }
    }
    let v: serde_json::Value = serde_json::from_str(&body)
        .map_err(|e| FeedError::retry(format!("authorize: not JSON: {e}")))?;
    let data = &v["data"];
    data["authorized_redirect_uri"]
        .as_str()
        .or_else(|| data["authorizedRedirectUri"].as_str())
        .map(str::to_owned)
        .ok_or_else(|| FeedError::retry(format!("authorize: no redirect URI in {body}")))
}

impl BrokerProtocol for Upstox {
    fn name(&self) -> &'static str {
        "upstox"
    }

    fn limits(&self) -> Limits {
        // Upstox's per-mode limits: `ltpc` 5,000 and `full` 2,000 on a connection carrying one
        // mode; 2,000 and 1,500 once it carries both. LTP is `ltpc`; Quote and Depth are `full`.
        Limits {
            per_message: 1000,
            per_connection: 5000,
            connections: 2,
            by_mode: Some(ModeLimits {
                category: [0, 1, 1],
                alone: [5000, 2000, 0],
                combined: [2000, 1500, 0],
            }),
        }
    }

    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: Duration::from_secs(30),
            keepalive: Some((
                Duration::from_secs(10),
                vec![Message::Ping(Vec::new().into())],
            )),
        }
    }

    fn connect_job(&self) -> ConnectJob {
        let cfg = self.cfg.clone();
        let redirect = self.redirect.lock().ok().and_then(|mut r| r.take());
        Box::new(move || {
            let url = match redirect {
                Some(u) => u,
                None => authorize(&cfg)?,
            };
            Ok(ConnectRequest {
                url,
                headers: vec![(
                    "Authorization".into(),
                    format!("Bearer {}", cfg.access_token),
                )],
            })
        })
    }

    fn knows(&self, symbol: SymbolId) -> bool {
        self.keys
            .of_id
            .get(symbol as usize)
            .is_some_and(|k| !k.is_empty())
    }

    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>) {
        let m = match req {
            Request::Subscribe { mode, symbols } => self.request("sub", Some(mode), symbols),
            Request::ChangeMode { mode, symbols } => {
                self.request("change_mode", Some(mode), symbols)
            }
            Request::Unsubscribe { symbols } => self.request("unsub", None, symbols),
        };
        out.push(m);
    }

    #[inline]
    fn on_message(
        &mut self,
        msg: Incoming<'_>,
        recv_ts_ns: i64,
        sink: &mut TickSink<'_>,
        _out: &mut Vec<Message>,
    ) -> Result<(), FeedError> {
        match msg {
            Incoming::Binary(b) => {
                let keys = &*self.keys;
                let mut segments: Vec<(String, &'static str)> = Vec::new();
                let d = decode::decode(
                    b,
                    recv_ts_ns,
                    |k| keys.by_key.get(k).copied(),
                    |r| match r {
                        Ok((t, last)) => sink.tick(t, last),
                        Err(e) => sink.parse_error("upstox", &e),
                    },
                    |seg, st| {
                        segments.push((
                            String::from_utf8_lossy(seg).into_owned(),
                            market_status_name(st),
                        ))
                    },
                );
                if d.market_info {
                    sink.market_status(&segments);
                }
                Ok(())
            }
            // Upstox reports request errors as text JSON (`{"status":"failed",...}`): counted and
            // logged; the symbols it concerns stay pending and are retried on reconnect.
            Incoming::Text(t) => Err(FeedError::reject(Vec::new(), format!("broker said: {t}"))),
        }
    }

    fn handshake_error(&self, e: tungstenite::Error) -> FeedError {
        if let tungstenite::Error::Http(resp) = &e {
            let code = resp.status().as_u16();
            let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
            if let (300..=399, Some(loc)) = (code, location) {
                if let Ok(mut r) = self.redirect.lock() {
                    *r = Some(loc.to_owned());
                }
                return FeedError::retry(format!("redirected (HTTP {code}) to the feed"));
            }
            // The single-use URI was refused (spent, or the token behind it revoked): authorize
            // again, and let the authorize call say whether the token itself is bad (401: stop).
            if code == 401 || code == 403 {
                return FeedError::reauthorize(format!(
                    "the feed refused the authorized URI (HTTP {code}); authorizing again"
                ));
            }
        }
        crate::feed::error::classify_handshake(e)
    }
}
