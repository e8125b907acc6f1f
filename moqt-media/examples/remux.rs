//! Fragmented MP4 on stdin → `Importer` (catalog + MoQ frames) → `Recorder` → fragmented MP4 on
//! stdout: both halves of the media layer without a network in between.
//!
//! ```sh
//! ffmpeg -f lavfi -i testsrc2 -t 5 -c:v libx264 -f mp4 \
//!     -movflags cmaf+frag_keyframe+empty_moov+default_base_moof - \
//!   | cargo run -p moqt-media --example remux | ffplay -
//! ```

use std::io::{Read, Write};

use bytes::Bytes;
use moqt_media::{ImportConfig, ImportEvent, Importer, Recorder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut importer = Importer::new(ImportConfig::default());
    let mut recorder: Option<Recorder> = None;
    let (mut stdin, mut stdout) = (std::io::stdin().lock(), std::io::stdout().lock());
    let mut buf = vec![0u8; 64 * 1024];
    let mut frames = 0u64;
    loop {
        let n = stdin.read(&mut buf)?;
        if n == 0 {
            importer.finish()?;
        } else {
            importer.push(Bytes::copy_from_slice(&buf[..n]))?;
        }
        while let Some(event) = importer.poll() {
            match event {
                ImportEvent::Catalog(catalog) => {
                    eprintln!("catalog: {}", String::from_utf8_lossy(&catalog.to_json()?));
                    if recorder.is_some() {
                        return Err("the tracks changed mid-stream".into());
                    }
                    recorder = Some(Recorder::new(&catalog)?);
                }
                ImportEvent::Frame(frame) => {
                    frames += 1;
                    let recorder = recorder.as_mut().ok_or("frame before the catalog")?;
                    recorder.frame(&frame.track, frame.group_start, frame.payload)?;
                }
            }
        }
        if let Some(recorder) = recorder.as_mut() {
            if n == 0 {
                recorder.finish()?;
            }
            while let Some(piece) = recorder.poll_output() {
                stdout.write_all(&piece)?;
            }
        }
        if n == 0 {
            eprintln!("{frames} frames");
            return Ok(());
        }
    }
}
