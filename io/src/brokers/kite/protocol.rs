//! Kite on the broker seam: the connect request (`api_key` and `access_token` in the query,
//! `X-Kite-Version: 3`), subscribe / mode messages as text JSON, binary frames parsed straight into
//! ticks, text error messages turned into rejections. Kite keeps its connections alive itself (a
//! 1-byte heartbeat about every second), so 5 s of silence is death.

use std::sync::Arc;
use std::time::Duration;

use tickwire_engine::symbols::SymbolId;
use tungstenite::Message;

use super::{control, mode_message, parse_packets, TokenMap};
use crate::feed::protocol::{
    BrokerProtocol, ConnectJob, ConnectRequest, Incoming, Limits, Liveness, Request,
};
use crate::feed::{FeedError, TickSink};

/// Kite credentials and endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KiteConfig {
    /// `wss://ws.kite.trade` for Kite; `ws://127.0.0.1:PORT` for the mock.
    pub url: String,
    /// Kite API key.
    pub api_key: String,
    /// Kite access token.
    pub access_token: String,
}

impl Default for KiteConfig {
    fn default() -> Self {
        Self {
            url: "wss://ws.kite.trade".into(),
            api_key: String::new(),
            access_token: String::new(),
        }
    }
}

/// One Kite connection's protocol (see the module docs). The token maps are shared by every
/// connection of the feed.
#[derive(Clone)]
pub struct Kite {
    cfg: KiteConfig,
    tokens: Arc<TokenMap>,
    /// Symbol id → token (0: not a Kite instrument).
    token_of: Arc<Vec<u32>>,
    scratch: Vec<u32>,
}

impl Kite {
    /// A protocol for `cfg`, with the instrument master's token ↔ symbol id maps.
    pub fn new(cfg: KiteConfig, tokens: Arc<TokenMap>, token_of: Arc<Vec<u32>>) -> Self {
        Self {
            cfg,
            tokens,
            token_of,
            scratch: Vec::new(),
        }
    }

    fn tokens_of(&mut self, symbols: &[SymbolId]) -> &[u32] {
        self.scratch.clear();
        for &s in symbols {
            match self.token_of.get(s as usize) {
                Some(&t) if t != 0 => self.scratch.push(t),
                _ => {}
            }
        }
        &self.scratch
    }
}

impl BrokerProtocol for Kite {
    fn name(&self) -> &'static str {
        "kite"
    }

    fn limits(&self) -> Limits {
        Limits {
            per_message: 3000,
            per_connection: 3000,
            connections: 3,
            by_mode: None,
        }
    }

    fn liveness(&self) -> Liveness {
        Liveness {
            dead_after: Duration::from_secs(5),
            keepalive: None,
        }
    }

    fn connect_job(&self) -> ConnectJob {
        let c = self.cfg.clone();
        Box::new(move || {
            let sep = if c.url.contains('?') { '&' } else { '?' };
            Ok(ConnectRequest {
                url: format!(
                    "{}{sep}api_key={}&access_token={}",
                    c.url, c.api_key, c.access_token
                ),
                headers: vec![("X-Kite-Version".into(), "3".into())],
            })
        })
    }

    fn knows(&self, symbol: SymbolId) -> bool {
        self.token_of.get(symbol as usize).is_some_and(|&t| t != 0)
    }

    fn encode(&mut self, req: Request<'_>, out: &mut Vec<Message>) {
        match req {
            Request::Subscribe { mode, symbols } => {
                let t = self.tokens_of(symbols);
                if !t.is_empty() {
                    out.push(Message::Text(control("subscribe", t).into()));
                    out.push(Message::Text(mode_message(mode, t).into()));
                }
            }
            Request::ChangeMode { mode, symbols } => {
                let t = self.tokens_of(symbols);
                if !t.is_empty() {
                    out.push(Message::Text(mode_message(mode, t).into()));
                }
            }
            Request::Unsubscribe { symbols } => {
                let t = self.tokens_of(symbols);
                if !t.is_empty() {
                    out.push(Message::Text(control("unsubscribe", t).into()));
                }
            }
        }
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
            Incoming::Binary(frame) => {
                parse_packets(frame, recv_ts_ns, &self.tokens, |r| match r {
                    Ok((t, last)) => sink.tick(t, last),
                    Err(e) => sink.parse_error("kite", &e),
                });
                Ok(())
            }
            Incoming::Text(text) => self.on_text(text),
        }
    }
}

impl Kite {
    /// Order updates and messages are account-scoped, not market data; an error message names the
    /// tokens it refuses (those are rejected; the feed only marks ones still pending).
    fn on_text(&self, text: &str) -> Result<(), FeedError> {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return Ok(());
        };
        if v.get("type").and_then(|t| t.as_str()) != Some("error") {
            return Ok(());
        }
        let data = v.get("data").map(|d| d.to_string()).unwrap_or_default();
        let ids = data
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse::<u32>().ok())
            .filter_map(|n| self.tokens.get(&n).copied())
            .collect();
        Err(FeedError::reject(ids, format!("broker error: {data}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::protocol::Request;
    use tickwire_engine::router::Mode;

    fn kite() -> Kite {
        let mut tokens = TokenMap::default();
        tokens.insert(779521, 0);
        tokens.insert(256265, 1);
        Kite::new(
            KiteConfig {
                url: "ws://127.0.0.1:1".into(),
                api_key: "k".into(),
                access_token: "t".into(),
            },
            Arc::new(tokens),
            Arc::new(vec![779521, 256265, 0]),
        )
    }

    fn texts(out: &[Message]) -> Vec<String> {
        out.iter()
            .map(|m| m.to_text().unwrap().to_string())
            .collect()
    }

    #[test]
    fn subscribes_with_the_mode_and_skips_unknown_symbols() {
        let mut k = kite();
        assert!(k.knows(1) && !k.knows(2) && !k.knows(9));
        let mut out = Vec::new();
        k.encode(
            Request::Subscribe {
                mode: Mode::Depth,
                symbols: &[0, 1, 2],
            },
            &mut out,
        );
        k.encode(
            Request::ChangeMode {
                mode: Mode::Ltp,
                symbols: &[1],
            },
            &mut out,
        );
        k.encode(Request::Unsubscribe { symbols: &[0] }, &mut out);
        assert_eq!(
            texts(&out),
            vec![
                r#"{"a":"subscribe","v":[779521,256265]}"#,
                r#"{"a":"mode","v":["full",[779521,256265]]}"#,
                r#"{"a":"mode","v":["ltp",[256265]]}"#,
                r#"{"a":"unsubscribe","v":[779521]}"#,
            ]
        );
    }

    #[test]
    fn connects_with_the_credentials_in_the_query() {
        let req = kite().connect_job()().unwrap();
        assert_eq!(req.url, "ws://127.0.0.1:1?api_key=k&access_token=t");
        assert_eq!(req.headers, vec![("X-Kite-Version".into(), "3".into())]);
    }

    #[test]
    fn an_error_message_rejects_the_tokens_it_names() {
        let mut k = kite();
        let mut ticks = Vec::new();
        let mut sink = TickSink::collect(&mut ticks);
        let msg = r#"{"type":"error","data":"invalid instrument tokens: 256265,42"}"#;
        let e = k
            .on_message(Incoming::Text(msg), 0, &mut sink, &mut Vec::new())
            .unwrap_err();
        assert_eq!(e.action, crate::feed::Action::Reject(vec![1]));
        let order = r#"{"type":"order","data":{}}"#;
        assert!(k
            .on_message(Incoming::Text(order), 0, &mut sink, &mut Vec::new())
            .is_ok());
    }
}
