use super::*;
use keybridge_vault::MemoryStore;
use serde_json::json;

fn log_with(n: u64) -> (tempfile::TempDir, MemoryStore, AuditLog) {
    let dir = tempfile::tempdir().unwrap();
    let store = MemoryStore::default();
    let log = AuditLog::open(dir.path(), &store).unwrap();
    for i in 1..=n {
        log.append_json(json!({"kind": "tool_call", "tool": "read_account", "i": i})).unwrap();
    }
    (dir, store, log)
}

fn file(dir: &Path) -> PathBuf {
    log_files(dir).unwrap().pop().unwrap()
}

fn edit_lines(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let path = file(dir);
    let mut lines: Vec<String> = std::fs::read_to_string(&path).unwrap().lines().map(str::to_string).collect();
    f(&mut lines);
    std::fs::write(&path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

/// The chain in `dir` verified as `keybridge audit verify` does, with no log open.
fn verify(dir: &Path, store: &MemoryStore) -> Result<Verified, AuditError> {
    let (key, _) = ChainKey::load_or_create(store, KEY_NAME)?;
    chain::verify_dir(dir, &key)
}

fn broken_at(dir: &Path, store: &MemoryStore) -> Broken {
    match verify(dir, store) {
        Err(AuditError::Broken(b)) => b,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn an_intact_log_verifies_and_reopening_continues_the_chain() {
    let (dir, store, log) = log_with(5);
    assert_eq!(log.verify().unwrap().records, 5);
    drop(log);
    let log = AuditLog::open(dir.path(), &store).unwrap();
    assert_eq!(log.append_json(json!({"kind": "admin"})).unwrap().seq, 6);
    assert_eq!(verify(dir.path(), &store).unwrap().records, 6);
}

#[test]
fn an_edit_is_detected_and_named() {
    let (dir, store, _log) = log_with(5);
    edit_lines(dir.path(), |l| l[2] = l[2].replace("read_account", "read_acc0unt"));
    let b = broken_at(dir.path(), &store);
    assert_eq!((b.line, b.expected_seq), (3, 3));
    assert!(b.reason.contains("edited"), "{b}");
}

#[test]
fn a_deletion_is_detected() {
    let (dir, store, _log) = log_with(5);
    edit_lines(dir.path(), |l| {
        l.remove(1);
    });
    let b = broken_at(dir.path(), &store);
    assert_eq!(b.expected_seq, 2);
    assert!(b.reason.contains("deleted"), "{b}");
}

#[test]
fn a_reorder_is_detected() {
    let (dir, store, _log) = log_with(5);
    edit_lines(dir.path(), |l| l.swap(1, 3));
    let b = broken_at(dir.path(), &store);
    assert_eq!(b.expected_seq, 2);
}

#[test]
fn truncation_is_detected_whole_records_or_mid_record() {
    let (dir, store, _log) = log_with(5);
    edit_lines(dir.path(), |l| l.truncate(3));
    let b = broken_at(dir.path(), &store);
    assert!(b.reason.contains("cut off the end") && b.reason.contains("#5"), "{b}");

    let (dir, store, _log) = log_with(5);
    let path = file(dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() - 10]).unwrap();
    let b = broken_at(dir.path(), &store);
    assert_eq!(b.line, 5);
    assert!(b.reason.contains("cut short"), "{b}");
}

#[test]
fn an_edited_head_is_detected_and_a_head_one_record_behind_is_not_tampering() {
    let (dir, store, _log) = log_with(3);
    let head_path = dir.path().join(HEAD_FILE);
    let head: Value = serde_json::from_str(std::fs::read_to_string(&head_path).unwrap().trim()).unwrap();
    // Cut a record and rewrite the head to match, without the key: refused.
    edit_lines(dir.path(), |l| l.truncate(2));
    let lines: Vec<String> = std::fs::read_to_string(file(dir.path())).unwrap().lines().map(str::to_string).collect();
    let last: Value = serde_json::from_str(&lines[1]).unwrap();
    let forged = json!({"seq": 2, "mac": last["mac"], "head_mac": head["head_mac"]}).to_string();
    std::fs::write(&head_path, forged).unwrap();
    assert!(broken_at(dir.path(), &store).reason.contains("head file was edited"));

    // A kill between a record's write and the head update leaves the head one behind.
    let (dir, store, log) = log_with(3);
    let (key, _) = ChainKey::load_or_create(&store, KEY_NAME).unwrap();
    let records = read_records(dir.path()).unwrap();
    assert_eq!(records.len(), 3);
    let lines: Vec<String> = std::fs::read_to_string(file(dir.path())).unwrap().lines().map(str::to_string).collect();
    let second: Value = serde_json::from_str(&lines[1]).unwrap();
    let mac = second["mac"].as_str().unwrap();
    let behind = json!({"seq": 2, "mac": mac, "head_mac": key.mac("head", &format!("2:{mac}"))}).to_string();
    std::fs::write(dir.path().join(HEAD_FILE), behind).unwrap();
    drop(log);
    assert_eq!(verify(dir.path(), &store).unwrap().records, 3);
}

#[test]
fn a_forged_chain_without_the_key_fails() {
    let (dir, _store, _log) = log_with(3);
    // Someone who can read the files but not the keychain.
    let other = MemoryStore::default();
    other.set(KEY_NAME, &keybridge_vault::SecretString::from(hex::encode([7u8; 32]))).unwrap();
    let b = broken_at(dir.path(), &other);
    assert_eq!(b.expected_seq, 1);
}

#[test]
fn subscribers_see_records_as_they_are_written() {
    let (_dir, _store, log) = log_with(0);
    let mut rx = log.subscribe();
    log.append_json(json!({"kind": "pause"})).unwrap();
    let got = rx.try_recv().unwrap();
    assert_eq!((got.seq, got.event["kind"].as_str()), (1, Some("pause")));
}

#[test]
fn records_stream_across_days_and_pass_over_a_line_cut_short() {
    let (dir, _store, log) = log_with(5);
    // Another day's file before this one, and a line a crash cut short in it.
    let day = dir.path().join(format!("{PREFIX}.2000-01-01.{SUFFIX}"));
    let first = serde_json::to_string(&log.read_all().unwrap()[0]).unwrap();
    std::fs::write(&day, format!("{first}\n{{\"seq\": 2, \"ts\"")).unwrap();
    let streamed: Vec<u64> = log.records().unwrap().map(|r| r.seq).collect();
    assert_eq!(streamed, [1, 1, 2, 3, 4, 5], "the older day first, the cut line passed over");
    assert_eq!(streamed.len(), log.read_all().unwrap().len());
}

#[test]
fn deleting_the_whole_log_leaves_a_record_saying_so() {
    let (dir, store, log) = log_with(4);
    drop(log);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let log = AuditLog::open(dir.path(), &store).unwrap();
    let records = log.read_all().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].event["kind"], "audit_log_missing");
    // A fresh install (no key yet) starts without one.
    let (_dir, _store, fresh) = log_with(0);
    assert!(fresh.read_all().unwrap().is_empty());
}

#[test]
fn a_tampered_log_is_not_appended_to() {
    let (dir, store, log) = log_with(3);
    drop(log);
    edit_lines(dir.path(), |l| l[0] = l[0].replace("read_account", "x"));
    assert!(matches!(AuditLog::open(dir.path(), &store), Err(AuditError::Broken(_))));
}

#[test]
fn days_are_named_by_their_calendar_date() {
    for (days, date) in [
        (0, "1970-01-01"),
        (-1, "1969-12-31"),
        (11_016, "2000-02-29"),
        (11_017, "2000-03-01"),
        (-25_508, "1900-03-01"),
        (20_088, "2024-12-31"),
        (47_540, "2100-02-28"),
        (47_541, "2100-03-01"),
        (20_787, "2026-11-30"),
    ] {
        assert_eq!(civil_date(days), date, "day {days}");
    }
}

#[test]
fn a_new_day_writes_to_a_new_file_named_by_the_utc_date() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = DailyFile::new(dir.path());
    // As if the log had been written yesterday and the day turned since.
    let today = (now_ms() / 86_400_000) as i64;
    let yesterday = dir.path().join(format!("{PREFIX}.{}.{SUFFIX}", civil_date(today - 1)));
    files.file = Some(keybridge_vault::open_private_append(&yesterday).unwrap());
    files.day = today - 1;
    files.write_all(b"{}\n").unwrap();
    assert_eq!(std::fs::read(&yesterday).unwrap(), b"", "nothing of today goes to yesterday's file");
    let expected = std::process::Command::new("date").args(["-u", "+%F"]).output().unwrap();
    let expected = String::from_utf8_lossy(&expected.stdout).trim().to_string();
    let written = dir.path().join(format!("{PREFIX}.{expected}.{SUFFIX}"));
    // The UTC day may have turned between the write and `date`: then the file is yesterday's.
    if !written.exists() {
        assert_ne!(civil_date(today), expected, "no file named for today, {expected}");
        return;
    }
    assert_eq!(std::fs::read(&written).unwrap(), b"{}\n");
}

