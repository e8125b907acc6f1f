//! Where verification keys come from: one key file, or a directory of `{kid}.jwk` files that can
//! be rescanned while running, so keys rotate without a restart. [`Verifier`] ties a key source to
//! the verification [`Options`].

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};

use moqt_proto::access::Access;
use moqt_proto::Path;

use crate::claims::Claims;
use crate::error::{KeyError, Refusal};
use crate::jwk::{check_kid, Key};
use crate::verify::{self, header, Options};

/// What one [`KeyDir::rescan`] changed and what it could not read.
#[derive(Debug, Default)]
pub struct Scan {
    /// Key IDs that appeared.
    pub added: Vec<String>,
    /// Key IDs whose file changed.
    pub changed: Vec<String>,
    /// Key IDs whose file is gone (or now unreadable).
    pub removed: Vec<String>,
    /// Files named like keys that could not be used, with the reason.
    pub skipped: Vec<(PathBuf, KeyError)>,
}

/// A directory of keys, each in a file named `{kid}.jwk` (as `moq-token generate --out-dir`
/// writes them). The file name decides the key ID; other files are ignored.
#[derive(Debug)]
pub struct KeyDir {
    dir: PathBuf,
    keys: BTreeMap<String, Key>,
}

impl KeyDir {
    /// Reads every key in `dir`. Fails only when the directory itself cannot be read.
    pub fn open(dir: &FsPath) -> Result<(KeyDir, Scan), KeyError> {
        let mut keys = KeyDir { dir: dir.to_path_buf(), keys: BTreeMap::new() };
        let scan = keys.rescan()?;
        Ok((keys, scan))
    }

    /// Reads the directory again: new files are added, changed ones replaced, and keys whose file
    /// is gone or broken dropped. Fails only when the directory cannot be read (the keys held so
    /// far stay then).
    pub fn rescan(&mut self) -> Result<Scan, KeyError> {
        let io = |source| KeyError::Io { path: self.dir.display().to_string(), source };
        let mut fresh = BTreeMap::new();
        let mut scan = Scan::default();
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            let Some(kid) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".jwk")) else {
                continue;
            };
            if !path.is_file() {
                continue;
            }
            match check_kid(kid).and_then(|_| Key::from_file(&path)) {
                Ok(key) => {
                    fresh.insert(kid.to_string(), key);
                }
                Err(e) => scan.skipped.push((path.clone(), e)),
            }
        }
        for (kid, key) in &fresh {
            match self.keys.get(kid) {
                None => scan.added.push(kid.clone()),
                Some(old) if old.to_json() != key.to_json() => scan.changed.push(kid.clone()),
                Some(_) => {}
            }
        }
        scan.removed = self.keys.keys().filter(|k| !fresh.contains_key(*k)).cloned().collect();
        self.keys = fresh;
        Ok(scan)
    }

    /// The key with this ID.
    pub fn get(&self, kid: &str) -> Option<&Key> {
        self.keys.get(kid)
    }

    /// The key IDs held, in order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The directory.
    pub fn path(&self) -> &FsPath {
        &self.dir
    }
}

/// The keys a verifier picks from.
#[derive(Debug)]
pub enum KeySet {
    /// One key. A token naming another `kid` than the key's is refused; a token without `kid`,
    /// or a key without one, is checked with it.
    Single(Box<Key>),
    /// A key directory: the token must name its key.
    Dir(KeyDir),
}

impl KeySet {
    /// The key for a token with this `kid`.
    pub fn select(&self, kid: Option<&str>) -> Result<&Key, Refusal> {
        match (self, kid) {
            (KeySet::Single(key), Some(t)) => match key.kid() {
                Some(k) if k != t => Err(Refusal::WrongKid { token: t.to_string(), key: k.to_string() }),
                _ => Ok(key),
            },
            (KeySet::Single(key), None) => Ok(key),
            (KeySet::Dir(_), None) => Err(Refusal::MissingKid),
            (KeySet::Dir(dir), Some(kid)) => dir.get(kid).ok_or_else(|| Refusal::UnknownKid(kid.to_string())),
        }
    }
}

/// A key source with its verification options: the relay's token checker.
#[derive(Debug)]
pub struct Verifier {
    /// Where keys come from.
    pub keys: KeySet,
    /// Leeway and unknown-claim handling.
    pub options: Options,
}

impl Verifier {
    /// A verifier with default options.
    pub fn new(keys: KeySet) -> Verifier {
        Verifier { keys, options: Options::default() }
    }

    /// Verifies `token` at `now` (unix seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<Claims, Refusal> {
        let head = header(token)?;
        let key = self.keys.select(head.kid.as_deref())?;
        verify::verify(key, token, now, &self.options)
    }

    /// Verifies `token` and authorizes it at the connect path.
    pub fn authorize(&self, token: &str, connect: &Path, now: u64) -> Result<Access, Refusal> {
        let claims = self.verify(token, now)?;
        Ok(claims.grant(self.options.leeway).authorize(connect)?)
    }

    /// Rescans a key directory (nothing to do for a single key).
    pub fn rescan(&mut self) -> Result<Scan, KeyError> {
        match &mut self.keys {
            KeySet::Single(_) => Ok(Scan::default()),
            KeySet::Dir(dir) => dir.rescan(),
        }
    }
}
