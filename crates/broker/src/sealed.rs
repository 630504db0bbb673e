//! A JSON file sealed with a key from the keychain: the value, its generation and a MAC over
//! both, so the file cannot be edited, nor an older copy put back past its anchor, without the
//! keychain. The clients and the settings are kept this way; this module is the one place that
//! reads and writes the format.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::clients::SealKey;
use crate::primitives::same_secret;

/// Why a sealed file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SealedFileError {
    #[error("it is not a sealed Keybridge file ({0})")]
    Damaged(String),
    #[error("it was changed outside Keybridge (its seal does not match)")]
    Tampered,
    #[error("cannot read it: {0}")]
    Unreadable(std::io::Error),
}

/// A value read from its sealed file, with the generation it was saved as (0 in files written
/// before generations existed).
pub(crate) struct Unsealed<T> {
    pub value: T,
    pub generation: u64,
}

/// What the seal covers: the generation too, so it cannot be edited to pass the anchor.
fn sealed_body(generation: u64, body: &str) -> String {
    if generation == 0 { body.to_string() } else { format!("{generation}\n{body}") }
}

/// The value under `field` in the sealed file at `path`, checked against `seal` for `purpose`;
/// `None` when there is no file.
pub(crate) fn read<T: DeserializeOwned + Serialize>(
    path: &Path,
    field: &str,
    purpose: &str,
    seal: &SealKey,
) -> Result<Option<Unsealed<T>>, SealedFileError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SealedFileError::Unreadable(e)),
    };
    let damaged = |e: &dyn std::fmt::Display| SealedFileError::Damaged(e.to_string());
    let mut file: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|e| damaged(&e))?;
    let generation = match file.remove("generation") {
        None => 0,
        Some(number) => number.as_u64().ok_or_else(|| damaged(&"its generation is not a number"))?,
    };
    let mac = file.remove("mac").and_then(|mac| mac.as_str().map(str::to_string));
    let mac = mac.ok_or_else(|| damaged(&"it has no seal"))?;
    let value = file.remove(field).ok_or_else(|| damaged(&format!("it has no `{field}`")))?;
    let value: T = serde_json::from_value(value).map_err(|e| damaged(&e))?;
    // The seal covers the value as Keybridge writes it, field order and all.
    let body = serde_json::to_string(&value).map_err(|e| damaged(&e))?;
    if !same_secret(seal.mac_for(purpose, &sealed_body(generation, &body)), &mac) {
        return Err(SealedFileError::Tampered);
    }
    Ok(Some(Unsealed { value, generation }))
}

/// Write `value` under `field` as `generation`, sealed for `purpose`, readable by the user alone.
pub(crate) fn write<T: Serialize>(
    path: &Path,
    field: &str,
    purpose: &str,
    seal: &SealKey,
    value: &T,
    generation: u64,
) -> Result<(), crate::BrokerError> {
    let internal = |e: serde_json::Error| crate::BrokerError::Internal(e.to_string());
    let body = serde_json::to_string(value).map_err(internal)?;
    let mut file = Map::new();
    file.insert(field.to_string(), serde_json::to_value(value).map_err(internal)?);
    file.insert("generation".into(), generation.into());
    file.insert("mac".into(), seal.mac_for(purpose, &sealed_body(generation, &body)).into());
    let bytes = serde_json::to_vec_pretty(&file).map_err(internal)?;
    keybridge_vault::write_private(path, &bytes).map_err(crate::BrokerError::from)
}