#[test]
fn a_broken_chain_says_where() {
    let broken = Broken { file: "audit.2026-11-30.jsonl".into(), line: 3, expected_seq: 41, reason: "edited".into() };
    assert_eq!(broken.to_string(), "audit.2026-11-30.jsonl line 3 (record #41): edited");
}

/// The head written as the broker writes it, sealed with the chain key, naming `seq` and `mac`.
fn sealed_head(dir: &Path, store: &MemoryStore, seq: u64, mac: &str) {
    let (key, _) = ChainKey::load_or_create(store, KEY_NAME).unwrap();
    let head = json!({"seq": seq, "mac": mac, "head_mac": key.mac("head", &format!("{seq}:{mac}"))});
    std::fs::write(dir.join(HEAD_FILE), head.to_string()).unwrap();
}

fn mac_of(dir: &Path, line: usize) -> String {
    let lines: Vec<String> = std::fs::read_to_string(file(dir)).unwrap().lines().map(str::to_string).collect();
    serde_json::from_str::<Value>(&lines[line]).unwrap()["mac"].as_str().unwrap().to_string()
}

#[test]
fn a_sealed_head_must_name_the_last_record_or_the_one_before_it_exactly() {
    // The right number with another record's MAC: refused, at the end and one behind.
    let (dir, store, _log) = log_with(3);
    sealed_head(dir.path(), &store, 3, &mac_of(dir.path(), 1));
    let b = broken_at(dir.path(), &store);
    assert!(b.reason.contains("cut off the end"), "{b}");
    assert_eq!(b.expected_seq, 4, "the record expected next");
    sealed_head(dir.path(), &store, 2, &mac_of(dir.path(), 0));
    assert!(broken_at(dir.path(), &store).reason.contains("cut off the end"));
    // Two behind: refused; exactly at the end: taken.
    sealed_head(dir.path(), &store, 1, &mac_of(dir.path(), 0));
    assert!(broken_at(dir.path(), &store).reason.contains("cut off the end"));
    sealed_head(dir.path(), &store, 3, &mac_of(dir.path(), 2));
    assert_eq!(verify(dir.path(), &store).unwrap().records, 3);
    // A head one ahead of the log: records were cut off.
    sealed_head(dir.path(), &store, 4, &mac_of(dir.path(), 2));
    assert!(broken_at(dir.path(), &store).reason.contains("#4"));
}

#[test]
fn a_missing_head_is_refused_once_there_are_records_and_says_which_comes_next() {
    let (dir, store, _log) = log_with(2);
    std::fs::remove_file(dir.path().join(HEAD_FILE)).unwrap();
    let b = broken_at(dir.path(), &store);
    assert!(b.reason.contains("head file is missing"), "{b}");
    assert_eq!(b.expected_seq, 3);
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(verify(empty.path(), &store).unwrap().records, 0, "no records, no head: a new log");
}

#[test]
fn a_record_out_of_place_is_named_missing_or_out_of_order() {
    let (dir, store, _log) = log_with(4);
    edit_lines(dir.path(), |l| {
        l.remove(1);
    });
    assert!(broken_at(dir.path(), &store).reason.contains("found record #3: records are missing"));
    let (dir, store, _log) = log_with(4);
    edit_lines(dir.path(), |l| {
        let first = l[0].clone();
        l.insert(2, first);
    });
    assert!(broken_at(dir.path(), &store).reason.contains("found record #1: out of order"));
}
