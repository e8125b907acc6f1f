//! `moqt pub`, `moqt sub` and `moqt announced`: clients on the async API.

use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::{BufMut, Bytes, BytesMut};
use moqt_driver_quinn::{Announcement, Client, CloseInfo, Session, SessionOptions};
use moqt_driver_tokio::session::ReconnectPolicy;
use moqt_driver_tokio::transport::{default_transport_config, ClientConfig};

use crate::cli::{AnnouncedArgs, ConnectArgs, PubArgs, ReconnectArgs};
use crate::link::Link;

/// The QUIC keep-alive interval of a reconnecting client.
const KEEP_ALIVE: Duration = Duration::from_secs(1);

/// How [`connect_with`] sets up the session.
pub(crate) struct ConnectOptions {
    /// Ctrl-C or SIGTERM closes the session and exits the process (else the caller handles them).
    pub exit_on_signal: bool,
    /// Session buffering limits (`None`: the defaults).
    pub session: Option<SessionOptions>,
    /// Reconnection after a loss or a GOAWAY.
    pub reconnect: ReconnectPolicy,
    /// Report connection changes from a task of their own (else the caller reads
    /// `Session::next_state` and hands each state to [`Link::report`]).
    pub report_states: bool,
}

impl ConnectOptions {
    /// Exits on a signal, default session options, states reported by a task.
    pub fn new(reconnect: &ReconnectArgs) -> Self {
        Self { exit_on_signal: true, session: None, reconnect: reconnect.policy(), report_states: true }
    }
}

pub(crate) async fn connect_with(
    args: &ConnectArgs,
    options: ConnectOptions,
) -> Result<(Arc<Client>, Session, Arc<Link>)> {
    let mut config = ClientConfig::new(args.verification()?);
    if let Some(v) = args.version {
        config.versions = vec![v];
    }
    if options.reconnect.enabled {
        // A keep-alive a second: a quiet subscriber learns of a relay restart within a second
        // (the restarted relay answers with a stateless reset) instead of at the idle timeout.
        let mut transport = default_transport_config();
        transport.keep_alive_interval(Some(KEEP_ALIVE));
        config.transport = Some(Arc::new(transport));
    }
    config.runtime = Some(moqt_driver_tokio::runtime());
    config.resolver = Some(Arc::new(moqt_driver_tokio::TokioResolver));
    let session_options = SessionOptions { reconnect: options.reconnect, ..options.session.unwrap_or_default() };
    let client = Arc::new(Client::new(config)?.with_options(session_options));
    let url = args.url()?;
    let shown = crate::auth_cmd::redact(&url);
    let session = client.connect(&url).await.with_context(|| format!("cannot connect to {shown}"))?;
    eprintln!("connected to {shown} ({}, {:?})", session.version(), session.kind());
    // Ctrl-C or SIGTERM closes the session cleanly (so the peer learns at once), then exits.
    let on_signal = session.clone();
    let on_signal_client = client.clone();
    if options.exit_on_signal {
        tokio::spawn(async move {
            let code = shutdown_signal().await;
            on_signal.close(0, "interrupted");
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                on_signal.closed().await;
                on_signal_client.wait_idle().await;
            })
            .await;
            std::process::exit(code);
        });
    }
    // One line per connection change: reconnected, lost, moving on a GOAWAY, closed.
    let link = Link::new(&shown, options.reconnect.enabled);
    if options.report_states {
        link.spawn(&session);
    }
    Ok((client, session, link))
}

/// Runs a command's work on its session. A close with an error code (a refusal at admission,
/// the access expiring) ends the command with an error naming the code; a clean close and the
/// end of a relay's drain (GOAWAY timeout) let the work end on its own.
pub(crate) async fn until_refused(
    session: &Session,
    work: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let explain = |info: CloseInfo| {
        anyhow::anyhow!(
            "the session closed (code {:#x}, {}: {})",
            info.code,
            moqt_proto::session::describe_session_code(info.code),
            info.reason
        )
    };
    let failed = async {
        let info = session.closed().await;
        // A clean close, or the end of a relay's drain: the command ends on its own and reports.
        if info.code == 0 || info.code == moqt_proto::session::session_code::GOAWAY_TIMEOUT {
            std::future::pending::<()>().await;
        }
        info
    };
    let result = tokio::select! {
        biased;
        info = failed => return Err(explain(info)),
        result = work => result,
    };
    // A request that failed because the session is closing: the session's reason says more (its
    // close follows the requests' ends at once).
    match result {
        Err(e) => match tokio::time::timeout(Duration::from_millis(250), session.closed()).await {
            Ok(info) if info.code != 0 => Err(explain(info)),
            _ => Err(e),
        },
        ok => ok,
    }
}

