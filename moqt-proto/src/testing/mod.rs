//! The one in-memory rig (feature `testing`): a [`Wire`] that behaves like a QUIC connection as
//! the driver contract describes it (and checks that contract), and a [`Net`] of sessions and
//! nodes joined by [`Link`]s and driven by the crate's run loop. Tests, benchmarks and the fuzz
//! harness all use it, so there is exactly one in-memory driver loop in the project; other
//! transport models (the quinn-proto simulator of the tests) plug in as a [`Link`].
//! [`EventCheck`] holds the invariants of a session's application events.
//!
//! ```
//! use moqt_proto::testing::{Net, A, B};
//! use moqt_proto::{Event, Version};
//!
//! let mut net = Net::pair(Version::Lite06);
//! net.session(A).announce_interest("".into()).unwrap();
//! net.session(B).announce("room/alice".into()).unwrap();
//! net.run();
//! assert!(net.events(A).iter().any(|e| matches!(e, Event::Announced { path, .. } if path.as_str() == "room/alice")));
//! ```

mod check;
mod link;
mod net;
mod raw;
mod wire;

pub use check::EventCheck;
pub use link::Link;
pub use net::{Attachment, Endpoint, Livelock, Net, A, B, MAX_ROUNDS};
pub use wire::{Wire, WireOptions, WireStats};
