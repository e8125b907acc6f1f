//! `moqt sub --media`: records a hang (or MSF) broadcast into a playable fragmented MP4.
//!
//! It waits until the broadcast is announced, reads its catalog track (`catalog.json`, or
//! `catalog` for MSF) until a catalog names renditions, subscribes to every rendition
//! `moqt_media::Recorder` can write, and feeds it their frames as they come. The MP4 pieces go
//! to a file or stdout from a writer thread as soon as the recorder releases them, so `| ffplay -`
//! plays live. The recording ends cleanly (every gathered fragment written) when the publisher
//! ends its tracks, after `--duration`, on Ctrl-C, or when the catalog changes what a recorded
//! rendition is (a new decoder config cannot continue the same file).

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use moqt_driver_quinn::{Announcement, Session, SessionOptions, TrackReader};
use moqt_media::catalog::msf::MsfCatalog;
use moqt_media::catalog::Rendition;
use moqt_media::{Catalog, Recorder};
use moqt_proto::session::SubscribeParams;
use tokio::sync::{mpsc, watch};

use super::publish::describe;
use super::reorder::Reorder;
use super::CatalogFormat;
use crate::cli::SubArgs;
use crate::client_cmd::{close, connect_with, shutdown_signal, ConnectOptions};

/// What the subscription tasks report.
enum Msg {
    Frame { track: usize, group_start: bool, payload: Bytes },
    Ended { track: usize, error: Option<String> },
    Catalog(Box<Catalog>),
}

/// The MP4 output, written by its own thread (a slow pipe never stalls the subscriptions).
struct Output {
    name: String,
    tx: Option<std::sync::mpsc::Sender<Bytes>>,
    /// Pieces handed to the writer so far.
    pieces: u64,
    thread: Option<std::thread::JoinHandle<std::io::Result<u64>>>,
}

impl Output {
    fn open(dest: &str) -> Result<Self> {
        let (mut writer, name): (Box<dyn Write + Send>, String) = if dest == "-" {
            (Box::new(std::io::stdout()), "stdout".into())
        } else {
            let file = std::fs::File::create(dest).with_context(|| format!("cannot create {dest}"))?;
            (Box::new(std::io::BufWriter::new(file)), dest.to_string())
        };
        let (tx, rx) = std::sync::mpsc::channel::<Bytes>();
        let thread = std::thread::Builder::new().name("media-output".into()).spawn(move || {
            let mut total = 0u64;
            for piece in rx {
                writer.write_all(&piece)?;
                total += piece.len() as u64;
                // Pieces come a fragment at a time: flush each, so a pipe's reader gets it now.
                writer.flush()?;
            }
            writer.flush()?;
            Ok(total)
        })?;
        Ok(Output { name, tx: Some(tx), pieces: 0, thread: Some(thread) })
    }

    /// Queues a piece; fails once the writer has stopped (its error comes from `finish`).
    fn send(&mut self, piece: Bytes) -> bool {
        self.pieces += 1;
        self.tx.as_ref().is_some_and(|tx| tx.send(piece).is_ok())
    }

    /// Waits until everything is written; the bytes written.
    fn finish(&mut self) -> Result<u64> {
        drop(self.tx.take());
        let thread = self.thread.take().ok_or_else(|| anyhow!("output already finished"))?;
        let result = thread.join().map_err(|_| anyhow!("the writer thread panicked"))?;
        result.with_context(|| format!("writing {}", self.name))
    }
}

