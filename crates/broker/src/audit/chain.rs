//! The chain's rules, for every sink that keeps it (the desktop's files, a team's database): how
//! a record is sealed onto the chain, how the head is sealed, and how a log is checked. Written
//! once, so a log kept anywhere verifies with the desktop's verifier.

use std::path::Path;

use keybridge_secret::Secret;
use keybridge_vault::SecretStore;
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::{AuditError, Broken, Verified, io};
use crate::primitives::{keychain_key, same_secret};

/// The MAC before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The file beside a log that names its last record, so records cut off the end are detected.
pub const HEAD_FILE: &str = "audit-head.json";
/// The head file is rewritten in place at a fixed size, so a rewrite is one small `pwrite`.
const HEAD_BYTES: usize = 160;

/// The key the chain's MACs are made with, kept in a secret store (the keychain, or the team's
/// secret store).
pub struct ChainKey(Secret<Vec<u8>>);

impl ChainKey {
    /// The key stored under `name`, made if there is none; also says whether it existed.
    pub fn load_or_create(store: &dyn SecretStore, name: &str) -> Result<(Self, bool), AuditError> {
        let (key, existed) = keychain_key(store, name).map_err(|e| AuditError::Key(e.to_string()))?;
        Ok((Self(key), existed))
    }

    /// HMAC-SHA256 of `prev` and `body`.
    /// A digest of `text` keyed by the chain key (HMAC-SHA256 in its own domain): stable for
    /// equal arguments, useless for guessing what they were.
    pub fn keyed_digest(&self, text: &str) -> String {
        self.mac("arguments", text)
    }

    pub(crate) fn mac(&self, prev: &str, body: &str) -> String {
        hmac_sha256(self.0.expose(), prev, body)
    }
}

