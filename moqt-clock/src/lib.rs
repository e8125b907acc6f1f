//! moq-dev's clock track on the moqt async API, on any runtime.
//!
//! This crate owns the clock's track layout and its two ends. The track is [`TRACK`] in a
//! broadcast (by convention [`BROADCAST`]); each minute is one group, numbered by minutes since
//! the Unix epoch, whose frame 0 is `"YYYY-MM-DD HH:MM:"` (UTC) and whose next frames are the
//! seconds, `"SS"`, one a second. [`publish`] writes it, [`subscribe`] reads it back as
//! `"YYYY-MM-DD HH:MM:SS"` lines, [`parts`] and [`utc`] do the calendar arithmetic.
//!
//! Nothing here picks a runtime: the publisher sleeps on the [`Runtime`] it is given, so the same
//! code serves `moqt-driver-tokio` and `moqt-driver-smol`.
//!
//! ```no_run
//! # async fn demo(session: moqt_driver_quinn::Session, other: moqt_driver_quinn::Session,
//! #     runtime: moqt_driver_quinn::Runtime) -> Result<(), moqt_clock::Error> {
//! // Publish on one session, for ever (no count) …
//! moqt_clock::publish(&session, "clock", &runtime, None).await?;
//! // … and print ten lines on another.
//! moqt_clock::subscribe(&other, "clock", Some(10), |line| println!("{line}")).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moqt_driver_quinn::rt::Sleep;
use moqt_driver_quinn::{Announcement, CloseInfo, GroupPublisher, Runtime, Session, SubscribeParams};

/// The track name moq-dev's clock uses.
pub const TRACK: &str = "seconds";
/// The broadcast moq-dev's clock publishes by default.
pub const BROADCAST: &str = "clock";

/// Why a clock publisher or subscriber stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The session closed under the publisher.
    #[error("session closed: code {:#x} {}", .0.code, .0.reason)]
    Closed(CloseInfo),
    /// The announcements ended before the broadcast appeared.
    #[error("announcements ended before {0} appeared")]
    NotAnnounced(String),
    /// A request on the session failed.
    #[error(transparent)]
    Session(#[from] moqt_driver_quinn::Error),
}

/// UTC `(year, month, day, hour, minute, second)` of a Unix time.
pub fn utc(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    // Days to civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
    let days = (secs / 86_400) as i64 + 719_468;
    let era = days.div_euclid(146_097);
    let doe = days.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = secs % 86_400;
    (year, month, day, (rem / 3600) as u32, (rem / 60 % 60) as u32, (rem % 60) as u32)
}

/// `(frame 0 "YYYY-MM-DD HH:MM:", seconds frame "SS", group = minutes since the epoch)` of a time.
pub fn parts(at: SystemTime) -> (String, String, u64) {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d, h, mi, s) = utc(secs);
    (format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:"), format!("{s:02}"), secs / 60)
}

/// Publishes the clock under `broadcast` on `session`, sleeping on `runtime` between seconds;
/// stops after `count` seconds if given, else runs until the session closes.
pub async fn publish(session: &Session, broadcast: &str, runtime: &Runtime, count: Option<u64>) -> Result<(), Error> {
    let publisher = session.publish(broadcast);
    let track = publisher.create_track(TRACK);
    let mut group: Option<GroupPublisher> = None;
    let mut sent = 0;
    while count.is_none_or(|c| sent < c) {
        if let Some(info) = session.close_info() {
            return Err(Error::Closed(info));
        }
        let now = SystemTime::now();
        let (base, seconds, minute) = parts(now);
        if group.as_ref().is_none_or(|g| g.sequence() != minute) {
            // A new minute: finish the previous group, open one whose frame 0 is the date.
            if let Some(old) = group.take() {
                old.finish();
            }
            let g = track.open_group(minute);
            // Writes fail only when no subscriber holds the group; the next minute starts afresh.
            let _ = g.write_frame(Bytes::from(base));
            group = Some(g);
        }
        if let Some(g) = &group {
            let _ = g.write_frame(Bytes::from(seconds));
        }
        sent += 1;
        // Sleep to the start of the next second.
        let into =
            now.duration_since(UNIX_EPOCH).map_or(Duration::ZERO, |d| Duration::from_nanos(d.subsec_nanos().into()));
        Sleep::until(runtime, Instant::now() + Duration::from_secs(1).saturating_sub(into)).await;
    }
    if let Some(g) = group {
        g.finish();
    }
    Ok(())
}

/// Waits for `broadcast` to be announced on `session`, subscribes to its clock and hands each
/// `"YYYY-MM-DD HH:MM:SS"` line to `line`; returns how many lines it handed over, after `count`
/// if given, else when the track ends.
pub async fn subscribe(
    session: &Session,
    broadcast: &str,
    count: Option<u64>,
    mut line: impl FnMut(&str),
) -> Result<u64, Error> {
    if count == Some(0) {
        return Ok(0);
    }
    let mut announced = session.announced("/").await?;
    let want = moqt_proto::Path::new(broadcast);
    loop {
        match announced.next().await? {
            Some(Announcement::Active(path)) if path == want => break,
            Some(_) => {}
            None => return Err(Error::NotAnnounced(broadcast.to_owned())),
        }
    }
    // Oldest group first, up to a minute behind: a late joiner gets the current minute so far.
    let params = SubscribeParams { priority: 128, ordered: true, max_latency: 60_000, ..SubscribeParams::default() };
    let mut track = session.subscribe(broadcast, TRACK, params).await?;
    let mut printed = 0;
    while let Some(mut group) = track.next_group().await? {
        // A group cut short (its publisher moved on, or a relay dropped it) is skipped.
        let Ok(Some(base)) = group.next_frame().await else { continue };
        let base = String::from_utf8_lossy(&base).into_owned();
        while let Ok(Some(seconds)) = group.next_frame().await {
            line(&format!("{base}{}", String::from_utf8_lossy(&seconds)));
            printed += 1;
            if count.is_some_and(|c| printed >= c) {
                return Ok(printed);
            }
        }
    }
    Ok(printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(utc(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc(1_700_000_007), (2023, 11, 14, 22, 13, 27));
        assert_eq!(utc(4_107_542_399), (2100, 2, 28, 23, 59, 59));
        assert_eq!(utc(4_107_542_400), (2100, 3, 1, 0, 0, 0));
    }

    #[test]
    fn frames_match_moq_dev_format() {
        // 2024-02-29 23:59:58 UTC.
        let at = UNIX_EPOCH + Duration::from_secs(1_709_251_198);
        let (base, secs, minute) = parts(at);
        assert_eq!((base.as_str(), secs.as_str(), minute), ("2024-02-29 23:59:", "58", 28_487_519));
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_007);
        assert_eq!(parts(at), ("2023-11-14 22:13:".to_owned(), "27".to_owned(), 28_333_333));
        assert_eq!(parts(UNIX_EPOCH), ("1970-01-01 00:00:".to_owned(), "00".to_owned(), 0));
    }
}
