//! Credentials rollover: the `tickwire-reload` thread of `serve`. When a watched file changes or
//! the process gets SIGHUP it re-resolves every feed's [`BrokerConfig`] (a [`Resolve`] function:
//! flags, environment, credentials file; the config file can be another source of the same
//! function) and hands each feed whose configuration changed a protocol built with it. The feed
//! reconnects its connections and re-subscribes what they carried; WebSocket clients stay
//! connected and subscribed. Feeds whose configuration did not change are not touched, except one
//! whose credentials the broker refused: a reload (SIGHUP) makes it try them again at once.
//!
//! The thread polls once a second ([`crate::reload::Watch`]); it never runs on the tick path. A
//! reload that fails (a bad line in the file, a credential now missing) is logged and changes
//! nothing: the feeds keep what they have.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tickwire_io::brokers::BrokerConfig;
use tickwire_io::feed::renew::{RenewSender, Renewal};
use tickwire_io::feed::FeedStatus;

use crate::reload::{self, Watch};

/// How often the watched files and the SIGHUP count are looked at.
const POLL: Duration = Duration::from_secs(1);

/// Re-resolves every feed's configuration, in the order the feeds were started; an error says why
/// the new configuration cannot be used.
pub type Resolve = Box<dyn FnMut() -> Result<Vec<BrokerConfig>, String> + Send>;

/// One running feed as the reload thread sees it.
pub struct FeedCredentials {
    /// The configuration (credentials included) the feed runs with now.
    pub broker: BrokerConfig,
    /// The broker keys of the feed's instruments, by symbol id: a new protocol is built from them.
    pub keys: Arc<Vec<Box<str>>>,
    /// Hands the feed a new protocol.
    pub sender: RenewSender,
    /// The feed's status (is its broker refusing the credentials?).
    pub status: Arc<FeedStatus>,
}

/// See the module docs.
pub struct Rollover {
    feeds: Vec<FeedCredentials>,
    watches: Vec<Watch>,
    resolve: Resolve,
    hups: u64,
    /// A renewal found its feed's ring full: try the reload again at the next poll.
    again: bool,
}

impl Rollover {
    /// Watches `files` (and SIGHUP) for the feeds' credentials, re-resolved by `resolve`. Make it
    /// before the feeds start, so a change made meanwhile is not missed.
    pub fn new(files: &[PathBuf], resolve: Resolve) -> Self {
        Self {
            feeds: Vec::new(),
            watches: files.iter().map(Watch::new).collect(),
            resolve,
            hups: reload::hups(),
            again: false,
        }
    }

    /// The feeds to look after (from `Running::credentials`).
    pub fn with_feeds(mut self, feeds: Vec<FeedCredentials>) -> Self {
        self.feeds = feeds;
        self
    }

    /// Runs until `stop`: reloads on every file change and every batch of SIGHUPs.
    pub fn run(mut self, stop: &AtomicBool) {
        let step = Duration::from_millis(100);
        let mut waited = Duration::ZERO;
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(step);
            waited += step;
            if waited < POLL {
                continue;
            }
            waited = Duration::ZERO;
            if self.changed() || std::mem::take(&mut self.again) {
                self.reload();
            }
        }
    }

    /// True once per file change or batch of SIGHUPs (every watch is asked, so none keeps a stale
    /// change for later).
    fn changed(&mut self) -> bool {
        let h = reload::hups();
        let hup = std::mem::replace(&mut self.hups, h) != h;
        self.watches
            .iter_mut()
            .fold(hup, |any, w| w.changed() | any)
    }

    /// Re-resolves and renews the feeds whose configuration changed; returns how many were
    /// renewed.
    pub fn reload(&mut self) -> usize {
        let cfgs = match (self.resolve)() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("credentials reload: {e}; every feed keeps the credentials it has");
                return 0;
            }
        };
        if cfgs.len() != self.feeds.len() {
            tracing::error!(
                "credentials reload: {} feeds configured now, {} running; feeds are added or \
                 removed only by a restart, so nothing changes",
                cfgs.len(),
                self.feeds.len()
            );
            return 0;
        }
        let mut renewed = 0;
        for (f, cfg) in self.feeds.iter_mut().zip(cfgs) {
            let name = f.broker.name();
            if cfg.name() != name {
                tracing::error!(
                    "credentials reload: the {name} feed is now configured as {}; a broker is \
                     changed only by a restart",
                    cfg.name()
                );
                continue;
            }
            let changed = cfg != f.broker;
            if !changed && !f.status.credentials_rejected() {
                continue;
            }
            let why = match changed {
                true => "new credentials or settings from a reload",
                false => "a reload asks to try the refused credentials again",
            };
            let r = Renewal {
                factory: cfg.factory(f.keys.clone()),
                why: why.into(),
            };
            match f.sender.send(r) {
                Ok(()) => {
                    f.broker = cfg;
                    renewed += 1;
                }
                Err(_) => {
                    tracing::warn!(
                        "credentials reload: the {name} feed has not taken its last renewal \
                         yet; trying again in a second"
                    );
                    self.again = true;
                }
            }
        }
        if renewed == 0 && !self.again {
            tracing::info!("credentials reload: no feed's credentials changed");
        }
        renewed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tickwire_engine::doorbell::Doorbell;
    use tickwire_io::feed::feed_state;
    use tickwire_io::feed::renew::{self, RenewInbox};
    use tickwire_io::kite::KiteConfig;

    fn kite(token: &str) -> BrokerConfig {
        BrokerConfig::Kite(KiteConfig {
            access_token: token.into(),
            ..KiteConfig::default()
        })
    }

    fn feed(cfg: BrokerConfig) -> (FeedCredentials, RenewInbox) {
        let (sender, inbox) = renew::channel(Arc::new(Doorbell::new(|| {})));
        let f = FeedCredentials {
            broker: cfg,
            keys: Arc::new(Vec::new()),
            sender,
            status: Arc::new(FeedStatus::new(0)),
        };
        (f, inbox)
    }

    #[test]
    fn only_changed_or_refused_feeds_are_renewed_and_a_failed_reload_changes_nothing() {
        let (a, mut a_in) = feed(kite("a1"));
        let (b, mut b_in) = feed(kite("b1"));
        let next: Arc<Mutex<Result<Vec<BrokerConfig>, String>>> =
            Arc::new(Mutex::new(Ok(vec![kite("a2"), kite("b1")])));
        let n = next.clone();
        let mut r =
            Rollover::new(&[], Box::new(move || n.lock().unwrap().clone())).with_feeds(vec![a, b]);
        assert_eq!(r.reload(), 1);
        assert!(a_in.take().is_some(), "changed: renewed");
        assert!(b_in.is_empty(), "unchanged: untouched");
        assert_eq!(r.reload(), 0, "a2 is now the current one");
        assert!(a_in.is_empty());
        // Unchanged but refused by the broker: a reload makes it try again.
        r.feeds[1]
            .status
            .state
            .store(feed_state::CREDENTIALS_REJECTED, Ordering::Relaxed);
        assert_eq!(r.reload(), 1);
        assert!(b_in.take().is_some());
        // A reload that cannot be resolved, or names other feeds, changes nothing.
        *next.lock().unwrap() = Err("line 1: unknown name".into());
        assert_eq!(r.reload(), 0);
        *next.lock().unwrap() = Ok(vec![kite("a3")]);
        assert_eq!(r.reload(), 0);
        assert!(a_in.is_empty() && b_in.is_empty());
    }
}
