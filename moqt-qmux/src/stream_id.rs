//! QUIC stream ids (RFC 9000 §2.1): bit 0 = initiator (1 = server), bit 1 = direction
//! (1 = unidirectional), the rest = the stream's index among those of its kind.

use std::fmt;

/// Which endpoint this connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The endpoint that opened the WebSocket / byte stream.
    Client,
    /// The endpoint that accepted it.
    Server,
}

impl Role {
    /// The other role.
    pub const fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }
}

/// Stream direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Bidirectional.
    Bi,
    /// Unidirectional (only the initiator sends).
    Uni,
}

impl Dir {
    /// 0 for bidi, 1 for uni: the index into per-direction arrays.
    pub(crate) const fn idx(self) -> usize {
        match self {
            Dir::Bi => 0,
            Dir::Uni => 1,
        }
    }
}

/// The largest stream count a MAX_STREAMS frame may carry (2^60, RFC 9000 §19.11).
pub const MAX_STREAM_COUNT: u64 = 1 << 60;

/// A QUIC stream id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl StreamId {
    /// The id of the `index`-th stream of `dir` opened by `initiator`. `index` must be below
    /// 2^60 (it always is for ids this crate hands out).
    pub const fn new(initiator: Role, dir: Dir, index: u64) -> Self {
        let mut id = index << 2;
        if matches!(initiator, Role::Server) {
            id |= 1;
        }
        if matches!(dir, Dir::Uni) {
            id |= 2;
        }
        Self(id)
    }

    /// The endpoint that opened the stream.
    pub const fn initiator(self) -> Role {
        if self.0 & 1 == 0 {
            Role::Client
        } else {
            Role::Server
        }
    }

    /// The stream's direction.
    pub const fn dir(self) -> Dir {
        if self.0 & 2 == 0 {
            Dir::Bi
        } else {
            Dir::Uni
        }
    }

    /// The stream's index among the streams of its initiator and direction.
    pub const fn index(self) -> u64 {
        self.0 >> 2
    }

    /// Whether `role` may send on this stream.
    pub fn can_send(self, role: Role) -> bool {
        self.dir() == Dir::Bi || self.initiator() == role
    }

    /// Whether `role` may receive on this stream.
    pub fn can_recv(self, role: Role) -> bool {
        self.dir() == Dir::Bi || self.initiator() != role
    }
}

impl fmt::Debug for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let who = match self.initiator() {
            Role::Client => 'c',
            Role::Server => 's',
        };
        let dir = match self.dir() {
            Dir::Bi => "bi",
            Dir::Uni => "uni",
        };
        write!(f, "{}({who}{dir}#{})", self.0, self.index())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits() {
        let id = StreamId::new(Role::Server, Dir::Uni, 5);
        assert_eq!(id.0, 5 * 4 + 3);
        assert_eq!((id.initiator(), id.dir(), id.index()), (Role::Server, Dir::Uni, 5));
        assert!(id.can_send(Role::Server) && !id.can_send(Role::Client));
        assert!(id.can_recv(Role::Client) && !id.can_recv(Role::Server));
        let bi = StreamId::new(Role::Client, Dir::Bi, 0);
        assert_eq!(bi.0, 0);
        assert!(bi.can_send(Role::Server) && bi.can_recv(Role::Client));
    }
}
