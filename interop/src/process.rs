//! Child processes of the matrix: spawning with logs on disk, reading their output lines with
//! deadlines, and ending them (SIGINT, then SIGKILL).

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Removes ANSI colour sequences (moq-dev's binaries colour their logs even into a pipe).
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A child process whose stdout and stderr lines arrive on channels and are also written to
/// `<logs>/<name>.out` and `<name>.err`.
pub struct Proc {
    /// The name its log files and error messages carry.
    pub name: String,
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    /// The last stderr lines, for failure details.
    tail: Arc<Mutex<VecDeque<String>>>,
}

fn pump<R: Read + Send + 'static>(
    r: R,
    log: PathBuf,
    tail: Option<Arc<Mutex<VecDeque<String>>>>,
) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut file = File::create(&log).ok();
        let mut reader = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']));
            if let Some(f) = file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            if let Some(t) = &tail {
                let mut t = t.lock().unwrap();
                if t.len() == 8 {
                    t.pop_front();
                }
                t.push_back(line.clone());
            }
            // The receiver may be gone; the log file still gets every line.
            let _ = tx.send(line);
        }
    });
    rx
}

impl Proc {
    /// Starts `program` with `args`, its output logged under `dir` as `name.{cmd,out,err}`.
    pub fn spawn(program: &Path, args: &[&str], dir: &Path, name: &str) -> Result<Proc, String> {
        Self::spawn_env(program, args, &[], dir, name)
    }

    /// [`Proc::spawn`] with extra environment variables.
    pub fn spawn_env(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        dir: &Path,
        name: &str,
    ) -> Result<Proc, String> {
        let _ = fs::create_dir_all(dir);
        if let Ok(mut f) = File::create(dir.join(format!("{name}.cmd"))) {
            let vars: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
            let _ = writeln!(f, "{vars}{} {}", program.display(), args.join(" "));
        }
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env("MOQT_LOG", std::env::var("INTEROP_MOQT_LOG").unwrap_or_else(|_| "info".into()))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let out = pump(child.stdout.take().unwrap(), dir.join(format!("{name}.out")), None);
        let err = pump(child.stderr.take().unwrap(), dir.join(format!("{name}.err")), Some(tail.clone()));
        Ok(Proc { name: name.to_string(), child, out, err, tail })
    }

    fn wait(
        rx: &mpsc::Receiver<String>,
        what: &str,
        name: &str,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return Ok(line),
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout) => return Err(format!("{name}: no {what} within {timeout:?}")),
                Err(mpsc::RecvTimeoutError::Disconnected) => return Err(format!("{name}: exited before {what}")),
            }
        }
    }

    /// Waits for a stderr line that satisfies `pred`.
    pub fn wait_err(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        Self::wait(&self.err, what, &self.name, timeout, pred).map_err(|e| self.with_tail(e))
    }

    /// The next stdout line.
    pub fn next_out(&self, what: &str, timeout: Duration) -> Result<String, String> {
        Self::wait(&self.out, what, &self.name, timeout, |_| true).map_err(|e| self.with_tail(e))
    }

    /// Adds the process's last error or warning line, if any.
    fn with_tail(&self, e: String) -> String {
        let t = self.tail.lock().unwrap();
        match t.iter().rev().find(|l| l.contains("ERROR") || l.contains("WARN") || l.starts_with("error")) {
            Some(l) => format!("{e} (last: {})", l.trim()),
            None => e,
        }
    }

    /// Ends the process now (SIGKILL): no goodbye on the wire.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT, then SIGKILL if it has not exited after `grace`.
    pub fn interrupt(&mut self, grace: Duration) {
        // Already reaped (std keeps the status): the pid may belong to someone else by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }
}

impl Drop for Proc {
    /// SIGINT first, so our clients close their sessions cleanly (moq-dev's clocks have no handler
    /// and just die), then SIGKILL.
    fn drop(&mut self) {
        self.interrupt(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_colours_are_removed() {
        assert_eq!(strip_ansi("\x1b[2m2026-11-30\x1b[0m \x1b[32m INFO\x1b[0m connected"), "2026-11-30  INFO connected");
        assert_eq!(strip_ansi("plain"), "plain");
        // A lone escape with no `[` is dropped, the rest kept.
        assert_eq!(strip_ansi("a\x1bb"), "ab");
    }

    #[test]
    fn output_lines_arrive_and_are_logged() {
        let dir = std::env::temp_dir().join(format!("moqt-interop-test-{}", std::process::id()));
        let p = Proc::spawn(Path::new("sh"), &["-c", "echo one; echo two >&2; echo three"], &dir, "sh").unwrap();
        assert_eq!(p.next_out("line", Duration::from_secs(10)), Ok("one".to_string()));
        assert_eq!(p.next_out("line", Duration::from_secs(10)), Ok("three".to_string()));
        assert_eq!(p.wait_err("two", Duration::from_secs(10), |l| l == "two"), Ok("two".to_string()));
        // The writer thread ends at EOF; the receiver then reports the exit.
        assert!(p.next_out("line", Duration::from_secs(10)).unwrap_err().contains("exited before"));
        assert_eq!(fs::read_to_string(dir.join("sh.out")).unwrap(), "one\nthree\n");
        assert!(fs::read_to_string(dir.join("sh.cmd")).unwrap().contains("echo one"));
        drop(p);
        let _ = fs::remove_dir_all(&dir);
    }
}
