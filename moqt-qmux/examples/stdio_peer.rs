//! An echo peer over stdin/stdout, for interop runs against @moq/qmux
//! (`tests/node/interop.mjs` spawns it). Each WebSocket message is framed on the pipes as a
//! big-endian `u32` length and the bytes.
//!
//! Usage: `stdio_peer <subprotocol> <client|server>`, e.g. `stdio_peer qmux-01.moq-lite-05 server`.
//!
//! Echo rules: a peer uni stream is read to the end and sent back on a new uni stream; a peer
//! bidi stream is echoed on itself as it arrives; datagrams are sent back. It ends when the
//! peer closes, printing the close on stderr (`closed: <error>`), exit status 0 for a
//! deliberate close by the peer.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moqt_qmux::{Config, Connection, ConnectionError, Dir, Event, Role, StreamId, Subprotocol, WriteError};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(proto), Some(role)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: stdio_peer <subprotocol> <client|server>");
        std::process::exit(2);
    };
    let version = Subprotocol::parse(proto).expect("a qmux subprotocol").version;
    let role = if role == "client" { Role::Client } else { Role::Server };
    let mut conn = Connection::new(role, version, Config::default(), Instant::now()).expect("config");

    // Reader thread: stdin messages into a channel.
    let (tx, rx) = mpsc::channel::<Option<Bytes>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut len = [0u8; 4];
            if stdin.read_exact(&mut len).is_err() {
                let _ = tx.send(None);
                return;
            }
            let mut buf = vec![0u8; u32::from_be_bytes(len) as usize];
            if stdin.read_exact(&mut buf).is_err() {
                let _ = tx.send(None);
                return;
            }
            if tx.send(Some(Bytes::from(buf))).is_err() {
                return;
            }
        }
    });
    let mut stdout = std::io::stdout().lock();

    // Echo state: uni data collected per peer stream; data waiting to be written per stream.
    let mut uni_in: HashMap<StreamId, Vec<u8>> = HashMap::new();
    let mut out: HashMap<StreamId, (Vec<Bytes>, bool)> = HashMap::new();
    let mut outcome: Option<ConnectionError> = None;

    loop {
        let now = Instant::now();
        while let Some(record) = conn.poll_transmit(now) {
            stdout.write_all(&(record.len() as u32).to_be_bytes()).unwrap();
            stdout.write_all(&record).unwrap();
        }
        stdout.flush().unwrap();
        if outcome.is_some() && conn.is_drained() {
            break;
        }
        // One message at a time, and none while the connection asks for a pause (legacy
        // format), so that what arrived is read before more comes in.
        let wait = conn.poll_timeout().map_or(Duration::from_secs(60), |t| t.saturating_duration_since(now));
        if conn.receive_paused() {
            std::thread::sleep(wait.min(Duration::from_millis(10)));
            conn.handle_timeout(Instant::now());
        } else {
            match rx.recv_timeout(wait) {
                Ok(Some(msg)) => conn.handle_record(Instant::now(), msg),
                Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => conn.handle_transport_closed(),
                Err(mpsc::RecvTimeoutError::Timeout) => conn.handle_timeout(Instant::now()),
            }
        }
        while let Some(event) = conn.poll_event() {
            match event {
                Event::Readable(id) => loop {
                    match conn.read(id, usize::MAX) {
                        Ok(Some(chunk)) if id.dir() == Dir::Uni => {
                            uni_in.entry(id).or_default().extend_from_slice(&chunk)
                        }
                        Ok(Some(chunk)) => out.entry(id).or_default().0.push(chunk),
                        Ok(None) if id.dir() == Dir::Uni => {
                            let data = uni_in.remove(&id).unwrap_or_default();
                            match conn.open(Dir::Uni) {
                                Ok(back) => drop(out.insert(back, (vec![Bytes::from(data)], true))),
                                Err(e) => eprintln!("open: {e}"),
                            }
                            break;
                        }
                        Ok(None) => {
                            out.entry(id).or_default().1 = true;
                            break;
                        }
                        Err(_) => break,
                    }
                },
                Event::DatagramsReadable => {
                    while let Some(d) = conn.recv_datagram() {
                        let _ = conn.send_datagram(d);
                    }
                }
                Event::Closed(err) => outcome = Some(err),
                _ => {}
            }
        }
        // Write what can be written; finish once everything went.
        out.retain(|id, (chunks, fin)| {
            while let Some(chunk) = chunks.first_mut() {
                match conn.write(*id, chunk.clone()) {
                    Ok(n) if n == chunk.len() => drop(chunks.remove(0)),
                    Ok(n) => drop(chunk.split_to(n)),
                    Err(WriteError::Blocked) => return true,
                    Err(e) => {
                        eprintln!("write {id:?}: {e}");
                        return false;
                    }
                }
            }
            if *fin {
                let _ = conn.finish(*id);
                return false;
            }
            true
        });
    }
    let err = outcome.unwrap_or(ConnectionError::TransportClosed);
    eprintln!("closed: {err} (stats {:?})", conn.stats());
    std::process::exit(if matches!(err, ConnectionError::PeerClose { .. }) { 0 } else { 1 });
}
