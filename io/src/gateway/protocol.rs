//! The OpenAlgo-compatible JSON shapes (`client-protocol.md`): mode parsing with OpenAlgo's exact
//! error texts, and market-data messages written by hand into a reused buffer with exact decimal
//! prices.

use std::fmt::Write;

use bytes::BytesMut;
use serde_json::Value;
use tickwire_engine::router::Mode;
use tickwire_engine::tick::valid;
use tickwire_engine::{Px, Tick};
use tungstenite::{Message, Utf8Bytes};

/// OpenAlgo's canonical label.
pub fn label(m: Mode) -> &'static str {
    match m {
        Mode::Ltp => "LTP",
        Mode::Quote => "Quote",
        Mode::Depth => "Depth",
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        Value::Number(n) => {
            let s = n.to_string();
            if s.contains('.') || s.contains('e') {
                s
            } else {
                format!("{s}.0")
            }
        }
        other => other.to_string(),
    }
}

/// OpenAlgo's `normalize_mode`: integers 1..3, or a label in any case with spaces trimmed.
pub fn parse_mode(v: &Value) -> Result<Mode, String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            let i = n.as_i64().unwrap_or(i64::MAX);
            u8::try_from(i)
                .ok()
                .and_then(Mode::from_number)
                .ok_or_else(|| {
                    format!("Invalid mode {n}; expected 1 (LTP), 2 (Quote), or 3 (Depth)")
                })
        }
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "ltp" => Ok(Mode::Ltp),
            "quote" => Ok(Mode::Quote),
            "depth" => Ok(Mode::Depth),
            _ => Err(format!(
                "Invalid mode '{s}'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"
            )),
        },
        other => {
            let kind = match other {
                Value::Bool(_) => "bool",
                Value::Null => "NoneType",
                Value::Number(_) => "float",
                Value::Array(_) => "list",
                _ => "dict",
            };
            Err(format!(
                "Mode must be int or str, got {kind} ({})",
                python_repr(other)
            ))
        }
    }
}

/// Displays a string as a JSON string literal (quoted, escaped). A `Display` so the same escaping
/// serves `String` buffers here and `io::Write` streams (`tickwire shm tail`) without a copy.
pub struct JsonStr<'a>(pub &'a str);

impl std::fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_char('"')?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => f.write_char(c)?,
            }
        }
        f.write_char('"')
    }
}

/// Writes a JSON string literal.
pub fn json_str(out: &mut String, s: &str) {
    let _ = write!(out, "{}", JsonStr(s));
}

/// `change_percent` with two decimals, computed in integers: `(ltp - close) / close × 100`.
fn write_change_percent(out: &mut String, ltp: i64, close: i64) {
    if close == 0 {
        out.push_str("0.0");
        return;
    }
    // basis points × 100 = percent with 2 decimals; i128 so no product overflows
    let num = (ltp as i128 - close as i128) * 10_000;
    let den = close as i128;
    let q =
        (num + if (num >= 0) == (den > 0) {
            den.abs() / 2
        } else {
            -(den.abs() / 2)
        }) / den;
    let sign = if q < 0 { "-" } else { "" };
    let q = q.abs();
    let _ = write!(out, "{sign}{}.{:02}", q / 100, q % 100);
}

/// Where the client IO thread formats outgoing JSON (`json`) and turns it into a WebSocket message
/// without an allocation per message: the text is copied into `bytes` and split off it, so the
/// message shares `bytes`' allocation; once tungstenite has copied it into its write buffer and
/// dropped it, the next [`OutBuf::message`] reuses the space (`BytesMut::reserve` reclaims it).
#[derive(Debug, Default)]
pub struct OutBuf {
    /// The message being formatted.
    pub json: String,
    bytes: BytesMut,
}

impl OutBuf {
    /// Buffers with room for `capacity` bytes of JSON.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            json: String::with_capacity(capacity),
            bytes: BytesMut::with_capacity(capacity),
        }
    }

    /// `json` as a text message.
    pub fn message(&mut self) -> Message {
        Message::Text(self.text())
    }

    /// `json` as shared text: clones share the bytes (one formatted message for many clients).
    pub fn text(&mut self) -> Utf8Bytes {
        self.bytes.reserve(self.json.len());
        self.bytes.extend_from_slice(self.json.as_bytes());
        // `json` is a String, so the bytes are UTF-8 and the conversion cannot fail.
        Utf8Bytes::try_from(self.bytes.split()).unwrap_or_default()
    }
}

