//! `moqt pub --media`: fragmented MP4 from a file or stdin, published as a hang (and/or MSF)
//! broadcast.
//!
//! Bytes go through `moqt_media::Importer`; each catalog it yields is written as one group of
//! one frame on the catalog track(s), after the rendition tracks it names exist; each frame goes
//! to its rendition's track, a new group at every `group_start` (keyframes; every audio frame),
//! with its timestamp both in the container and as the moq-lite 05+ frame timestamp (ms, the
//! timescale our TRACK_INFO announces). A file is sent at the pace of its timestamps (like
//! `ffmpeg -re`); stdin is sent as it comes unless `--pace`. Bad input ends the broadcast
//! cleanly: every frame the importer produced before the error is published and every open
//! group is finished, so subscribers get whole groups, then the error is reported.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use moqt_driver_quinn::{BroadcastPublisher, GroupPublisher, TrackPublisher};
use moqt_media::catalog::msf::{MsfCatalog, MsfVersion};
use moqt_media::{Catalog, ContainerKind, Frame, ImportConfig, ImportEvent, Importer};

use super::{spawn_reader, CatalogFormat, ContainerArg, Input, MsfDraft, Source};
use crate::cli::PubArgs;
use crate::client_cmd::{close, connect_with, shutdown_signal, ConnectOptions};

/// One published rendition track.
struct Rendition {
    track: TrackPublisher,
    group: Option<GroupPublisher>,
    next_group: u64,
    frames: u64,
}

/// One catalog track (hang or MSF).
struct CatalogTrack {
    format: CatalogFormat,
    track: TrackPublisher,
    next_group: u64,
}

/// The broadcast being published: its catalog tracks and rendition tracks.
struct Broadcast {
    /// Held for its lifetime: dropping it unannounces.
    _broadcast: BroadcastPublisher,
    catalogs: Vec<CatalogTrack>,
    renditions: BTreeMap<String, Rendition>,
    msf_version: MsfVersion,
    jitter: Jitter,
    /// The last catalog written, to skip identical republishing.
    catalog: Option<Catalog>,
    frames: u64,
    bytes: u64,
    last_timestamp_us: u64,
}

/// What goes into the catalog's `jitter`.
#[derive(Debug, Clone, Copy)]
enum Jitter {
    /// Leave it unset (frames are paced).
    None,
    /// This many milliseconds.
    Fixed(u64),
    /// Measured from the frames that come with the first catalog (one fragment, at least).
    FirstFragment,
}

/// Sends frames at the pace of their timestamps, anchored at the first frame.
#[derive(Default)]
struct Pacer {
    anchor: Option<(Instant, u64)>,
}

impl Pacer {
    /// Waits until the frame with timestamp `ts` (µs) is due.
    async fn wait(&mut self, ts: u64) {
        let (at, base) = *self.anchor.get_or_insert_with(|| {
            let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
            // Read by the browser test to estimate glass-to-glass latency.
            eprintln!("pub: media clock: timestamp {ts} us = unix time {unix} us");
            (Instant::now(), ts)
        });
        let due = at + Duration::from_micros(ts.saturating_sub(base));
        tokio::time::sleep_until(due.into()).await;
    }
}

