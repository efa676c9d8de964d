//! Ticker → fytoken resolution through Fyers' HTTP API, off the feed thread.
//!
//! The data socket subscribes topics, and a topic is built from the fytoken Fyers answers for a
//! ticker: `POST {api_base}/data/symbol-token` with the bare JWT as `Authorization` and
//! `{"symbols":[…]}` (at most [`PER_CALL`]), answered
//! `{"s":"ok","validSymbol":{"NSE:SBIN-EQ":"10100000003045"},"invalidSymbol":[…]}`.
//!
//! An HTTP call blocks for as long as the network likes, and the feed thread must never block, so
//! calls run on one [`Worker`] thread per protocol: [`Worker::send`] queues tickers, and the
//! answers are picked up with [`Worker::try_recv`] from the protocol's `poll`. The call itself is a
//! [`ResolveFn`], so tests and the mock can answer without HTTP.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use tickwire_engine::symbols::SymbolId;

use crate::feed::FeedError;

/// Most tickers per `symbol-token` call (the SDK's chunk).
pub const PER_CALL: usize = 500;

/// What Fyers answered for some tickers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// Ticker → fytoken.
    pub valid: HashMap<String, String>,
    /// Tickers Fyers does not know.
    pub invalid: Vec<String>,
}

/// One `symbol-token` call (blocking; runs on the worker thread). `Err` with
/// [`FeedError::credentials`] when the credentials were refused, [`FeedError::retry`] otherwise.
pub type ResolveFn = Arc<dyn Fn(&[&str]) -> Result<Reply, FeedError> + Send + Sync>;

/// The outcome of one call, with the symbols it was for.
#[derive(Debug)]
pub struct Outcome {
    /// Every symbol the call was for (those in neither list of the reply were not answered).
    pub symbols: Vec<(SymbolId, Box<str>)>,
    /// The reply, or why there is none.
    pub result: Result<Reply, FeedError>,
}

/// Reads a `symbol-token` answer. 401 / 403 and `"s":"error"` are a refusal of the credentials
/// (the token is refused or the account cannot use the API); anything else that is not a 200 with the expected
/// JSON is transient.
pub fn parse_reply(status: u16, body: &str) -> Result<Reply, FeedError> {
    let excerpt = &body[..body.floor_char_boundary_compat(200)];
    match status {
        200 => {}
        401 | 403 => {
            return Err(FeedError::credentials(format!(
                "Fyers refused the access token (HTTP {status} from symbol-token); a new token \
                 is needed (they expire daily): {excerpt}"
            )))
        }
        _ => {
            return Err(FeedError::retry(format!(
                "symbol-token: HTTP {status} {excerpt}"
            )))
        }
    }
    let v: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| FeedError::retry(format!("symbol-token: not JSON ({e}): {excerpt}")))?;
    if v["s"] != "ok" {
        let why = v["message"].as_str().unwrap_or(excerpt);
        return Err(FeedError::credentials(format!(
            "Fyers refused the symbol-token request: {why}"
        )));
    }
    let valid = v["validSymbol"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let invalid = v["invalidSymbol"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Reply { valid, invalid })
}

