//! The `moqt` binary as a child process for end-to-end tests: its stdout and stderr lines arrive
//! on channels, so tests wait for readiness lines (bounded by a timeout) instead of sleeping.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_moqt");
/// The longest any single wait may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running `moqt` process.
pub struct Proc {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
}

fn lines<R: std::io::Read + Send + 'static>(r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Every remaining line of a channel until its writer closes (bounded per line by `WAIT`);
/// `Err` with the lines so far if it neither writes nor closes in time.
fn drain(rx: &mpsc::Receiver<String>) -> Result<Vec<String>, Vec<String>> {
    let mut all = Vec::new();
    loop {
        match rx.recv_timeout(WAIT) {
            Ok(line) => all.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(all),
            Err(mpsc::RecvTimeoutError::Timeout) => return Err(all),
        }
    }
}

impl Proc {
    /// Starts `moqt ARGS` with logs at `warn`.
    pub fn spawn(args: &[&str]) -> Proc {
        Self::spawn_logging(args, "warn")
    }

    /// Starts `moqt ARGS` with the given log level.
    pub fn spawn_logging(args: &[&str], log: &str) -> Proc {
        Self::start(args, log, None)
    }

    /// Starts `moqt ARGS` with `input` on its stdin (closed after it), logs at `warn`.
    pub fn spawn_with_stdin(args: &[&str], input: Vec<u8>) -> Proc {
        Self::start(args, "warn", Some(input))
    }

    fn start(args: &[&str], log: &str, input: Option<Vec<u8>>) -> Proc {
        let mut child = Command::new(BIN)
            .args(args)
            .env("MOQT_LOG", log)
            .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moqt");
        if let Some(input) = input {
            let mut stdin = child.stdin.take().unwrap();
            thread::spawn(move || {
                use std::io::Write;
                // The process may exit before reading it all (bad input): a broken pipe is fine.
                let _ = stdin.write_all(&input);
            });
        }
        let out = lines(child.stdout.take().unwrap());
        let err = lines(child.stderr.take().unwrap());
        Proc { child, out, err }
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub fn wait_err(&self, needle: &str) -> String {
        loop {
            match self.err.recv_timeout(WAIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stderr line containing {needle:?}: {e}"),
            }
        }
    }

    /// The next stdout line.
    pub fn next_out(&self) -> String {
        match self.out.recv_timeout(WAIT) {
            Ok(line) => line,
            Err(e) => {
                let err: Vec<String> = self.err.try_iter().collect();
                panic!("no stdout line ({e}); stderr meanwhile: {err:#?}")
            }
        }
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub fn wait_out(&self, needle: &str) -> String {
        loop {
            match self.out.recv_timeout(WAIT) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no stdout line containing {needle:?}: {e}"),
            }
        }
    }

    /// Waits until a stderr line containing each of `needles` was seen, in any order; returns
    /// them in the order of `needles`.
    pub fn wait_err_all(&self, needles: &[&str]) -> Vec<String> {
        let mut found: Vec<Option<String>> = vec![None; needles.len()];
        while found.iter().any(Option::is_none) {
            match self.err.recv_timeout(WAIT) {
                Ok(line) => {
                    if let Some(i) = (0..needles.len()).find(|&i| found[i].is_none() && line.contains(needles[i])) {
                        found[i] = Some(line);
                    }
                }
                Err(e) => panic!("no stderr lines containing all of {needles:?} (got {found:?}): {e}"),
            }
        }
        found.into_iter().flatten().collect()
    }

    /// The next stdout line, waiting at most `wait`.
    pub fn next_out_within(&self, wait: Duration) -> String {
        self.out.recv_timeout(wait).expect("a stdout line")
    }

    /// Forgets the stdout lines read so far but not yet taken.
    pub fn skip_out(&self) {
        while self.out.try_recv().is_ok() {}
    }

    /// The next stderr line.
    pub fn next_err(&self) -> String {
        self.err.recv_timeout(WAIT).expect("a stderr line")
    }

    /// Kills the process with SIGKILL (no goodbye to anyone) and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`).
    pub fn signal(&self, name: &str) {
        let ok =
            Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill -{name}");
    }

    /// Waits (bounded) for the exit; returns whether it succeeded.
    pub fn wait_exit(&mut self) -> bool {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            assert!(start.elapsed() < WAIT, "the process did not exit within {WAIT:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT.
    pub fn interrupt(&self) {
        let ok = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok);
    }

    /// Waits for the exit; returns (success, remaining stdout lines, remaining stderr lines).
    pub fn finish_all(mut self) -> (bool, Vec<String>, Vec<String>) {
        let out = drain(&self.out).unwrap_or_else(|out| {
            let err: Vec<String> = self.err.try_iter().collect();
            panic!("stdout: no more output and no exit; so far: {out:#?}; stderr so far: {err:#?}")
        });
        let err = drain(&self.err).unwrap_or_else(|err| panic!("stderr: no exit; so far: {err:#?}"));
        (self.child.wait().unwrap().success(), out, err)
    }

    /// Waits for the exit; returns (success, remaining stderr lines).
    pub fn finish(self) -> (bool, Vec<String>) {
        let (ok, _, err) = self.finish_all();
        (ok, err)
    }

    /// Waits for the exit; returns (success, remaining stdout lines).
    pub fn finish_out(self) -> (bool, Vec<String>) {
        let (ok, out, _) = self.finish_all();
        (ok, out)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
