//! What went wrong with an upstream connection, and what to do about it.
//!
//! Every failure a feed sees — a refused TCP connect, a 403 on the WebSocket upgrade, a broker's
//! error message, a dead connection — is turned into a [`FeedError`] whose [`Action`] the
//! connection machine ([`super::machine`]) follows. Nothing upstream is a bare `String`: a bad
//! access token must be reported as such ([`Action::CredentialsRejected`]), never redialled every
//! few seconds.

use std::fmt;
use std::time::Duration;

use tickwire_engine::symbols::SymbolId;

/// What the connection machine does after an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Drop the connection (if any) and dial again after the next backoff delay.
    Retry,
    /// Drop the connection and dial again no sooner than this (a broker's "too many connections").
    RetryAfter(Duration),
    /// The authorization used for this connection is spent (Upstox's single-use URI): get a new
    /// one, then dial again after the next backoff delay.
    Reauthorize,
    /// The connection is fine; the broker refused these symbols. They are marked `rejected` and
    /// not asked for again on this connection.
    Reject(Vec<SymbolId>),
    /// The connection is fine; the broker refused these symbols for good (a plan's subscription
    /// limit: asking again would only be refused again). They are marked `rejected` like
    /// [`Action::Reject`] but kept off the retry schedule: asked again only after a reconnect.
    Refuse(Vec<SymbolId>),
    /// The broker refused the credentials (expired or wrong token, unknown client id, an account
    /// without data access): the connection waits for new credentials (a reload) and otherwise
    /// tries again only rarely ([`super::machine::MachineConfig::rejected_retry`]), in case the
    /// broker itself had a glitch. Status shows `credentials_rejected`.
    CredentialsRejected,
    /// Stop this feed: its configuration cannot work (a bad URL, a bad CA file); retrying would
    /// only fail the same way. The status says why until a reload changes the feed's URL or
    /// credentials, or a restart.
    Stop,
}

/// An upstream failure: what happened, in words for the status page, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedError {
    /// What to do.
    pub action: Action,
    /// Why, for `GET /status` and the log.
    pub reason: String,
}

impl FeedError {
    /// A transient failure: back off and dial again.
    pub fn retry(reason: impl Into<String>) -> Self {
        Self {
            action: Action::Retry,
            reason: reason.into(),
        }
    }

    /// Dial again no sooner than `after`.
    pub fn retry_after(after: Duration, reason: impl Into<String>) -> Self {
        Self {
            action: Action::RetryAfter(after),
            reason: reason.into(),
        }
    }

    /// Get a fresh authorization, then dial again.
    pub fn reauthorize(reason: impl Into<String>) -> Self {
        Self {
            action: Action::Reauthorize,
            reason: reason.into(),
        }
    }

    /// The broker refused `symbols`; the connection stays.
    pub fn reject(symbols: Vec<SymbolId>, reason: impl Into<String>) -> Self {
        Self {
            action: Action::Reject(symbols),
            reason: reason.into(),
        }
    }

    /// The broker refused `symbols` for good (see [`Action::Refuse`]); the connection stays.
    pub fn refuse(symbols: Vec<SymbolId>, reason: impl Into<String>) -> Self {
        Self {
            action: Action::Refuse(symbols),
            reason: reason.into(),
        }
    }

    /// The broker refused the credentials (see [`Action::CredentialsRejected`]).
    pub fn credentials(reason: impl Into<String>) -> Self {
        Self {
            action: Action::CredentialsRejected,
            reason: reason.into(),
        }
    }

    /// True when the broker refused the credentials.
    pub fn is_credentials(&self) -> bool {
        self.action == Action::CredentialsRejected
    }

    /// Stop the feed (configuration): never retried by itself.
    pub fn stop(reason: impl Into<String>) -> Self {
        Self {
            action: Action::Stop,
            reason: reason.into(),
        }
    }

    /// True when the connection has to go (everything but [`Action::Reject`] and
    /// [`Action::Refuse`]).
    pub fn drops_connection(&self) -> bool {
        !matches!(self.action, Action::Reject(_) | Action::Refuse(_))
    }
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for FeedError {}

/// Classifies a failed WebSocket upgrade by its HTTP status, the same way for every broker: 401 and
/// 403 mean the credentials were refused, 429 and 5xx are the broker's trouble (retry).
/// A broker whose upgrade answers differently classifies before calling this.
pub fn classify_handshake(e: tungstenite::Error) -> FeedError {
    match e {
        tungstenite::Error::Http(resp) => {
            let code = resp.status().as_u16();
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
                .unwrap_or_default();
            let why = format!("broker answered the upgrade with HTTP {code} {body}");
            match code {
                401 | 403 => FeedError::credentials(format!(
                    "broker refused the credentials (HTTP {code}): {body}"
                )),
                429 => FeedError::retry_after(Duration::from_secs(30), why),
                _ => FeedError::retry(why),
            }
        }
        e => FeedError::retry(format!("handshake: {e}")),
    }
}
