//! Upstream feeds: the one connection mechanism every broker shares.
//!
//! | module | what |
//! |---|---|
//! | [`protocol`] | the broker seam: the [`BrokerProtocol`] trait a broker folder implements |
//! | [`pool`] | one broker feed: its connections up to the broker's limits, demand placed on them, retries |
//! | [`assign`] | which connection carries which symbol; the retry schedule (socket-free) |
//! | `conn` | one upstream connection: socket, machine, demand, its protocol instance |
//! | [`machine`] | the connection lifecycle (dial, timeouts, dead detection, keepalive, backoff, stop) as a socket-free state machine |
//! | [`demand`] | what a connection should carry, keyed by symbol id; re-subscription with modes; batching |
//! | [`dial`] | connect job and name lookup on a helper thread, the upgrade request |
//! | [`thread`] | a feed IO thread: one mio poller for every connection of its feeds (and the router, inline) |
//! | [`sink`] | where parsers put ticks (inline router, ring, or a test's `Vec`) |
//! | [`error`] | [`FeedError`]: what happened and what to do (retry, retry after, reauthorize, reject, credentials rejected, stop) |
//! | [`hours`] | market hours: whether a feed should be connected now (the calendar, once a second) |
//! | [`renew`] | new credentials for a running feed, handed to its thread |
//! | `record` | what a connection tells the journal besides its frames: connects, disconnects, subscription changes |
//! | `said` | a connection's log lines, each kind rate-limited |
//! | `send` | demand changes encoded as the broker's requests, written without blocking |
//! | [`status`] | [`FeedStatus`]: health, counters, per-symbol upstream state |
//! | [`watch`] | no silent stalls: stale symbols (learned intervals, market hours) and stalled connections, judged four times a second |
//! | [`backoff`], [`stream`] | capped exponential backoff with jitter; plain TCP or rustls TLS |

pub mod assign;
pub mod backoff;
mod conn;
pub mod demand;
pub mod dial;
pub mod error;
pub mod hours;
pub mod machine;
pub mod pool;
pub mod protocol;
mod record;
pub mod renew;
mod said;
mod send;
pub mod sink;
pub mod status;
pub mod stream;
pub mod thread;
pub mod watch;

pub use error::{Action, FeedError};
pub use hours::FeedHours;
pub use pool::{Feed, ProtocolFactory};
pub use protocol::BrokerProtocol;
pub use sink::TickSink;
pub use status::{feed_state, upstream_state, FeedStatus, LastError};
pub use thread::{FeedConfig, FeedPoller, FeedThread};
