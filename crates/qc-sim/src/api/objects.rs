//! The organization's object store.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::{Answer, ApiError, Ctx, Params, ok};
use crate::state::StoredObject;
use crate::util::{fmt_datetime, hex_id, md5_hex, zip_store};

fn normalize_key(key: &str) -> String {
    key.trim().trim_start_matches('/').to_owned()
}

/// The type of an object: by its extension, else text when its bytes are text.
fn mime_of(key: &str, data: &[u8]) -> &'static str {
    let ext = key.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("txt" | "log" | "md") => "text/plain",
        Some("xml") => "application/xml",
        Some("zip") => "application/zip",
        Some("pkl" | "pickle" | "bin") => "application/octet-stream",
        Some("png") => "image/png",
        _ if std::str::from_utf8(data).is_ok() => "text/plain",
        _ => "application/octet-stream",
    }
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KB", b as f64 / 1024.0),
        b => format!("{:.1} MB", b as f64 / (1024.0 * 1024.0)),
    }
}

fn lookup<'c>(ctx: &'c Ctx<'_>, key: &str) -> Result<&'c StoredObject, ApiError> {
    ctx.acct.objects.get(key).ok_or_else(|| ApiError::new(format!("Key {key:?} not found in the object store.")))
}

pub(crate) fn set(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let org = p.str("organizationId");
    let key = normalize_key(&p.str("key"));
    let data = ctx.uploads.get("objectData").cloned();
    if data.is_none() && !p.has("objectData") {
        p.fail("objectData is required");
    }
    p.finish()?;
    let Some(data) = data else {
        return Err(ApiError::new("objectData must be sent as a file part of a multipart/form-data body."));
    };
    ctx.check_org(&org)?;
    if key.is_empty() || key.ends_with('/') {
        return Err(ApiError::new("key must name an object, not a folder."));
    }
    let now = ctx.now;
    let created = ctx.acct.objects.get(&key).map_or(now, |o| o.created);
    ctx.acct.objects.insert(key, StoredObject { data, created, modified: now });
    ok(json!({}))
}

pub(crate) fn properties(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let org = p.str("organizationId");
    let key = normalize_key(&p.str("key"));
    p.finish()?;
    ctx.check_org(&org)?;
    let o = lookup(ctx, &key)?;
    let preview = match std::str::from_utf8(&o.data) {
        Ok(text) => text.chars().take(100).collect(),
        Err(_) => String::new(),
    };
    ok(json!({
        "metadata": {
            "key": key,
            "modified": fmt_datetime(o.modified),
            "created": fmt_datetime(o.created),
            "size": o.data.len(),
            "md5": md5_hex(&o.data),
            "mime": mime_of(&key, &o.data),
            "preview": preview,
        }
    }))
}

/// `{organizationId, keys}` starts a download job; `{organizationId, jobId}` answers
/// the job's URL (a ZIP of the objects, like the real store).
pub(crate) fn get(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let org = p.str("organizationId");
    if p.has("jobId") {
        let job_id = p.str("jobId");
        p.finish()?;
        ctx.check_org(&org)?;
        let Some(keys) = ctx.acct.object_jobs.get(&job_id) else {
            return Err(ApiError::new(format!("Job {job_id} not found.")));
        };
        let entries: Vec<(String, Vec<u8>)> =
            keys.iter().filter_map(|k| ctx.acct.objects.get(k).map(|o| (k.clone(), o.data.clone()))).collect();
        let token = hex_id(&["download", &ctx.acct.account.user_id, &job_id], 40);
        ctx.downloads.insert(token.clone(), zip_store(&entries));
        return ok(json!({ "url": format!("{}/__sim/objects/{token}", ctx.origin) }));
    }
    if !p.has("keys") {
        p.fail("keys or jobId is required");
        p.finish()?;
    }
    let keys: Vec<String> = p.str_array("keys").iter().map(|k| normalize_key(k)).collect();
    p.finish()?;
    ctx.check_org(&org)?;
    if keys.is_empty() {
        return Err(ApiError::new("keys must name at least one object."));
    }
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !ctx.acct.objects.contains_key(*k))
        .map(|k| format!("Key {k:?} not found in the object store."))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError(missing));
    }
    let seq = ctx.acct.next_seq();
    let job_id = hex_id(&["object-job", &org, &keys.join("\n"), &seq.to_string()], 32);
    ctx.acct.object_jobs.insert(job_id.clone(), keys);
    ok(json!({ "jobId": job_id }))
}

pub(crate) fn list(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let org = p.str("organizationId");
    let path = p.opt_str("path").unwrap_or_default();
    p.finish()?;
    ctx.check_org(&org)?;
    let folder = path.trim().trim_matches('/');
    let prefix = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    // Direct children only: deeper keys show up as their first folder.
    let mut entries: BTreeMap<String, Value> = BTreeMap::new();
    let mut folder_sizes: BTreeMap<String, (u64, i64)> = BTreeMap::new();
    for (key, o) in &ctx.acct.objects {
        let Some(rest) = key.strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((sub, _)) => {
                let e = folder_sizes.entry(format!("{prefix}{sub}")).or_insert((0, 0));
                e.0 += o.data.len() as u64;
                e.1 = e.1.max(o.modified);
            }
            None => {
                entries.insert(
                    key.clone(),
                    json!({
                        "key": key,
                        "name": rest,
                        "modified": fmt_datetime(o.modified),
                        "mime": mime_of(key, &o.data),
                        "folder": false,
                        "size": o.data.len(),
                    }),
                );
            }
        }
    }
    for (key, (size, modified)) in folder_sizes {
        let name = key.rsplit('/').next().unwrap_or(&key).to_owned();
        entries.insert(
            key.clone(),
            json!({
                "key": key,
                "name": name,
                "modified": fmt_datetime(modified),
                "mime": "directory",
                "folder": true,
                "size": size,
            }),
        );
    }
    let used: u64 = ctx.acct.objects.values().map(|o| o.data.len() as u64).sum();
    ok(json!({
        "path": folder,
        "objects": entries.into_values().collect::<Vec<_>>(),
        "page": 0,
        "totalPages": 1,
        "objectStorageUsed": used,
        "objectStorageUsedHuman": human(used),
    }))
}

pub(crate) fn delete(ctx: &mut Ctx<'_>, body: &Value) -> Answer {
    let mut p = Params::new(body);
    let org = p.str("organizationId");
    let key = normalize_key(&p.str("key"));
    p.finish()?;
    ctx.check_org(&org)?;
    lookup(ctx, &key)?;
    ctx.acct.objects.remove(&key);
    ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_is_typed_by_extension_else_by_whether_it_is_text() {
        assert_eq!(mime_of("models/a.json", b"{}"), "application/json");
        assert_eq!(mime_of("notes/readme", b"plain words"), "text/plain");
        assert_eq!(mime_of("models/weights", &[0xff, 0xfe, 0x00]), "application/octet-stream");
    }
}