pub async fn run(args: SubArgs) -> Result<()> {
    let media = &args.media;
    if args.stats || args.raw || args.count.is_some() || args.track.is_some() {
        bail!("--media records every rendition of the broadcast: --track, --stats, --raw and --count do not apply");
    }
    let dest = media.media.clone().unwrap_or_else(|| "-".into());
    let format = media.catalog_format.unwrap_or_else(|| CatalogFormat::for_name(&args.broadcast));
    let mut output = Output::open(&dest)?;
    // Audio comes one group per frame: allow a burst of them to wait unread.
    let options = SessionOptions { max_pending_groups: 4096, ..Default::default() };
    let options =
        ConnectOptions { exit_on_signal: false, session: Some(options), ..ConnectOptions::new(&args.reconnect) };
    let (client, session, _link) = connect_with(&args.connect, options).await?;
    // Ctrl-C (or SIGTERM) ends the recording cleanly: the file is finished, not cut.
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let outcome = record(&session, &args, format, &mut output, stop).await;
    let written = output.finish();
    close(&client, &session).await;
    let summary = outcome?;
    match written {
        Ok(bytes) => eprintln!("{summary}; {bytes} bytes written to {}", output.name),
        // `| ffplay -` closed: the reader went away, which ends a recording to stdout.
        Err(e) if is_broken_pipe(&e) => eprintln!("{summary}; {} was closed by its reader", output.name),
        Err(e) => return Err(e),
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// How many times a recording that has written nothing yet starts over for a grown catalog.
const MAX_RESTARTS: usize = 8;

/// Waits for the broadcast, records it; returns a summary line.
async fn record(
    session: &Session,
    args: &SubArgs,
    format: CatalogFormat,
    output: &mut Output,
    mut stop: watch::Receiver<bool>,
) -> Result<String> {
    let broadcast = args.broadcast.as_str();
    eprintln!("waiting for {broadcast} to be announced");
    or_stop(&mut stop, async {
        let mut announced = session.announced(broadcast).await?;
        loop {
            match announced.next().await? {
                Some(Announcement::Active(path)) if path == moqt_proto::Path::new(broadcast) => return Ok(()),
                Some(_) => {}
                None => bail!("the relay ended the announcements before {broadcast} was live"),
            }
        }
    })
    .await?;
    let mut restarts = 0;
    loop {
        match record_catalog(session, args, format, output, &mut stop).await? {
            Attempt::Done(summary) => return Ok(summary),
            Attempt::Restart(why) if restarts < MAX_RESTARTS => {
                restarts += 1;
                eprintln!("{why}: starting over with the new catalog (nothing was written yet)");
            }
            Attempt::Restart(why) => bail!("{why}, again and again: giving up"),
        }
    }
}

/// How one recording attempt ended.
enum Attempt {
    /// The recording is finished: the summary line.
    Done(String),
    /// A later catalog named more renditions before anything was written.
    Restart(String),
}

/// Subscribes to the catalog, then to every rendition the first catalog with renditions names,
/// and records until the end.
async fn record_catalog(
    session: &Session,
    args: &SubArgs,
    format: CatalogFormat,
    output: &mut Output,
    stop: &mut watch::Receiver<bool>,
) -> Result<Attempt> {
    let broadcast = args.broadcast.as_str();
    let params = SubscribeParams { priority: args.priority, max_latency: args.max_latency, ..Default::default() };
    let (catalog_reader, catalog) = or_stop(stop, async {
        let mut reader = session
            .subscribe(broadcast, format.track(), params)
            .await
            .with_context(|| format!("subscribing to {broadcast}/{}", format.track()))?;
        loop {
            let catalog = next_catalog(&mut reader, format).await?;
            if catalog.renditions().next().is_some() {
                return Ok((reader, catalog));
            }
            eprintln!("the catalog names no renditions yet; waiting for the next one");
        }
    })
    .await?;
    eprintln!("catalog: {}", describe(&catalog));
    let mut recorder = Recorder::new(&catalog).context("nothing in the catalog can be recorded")?;
    let names: Vec<String> = recorder.tracks().map(str::to_string).collect();

    // The tasks end with the attempt: aborting one drops its reader, which unsubscribes.
    struct Tasks(Vec<tokio::task::JoinHandle<()>>);
    impl Drop for Tasks {
        fn drop(&mut self) {
            self.0.iter().for_each(|t| t.abort());
        }
    }
    let mut tasks = Tasks(Vec::new());
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (index, name) in names.iter().enumerate() {
        let reader = session
            .subscribe(broadcast, name, params)
            .await
            .with_context(|| format!("subscribing to {broadcast}/{name}"))?;
        tasks.0.push(tokio::spawn(read_track(index, reader, tx.clone())));
    }
    tasks.0.push(tokio::spawn(watch_catalog(catalog_reader, format, tx.clone())));
    drop(tx);
    eprintln!("recording {} into {}", names.join(", "), output.name);

    let mut counts = vec![0u64; names.len()];
    let mut refused = 0u64;
    let mut ended = 0;
    let mut deadline: Option<tokio::time::Instant> = None;
    let why = loop {
        let msg = tokio::select! {
            msg = rx.recv() => msg,
            Ok(_) = stop.wait_for(|s| *s) => break "interrupted".to_string(),
            _ = sleep_until(deadline) => break "--duration reached".to_string(),
        };
        match msg {
            Some(Msg::Frame { track, group_start, payload }) => {
                if deadline.is_none() {
                    deadline = args.media.duration.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
                }
                counts[track] += 1;
                if let Err(e) = recorder.frame(&names[track], group_start, payload) {
                    refused += 1;
                    tracing::warn!(track = %names[track], error = %e, "frame not recorded");
                }
                if !drain(&mut recorder, output) {
                    break "the output closed".to_string();
                }
            }
            Some(Msg::Ended { track, error }) => {
                if let Some(e) = error {
                    eprintln!("{}: {e}", names[track]);
                }
                ended += 1;
                if ended == names.len() {
                    break "the publisher ended the broadcast".to_string();
                }
            }
            Some(Msg::Catalog(new)) => {
                let changed = names.iter().find(|n| decoding(catalog.rendition(n)) != decoding(new.rendition(n)));
                if let Some(name) = changed {
                    break format!("the catalog changed rendition {name}");
                }
                let added: Vec<&str> =
                    new.renditions().map(|(n, _)| n).filter(|n| !names.iter().any(|m| m == n)).collect();
                if added.is_empty() {
                    continue;
                }
                if output.pieces == 0 {
                    return Ok(Attempt::Restart(format!("the catalog added {}", added.join(", "))));
                }
                eprintln!("catalog update: {} (not recorded: {})", describe(&new), added.join(", "));
            }
            None => break "every subscription ended".to_string(),
        }
    };
    recorder.finish()?;
    drain(&mut recorder, output);
    let per: Vec<String> = names.iter().zip(&counts).map(|(n, c)| format!("{n} {c}")).collect();
    let total: u64 = counts.iter().sum();
    let mut summary = format!("recorded {total} frames ({}): {why}", per.join(", "));
    if refused > 0 {
        summary += &format!(" ({refused} frames refused, see the log)");
    }
    Ok(Attempt::Done(summary))
}

/// Runs `f` unless Ctrl-C comes first.
async fn or_stop<T>(stop: &mut watch::Receiver<bool>, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        r = f => r,
        Ok(_) = stop.wait_for(|s| *s) => bail!("interrupted before the recording started"),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Moves the recorder's output to the writer; false once the writer has stopped.
fn drain(recorder: &mut Recorder, output: &mut Output) -> bool {
    while let Some(piece) = recorder.poll_output() {
        if !output.send(piece) {
            return false;
        }
    }
    true
}

/// What a decoder needs of a rendition; a change of it ends the recording.
fn decoding(rendition: Option<Rendition<'_>>) -> Option<String> {
    let hex = |d: &Option<Bytes>| d.as_ref().map(hex::encode).unwrap_or_default();
    Some(match rendition? {
        Rendition::Video(v) => {
            format!("{} {} {:?} {:?} {:?}", v.codec, hex(&v.description), v.container, v.coded_width, v.coded_height)
        }
        Rendition::Audio(a) => {
            format!("{} {} {:?} {} {}", a.codec, hex(&a.description), a.container, a.sample_rate, a.number_of_channels)
        }
    })
}

/// The next catalog on the catalog track: the first frame of its next group (a snapshot; later
/// frames of a hang group are merge patches, not used here).
async fn next_catalog(reader: &mut TrackReader, format: CatalogFormat) -> Result<Catalog> {
    loop {
        let mut group = reader.next_group().await?.ok_or_else(|| anyhow!("the catalog track ended"))?;
        let Some(frame) = group.next_frame().await? else { continue };
        return match format {
            CatalogFormat::Hang => Catalog::from_json(&frame).context("the hang catalog does not parse"),
            CatalogFormat::Msf => {
                Ok(MsfCatalog::from_json(&frame).context("the MSF catalog does not parse")?.to_hang())
            }
        };
    }
}

/// Reports every later catalog.
async fn watch_catalog(mut reader: TrackReader, format: CatalogFormat, tx: mpsc::UnboundedSender<Msg>) {
    while let Ok(catalog) = next_catalog(&mut reader, format).await {
        if tx.send(Msg::Catalog(Box::new(catalog))).is_err() {
            return;
        }
    }
}

/// How long a missing group is waited for before the groups after it are recorded.
const REORDER_WINDOW: Duration = Duration::from_secs(1);

/// Reads one rendition's groups, each on its own task (they arrive newest first), and sends
/// their frames in sequence order.
async fn read_track(track: usize, mut reader: TrackReader, tx: mpsc::UnboundedSender<Msg>) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, Vec<Bytes>)>();
    let mut order = Reorder::new(REORDER_WINDOW);
    let mut ended: Option<Option<String>> = None;
    loop {
        tokio::select! {
            group = reader.next_group(), if ended.is_none() => match group {
                Ok(Some(mut group)) => {
                    let sequence = group.sequence();
                    if !order.opened(sequence) {
                        tracing::debug!(sequence, "group older than what was recorded: skipped");
                        continue;
                    }
                    let done = done_tx.clone();
                    tokio::spawn(async move {
                        let mut frames = Vec::new();
                        loop {
                            match group.next_frame().await {
                                Ok(Some(frame)) => frames.push(frame),
                                Ok(None) => break,
                                Err(e) => {
                                    tracing::debug!(sequence, error = %e, "group cut short");
                                    break;
                                }
                            }
                        }
                        let _ = done.send((sequence, frames));
                    });
                }
                Ok(None) => ended = Some(None),
                Err(e) => ended = Some(Some(format!("the subscription failed: {e}"))),
            },
            Some((sequence, frames)) = done_rx.recv() => order.completed(sequence, frames, Instant::now()),
            _ = sleep_until(order.deadline().map(Into::into)) => {}
        }
        let finished = ended.is_some() && order.reading() == 0;
        for (_, frames) in order.release(Instant::now(), finished) {
            for (i, payload) in frames.into_iter().enumerate() {
                if tx.send(Msg::Frame { track, group_start: i == 0, payload }).is_err() {
                    return;
                }
            }
        }
        if finished {
            break;
        }
    }
    let _ = tx.send(Msg::Ended { track, error: ended.flatten() });
}
