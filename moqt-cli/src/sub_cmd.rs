//! `moqt sub` (without `--media`): one track's frames to stdout, or `--stats` lines. The session
//! reconnects (unless `--no-reconnect`) and its subscription resumes from the next group; this
//! module counts what the switch cost: reconnects, groups missed right after each one,
//! duplicate groups (which the core never delivers; counted to prove it) and, for test-pattern
//! frames, frames skipped (jumps in their counters: frames lost inside groups too).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use moqt_driver_quinn::{Client, Error, GroupReader, Session};
use moqt_proto::session::{stream_code, SubscribeParams};

use crate::cli::SubArgs;
use crate::client_cmd::{
    close, connect_with, pattern_counter, pattern_latency, shutdown_signal, until_refused, ConnectOptions,
};
use crate::link::Link;
use crate::stats::Latencies;

/// Group sequences remembered for duplicate detection.
const SEEN: usize = 4096;

/// What a subscriber counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// Frames received.
    pub frames: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Groups skipped in the sequence (any reason).
    pub lost: u64,
    /// Of those, groups skipped in the first group after a reconnection.
    pub missed: u64,
    /// Groups received more than once.
    pub duplicates: u64,
    /// Connections established after the first.
    pub reconnects: u64,
    /// Test-pattern frames skipped: jumps in the frames' counters (see `pattern_frame`).
    pub skipped: u64,
    /// The highest test-pattern counter so far.
    last_counter: Option<u64>,
    /// The highest group sequence so far.
    last_seq: Option<u64>,
    /// Recent sequences, for duplicates.
    seen: BTreeSet<u64>,
    /// The reconnect count when the last group started.
    reconnects_at_last_group: u64,
    /// When the last frame arrived.
    last_frame: Option<Instant>,
}

/// A group that started after a reconnection: what the switch cost.
#[derive(Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The group it resumed at.
    pub sequence: u64,
    /// Groups skipped.
    pub missed: u64,
    /// Time since the last frame before it.
    pub gap: Duration,
}

impl Counts {
    /// A group started at `now`; returns what a reconnection cost if this is the first group
    /// after one.
    pub fn group(&mut self, seq: u64, now: Instant) -> Option<Resumed> {
        if !self.seen.insert(seq) {
            self.duplicates += 1;
            return None;
        }
        if self.seen.len() > SEEN {
            self.seen.pop_first();
        }
        let skipped = self.last_seq.map_or(0, |prev| seq.saturating_sub(prev.saturating_add(1)));
        self.lost += skipped;
        self.last_seq = Some(self.last_seq.map_or(seq, |p| p.max(seq)));
        if self.reconnects == self.reconnects_at_last_group {
            return None;
        }
        self.reconnects_at_last_group = self.reconnects;
        self.missed += skipped;
        let gap = self.last_frame.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        Some(Resumed { sequence: seq, missed: skipped, gap })
    }

    /// A frame arrived at `now`; `counter` is its test-pattern counter, if it is one.
    pub fn frame(&mut self, len: usize, counter: Option<u64>, now: Instant) {
        self.frames += 1;
        self.bytes += len as u64;
        self.last_frame = Some(now);
        if let Some(c) = counter {
            self.skipped += self.last_counter.map_or(0, |last| c.saturating_sub(last.saturating_add(1)));
            self.last_counter = Some(self.last_counter.map_or(c, |last| last.max(c)));
        }
    }
}

/// The subscriber's next item.
enum Next {
    Group(Result<Option<GroupReader>, Error>),
    Frame(Result<Option<Bytes>, Error>),
}

pub async fn subscribe(args: SubArgs) -> Result<()> {
    if args.media.media.is_some() {
        return crate::media::record::run(args).await;
    }
    // Ctrl-C ends the run with its `total` line; connection changes are reported here, in order
    // with the groups, so that a reconnection is attributed to the group after it.
    let options =
        ConnectOptions { exit_on_signal: false, report_states: false, ..ConnectOptions::new(&args.reconnect) };
    let (client, session, link) = connect_with(&args.connect, options).await?;
    until_refused(&session, subscribe_on(args, &client, &session, &link)).await
}

