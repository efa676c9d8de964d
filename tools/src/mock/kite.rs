//! The mock's Kite dialect: the instrument master as CSV at `GET /instruments`, credentials in the
//! upgrade's query (403 otherwise, as Kite answers), text JSON requests, binary frames of up to 500
//! packets in the mode each token was set to, and a 1-byte heartbeat every second.

use std::collections::HashMap;

use tickwire_engine::router::Mode;
use tickwire_io::http::Head;
use tickwire_io::kite::instruments::{self, Instrument};
use tickwire_io::kite::packet::{Kind, Repr};
use tickwire_io::kite::{self as kite_codec};
use tungstenite::Message;

use super::dialect::{Ctx, Dialect, Reply, Session};

/// See the module docs.
pub struct Kite {
    csv: String,
    token_index: HashMap<u32, usize>,
}

impl Kite {
    /// The dialect for a market with these rows.
    pub fn new(rows: &[Instrument]) -> Self {
        Self {
            csv: instruments::to_csv(rows),
            token_index: rows.iter().enumerate().map(|(i, r)| (r.token, i)).collect(),
        }
    }
}

impl Dialect for Kite {
    fn name(&self) -> &'static str {
        "kite"
    }

    fn http(&self, head: &Head, _body: &[u8], _ctx: &Ctx<'_>) -> Option<Reply> {
        (head.path == "/instruments").then(|| Reply::new("200 OK", "text/csv", self.csv.clone()))
    }

    fn upgrade(&self, head: &Head, ctx: &Ctx<'_>) -> Result<(), Reply> {
        let (k, t) = (head.query.get("api_key"), head.query.get("access_token"));
        if k != Some(&ctx.cfg.api_key) || t != Some(&ctx.cfg.access_token) {
            // What Kite answers to a bad key or token: 403 before any upgrade.
            let body = r#"{"status":"error","message":"Invalid `api_key` or `access_token`.","error_type":"TokenException"}"#;
            return Err(Reply::new("403 Forbidden", "application/json", body));
        }
        Ok(())
    }

    fn session(&self, _head: &Head, _ctx: &Ctx<'_>) -> Box<dyn Session> {
        Box::new(KiteSession {
            subs: HashMap::new(),
            token_index: self.token_index.clone(),
        })
    }

    fn heartbeat(&self) -> Option<Message> {
        Some(Message::Binary(vec![0u8].into()))
    }
}

struct KiteSession {
    subs: HashMap<usize, Mode>,
    token_index: HashMap<u32, usize>,
}

fn packet_kind(mode: Mode, index: bool) -> Kind {
    match (mode, index) {
        (Mode::Ltp, _) => Kind::Ltp,
        (Mode::Quote, false) => Kind::Quote,
        (Mode::Quote, true) => Kind::IndexQuote,
        (Mode::Depth, false) => Kind::Full,
        (Mode::Depth, true) => Kind::IndexFull,
    }
}

fn tokens_of(v: &serde_json::Value) -> Option<Vec<u32>> {
    v.as_array()?
        .iter()
        .map(|t| t.as_u64().and_then(|t| u32::try_from(t).ok()))
        .collect()
}

fn error(out: &mut Vec<Message>, m: String) {
    let j = serde_json::json!({"type": "error", "data": m});
    out.push(Message::Text(j.to_string().into()));
}

impl Session for KiteSession {
    fn wants(&self, i: usize) -> Option<Mode> {
        self.subs.get(&i).copied()
    }

    /// Subscribe, unsubscribe, mode; anything else gets Kite's error shape. Newly subscribed or
    /// re-moded tokens get their current value at once, as Kite does.
    fn on_message(
        &mut self,
        msg: &Message,
        _ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
        fresh: &mut Vec<usize>,
    ) {
        let text = match msg {
            Message::Text(t) => t.as_str(),
            Message::Binary(_) => return error(out, "binary messages are not accepted".into()),
            _ => return,
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
            return error(out, format!("invalid message: {text}"));
        };
        let action = v.get("a").and_then(|a| a.as_str()).unwrap_or("");
        let (mode, list) = match action {
            "subscribe" | "unsubscribe" => (None, v.get("v").and_then(tokens_of)),
            "mode" => {
                let arr = v.get("v").and_then(|x| x.as_array());
                let m = arr
                    .and_then(|a| a.first())
                    .and_then(|m| m.as_str())
                    .and_then(kite_codec::mode_from_name);
                match m {
                    Some(m) => (Some(m), arr.and_then(|a| a.get(1)).and_then(tokens_of)),
                    None => return error(out, format!("invalid mode in {text}")),
                }
            }
            _ => return error(out, format!("invalid action in {text}")),
        };
        let Some(list) = list else {
            return error(out, format!("invalid token list in {text}"));
        };
        let mut unknown = Vec::new();
        for t in list {
            let Some(&i) = self.token_index.get(&t) else {
                unknown.push(t.to_string());
                continue;
            };
            match action {
                "subscribe" => {
                    self.subs.entry(i).or_insert(Mode::Quote);
                    fresh.push(i);
                }
                "unsubscribe" => {
                    self.subs.remove(&i);
                }
                _ => {
                    if let (Some(m), Some(cur)) = (mode, self.subs.get_mut(&i)) {
                        *cur = m;
                        fresh.push(i);
                    }
                }
            }
        }
        if !unknown.is_empty() {
            error(
                out,
                format!("invalid instrument tokens: {}", unknown.join(",")),
            );
        }
    }

    /// Frames of up to 500 packets, each in its token's mode.
    fn encode(
        &mut self,
        updates: &[(usize, Repr)],
        _snapshot: bool,
        ctx: &Ctx<'_>,
        out: &mut Vec<Message>,
    ) {
        let mut bodies: Vec<u8> = Vec::new();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let flush =
            |bodies: &mut Vec<u8>, spans: &mut Vec<(usize, usize)>, out: &mut Vec<Message>| {
                if spans.is_empty() {
                    return;
                }
                let refs: Vec<&[u8]> = spans.iter().map(|&(a, b)| &bodies[a..b]).collect();
                let mut frame = Vec::with_capacity(bodies.len() + 2 * refs.len() + 2);
                kite_codec::frame::emit(&refs, &mut frame);
                out.push(Message::Binary(frame.into()));
                bodies.clear();
                spans.clear();
            };
        for &(i, r) in updates {
            let Some(&mode) = self.subs.get(&i) else {
                continue;
            };
            let a = bodies.len();
            r.emit(packet_kind(mode, ctx.is_index(i)), &mut bodies);
            spans.push((a, bodies.len()));
            if spans.len() == 500 {
                flush(&mut bodies, &mut spans, out);
            }
        }
        flush(&mut bodies, &mut spans, out);
    }
}