/// Waits for Ctrl-C or (on Unix) SIGTERM; returns the conventional exit code.
pub(crate) async fn shutdown_signal() -> i32 {
    #[cfg(unix)]
    {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return 130;
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => 130,
            _ = term.recv() => 143,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        130
    }
}

/// Closes the session and waits (bounded) until the close has gone out on the wire, so the peer
/// learns at once instead of at its idle timeout.
pub(crate) async fn close(client: &Client, session: &Session) {
    session.close(0, "done");
    // The session lingers up to `close_linger` (2 s) for unacknowledged data; then the close.
    let _ = tokio::time::timeout(Duration::from_secs(4), async {
        session.closed().await;
        client.wait_idle().await;
    })
    .await;
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// A test-pattern frame: send time (µs since the Unix epoch, big-endian), counter, zero padding.
pub fn pattern_frame(counter: u64, size: usize) -> Bytes {
    let mut b = BytesMut::with_capacity(size.max(16));
    b.put_u64(now_micros());
    b.put_u64(counter);
    b.resize(size.max(16), 0);
    b.freeze()
}

/// The counter of a test-pattern frame (its bytes 8..16).
pub fn pattern_counter(payload: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(payload.get(8..16)?.try_into().ok()?))
}

/// The latency of a test-pattern frame, in microseconds, if it looks like one.
pub fn pattern_latency(payload: &[u8]) -> Option<u64> {
    let sent = u64::from_be_bytes(payload.get(..8)?.try_into().ok()?);
    now_micros().checked_sub(sent).filter(|l| *l < 3_600_000_000)
}

