//! The audit log: one JSON line per event, chained with HMAC-SHA256 so that any edit,
//! deletion, reordering or truncation is detected by [`verify`].
//!
//! Each record carries a sequence number, the previous record's MAC and its own MAC over
//! (previous MAC, record). The chain key lives in the keychain, so someone who can edit the
//! files but not read the keychain cannot forge a consistent chain. A small head file holds
//! the last sequence number and MAC, so cutting records off the end is detected too.
//!
//! Records are written with one `write` each, before [`AuditLog::append`] returns: the broker
//! answers a call only after its record is in the file. A SIGKILL can therefore lose only
//! records whose `append` had not returned — calls that had not been answered.
//! Files rotate daily (`audit.YYYY-MM-DD.jsonl`) through `tracing-appender`; the chain runs
//! across files.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use keybridge_vault::SecretStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

mod anchoring;
pub mod chain;
mod event;

pub use event::{AdminEvent, AuditEvent, AuthMethod, CallDecision, Outcome, ToolCallEvent};

use crate::primitives::lock;
use anchoring::Anchoring;
pub(crate) use chain::hmac_sha256;
use chain::{ChainKey, HEAD_FILE};

const KEY_NAME: &str = "audit-chain-key";
const PREFIX: &str = "audit";
const SUFFIX: &str = "jsonl";

/// A written record, as live subscribers receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// Unix milliseconds.
    pub ts: u64,
    pub event: Value,
}

/// Why the log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    #[error("audit log {path}: {detail}")]
    Io { path: String, detail: String },
    #[error("audit chain key: {0}")]
    Key(String),
    #[error("audit log is not intact: {0}")]
    Broken(Broken),
    /// The log ends before a record this install is known to have written.
    #[error("{0}")]
    RolledBack(String),
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub file: String,
    pub line: usize,
    /// The sequence number the verifier expected there.
    pub expected_seq: u64,
    pub reason: String,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {} (record #{}): {}", self.file, self.line, self.expected_seq, self.reason)
    }
}

/// What a successful verification saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub files: usize,
    pub last_mac: String,
}

/// Today's log file (`audit.YYYY-MM-DD.jsonl`, by the UTC date), a new one each day, each
/// readable by the user alone whatever the umask.
struct DailyFile {
    dir: PathBuf,
    day: i64,
    file: Option<File>,
}

impl DailyFile {
    fn new(dir: &Path) -> Self {
        Self { dir: dir.to_path_buf(), day: i64::MIN, file: None }
    }