/// One `market_data` message for a client holding `mode` on `(exchange, symbol)`, from the
/// symbol's merged last value. Shapes follow `client-protocol.md` §8; the quote fields include
/// `avg_trade_price`, `change` and `change_percent`, which the SDK reads and OpenAlgo never sent.
pub fn market_data(
    out: &mut String,
    t: &Tick,
    mode: Mode,
    exchange: &str,
    symbol: &str,
    broker: &str,
) {
    let ts_ms = t.recv_ts_ns / 1_000_000;
    let ltt_ms = if t.exchange_ts_ns != 0 {
        t.exchange_ts_ns / 1_000_000
    } else {
        ts_ms
    };
    let m = mode as u8;
    out.push_str("{\"type\":\"market_data\",\"symbol\":");
    json_str(out, symbol);
    out.push_str(",\"exchange\":");
    json_str(out, exchange);
    let _ = write!(
        out,
        ",\"mode\":{m},\"data\":{{\"ltp\":{},\"ltt\":{ltt_ms}",
        Px(t.ltp)
    );
    if mode >= Mode::Quote {
        let change = t.ltp - t.close;
        let _ = write!(
            out,
            ",\"volume\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\"last_trade_quantity\":{},\"average_price\":{},\"avg_trade_price\":{},\"total_buy_quantity\":{},\"total_sell_quantity\":{},\"change\":{},\"change_percent\":",
            t.volume,
            Px(t.open),
            Px(t.high),
            Px(t.low),
            Px(t.close),
            t.last_qty,
            Px(t.avg_price),
            Px(t.avg_price),
            t.total_buy_qty,
            t.total_sell_qty,
            Px(change),
        );
        write_change_percent(out, t.ltp, t.close);
        if t.has(valid::OI) {
            let _ = write!(out, ",\"oi\":{}", t.oi);
        }
    }
    if mode == Mode::Depth {
        // An instrument without a book (an index) or whose book has not arrived yet gets empty
        // sides, never five fake zero-priced levels.
        let book: &[_] = if t.has(valid::DEPTH) { &t.bids } else { &[] };
        let asks: &[_] = if t.has(valid::DEPTH) { &t.asks } else { &[] };
        out.push_str(",\"depth\":{\"buy\":[");
        for (side, levels) in [("buy", book), ("sell", asks)] {
            if side == "sell" {
                out.push_str("],\"sell\":[");
            }
            for (i, l) in levels.iter().enumerate() {
                let sep = if i > 0 { "," } else { "" };
                let _ = write!(
                    out,
                    "{sep}{{\"price\":{},\"quantity\":{},\"orders\":{}}}",
                    Px(l.price),
                    l.qty,
                    l.orders
                );
            }
        }
        out.push_str("]}");
    }
    out.push_str(",\"symbol\":");
    json_str(out, symbol);
    out.push_str(",\"exchange\":");
    json_str(out, exchange);
    let _ = write!(out, ",\"mode\":{m},\"timestamp\":{ts_ms}}},\"broker\":");
    json_str(out, broker);
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn modes_parse_with_openalgo_texts() {
        assert_eq!(parse_mode(&json!(1)), Ok(Mode::Ltp));
        assert_eq!(parse_mode(&json!(" depth ")), Ok(Mode::Depth));
        assert_eq!(parse_mode(&json!("QUOTE")), Ok(Mode::Quote));
        assert_eq!(
            parse_mode(&json!(4)).unwrap_err(),
            "Invalid mode 4; expected 1 (LTP), 2 (Quote), or 3 (Depth)"
        );
        assert_eq!(
            parse_mode(&json!("2")).unwrap_err(),
            "Invalid mode '2'; expected 'LTP', 'Quote', or 'Depth' (case-insensitive)"
        );
        assert_eq!(
            parse_mode(&json!(true)).unwrap_err(),
            "Mode must be int or str, got bool (True)"
        );
        assert_eq!(
            parse_mode(&json!(2.0)).unwrap_err(),
            "Mode must be int or str, got float (2.0)"
        );
        assert_eq!(
            parse_mode(&json!(null)).unwrap_err(),
            "Mode must be int or str, got NoneType (None)"
        );
    }

    #[test]
    fn market_data_shapes() {
        let mut t = Tick::new(0);
        t.valid = valid::LTP | valid::QUOTE | valid::DEPTH;
        t.ltp = 14_241_500_000;
        t.close = 14_180_000_000;
        t.recv_ts_ns = 1_795_484_484_307_123_456;
        t.bids[0] = tickwire_engine::tick::DepthLevel {
            price: 14_239_000_000,
            qty: 50,
            orders: 3,
        };
        let mut s = String::new();
        market_data(&mut s, &t, Mode::Ltp, "NSE", "RELIANCE", "zerodha");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["type"], "market_data");
        assert_eq!(v["mode"], 1);
        assert_eq!(v["data"]["ltp"].to_string(), "1424.15");
        assert_eq!(v["data"]["timestamp"], 1_795_484_484_307i64);
        assert!(v["data"].get("volume").is_none());
        s.clear();
        market_data(&mut s, &t, Mode::Quote, "NSE", "RELIANCE", "zerodha");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["data"]["change"].to_string(), "6.15");
        assert_eq!(v["data"]["change_percent"].to_string(), "0.43");
        s.clear();
        market_data(&mut s, &t, Mode::Depth, "NSE", "RELIANCE", "zerodha");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["data"]["depth"]["buy"][0]["price"].to_string(), "1423.9");
        assert_eq!(v["data"]["depth"]["sell"].as_array().unwrap().len(), 5);
        // No book (an index): empty sides, not zero-priced levels.
        t.valid = valid::LTP | valid::QUOTE;
        s.clear();
        market_data(&mut s, &t, Mode::Depth, "NSE_INDEX", "NIFTY", "zerodha");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["data"]["depth"], json!({"buy": [], "sell": []}));
    }

    #[test]
    fn change_percent_rounds_half_away_from_zero() {
        let mut s = String::new();
        write_change_percent(&mut s, 1005, 1000);
        assert_eq!(s, "0.50");
        s.clear();
        write_change_percent(&mut s, 995, 1000);
        assert_eq!(s, "-0.50");
        s.clear();
        write_change_percent(&mut s, 1, 3);
        assert_eq!(s, "-66.67");
    }
}