/// `str::floor_char_boundary` for the toolchains before it was stable.
trait FloorBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorBoundary for str {
    fn floor_char_boundary_compat(&self, i: usize) -> usize {
        let mut i = i.min(self.len());
        while !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

/// The real call: `POST {api_base}/data/symbol-token` with `jwt` (no `appid:` prefix) as
/// `Authorization`.
pub fn http(api_base: &str, jwt: &str) -> ResolveFn {
    let url = format!("{}/data/symbol-token", api_base.trim_end_matches('/'));
    let jwt = jwt.to_owned();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    Arc::new(move |tickers: &[&str]| {
        let body = serde_json::json!({ "symbols": tickers }).to_string();
        let mut resp = agent
            .post(&url)
            .header("Authorization", &jwt)
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .map_err(|e| FeedError::retry(format!("symbol-token {url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| FeedError::retry(format!("symbol-token {url}: {e}")))?;
        parse_reply(status, &text)
    })
}

/// What [`Worker::try_recv`] found.
#[derive(Debug)]
pub enum Polled {
    /// A finished call.
    Ready(Outcome),
    /// Nothing yet.
    Empty,
    /// The thread is gone (it cannot answer what it was asked).
    Gone,
}

/// The helper thread and its two channels. Dropping the worker ends the thread (after the call in
/// progress, if any).
pub struct Worker {
    jobs: Sender<Vec<(SymbolId, Box<str>)>>,
    done: Receiver<Outcome>,
}

impl Worker {
    /// Starts the thread.
    pub fn start(resolve: ResolveFn) -> std::io::Result<Self> {
        let (jobs, rx) = mpsc::channel::<Vec<(SymbolId, Box<str>)>>();
        let (tx, done) = mpsc::channel();
        std::thread::Builder::new()
            .name("fyers-resolve".into())
            .spawn(move || {
                for job in rx {
                    for chunk in job.chunks(PER_CALL) {
                        let mut tickers: Vec<&str> = chunk.iter().map(|(_, t)| &**t).collect();
                        tickers.sort_unstable();
                        tickers.dedup();
                        let result = resolve(&tickers);
                        let out = Outcome {
                            symbols: chunk.to_vec(),
                            result,
                        };
                        if tx.send(out).is_err() {
                            return;
                        }
                    }
                }
            })?;
        Ok(Self { jobs, done })
    }

    /// Queues `symbols` (id, ticker) for resolution; `false` if the thread is gone.
    pub fn send(&self, symbols: Vec<(SymbolId, Box<str>)>) -> bool {
        self.jobs.send(symbols).is_ok()
    }

    /// One finished call, if any.
    pub fn try_recv(&self) -> Polled {
        match self.done.try_recv() {
            Ok(o) => Polled::Ready(o),
            Err(TryRecvError::Empty) => Polled::Empty,
            Err(TryRecvError::Disconnected) => Polled::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::brokers::fyers::auth::{self, bare_jwt};
    use crate::feed::Action;

    /// Serves one HTTP response on a local port; the request comes back through the handle.
    fn serve_once(status: &str, body: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let status = status.to_owned();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s);
            let mut req = String::new();
            let mut len = 0;
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                req.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut b = vec![0; len];
            r.read_exact(&mut b).unwrap();
            req.push_str(&String::from_utf8(b).unwrap());
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            r.get_mut().write_all(resp.as_bytes()).unwrap();
            req
        });
        (base, h)
    }

    #[test]
    fn the_symbol_token_call_over_http() {
        let token = format!("XB12345678-100:{}", auth::mock_token("k", 2_000_000_000));
        let (base, h) = serve_once(
            "200 OK",
            r#"{"s":"ok","validSymbol":{"NSE:SBIN-EQ":"10100000003045"},"invalidSymbol":["NSE:NOPE-EQ"]}"#,
        );
        let r = http(&base, bare_jwt(&token))(&["NSE:SBIN-EQ", "NSE:NOPE-EQ"]).unwrap();
        assert_eq!(r.valid["NSE:SBIN-EQ"], "10100000003045");
        assert_eq!(r.invalid, vec!["NSE:NOPE-EQ".to_string()]);
        let req = h.join().unwrap();
        assert!(
            req.starts_with("POST /data/symbol-token HTTP/1.1\r\n"),
            "{req}"
        );
        let lower = req.to_ascii_lowercase();
        assert!(
            lower.contains(&format!(
                "authorization: {}\r\n",
                bare_jwt(&token).to_ascii_lowercase()
            )),
            "{req}"
        );
        assert!(lower.contains("content-type: application/json"), "{req}");
        assert!(
            req.ends_with(r#"{"symbols":["NSE:SBIN-EQ","NSE:NOPE-EQ"]}"#),
            "{req}"
        );
        let (base, h) = serve_once("401 Unauthorized", r#"{"s":"error","message":"bad token"}"#);
        let e = http(&base, "jwt")(&["X"]).unwrap_err();
        h.join().unwrap();
        assert_eq!(e.action, Action::CredentialsRejected);
        // the reply parser alone
        assert_eq!(
            parse_reply(200, r#"{"s":"error","message":"no"}"#)
                .unwrap_err()
                .action,
            Action::CredentialsRejected
        );
        assert_eq!(parse_reply(500, "oops").unwrap_err().action, Action::Retry);
        assert_eq!(
            parse_reply(200, "not json").unwrap_err().action,
            Action::Retry
        );
        assert_eq!(
            parse_reply(503, &"é".repeat(300)).unwrap_err().action,
            Action::Retry
        );
    }

    #[test]
    fn the_worker_answers_off_the_calling_thread() {
        let resolve: ResolveFn = Arc::new(|t: &[&str]| {
            Ok(Reply {
                invalid: t.iter().map(|s| s.to_string()).collect(),
                ..Reply::default()
            })
        });
        let w = Worker::start(resolve).unwrap();
        let many: Vec<(SymbolId, Box<str>)> = (0..1001).map(|i| (i, Box::from("X:Y"))).collect();
        assert!(w.send(many));
        let mut outcomes = Vec::new();
        let start = std::time::Instant::now();
        while outcomes.len() < 3 && start.elapsed() < Duration::from_secs(10) {
            match w.try_recv() {
                Polled::Ready(o) => outcomes.push(o),
                Polled::Empty => std::thread::sleep(Duration::from_millis(1)),
                Polled::Gone => panic!("gone"),
            }
        }
        let sizes: Vec<_> = outcomes.iter().map(|o| o.symbols.len()).collect();
        assert_eq!(sizes, vec![500, 500, 1], "{PER_CALL} per call");
        let first = outcomes[0].result.as_ref().unwrap();
        assert_eq!(
            first.invalid,
            vec!["X:Y".to_string()],
            "one ticker asked once"
        );
    }
}