async fn subscribe_on(args: SubArgs, client: &Client, session: &Session, link: &Link) -> Result<()> {
    let mut stop = std::pin::pin!(shutdown_signal());
    let mut interrupted = None;
    let track_name = args.track.clone().unwrap_or_else(|| "data".to_string());
    let params = SubscribeParams { priority: args.priority, max_latency: args.max_latency, ..Default::default() };
    let reconnecting = !args.reconnect.no_reconnect;
    let mut reader = session.subscribe(&args.broadcast, &track_name, params).await?;
    eprintln!("subscribed to {}/{track_name}", args.broadcast);
    let mut out = std::io::stdout().lock();
    let start = Instant::now();
    let mut counts = Counts::default();
    let mut latencies = Latencies::default();
    let mut all = Latencies::default();
    let mut last_report = Instant::now();
    let mut current: Option<GroupReader> = None;
    let ended = loop {
        let next = async {
            match current.as_mut() {
                Some(group) => Next::Frame(group.next_frame().await),
                None => Next::Group(reader.next_group().await),
            }
        };
        let next = tokio::select! {
            biased;
            code = &mut stop => {
                interrupted = Some(code);
                break Some("interrupted".to_owned());
            }
            Some(state) = session.next_state() => {
                link.report(session, &state);
                counts.reconnects = link.reconnects();
                continue;
            }
            next = next => next,
        };
        match next {
            Next::Group(Ok(Some(group))) => {
                let seq = group.sequence();
                if let Some(r) = counts.group(seq, Instant::now()) {
                    eprintln!(
                        "resumed at group {}: {} ms without frames, {} groups missed",
                        r.sequence,
                        r.gap.as_millis(),
                        r.missed
                    );
                }
                current = Some(group);
            }
            Next::Group(Ok(None)) => {
                break Some(match session.close_info() {
                    Some(info) => format!("the session closed (code {:#x}: {})", info.code, info.reason),
                    None => "the publisher ended the track".to_owned(),
                })
            }
            // Waiting for a route outlasted the failover grace (a relay down for long):
            // while the session reconnects, ask again rather than give up.
            Next::Group(Err(Error::Code(stream_code::UNROUTABLE)))
                if reconnecting && session.close_info().is_none() =>
            {
                eprintln!("no route to {}/{track_name} for a while: subscribing again", args.broadcast);
                reader = session.subscribe(&args.broadcast, &track_name, params).await?;
            }
            Next::Group(Err(e)) => return Err(e).context("the subscription failed"),
            // A group cut short (its connection was lost, or it fell too far behind): the next.
            Next::Frame(Err(e)) => {
                tracing::debug!(%e, "a group ended early");
                current = None;
            }
            Next::Frame(Ok(None)) => current = None,
            Next::Frame(Ok(Some(frame))) => {
                let counter = pattern_latency(&frame).and_then(|_| pattern_counter(&frame));
                counts.frame(frame.len(), counter, Instant::now());
                if args.stats {
                    if let Some(l) = pattern_latency(&frame) {
                        latencies.record(l);
                        all.record(l);
                    }
                    if last_report.elapsed() >= Duration::from_secs(1) {
                        last_report = Instant::now();
                        print_stats(&mut out, start, &counts, &mut latencies)?;
                    }
                } else {
                    out.write_all(&frame)?;
                    if !args.raw {
                        out.write_all(b"\n")?;
                    }
                    out.flush()?;
                }
                if args.count.is_some_and(|c| counts.frames >= c) {
                    break None;
                }
            }
        }
    };
    if let Some(why) = ended {
        eprintln!("{why}");
    }
    if args.stats {
        write!(out, "total ")?;
        print_stats(&mut out, start, &counts, &mut all)?;
    }
    drop(current);
    close(client, session).await;
    if let Some(code) = interrupted {
        std::process::exit(code);
    }
    Ok(())
}

/// One stats line: the fields up to the latency as they always were, then the reconnection
/// fields (appended, so parsers of the older line keep working).
fn print_stats(out: &mut impl Write, start: Instant, c: &Counts, latencies: &mut Latencies) -> Result<()> {
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    writeln!(
        out,
        "sub: {} frames, {:.1} frames/s, {:.0} kbit/s, {} groups lost, latency ms p50 {} p99 {} max {}, \
         {} reconnects, {} groups missed, {} duplicate groups, {} frames skipped",
        c.frames,
        c.frames as f64 / secs,
        c.bytes as f64 * 8.0 / secs / 1000.0,
        c.lost,
        latencies.ms(0.5),
        latencies.ms(0.99),
        latencies.max_ms(),
        c.reconnects,
        c.missed,
        c.duplicates,
        c.skipped,
    )?;
    out.flush()?;
    latencies.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gaps_reconnect_misses_and_duplicates() {
        let t0 = Instant::now();
        let mut c = Counts::default();
        assert_eq!(c.group(5, t0), None);
        c.frame(10, None, t0);
        assert_eq!(c.group(7, t0), None, "a gap without a reconnection");
        assert_eq!((c.lost, c.missed), (1, 0));
        c.reconnects = 1;
        assert_eq!(c.group(7, t0), None, "a duplicate is not a resumption");
        assert_eq!(c.duplicates, 1);
        let later = t0 + Duration::from_millis(1500);
        assert_eq!(c.group(10, later), Some(Resumed { sequence: 10, missed: 2, gap: Duration::from_millis(1500) }));
        assert_eq!((c.lost, c.missed), (3, 2));
        assert_eq!(c.group(11, later), None, "only the first group after it");
        // A late group below the highest is neither lost again nor a duplicate.
        assert_eq!(c.group(9, later), None);
        assert_eq!((c.lost, c.duplicates), (3, 1));
    }

    #[test]
    fn counts_skipped_pattern_frames() {
        let t0 = Instant::now();
        let mut c = Counts::default();
        for counter in [0, 1, 2, 5, 6, 4, 9] {
            c.frame(64, Some(counter), t0);
        }
        // 3 and 4 skipped (4 arrives late: still counted), then 7 and 8.
        assert_eq!(c.skipped, 4);
        c.frame(64, None, t0);
        assert_eq!((c.frames, c.skipped), (8, 4), "frames without a counter do not count");
    }
}
