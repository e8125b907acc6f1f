//! Two connections wired back to back in memory, with a virtual clock.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt_qmux::{Config, Connection, Event, Framing, Role, StreamId, Version};

/// One end: the connection and the events it produced so far.
pub struct End {
    pub conn: Connection,
    pub events: VecDeque<Event>,
}

impl End {
    /// Moves the connection's events into `events`.
    pub fn collect(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.events.push_back(e);
        }
    }

    /// Removes and returns the events matching `f`.
    pub fn take<T>(&mut self, mut f: impl FnMut(&Event) -> Option<T>) -> Vec<T> {
        self.collect();
        let mut out = Vec::new();
        self.events.retain(|e| match f(e) {
            Some(t) => {
                out.push(t);
                false
            }
            None => true,
        });
        out
    }

    pub fn opened(&mut self) -> Vec<StreamId> {
        self.take(|e| match e {
            Event::StreamOpened(id) => Some(*id),
            _ => None,
        })
    }

    pub fn closed(&mut self) -> Option<moqt_qmux::ConnectionError> {
        self.take(|e| match e {
            Event::Closed(err) => Some(err.clone()),
            _ => None,
        })
        .pop()
    }

    /// Reads everything buffered on `id` into `out`; true once the stream ended.
    pub fn read_all(&mut self, id: StreamId, out: &mut Vec<u8>) -> bool {
        loop {
            match self.conn.read(id, usize::MAX) {
                Ok(Some(chunk)) => out.extend_from_slice(&chunk),
                Ok(None) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// A client and a server connected by two in-memory queues of records.
pub struct Pair {
    pub client: End,
    pub server: End,
    pub now: Instant,
    framing: Framing,
    /// Records in flight, client → server and server → client.
    pub to_server: VecDeque<Bytes>,
    pub to_client: VecDeque<Bytes>,
    /// Stop delivering to the server / client (simulates a dead peer).
    pub cut_to_server: bool,
    pub cut_to_client: bool,
    /// Split every byte-stream write into pieces of this size (byte-stream framing only).
    pub chunk: usize,
}

impl Pair {
    pub fn new(version: Version, client: Config, server: Config) -> Self {
        let now = Instant::now();
        let framing = client.framing;
        let end =
            |role, config| End { conn: Connection::new(role, version, config, now).unwrap(), events: VecDeque::new() };
        Self {
            client: end(Role::Client, client),
            server: end(Role::Server, server),
            now,
            framing,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            cut_to_server: false,
            cut_to_client: false,
            chunk: usize::MAX,
        }
    }

    pub fn default(version: Version) -> Self {
        Self::new(version, Config::default(), Config::default())
    }

    fn deliver(framing: Framing, chunk: usize, now: Instant, conn: &mut Connection, record: Bytes) {
        match framing {
            Framing::WebSocket => conn.handle_record(now, record),
            Framing::ByteStream => {
                let mut rest = record;
                while !rest.is_empty() {
                    let n = rest.len().min(chunk);
                    conn.handle_bytes(now, rest.split_to(n));
                }
            }
        }
    }

    /// One exchange: both sides transmit, then receive what the other sent. Returns how many
    /// records moved.
    pub fn step(&mut self) -> usize {
        let now = self.now;
        while let Some(r) = self.client.conn.poll_transmit(now) {
            self.to_server.push_back(r);
        }
        while let Some(r) = self.server.conn.poll_transmit(now) {
            self.to_client.push_back(r);
        }
        let moved = self.to_server.len() + self.to_client.len();
        while let Some(r) = self.to_server.pop_front() {
            if !self.cut_to_server {
                Self::deliver(self.framing, self.chunk, now, &mut self.server.conn, r);
            }
        }
        while let Some(r) = self.to_client.pop_front() {
            if !self.cut_to_client {
                Self::deliver(self.framing, self.chunk, now, &mut self.client.conn, r);
            }
        }
        self.client.collect();
        self.server.collect();
        moved
    }

    /// Steps until nothing moves.
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.step() == 0 {
                return;
            }
        }
        panic!("pair did not settle");
    }

    /// Moves the clock and fires due timers on both sides.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        for end in [&mut self.client, &mut self.server] {
            if end.conn.poll_timeout().is_some_and(|t| t <= self.now) {
                end.conn.handle_timeout(self.now);
            }
        }
    }

    /// A settled pair past the handshake.
    pub fn connected(version: Version, client: Config, server: Config) -> Self {
        let mut pair = Self::new(version, client, server);
        pair.settle();
        assert!(pair.client.conn.is_connected() && pair.server.conn.is_connected());
        let c = pair.client.take(|e| (*e == Event::Connected).then_some(()));
        let s = pair.server.take(|e| (*e == Event::Connected).then_some(()));
        assert_eq!((c.len(), s.len()), (1, 1));
        pair
    }
}

/// A deterministic byte pattern for stream `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8).collect()
}