/// UTC calendar fields of a Unix time (days-from-civil inverse; no time zone database needed).
pub fn utc(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

pub async fn publish(args: PubArgs) -> Result<()> {
    if args.media.media.is_some() {
        return crate::media::publish::run(args).await;
    }
    let pattern = args.fps.is_some() || args.rate.is_some() || args.size.is_some() || args.group.is_some();
    if args.clock && pattern {
        bail!("--clock and the test pattern flags (--fps/--rate/--size/--group) are exclusive");
    }
    // Ctrl-C ends the track and the broadcast cleanly, like the end of input.
    let options = ConnectOptions { exit_on_signal: false, ..ConnectOptions::new(&args.reconnect) };
    let (client, session, _link) = connect_with(&args.connect, options).await?;
    until_refused(&session, publish_on(args, &client, &session)).await
}

async fn publish_on(args: PubArgs, client: &Client, session: &Session) -> Result<()> {
    let pattern = args.fps.is_some() || args.rate.is_some() || args.size.is_some() || args.group.is_some();
    let mut stop = std::pin::pin!(shutdown_signal());
    let mut interrupted = None;
    let track_name = args.track.clone().unwrap_or_else(|| if args.clock { "seconds" } else { "data" }.to_string());
    let broadcast = session.publish(&args.broadcast);
    let track = broadcast.create_track(&track_name);
    eprintln!("publishing {}/{track_name}", args.broadcast);
    if args.wait_subscriber {
        tokio::select! {
            waited = track.wait_subscribers(1) => {
                waited?;
                eprintln!("subscribed");
            }
            code = &mut stop => interrupted = Some(code),
        }
    }
    let start = Instant::now();
    let mut frames = 0u64;
    let mut bytes = 0u64;
    let mut last_report = Instant::now();
    let mut report = |frames: u64, bytes: u64, force: bool| {
        if force || last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64().max(1e-9);
            eprintln!(
                "pub: {frames} frames, {bytes} bytes, {:.1} frames/s, {:.0} kbit/s, {} subscribers",
                frames as f64 / secs,
                bytes as f64 * 8.0 / secs / 1000.0,
                track.subscribers()
            );
        }
    };
    if interrupted.is_some() {
        // Interrupted while waiting for a subscriber: nothing to send.
    } else if args.clock {
        let mut sequence = None;
        let mut group = None;
        loop {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
            let (y, mo, d, h, mi, s) = utc(now);
            let minute = now / 60;
            if sequence != Some(minute) {
                if let Some(g) = group.take() {
                    moqt_driver_quinn::GroupPublisher::finish(g);
                }
                let g = track.open_group(minute);
                g.write_frame(Bytes::from(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:")))?;
                group = Some(g);
                sequence = Some(minute);
            }
            let payload = Bytes::from(format!("{s:02}"));
            bytes += payload.len() as u64;
            group.as_ref().expect("open group").write_frame(payload)?;
            frames += 1;
            report(frames, bytes, false);
            if args.count.is_some_and(|c| frames >= c) {
                break;
            }
            let next = (now + 1) * 1_000_000;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_micros(next.saturating_sub(now_micros()))) => {}
                code = &mut stop => {
                    interrupted = Some(code);
                    break;
                }
            }
        }
        if let Some(g) = group.take() {
            moqt_driver_quinn::GroupPublisher::finish(g);
        }
    } else if pattern {
        let fps = args.fps.unwrap_or(30.0).max(0.001);
        let size = match (args.size, args.rate) {
            (Some(s), _) => s,
            (None, Some(rate)) => ((rate as f64 / 8.0 / fps) as usize).max(16),
            (None, None) => 1024,
        };
        let per_group = args.group.unwrap_or(fps.round().max(1.0) as u64);
        let interval = Duration::from_secs_f64(1.0 / fps);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut group = None;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                code = &mut stop => {
                    interrupted = Some(code);
                    break;
                }
            }
            if frames % per_group == 0 {
                if let Some(g) = group.take() {
                    moqt_driver_quinn::GroupPublisher::finish(g);
                }
                group = Some(track.open_group(frames / per_group));
            }
            let payload = pattern_frame(frames, size);
            bytes += payload.len() as u64;
            let ts = start.elapsed().as_millis() as u64;
            group.as_ref().expect("open group").write_frame_at(ts, payload)?;
            frames += 1;
            report(frames, bytes, false);
            if args.count.is_some_and(|c| frames >= c) {
                break;
            }
        }
        if let Some(g) = group.take() {
            moqt_driver_quinn::GroupPublisher::finish(g);
        }
    } else {
        // Stdin: one group per line, or fixed-size frames (one group each).
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        let frame_size = args.frame_size;
        std::thread::spawn(move || {
            let stdin = std::io::stdin();
            let mut lock = stdin.lock();
            loop {
                let chunk = match frame_size {
                    Some(n) => {
                        let mut buf = vec![0u8; n];
                        match lock.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => {
                                buf.truncate(k);
                                Bytes::from(buf)
                            }
                        }
                    }
                    None => {
                        let mut line = Vec::new();
                        match lock.read_until(b'\n', &mut line) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {
                                if line.last() == Some(&b'\n') {
                                    line.pop();
                                }
                                Bytes::from(line)
                            }
                        }
                    }
                };
                if tx.blocking_send(chunk).is_err() {
                    break;
                }
            }
        });
        loop {
            let payload = tokio::select! {
                payload = rx.recv() => match payload {
                    Some(payload) => payload,
                    None => break,
                },
                code = &mut stop => {
                    interrupted = Some(code);
                    break;
                }
            };
            let g = track.open_group(frames);
            bytes += payload.len() as u64;
            g.write_frame(payload)?;
            g.finish();
            frames += 1;
            report(frames, bytes, false);
        }
    }
    report(frames, bytes, true);
    // End the track and the broadcast first, so subscribers learn that the publisher ended them
    // (a relay keeps subscribers of a track whose publisher merely vanished waiting for another
    // route); the clean close then waits until the last frames and the ends have reached the
    // relay.
    drop(track);
    drop(broadcast);
    close(client, session).await;
    if let Some(code) = interrupted {
        eprintln!("pub: interrupted; the track ended cleanly");
        std::process::exit(code);
    }
    Ok(())
}

pub async fn announced(args: AnnouncedArgs) -> Result<()> {
    let (client, session, _link) = connect_with(&args.connect, ConnectOptions::new(&args.reconnect)).await?;
    until_refused(&session, announced_on(args, &client, &session)).await
}

async fn announced_on(args: AnnouncedArgs, client: &Client, session: &Session) -> Result<()> {
    let mut announced = session.announced(&args.prefix).await?;
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    while let Some(a) = announced.next().await? {
        match a {
            Announcement::Active(path) => writeln!(out, "+ {path}")?,
            Announcement::Ended(path) => writeln!(out, "- {path}")?,
        }
        out.flush()?;
        n += 1;
        if args.count.is_some_and(|c| n >= c) {
            break;
        }
    }
    close(client, session).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_calendar() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc(1_795_297_599), (2026, 11, 21, 21, 46, 39));
    }

    #[test]
    fn pattern_roundtrip() {
        let f = pattern_frame(7, 100);
        assert_eq!(f.len(), 100);
        assert_eq!(pattern_counter(&f), Some(7));
        assert!(pattern_latency(&f).unwrap() < 10_000_000);
    }
}
