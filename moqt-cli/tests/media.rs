//! End-to-end media tests of the `moqt` binary: ffmpeg makes a few seconds of H.264 + Opus test
//! pattern as CMAF, `moqt pub --media` publishes it through `moqt relay`, `moqt sub --media`
//! records it, and ffprobe compares the recording with the source: the same codecs, the same
//! number of frames, the same presentation times, strictly increasing decode times, and ffmpeg
//! decodes it without a single error. Bad input (truncated, corrupt) on stdin must end `moqt pub`
//! with a clear error while the recording holds exactly the frames published before it.
//!
//! Needs `ffmpeg` and `ffprobe` (Debian's package has libx264 and libopus); without them each
//! test prints SKIPPED and passes. Readiness comes from the processes' output and exits, never
//! from sleeps: `moqt sub --media` waits for the announcement itself and `moqt pub
//! --wait-subscriber` holds the frames until every rendition is subscribed.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use bytes::Bytes;
use common::Proc;
use moqt_media::{ImportConfig, ImportEvent, Importer};

/// Whether ffmpeg and ffprobe can run; prints why the test is skipped if not.
fn have_ffmpeg(test: &str) -> bool {
    let ok = |bin: &str| Command::new(bin).arg("-version").output().is_ok_and(|o| o.status.success());
    if ok("ffmpeg") && ok("ffprobe") {
        return true;
    }
    eprintln!("SKIPPED {test}: ffmpeg/ffprobe not installed (apt-get install ffmpeg)");
    false
}

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("moqt-media-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 3 s of 320×180 testsrc2 at 25 fps (libx264 with B-frames, a keyframe a second) and a 440 Hz
/// tone (libopus stereo), as ffmpeg writes CMAF.
fn make_source(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "3", "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "25"])
        .args(["-c:a", "libopus", "-b:a", "32k", "-ac", "2"])
        .args(["-f", "mp4", "-movflags", "cmaf+frag_keyframe+empty_moov+default_base_moof"])
        .arg(path)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not make the source");
}

/// One stream as ffprobe sees it.
#[derive(Debug)]
struct Stream {
    codec: String,
    /// (pts, dts) of each packet in seconds, in file order.
    packets: Vec<(f64, f64)>,
}

fn probe(path: &Path) -> Vec<Stream> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(["-show_entries", "stream=index,codec_name:packet=stream_index,pts_time,dts_time"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(out.status.success(), "ffprobe refuses {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut streams: Vec<Stream> = json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Stream { codec: s["codec_name"].as_str().unwrap().to_string(), packets: Vec::new() })
        .collect();
    let time = |v: &serde_json::Value| v.as_str().and_then(|s| s.parse::<f64>().ok()).expect("a packet time");
    for p in json["packets"].as_array().unwrap() {
        let index = p["stream_index"].as_u64().unwrap() as usize;
        streams[index].packets.push((time(&p["pts_time"]), time(&p["dts_time"])));
    }
    streams
}

/// ffmpeg decodes the whole file and prints nothing at level `error`.
fn decodes_cleanly(path: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{} does not decode cleanly:\n{err}", path.display());
}

/// The recording has the source's codecs, frame counts and presentation times (up to one
/// constant shift per stream), with strictly increasing decode times.
fn same_media(source: &[Stream], recorded: &[Stream], what: &str) {
    let codecs = |s: &[Stream]| s.iter().map(|s| s.codec.clone()).collect::<Vec<_>>();
    let mut want = codecs(source);
    let mut got = codecs(recorded);
    want.sort();
    got.sort();
    assert_eq!(got, want, "{what}: codecs");
    for src in source {
        let rec = recorded.iter().find(|r| r.codec == src.codec).unwrap();
        assert_eq!(rec.packets.len(), src.packets.len(), "{what}: {} frame count", src.codec);
        for pair in rec.packets.windows(2) {
            assert!(pair[1].1 > pair[0].1, "{what}: {} decode times not increasing: {pair:?}", src.codec);
        }
        let sorted = |s: &Stream| {
            let mut v: Vec<f64> = s.packets.iter().map(|p| p.0).collect();
            v.sort_by(f64::total_cmp);
            v
        };
        let (a, b) = (sorted(src), sorted(rec));
        let shift = b[0] - a[0];
        for (x, y) in a.iter().zip(&b) {
            assert!((y - x - shift).abs() < 0.001, "{what}: {} presentation time {x} recorded as {y}", src.codec);
        }
    }
}

/// A relay on a free loopback port: (process, address, fingerprint).
fn relay() -> (Proc, String, String) {
    let p = Proc::spawn(&["relay", "--listen", "127.0.0.1:0"]);
    let fp = p.wait_err("certificate sha256").rsplit(' ').next().unwrap().to_string();
    let line = p.wait_err("listening on");
    let addr = line.split_whitespace().nth(2).unwrap().to_string();
    (p, addr, fp)
}

/// `moqt sub --media OUT` for `name`; then `publish` starts the publisher. Both must exit 0;
/// returns the subscriber's summary line.
fn record(url: &str, fp: &str, name: &str, out: &Path, sub_extra: &[&str], publish: impl FnOnce() -> Proc) -> String {
    let mut args = vec!["sub", url, name, "--media", out.to_str().unwrap(), "--tls-fingerprint", fp];
    args.extend_from_slice(sub_extra);
    let sub = Proc::spawn(&args);
    sub.wait_err("waiting for");
    let publisher = publish();
    let (ok, err) = publisher.finish();
    assert!(ok, "{name}: moqt pub failed: {err:#?}");
    let (ok, err) = sub.finish();
    assert!(ok, "{name}: moqt sub failed: {err:#?}");
    err.into_iter().find(|l| l.starts_with("recorded ")).unwrap_or_else(|| panic!("{name}: no summary"))
}

#[test]
fn media_round_trip_through_the_relay_keeps_every_frame() {
    if !have_ffmpeg("media_round_trip_through_the_relay_keeps_every_frame") {
        return;
    }
    let dir = Scratch::new("roundtrip");
    let source = dir.path("source.mp4");
    make_source(&source);
    let want = probe(&source);
    let (_relay, addr, fp) = relay();
    // hang + legacy over raw QUIC (the defaults); MSF + CMAF over WebTransport on lite-05
    // (frame timestamps on the wire), at the same time.
    let lite05 = vec!["--version", "lite-05"];
    let cases: [(&str, String, Vec<&str>, Vec<&str>); 2] = [
        ("rt.hang", format!("moqt://{addr}"), vec![], vec![]),
        (
            "rt.msf",
            format!("https://{addr}/"),
            [&lite05[..], &["--container", "cmaf", "--catalog", "msf", "--msf-draft", "draft-01"]].concat(),
            lite05,
        ),
    ];
    let runs: Vec<_> = cases
        .into_iter()
        .map(|(name, url, extra, sub_extra)| {
            let (fp, source) = (fp.clone(), source.clone());
            let out = dir.path(&format!("{name}.mp4"));
            thread::spawn(move || {
                let summary = record(&url, &fp, name, &out, &sub_extra, || {
                    let mut args = vec!["pub", &url, name, "--media", source.to_str().unwrap(), "--wait-subscriber"];
                    args.extend_from_slice(&extra);
                    args.extend_from_slice(&["--tls-fingerprint", &fp]);
                    Proc::spawn(&args)
                });
                (name, out, summary)
            })
        })
        .collect();
    for run in runs {
        let (name, out, summary) = run.join().expect("a round trip failed");
        assert!(summary.contains("the publisher ended the broadcast"), "{name}: {summary}");
        let got = probe(&out);
        same_media(&want, &got, name);
        decodes_cleanly(&out);
        let frames: usize = want.iter().map(|s| s.packets.len()).sum();
        assert!(summary.starts_with(&format!("recorded {frames} frames")), "{name}: {summary}");
        eprintln!("{name}: {summary}");
    }
}

/// The frames the importer makes of `input` before it fails, per track name.
fn frames_before_error(input: &[u8]) -> (usize, usize, String) {
    let mut importer = Importer::new(ImportConfig::default());
    let result = importer.push(Bytes::copy_from_slice(input)).and_then(|()| importer.finish());
    let error = result.expect_err("the input must be refused").to_string();
    let (mut video, mut audio) = (0, 0);
    while let Some(event) = importer.poll() {
        if let ImportEvent::Frame(f) = event {
            if f.track.starts_with("video") {
                video += 1;
            } else {
                audio += 1;
            }
        }
    }
    (video, audio, error)
}

#[test]
fn bad_input_on_stdin_is_a_clear_error_and_what_was_published_stays_whole() {
    if !have_ffmpeg("bad_input_on_stdin_is_a_clear_error_and_what_was_published_stays_whole") {
        return;
    }
    let dir = Scratch::new("badinput");
    let source = dir.path("source.mp4");
    make_source(&source);
    let good = std::fs::read(&source).unwrap();
    // Cut in the middle of the stream, and the first moof after the middle with its children
    // overwritten.
    let half = good.len() / 2;
    let truncated = good[..half].to_vec();
    let mut corrupt = good.clone();
    let at = half + corrupt[half..].windows(4).position(|w| w == b"moof").expect("a moof");
    corrupt[at + 4..at + 36].fill(0xff);
    let (_relay, addr, fp) = relay();
    let url = format!("moqt://{addr}");
    for (name, input, reason) in
        [("cut.hang", truncated, "input ended inside a box"), ("corrupt.hang", corrupt, "bad MP4 box moof")]
    {
        let (video, audio, error) = frames_before_error(&input);
        assert!(error.contains(reason), "{name}: the importer says {error}");
        assert!(video > 0 && audio > 0, "{name}: something is published before the error");
        let out = dir.path(&format!("{name}.mp4"));
        let sub = Proc::spawn(&["sub", &url, name, "--media", out.to_str().unwrap(), "--tls-fingerprint", &fp]);
        sub.wait_err("waiting for");
        let publisher = Proc::spawn_with_stdin(
            &["pub", &url, name, "--media", "-", "--wait-subscriber", "--tls-fingerprint", &fp],
            input,
        );
        let (ok, err) = publisher.finish();
        assert!(!ok, "{name}: moqt pub must fail");
        let text = err.join("\n");
        let line =
            err.iter().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("{name}: no error line: {text}"));
        assert!(line.contains("stdin: not a valid fragmented MP4 stream"), "{name}: {line}");
        assert!(line.contains(reason), "{name}: {line}");
        assert!(line.contains(&format!("the {} frames before this point were published", video + audio)), "{line}");
        assert!(!text.contains("panicked"), "{name}: {text}");
        let (ok, err) = sub.finish();
        assert!(ok, "{name}: moqt sub failed: {err:#?}");
        let summary = err.iter().find(|l| l.starts_with("recorded ")).expect("a summary");
        assert!(
            summary.contains(&format!("(video0 {video}, audio0 {audio})")),
            "{name}: want video0 {video}, audio0 {audio}: {summary}"
        );
        // Every published frame arrived whole: the recording decodes cleanly with all of them.
        let got = probe(&out);
        let count = |codec: &str| got.iter().find(|s| s.codec == codec).map_or(0, |s| s.packets.len());
        assert_eq!((count("h264"), count("opus")), (video, audio), "{name}");
        decodes_cleanly(&out);
        eprintln!("{name}: pub said {line:?}; {summary}");
    }
}

#[test]
fn a_recording_follows_a_rolling_restart_and_keeps_every_frame() {
    if !have_ffmpeg("a_recording_follows_a_rolling_restart_and_keeps_every_frame") {
        return;
    }
    let dir = Scratch::new("rolling");
    let source = dir.path("source.mp4");
    make_source(&source);
    let want = probe(&source);
    // Two relays with certificates of their own: the clients skip verification here.
    let (_next, next, _) = relay();
    let to = format!("moqt://{next}");
    let old = Proc::spawn(&["relay", "--listen", "127.0.0.1:0", "--next-uri", &to, "--drain-timeout", "20"]);
    let addr = old.wait_err("listening on").split_whitespace().nth(2).unwrap().to_string();
    let url = format!("moqt://{addr}");
    let out = dir.path("moved.mp4");
    let sub = Proc::spawn(&["sub", &url, "moved.hang", "--media", out.to_str().unwrap(), "--tls-disable-verify"]);
    sub.wait_err("waiting for");
    let publisher = Proc::spawn(&[
        "pub",
        &url,
        "moved.hang",
        "--media",
        source.to_str().unwrap(),
        "--wait-subscriber",
        "--tls-disable-verify",
    ]);
    // The recording has started (the catalog came; the publisher paces 3 s of media): drain.
    sub.wait_err("catalog:");
    old.interrupt();
    for p in [&publisher, &sub] {
        p.wait_err(&format!("reconnected to {to} ("));
    }
    let (ok, err) = publisher.finish();
    assert!(ok, "moqt pub failed: {err:#?}");
    let (ok, err) = sub.finish();
    assert!(ok, "moqt sub failed: {err:#?}");
    let summary = err.iter().find(|l| l.starts_with("recorded ")).expect("a summary");
    assert!(summary.contains("the publisher ended the broadcast"), "{summary}");
    let (ok, _) = old.finish();
    assert!(ok, "the old relay exits once everyone left");
    // Every frame, once, in order, whole.
    same_media(&want, &probe(&out), "moved.hang");
    decodes_cleanly(&out);
    eprintln!("moved.hang: {summary}");
}
