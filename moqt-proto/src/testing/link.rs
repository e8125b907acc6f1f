//! [`Link`]: what [`Net`](super::Net) needs from a connection between two endpoints, so that the
//! one run loop drives the in-memory [`Wire`](super::Wire) and any other transport model (the
//! quinn-proto simulator in `moqt-proto/tests/support` implements it too).
//!
//! A link has two sides, 0 (the dialling end) and 1 (the accepting end). Each side's endpoint
//! hands it [`Command`]s and reads [`TransportEvent`]s back, exactly as a driver would do with a
//! real connection (the contract is in the docs of [`crate::session`]'s `io` module). Time is
//! the net's: a link that models delays reports its next deadline and does what is due when
//! [`Link::transmit`] is called with a later `now`.

use std::any::Any;
use std::fmt::Debug;
use std::time::Instant;

use crate::session::{Command, TransportEvent};

/// A connection between two endpoints of a [`Net`](super::Net). See the module docs.
pub trait Link: Debug + Any {
    /// Executes one command of `side`'s endpoint.
    fn execute(&mut self, side: usize, cmd: Command);

    /// The next transport event for `side`'s endpoint.
    fn poll_event(&mut self, side: usize) -> Option<TransportEvent>;

    /// Moves whatever can move at `now` (bytes across, packets due, timers due); returns whether
    /// anything moved. Called once per round of the loop.
    fn transmit(&mut self, now: Instant) -> bool;

    /// The next instant at which the link has something to do without any input (a packet
    /// arriving, a transport timer), if it models time.
    fn poll_timeout(&mut self) -> Option<Instant> {
        None
    }

    /// Closes the connection under both ends, as a lost path would.
    fn disconnect(&mut self, code: u64, reason: &str);

    /// Breaches of the driver contract seen so far (commands naming unknown streams, a second
    /// write or read grant in flight, …), described for a test failure message.
    fn violations(&self) -> &[String] {
        &[]
    }

    /// The link as [`Any`], to reach its concrete type (see [`Net::link`](super::Net::link)).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}