pub async fn run(args: PubArgs) -> Result<()> {
    let media = &args.media;
    let source = Source::parse(media.media.as_deref().unwrap_or("-"));
    if media.loop_file && matches!(source, Source::Stdin) {
        bail!("--loop replays a file: give --media FILE");
    }
    if args.clock || args.fps.is_some() || args.rate.is_some() || args.size.is_some() || args.group.is_some() {
        bail!("--media and the clock / test pattern flags are exclusive");
    }
    let mut formats = media.catalog.clone();
    if formats.is_empty() {
        formats.push(CatalogFormat::Hang);
    }
    formats.dedup();
    if !formats.iter().any(|f| args.broadcast.ends_with(f.suffix())) {
        let f = formats[0];
        eprintln!(
            "note: players pick the catalog format by the broadcast name's suffix: name it {}{} for <moq-watch>",
            args.broadcast,
            f.suffix()
        );
    }
    let paced = matches!(source, Source::File(_)) || media.pace;
    let jitter = match media.jitter {
        Some(ms) => Jitter::Fixed(ms),
        None if paced => Jitter::None,
        None => Jitter::FirstFragment,
    };
    let container = match media.container.unwrap_or(ContainerArg::Legacy) {
        ContainerArg::Legacy => ContainerKind::Legacy,
        ContainerArg::Cmaf => ContainerKind::Cmaf,
    };
    let mut input = spawn_reader(source.clone(), media.loop_file)?;
    // Ctrl-C ends the broadcast cleanly (groups finished, tracks ended), like the end of input.
    let options = ConnectOptions { exit_on_signal: false, ..ConnectOptions::new(&args.reconnect) };
    let (client, session, _link) = connect_with(&args.connect, options).await?;
    let mut out = Broadcast {
        _broadcast: session.publish(&args.broadcast),
        catalogs: Vec::new(),
        renditions: BTreeMap::new(),
        msf_version: media.msf_draft.unwrap_or(MsfDraft::Draft01).into(),
        jitter,
        catalog: None,
        frames: 0,
        bytes: 0,
        last_timestamp_us: 0,
    };
    for &format in &formats {
        out.catalogs.push(CatalogTrack { format, track: out._broadcast.create_track(format.track()), next_group: 0 });
    }
    let tracks: Vec<_> = formats.iter().map(|f| f.track()).collect();
    eprintln!("publishing {} (media from {}; catalog track {})", args.broadcast, source.describe(), tracks.join(", "));

    let mut importer = Importer::new(ImportConfig { container, ..Default::default() });
    let mut pacer = paced.then(Pacer::default);
    let mut waiting_subscribers = args.wait_subscriber;
    let mut pushed = 0u64;
    let mut pass_frames = 0u64;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let body = async {
        loop {
            let (result, end) = match input.recv().await {
                Some(Input::Data(bytes)) => {
                    pushed += bytes.len() as u64;
                    (importer.push(bytes), false)
                }
                Some(Input::End { bytes }) if media.loop_file => {
                    tracing::debug!(bytes, "end of a pass over the file");
                    if importer.position() != pushed {
                        bail!(
                            "{}: the file ends inside a box ({} bytes left over): truncated?",
                            source.describe(),
                            pushed - importer.position()
                        );
                    }
                    if pass_frames == 0 {
                        bail!("{}: no media fragments to loop", source.describe());
                    }
                    pass_frames = 0;
                    continue;
                }
                Some(Input::End { .. }) | None => (importer.finish(), true),
                Some(Input::Failed(e)) => return Err(e).with_context(|| format!("reading {}", source.describe())),
            };
            // The frames before an error are whole and valid: they go out first.
            let events: Vec<ImportEvent> = std::iter::from_fn(|| importer.poll()).collect();
            let before = out.frames;
            out.handle(events, &mut pacer, &mut waiting_subscribers).await?;
            pass_frames += out.frames - before;
            if !end && last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                out.report(started);
            }
            if let Err(e) = result {
                // The message only: the chain would repeat what it already says.
                let hint = match e {
                    moqt_media::Error::BeforeInit { .. } | moqt_media::Error::NoInit => {
                        " (a regular MP4 must be made fragmented first: ffmpeg -i IN -c copy -f mp4 \
                         -movflags cmaf+frag_keyframe+empty_moov OUT)"
                    }
                    _ => "",
                };
                let published = match out.frames {
                    0 => "nothing was published".to_string(),
                    n => format!("the {n} frames before this point were published in whole groups"),
                };
                return Err(anyhow!("{e}{hint}")).with_context(|| {
                    format!("{}: not a valid fragmented MP4 stream ({published})", source.describe())
                });
            }
            if end {
                return Ok(());
            }
        }
    };
    let (outcome, interrupted) = tokio::select! {
        outcome = body => (outcome, None),
        code = shutdown_signal() => (Ok(()), Some(code)),
    };
    out.finish_groups();
    out.report(started);
    if importer.dropped() > 0 {
        eprintln!("pub: {} video frames before the first keyframe were skipped", importer.dropped());
    }
    // End the tracks (their open groups finish first), then close cleanly: the session lingers
    // until the last groups and the ends have reached the relay.
    drop(out);
    close(&client, &session).await;
    if let Some(code) = interrupted {
        eprintln!("pub: interrupted; the broadcast ended cleanly");
        std::process::exit(code);
    }
    outcome
}

