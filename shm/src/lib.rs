//! tickwire's shared memory: one mapped file, one writer (the router), any number of readers in any
//! number of processes.
//!
//! ```text
//!  file: | header (4 KiB) | symbol directory | last-value table | ring of tick slots |
//! ```
//!
//! * The **ring** is a single-writer broadcast ring of seqlocked 448-byte slots. The writer never
//!   waits for a reader. Each reader keeps its own cursor; one that falls a whole ring behind is told
//!   exactly how many ticks it lost ([`Event::Lagged`]) and resyncs.
//! * The **last-value table** holds each symbol's latest tick, merged across field groups, under a
//!   seqlock per entry: a strategy that lagged, or just started, reads current values here.
//! * The **symbol directory** maps ids to `(exchange, symbol, broker token)`.
//!
//! Layout offset by offset, the seqlock orderings and the lap argument: `docs/shm-layout.md`.
//!
//! ```no_run
//! use tickwire_shm::{Event, Reader};
//! let mut r = Reader::open("/dev/shm/tickwire")?;
//! let sbin = r.lookup("NSE", "SBIN");
//! loop {
//!     match r.next() {
//!         Some(Event::Tick(t)) if Some(t.symbol_id) == sbin => println!("{}", tickwire_engine::Px(t.ltp)),
//!         Some(Event::Lagged { lost }) => eprintln!("lost {lost} ticks"),
//!         _ => std::hint::spin_loop(),
//!     }
//! }
//! # Ok::<(), tickwire_shm::ShmError>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod error;
mod file;
pub mod layout;
mod liveness;
mod reader;
mod remove;
pub mod seqlock;
mod space;
mod writer;

pub use error::ShmError;
pub use reader::{Event, HeaderInfo, OpenOptions, Reader, SymbolName, WriterStatus};
pub use remove::{remove, Removed};
pub use writer::{LastValueView, Writer, WriterConfig};

/// Default file path: tmpfs, so the "file" is memory.
pub const DEFAULT_PATH: &str = "/dev/shm/tickwire";