    fn write_all(&mut self, bytes: &[u8]) -> Result<(), AuditError> {
        let day = (now_ms() / 86_400_000) as i64;
        if day != self.day || self.file.is_none() {
            let path = self.dir.join(format!("{PREFIX}.{}.{SUFFIX}", civil_date(day)));
            self.file = Some(keybridge_vault::open_private_append(&path).map_err(|e| io(&path, e))?);
            self.day = day;
        }
        let file = self.file.as_mut().expect("opened above");
        file.write_all(bytes).map_err(|e| io(&self.dir, e))
    }
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (Howard Hinnant's days-to-civil).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

struct Writer {
    files: DailyFile,
    head: File,
    seq: u64,
    last_mac: String,
}

/// The append side of the audit log, shared by every connection of the broker.
pub struct AuditLog {
    dir: PathBuf,
    key: ChainKey,
    writer: Mutex<Writer>,
    live: broadcast::Sender<Arc<AuditRecord>>,
    anchor: Option<crate::anchor::Anchor>,
    anchoring: Option<Arc<Anchoring>>,
}

/// How soon after a record the chain's end is anchored in the keychain: records cut off later
/// are refused at the next start, even after a kill that skipped the anchor at shutdown.
pub const ANCHOR_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

impl Drop for AuditLog {
    fn drop(&mut self) {
        if let Some(anchoring) = &self.anchoring {
            anchoring.close();
        }
    }
}

fn parse_anchor(value: &str) -> Option<(u64, String)> {
    let (seq, mac) = value.split_once(':')?;
    Some((seq.parse().ok()?, mac.to_string()))
}

/// The MAC of record `seq`, as written.
fn mac_at(dir: &Path, seq: u64) -> Result<Option<String>, AuditError> {
    for path in log_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        for line in text.lines() {
            if let Ok(record) = serde_json::from_str::<Value>(line)
                && record["seq"] == seq
            {
                return Ok(record["mac"].as_str().map(str::to_string));
            }
        }
    }
    Ok(None)
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("dir", &self.dir).finish_non_exhaustive()
    }
}

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> AuditError {
    AuditError::Io { path: path.display().to_string(), detail: e.to_string() }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl AuditLog {
    /// Open the log in `dir`, continuing the chain where it ends. Refuses to append to a
    /// chain that does not verify, so tampering is never papered over by new records.
    pub fn open(dir: &Path, store: &dyn SecretStore) -> Result<Self, AuditError> {
        Self::open_named(dir, store, KEY_NAME)
    }

    /// Like [`AuditLog::open`], with the chain key stored under `key_name` (one per install).
    /// If that key existed but the log and its head are gone, the new chain starts with a
    /// record saying so: deleting the whole log is not silent.
    pub fn open_named(dir: &Path, store: &dyn SecretStore, key_name: &str) -> Result<Self, AuditError> {
        Self::open_anchored(dir, store, key_name, None, false)
    }

    /// Like [`AuditLog::open_named`], also refusing a log that ends before the record `anchor`
    /// names (records cut off, the files deleted, an older copy put back with its head), unless
    /// `accept_restored`. The anchor follows the log: at opening, within [`ANCHOR_WITHIN`] of
    /// every record, and at [`AuditLog::anchor_now`].
    pub fn open_anchored(
        dir: &Path,
        store: &dyn SecretStore,
        key_name: &str,
        anchor: Option<crate::anchor::Anchor>,
        accept_restored: bool,
    ) -> Result<Self, AuditError> {
        keybridge_vault::create_private_dir(dir).map_err(|e| io(dir, e))?;
        let (key, key_existed) = ChainKey::load_or_create(store, key_name)?;
        let verified = chain::verify_dir(dir, &key)?;
        if let Some(anchor) = &anchor
            && !accept_restored
            && let Some((seq, mac)) =
                anchor.get().map_err(|e| AuditError::Key(e.to_string()))?.as_deref().and_then(parse_anchor)
            && (verified.records < seq || mac_at(dir, seq)?.as_deref() != Some(mac.as_str()))
        {
            return Err(AuditError::RolledBack(format!(
                "the audit log in {} ends at record {}, but Keybridge had written record {seq}: records were cut off or deleted, or an older copy was put back. Put the newest copy back; {}",
                dir.display(),
                verified.records,
                crate::anchor::ACCEPT_HINT
            )));
        }
        let vanished = key_existed && verified.records == 0 && !dir.join(HEAD_FILE).exists();
        let files = DailyFile::new(dir);
        let head_path = dir.join(HEAD_FILE);
        let head = keybridge_vault::open_private_rw(&head_path).map_err(|e| io(&head_path, e))?;
        let (live, _) = broadcast::channel(4096);
        let anchoring = anchor.clone().map(Anchoring::start);
        let log = Self {
            dir: dir.to_path_buf(),
            key,
            writer: Mutex::new(Writer { files, head, seq: verified.records, last_mac: verified.last_mac }),
            live,
            anchor,
            anchoring,
        };
        if vanished {
            log.append(&AuditEvent::AuditLogMissing {
                detail: "this install wrote an audit log before, but it is gone: the earlier records were deleted"
                    .into(),
            })?;
        }
        if accept_restored {
            log.append(&AuditEvent::RestoredStateAccepted {
                records: verified.records,
                detail: "started on state behind what this install had written, as the human asked".into(),
            })?;
        }
        log.anchor_now();
        Ok(log)
    }

    /// Anchor the chain's last record in the keychain now (the host does at shutdown).
    pub fn anchor_now(&self) {
        let Some(anchor) = &self.anchor else { return };
        let (seq, mac) = {
            let w = lock(&self.writer);
            (w.seq, w.last_mac.clone())
        };
        if seq > 0
            && let Err(e) = anchor.set(&format!("{seq}:{mac}"))
        {
            tracing::warn!("cannot anchor the audit log in the keychain: {e}");
        }
        if let Some(anchoring) = &self.anchoring {
            anchoring.settled(seq);
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records appended from now on, as they are written.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<AuditRecord>> {
        self.live.subscribe()
    }

    /// Write one record; returns once it is in the file.
    pub fn append(&self, event: &AuditEvent) -> Result<Arc<AuditRecord>, AuditError> {
        self.append_json(event.to_json())
    }

    /// Write one record of any shape: for tests of the chain itself.
    pub(crate) fn append_json(&self, event: Value) -> Result<Arc<AuditRecord>, AuditError> {
        let mut w = lock(&self.writer);
        let seq = w.seq + 1;
        let ts = now_ms();
        let (sealed, event) = chain::seal(&self.key, &w.last_mac, seq, ts, event);
        // One write per record: a kill cannot leave half a record behind.
        w.files.write_all(sealed.line.as_bytes())?;
        let head = chain::head_text(&self.key, seq, &sealed.mac);
        write_at_start(&w.head, head.as_bytes()).map_err(|e| io(&self.dir.join(HEAD_FILE), e))?;
        w.seq = seq;
        // Offered while the writer is held, so that ends reach the anchoring thread in order.
        if let Some(anchoring) = &self.anchoring {
            anchoring.offer(seq, &sealed.mac);
        }
        w.last_mac = sealed.mac;
        drop(w);
        let record = Arc::new(AuditRecord { seq, ts, event });
        // No subscriber is fine; a slow one loses the oldest records, never blocks the broker.
        let _ = self.live.send(record.clone());
        Ok(record)
    }

    /// [`ChainKey::keyed_digest`] with this log's key.
    pub fn keyed_digest(&self, text: &str) -> String {
        self.key.keyed_digest(text)
    }

    /// Check the whole chain with this log's key.
    pub fn verify(&self) -> Result<Verified, AuditError> {
        let _w = lock(&self.writer);
        chain::verify_dir(&self.dir, &self.key)
    }

    /// Every line exactly as written, chain fields included, oldest first: an export the
    /// chain can still be checked on.
    pub fn export_lines(&self) -> Result<String, AuditError> {
        let _w = lock(&self.writer);
        let mut out = String::new();
        for path in log_files(&self.dir)? {
            out.push_str(&std::fs::read_to_string(&path).map_err(|e| io(&path, e))?);
        }
        Ok(out)
    }

    /// Every record on disk, oldest first.
    pub fn read_all(&self) -> Result<Vec<AuditRecord>, AuditError> {
        read_records(&self.dir)
    }

    /// The records on disk, oldest first, read a line at a time: a long log is never held
    /// whole (`audit tail`).
    pub fn records(&self) -> Result<Records, AuditError> {
        Ok(Records { files: log_files(&self.dir)?.into(), lines: None })
    }
}

#[cfg(unix)]
fn write_at_start(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, 0)
}

#[cfg(windows)]
fn write_at_start(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        written += std::os::windows::fs::FileExt::seek_write(file, &bytes[written..], written as u64)?;
    }
    Ok(())
}

pub(crate) fn log_files(dir: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            name.starts_with(&format!("{PREFIX}.")) && name.ends_with(&format!(".{SUFFIX}"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The records of a log, oldest first, one line at a time; a line that is not a record (cut
/// short by a crash) is passed over, as `verify` reports it.
pub struct Records {
    files: std::collections::VecDeque<PathBuf>,
    lines: Option<std::io::Lines<std::io::BufReader<File>>>,
}

impl Iterator for Records {
    type Item = AuditRecord;

    fn next(&mut self) -> Option<AuditRecord> {
        use std::io::BufRead;
        loop {
            if let Some(lines) = &mut self.lines {
                match lines.next() {
                    Some(Ok(line)) => match serde_json::from_str::<AuditRecord>(&line) {
                        Ok(record) => return Some(record),
                        Err(_) => continue,
                    },
                    Some(Err(_)) | None => self.lines = None,
                }
            }
            let path = self.files.pop_front()?;
            self.lines = File::open(&path).ok().map(|file| std::io::BufReader::new(file).lines());
        }
    }
}

fn read_records(dir: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out = Vec::new();
    for path in log_files(dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(record) = serde_json::from_str::<AuditRecord>(line) {
                out.push(record);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