impl Broadcast {
    async fn handle(
        &mut self,
        events: Vec<ImportEvent>,
        pacer: &mut Option<Pacer>,
        waiting_subscribers: &mut bool,
    ) -> Result<()> {
        let mut events: std::collections::VecDeque<ImportEvent> = events.into();
        while let Some(event) = events.pop_front() {
            match event {
                ImportEvent::Catalog(mut catalog) => {
                    set_jitter(self.jitter, &mut catalog, events.make_contiguous());
                    self.publish_catalog(catalog)?;
                }
                ImportEvent::Frame(frame) => {
                    if std::mem::take(waiting_subscribers) {
                        eprintln!("pub: waiting for a subscriber to every rendition");
                        for r in self.renditions.values() {
                            r.track.wait_subscribers(1).await?;
                        }
                        eprintln!("subscribed");
                    }
                    if let Some(pacer) = pacer.as_mut() {
                        pacer.wait(frame.timestamp_us).await;
                    }
                    self.write(frame)?;
                }
            }
        }
        Ok(())
    }

    /// Creates the tracks a catalog names (dropping those it no longer names), then writes it
    /// as a new group on each catalog track.
    fn publish_catalog(&mut self, catalog: Catalog) -> Result<()> {
        if self.catalog.as_ref() == Some(&catalog) {
            return Ok(());
        }
        let names: Vec<String> = catalog.renditions().map(|(n, _)| n.to_string()).collect();
        self.renditions.retain(|name, r| {
            let keep = names.contains(name);
            if !keep {
                if let Some(g) = r.group.take() {
                    g.finish();
                }
            }
            keep
        });
        for name in &names {
            if !self.renditions.contains_key(name) {
                let track = self._broadcast.create_track(name);
                self.renditions.insert(name.clone(), Rendition { track, group: None, next_group: 0, frames: 0 });
            }
        }
        for c in &mut self.catalogs {
            let json = match c.format {
                CatalogFormat::Hang => catalog.to_json()?,
                CatalogFormat::Msf => MsfCatalog::from_hang(&catalog).to_json(self.msf_version)?,
            };
            let group = c.track.open_group(c.next_group);
            c.next_group += 1;
            group.write_frame(json)?;
            group.finish();
        }
        eprintln!("pub: catalog: {}", describe(&catalog));
        self.catalog = Some(catalog);
        Ok(())
    }

    fn write(&mut self, frame: Frame) -> Result<()> {
        let Some(r) = self.renditions.get_mut(&*frame.track) else {
            bail!("internal: frame for {} before its catalog", frame.track);
        };
        if frame.group_start || r.group.is_none() {
            if let Some(g) = r.group.take() {
                g.finish();
            }
            r.group = Some(r.track.open_group(r.next_group));
            r.next_group += 1;
        }
        let group = r.group.as_ref().expect("a group is open");
        self.bytes += frame.payload.len() as u64;
        // The moq-lite 05+ frame timestamp is in the TRACK_INFO timescale: 1000 (ms).
        group.write_frame_at(frame.timestamp_us / 1000, frame.payload)?;
        r.frames += 1;
        self.frames += 1;
        self.last_timestamp_us = self.last_timestamp_us.max(frame.timestamp_us);
        Ok(())
    }

    /// Finishes every open group cleanly (what was written is whole).
    fn finish_groups(&mut self) {
        for r in self.renditions.values_mut() {
            if let Some(g) = r.group.take() {
                g.finish();
            }
        }
    }

    fn report(&self, started: Instant) {
        let secs = started.elapsed().as_secs_f64().max(1e-9);
        let per: Vec<String> = self.renditions.iter().map(|(n, r)| format!("{n} {}", r.frames)).collect();
        let subscribers = self.renditions.values().map(|r| r.track.subscribers()).max().unwrap_or(0);
        eprintln!(
            "pub: {} frames ({}), {:.0} kbit/s, media time {:.1} s, {subscribers} subscribers",
            self.frames,
            per.join(", "),
            self.bytes as f64 * 8.0 / secs / 1000.0,
            self.last_timestamp_us as f64 / 1e6,
        );
    }
}

