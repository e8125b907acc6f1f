//! Checking a clock track as moq-dev's clock format writes it: one group per minute, frame 0
//! `"YYYY-MM-DD HH:MM:"`, then `"SS"` each second.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::process::Proc;
use crate::FRAMES;

/// Today's UTC `"YYYY-MM-DD HH:MM:"` for a Unix time (days-to-civil, proleptic Gregorian).
fn utc_minute(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:", rem / 3600, rem % 3600 / 60)
}

/// Frame 0 of a clock group: `"YYYY-MM-DD HH:MM:"` naming a minute within two of now.
fn check_base(s: &str) -> Result<(), String> {
    let shape = "dddd-dd-dd dd:dd:";
    let ok = s.len() == shape.len()
        && s.bytes().zip(shape.bytes()).all(|(c, p)| if p == b'd' { c.is_ascii_digit() } else { c == p });
    if !ok {
        return Err(format!("frame 0 not \"YYYY-MM-DD HH:MM:\": {s:?}"));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    if ![now - 120, now - 60, now, now + 60].iter().any(|t| utc_minute(*t) == s) {
        return Err(format!("frame 0 {s:?} is not the current minute ({})", utc_minute(now)));
    }
    Ok(())
}

fn parse_second(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if s.len() == 2 && v < 60 => Ok(v),
        _ => Err(format!("not a \"SS\" frame: {s:?}")),
    }
}

/// Consecutive seconds (after frame 0, in one group) that make a clock cell pass: the minimum is
/// two; a third makes sure at least one full live second went by.
const RUN: usize = 3;

/// Follows a clock track; done after frame 0 and `RUN` consecutive seconds of one group.
#[derive(Default)]
pub struct Clock {
    base: Option<String>,
    last: Option<u32>,
    /// Length of the current run of consecutive seconds.
    run: usize,
    seen: Vec<String>,
}

impl Clock {
    /// A new group begins with frame 0.
    fn base(&mut self, b: &str) -> Result<(), String> {
        check_base(b)?;
        if self.base.as_deref() != Some(b) {
            self.base = Some(b.to_string());
            self.last = None;
            self.run = 0;
            self.seen.push(format!("{b:?}"));
        }
        Ok(())
    }

    /// A seconds frame; Ok(true) once done.
    fn second(&mut self, s: &str) -> Result<bool, String> {
        let v = parse_second(s)?;
        if self.base.is_none() {
            return Err(format!("second {s:?} before any frame 0"));
        }
        self.seen.push(s.to_string());
        self.run = if self.last.is_some_and(|a| v == a + 1) { self.run + 1 } else { 1 };
        self.last = Some(v);
        Ok(self.run >= RUN)
    }

    /// One line of our `moqt sub`: one frame.
    pub fn frame(&mut self, line: &str) -> Result<bool, String> {
        if line.len() == 17 {
            self.base(line).map(|_| false)
        } else {
            self.second(line)
        }
    }

    /// One line of their clock subscriber: `println!("{base}{second}")`.
    pub fn joined(&mut self, line: &str) -> Result<bool, String> {
        if line.len() != 19 || !line.is_char_boundary(17) {
            return Err(format!("not \"YYYY-MM-DD HH:MM:SS\": {line:?}"));
        }
        self.base(&line[..17])?;
        self.second(&line[17..])
    }

    /// What was seen, for the report.
    pub fn summary(&self) -> String {
        self.seen.join(" ")
    }
}

/// Reads `proc`'s stdout through `step` until done.
pub fn follow(
    proc: &Proc,
    clock: &mut Clock,
    step: fn(&mut Clock, &str) -> Result<bool, String>,
) -> Result<(), String> {
    let deadline = Instant::now() + FRAMES;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{}: frames incomplete after {FRAMES:?}: {}", proc.name, clock.summary()));
        }
        let line = proc.next_out("frame", left).map_err(|e| format!("{e}; got {}", clock.summary()))?;
        match step(clock, &line) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(e) => return Err(format!("{}: {e}; got {}", proc.name, clock.summary())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_minute_matches_known_dates() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00:");
        // 2000-02-29 (a leap day in a century leap year), 00:00:00 UTC.
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00:");
        // 2023-11-14 22:13:20 UTC.
        assert_eq!(utc_minute(1_700_000_000), "2023-11-14 22:13:");
    }

    fn now_minute() -> String {
        utc_minute(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    #[test]
    fn frame_zero_must_have_the_shape_and_the_current_minute() {
        assert!(check_base(&now_minute()).is_ok());
        assert!(check_base("1970-01-01 00:00:").unwrap_err().contains("not the current minute"));
        assert!(check_base("1970-01-01 00:00").unwrap_err().contains("not \"YYYY-MM-DD HH:MM:\""));
        assert!(check_base("1970-01-01T00:00:").is_err());
    }

    #[test]
    fn three_consecutive_seconds_of_one_group_complete_a_clock() {
        let mut c = Clock::default();
        assert_eq!(c.frame(&now_minute()), Ok(false));
        assert_eq!(c.frame("07"), Ok(false));
        // A gap starts the run again.
        assert_eq!(c.frame("09"), Ok(false));
        assert_eq!(c.frame("10"), Ok(false));
        assert_eq!(c.frame("11"), Ok(true));
    }

    #[test]
    fn seconds_are_checked() {
        let mut c = Clock::default();
        assert!(c.frame("07").unwrap_err().contains("before any frame 0"));
        c.frame(&now_minute()).unwrap();
        assert!(c.frame("60").is_err());
        assert!(c.frame("7").is_err());
    }

    #[test]
    fn their_lines_carry_frame_zero_and_the_second() {
        let mut c = Clock::default();
        let m = now_minute();
        assert_eq!(c.joined(&format!("{m}01")), Ok(false));
        assert_eq!(c.joined(&format!("{m}02")), Ok(false));
        assert_eq!(c.joined(&format!("{m}03")), Ok(true));
        assert!(c.joined("hello").is_err());
        assert_eq!(c.summary(), format!("{m:?} 01 02 03"));
    }
}