/// HMAC-SHA256 (RFC 2104) of `context`, a newline, and `body`, as hex.
pub(crate) fn hmac_sha256(key: &[u8], context: &str, body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(context.as_bytes());
    mac.update(b"\n");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The canonical text a record's MAC covers: the record without its `mac` field.
pub(super) fn body_of(record: &Map<String, Value>) -> String {
    let mut without = record.clone();
    without.remove("mac");
    Value::Object(without).to_string()
}

/// A record sealed onto the chain: its line as kept (ending in a newline) and its MAC, the next
/// record's `prev`.
pub struct Sealed {
    pub line: String,
    pub mac: String,
}

/// Seal `event` as record `seq`, written at `ts` (Unix milliseconds), after the record whose MAC
/// is `prev`; the event comes back for the record's subscribers.
pub fn seal(key: &ChainKey, prev: &str, seq: u64, ts: u64, event: Value) -> (Sealed, Value) {
    let mut record = Map::new();
    record.insert("seq".into(), json!(seq));
    record.insert("ts".into(), json!(ts));
    record.insert("prev".into(), json!(prev));
    record.insert("event".into(), event);
    let record = Value::Object(record);
    let body = record.to_string();
    let mac = key.mac(prev, &body);
    // The line is the body with the MAC as its last field: what `body_of` gives back when the
    // line is read, without serializing the record a second time.
    let mut line = body;
    line.pop();
    line.push_str(&format!(",\"mac\":\"{mac}\"}}\n"));
    let event = match record {
        Value::Object(mut fields) => fields.remove("event").unwrap_or_default(),
        _ => Value::Null,
    };
    (Sealed { line, mac }, event)
}

/// The head's text for a log whose last record is `seq` with `mac`, sealed so an edited head is
/// refused, at the head file's fixed size.
pub fn head_text(key: &ChainKey, seq: u64, mac: &str) -> String {
    let head_mac = key.mac("head", &format!("{seq}:{mac}"));
    let mut head = json!({"seq": seq, "mac": mac, "head_mac": head_mac}).to_string();
    head.push_str(&" ".repeat(HEAD_BYTES.saturating_sub(head.len())));
    head
}

/// Check the log kept in `dir` (its daily files and head) with `key`; an error names the first
/// record where the chain does not hold.
pub fn verify_dir(dir: &Path, key: &ChainKey) -> Result<Verified, AuditError> {
    let mut texts = Vec::new();
    for path in super::log_files(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        texts.push((name, std::fs::read_to_string(&path).map_err(|e| io(&path, e))?));
    }
    let head = std::fs::read_to_string(dir.join(HEAD_FILE)).ok();
    verify_texts(&texts, head.as_deref(), key)
}

/// Check a log given as its files' names and texts, oldest first, and its head's text (`None`
/// when there is no head), with `key`.
pub fn verify_texts(texts: &[(String, String)], head: Option<&str>, key: &ChainKey) -> Result<Verified, AuditError> {
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_string();
    // The MAC before the last record: a kill between a record's write and the head update
    // leaves the head one record behind, which is not tampering.
    let mut before_last = GENESIS.to_string();
    for (name, text) in texts {
        for (index, line) in text.split_inclusive('\n').enumerate() {
            let broken = |reason: String| {
                AuditError::Broken(Broken { file: name.clone(), line: index + 1, expected_seq, reason })
            };
            if !line.ends_with('\n') {
                return Err(broken("the last record is cut short (truncated file)".into()));
            }
            let record: Map<String, Value> = serde_json::from_str(line)
                .map_err(|e| broken(format!("not a JSON record ({e}): edited or damaged")))?;
            let seq = record.get("seq").and_then(Value::as_u64).ok_or_else(|| broken("no sequence number".into()))?;
            if seq != expected_seq {
                let what = if seq > expected_seq { "records are missing before it (deleted)" } else { "out of order" };
                return Err(broken(format!("found record #{seq}: {what}")));
            }
            if record.get("prev").and_then(Value::as_str) != Some(prev.as_str()) {
                return Err(broken("does not follow the previous record (deleted, reordered or replaced)".into()));
            }
            let mac = record.get("mac").and_then(Value::as_str).unwrap_or_default().to_string();
            if !same_secret(key.mac(&prev, &body_of(&record)), &mac) {
                return Err(broken("content does not match its MAC (edited)".into()));
            }
            before_last = std::mem::replace(&mut prev, mac);
            expected_seq += 1;
        }
    }
    let records = expected_seq - 1;
    if let Some(head) = head {
        let head: Value = serde_json::from_str(head.trim()).unwrap_or(Value::Null);
        let head_seq = head["seq"].as_u64().unwrap_or(0);
        let head_mac = head["mac"].as_str().unwrap_or_default();
        let sealed = head_seq == 0
            || head["head_mac"]
                .as_str()
                .is_some_and(|sealed| same_secret(sealed, key.mac("head", &format!("{head_seq}:{head_mac}"))));
        if !sealed {
            return Err(AuditError::Broken(Broken {
                file: HEAD_FILE.into(),
                line: 0,
                expected_seq: records + 1,
                reason: "the head file was edited (its MAC does not match)".into(),
            }));
        }
        let at_end = head_seq == records && (records == 0 || head_mac == prev);
        let one_behind = records > 0 && head_seq == records - 1 && (head_seq == 0 || head_mac == before_last);
        if !(at_end || one_behind) {
            return Err(AuditError::Broken(Broken {
                file: texts.last().map_or("audit", |(name, _)| name.as_str()).to_string(),
                line: 0,
                expected_seq: records + 1,
                reason: format!(
                    "the log ends at record #{records} but {HEAD_FILE} says the last record is #{head_seq}: records were cut off the end"
                ),
            }));
        }
    } else if records > 0 {
        return Err(AuditError::Broken(Broken {
            file: HEAD_FILE.into(),
            line: 0,
            expected_seq: records + 1,
            reason: "the head file is missing, so truncation cannot be ruled out".into(),
        }));
    }
    Ok(Verified { records, files: texts.len(), last_mac: prev })
}