/// Fills in each rendition's `jitter` per the policy. From stdin, the frames that came with the
/// catalog (`rest`) are at least its first fragment: a rendition's jitter is their time span.
fn set_jitter(policy: Jitter, catalog: &mut Catalog, rest: &[ImportEvent]) {
    let span_ms = |name: &str| -> Option<u64> {
        let frames = rest.iter().filter_map(|e| match e {
            ImportEvent::Frame(f) if &*f.track == name => Some(f),
            _ => None,
        });
        let (lo, hi) = frames.fold((u64::MAX, 0u64), |(lo, hi), f: &Frame| {
            (lo.min(f.timestamp_us), hi.max(f.timestamp_us.saturating_add(f.duration_us)))
        });
        (hi > lo).then(|| (hi - lo).div_ceil(1000))
    };
    let pick = |name: &str, current: Option<u64>| match policy {
        Jitter::None => current,
        Jitter::Fixed(ms) => Some(ms),
        Jitter::FirstFragment => span_ms(name).or(current),
    };
    for (name, v) in catalog.video.renditions.iter_mut() {
        v.jitter = pick(name, v.jitter);
    }
    for (name, a) in catalog.audio.renditions.iter_mut() {
        a.jitter = pick(name, a.jitter);
    }
}

/// One line about a catalog's renditions, e.g. `video0 avc1.64000c 320x180 25 fps legacy, audio0 opus 48000 Hz 2 ch legacy`.
pub fn describe(catalog: &Catalog) -> String {
    let mut parts = Vec::new();
    for (name, v) in &catalog.video.renditions {
        let mut s = format!("{name} {}", v.codec);
        if let (Some(w), Some(h)) = (v.coded_width, v.coded_height) {
            s += &format!(" {w}x{h}");
        }
        if let Some(f) = v.framerate {
            s += &format!(" {f} fps");
        }
        if let Some(j) = v.jitter {
            s += &format!(" jitter {j} ms");
        }
        parts.push(format!("{s} {}", v.container.kind()));
    }
    for (name, a) in &catalog.audio.renditions {
        let mut s = format!("{name} {} {} Hz {} ch", a.codec, a.sample_rate, a.number_of_channels);
        if let Some(j) = a.jitter {
            s += &format!(" jitter {j} ms");
        }
        parts.push(format!("{s} {}", a.container.kind()));
    }
    if parts.is_empty() {
        "no renditions".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use moqt_media::{AudioConfig, VideoConfig};

    use super::*;

    fn frame(track: &str, timestamp_us: u64, duration_us: u64) -> ImportEvent {
        ImportEvent::Frame(Frame {
            track: Arc::from(track),
            timestamp_us,
            duration_us,
            keyframe: true,
            group_start: true,
            payload: Bytes::new(),
        })
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::default();
        c.video.renditions.insert("video0".into(), VideoConfig::new("avc1.64001f"));
        c.audio.renditions.insert("audio0".into(), AudioConfig::new("opus", 48_000, 2));
        c
    }

    #[test]
    fn jitter_from_the_first_fragment_per_rendition() {
        // A 1 s GOP of 25 fps video and 20 ms audio frames, as one fragment brings them.
        let mut rest: Vec<ImportEvent> = (0..25).map(|i| frame("video0", i * 40_000, 40_000)).collect();
        rest.extend((0..50).map(|i| frame("audio0", i * 20_000, 20_000)));
        let mut c = catalog();
        set_jitter(Jitter::FirstFragment, &mut c, &rest);
        assert_eq!(c.video.renditions["video0"].jitter, Some(1000));
        assert_eq!(c.audio.renditions["audio0"].jitter, Some(1000));
        // No frames of a rendition: left as it was.
        let mut c = catalog();
        set_jitter(Jitter::FirstFragment, &mut c, &rest[..25]);
        assert_eq!((c.video.renditions["video0"].jitter, c.audio.renditions["audio0"].jitter), (Some(1000), None));
    }

    #[test]
    fn jitter_fixed_or_left_unset() {
        let rest = [frame("video0", 0, 40_000)];
        let mut c = catalog();
        set_jitter(Jitter::Fixed(250), &mut c, &rest);
        assert_eq!(c.video.renditions["video0"].jitter, Some(250));
        assert_eq!(c.audio.renditions["audio0"].jitter, Some(250));
        let mut c = catalog();
        set_jitter(Jitter::None, &mut c, &rest);
        assert_eq!(c.video.renditions["video0"].jitter, None);
    }

    #[test]
    fn describe_names_every_rendition() {
        let mut c = catalog();
        c.video.renditions.get_mut("video0").unwrap().coded_width = Some(320);
        c.video.renditions.get_mut("video0").unwrap().coded_height = Some(180);
        assert_eq!(describe(&c), "video0 avc1.64001f 320x180 legacy, audio0 opus 48000 Hz 2 ch legacy");
        assert_eq!(describe(&Catalog::default()), "no renditions");
    }
}
