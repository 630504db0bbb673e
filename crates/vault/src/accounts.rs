//! The registry of QuantConnect accounts: metadata in a file, tokens in the keychain.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use keybridge_secret::SecretString;
use serde::{Deserialize, Serialize};

use crate::{SecretStore, VaultError};

/// A short, stable name for an account, chosen by the user: `main`, `paper`, `fund-2`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AccountId {
    type Error = VaultError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let ok = !value.is_empty()
            && value.len() <= 40
            && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(value))
        } else {
            Err(VaultError::Invalid(format!(
                "account name `{value}` must be 1-40 lowercase letters, digits, `-` or `_`, e.g. `main` or `paper`"
            )))
        }
    }
}

impl std::str::FromStr for AccountId {
    type Err = VaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::try_from(s.to_string())
    }
}

impl From<AccountId> for String {
    fn from(id: AccountId) -> Self {
        id.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What Keybridge knows about an account, apart from its token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub user_id: String,
    pub organization_id: Option<String>,
    /// Unix seconds.
    pub created: u64,
}

/// Accounts stored under a data directory, with tokens in a [`SecretStore`].
#[derive(Debug, Clone)]
pub struct Accounts {
    file: PathBuf,
    store: Arc<dyn SecretStore>,
}

impl Accounts {
    pub fn new(data_dir: &Path, store: Arc<dyn SecretStore>) -> Self {
        Self { file: data_dir.join("accounts.json"), store }
    }

    pub fn list(&self) -> Result<Vec<Account>, VaultError> {
        match std::fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| VaultError::Io {
                path: self.file.display().to_string(),
                detail: format!("not a valid account list ({e}); restore it from accounts.json.bak or remove it"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(io_error(&self.file, e)),
        }
    }

    pub fn get(&self, id: &AccountId) -> Result<Option<Account>, VaultError> {
        Ok(self.list()?.into_iter().find(|a| &a.id == id))
    }

    /// Store a new account. The token goes to the keychain first, so a failure there leaves
    /// no account without a token behind.
    pub fn add(&self, account: Account, token: &SecretString) -> Result<(), VaultError> {
        let mut all = self.list()?;
        if all.iter().any(|a| a.id == account.id) {
            return Err(VaultError::Invalid(format!(
                "an account named `{}` exists already; pick another name or remove it first",
                account.id
            )));
        }
        if token.expose().trim().is_empty() {
            return Err(VaultError::Invalid("the API token is empty".into()));
        }
        self.store.set(&token_name(&account.id), token)?;
        all.push(account);
        self.save(&all)
    }

    /// Remove an account and its token. Removing an unknown account reports it.
    pub fn remove(&self, id: &AccountId) -> Result<bool, VaultError> {
        let mut all = self.list()?;
        let before = all.len();
        all.retain(|a| &a.id != id);
        self.store.delete(&token_name(id))?;
        if all.len() == before {
            return Ok(false);
        }
        self.save(&all)?;
        Ok(true)
    }

    /// Give an account a new name. The token is copied to the new keychain entry before the
    /// list changes and the old entry goes last, so a failure midway never loses it.
    pub fn rename(&self, from: &AccountId, to: &AccountId) -> Result<Account, VaultError> {
        let mut all = self.list()?;
        if all.iter().any(|a| &a.id == to) {
            return Err(VaultError::Invalid(format!("an account named `{to}` exists already; pick another name")));
        }
        let Some(account) = all.iter_mut().find(|a| &a.id == from) else {
            return Err(VaultError::Invalid(format!("there is no account named `{from}`")));
        };
        let token = self.token(from)?;
        self.store.set(&token_name(to), &token)?;
        account.id = to.clone();
        let renamed = account.clone();
        self.save(&all)?;
        self.store.delete(&token_name(from))?;
        Ok(renamed)
    }

    /// The account's API token, from the keychain.
    pub fn token(&self, id: &AccountId) -> Result<SecretString, VaultError> {
        self.store.get(&token_name(id))?.ok_or_else(|| {
            VaultError::Invalid(format!(
                "the keychain has no API token for account `{id}`; add the account again with `keybridge account add {id}`"
            ))
        })
    }

    fn save(&self, all: &[Account]) -> Result<(), VaultError> {
        let bytes = serde_json::to_vec_pretty(all).map_err(|e| VaultError::Invalid(e.to_string()))?;
        write_private(&self.file, &bytes)
    }
}

fn token_name(id: &AccountId) -> String {
    format!("qc-token:{id}")
}

fn io_error(path: &Path, e: std::io::Error) -> VaultError {
    VaultError::Io { path: path.display().to_string(), detail: e.to_string() }
}

/// Make `dir` (and any missing parent) and leave it open to its owner alone (0700 on Unix),
/// whatever the umask, including a folder an earlier version left open to others.
pub fn create_private_dir(dir: &Path) -> Result<(), VaultError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io_error(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io_error(dir, e))?;
    }
    Ok(())
}

/// Open `path` for appending, creating it readable and writable by its owner alone (0600 on
/// Unix) whatever the umask; an existing file is made so too.
pub fn open_private_append(path: &Path) -> Result<std::fs::File, VaultError> {
    let mut options = std::fs::OpenOptions::new();
    options.append(true).create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|e| io_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| io_error(path, e))?;
    }
    Ok(file)
}

/// Open `path` for reading and writing in place (not truncated), created as by
/// [`open_private_append`].
pub fn open_private_rw(path: &Path) -> Result<std::fs::File, VaultError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).map_err(|e| io_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| io_error(path, e))?;
    }
    Ok(file)
}

/// Write a file readable only by its owner, atomically: a crash leaves the old or the new
/// content, never half of one.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    // Unique per write, so two writers in one process never share a temporary file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| io_error(&tmp, e))?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(|e| io_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;

    #[test]
    fn rename_moves_the_token_and_refuses_a_taken_name() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let accounts = Accounts::new(dir.path(), store.clone());
        accounts.add(account("main"), &SecretString::from("tok-main".to_string())).unwrap();
        accounts.add(account("other"), &SecretString::from("tok-other".to_string())).unwrap();
        let taken = accounts.rename(&"main".parse().unwrap(), &"other".parse().unwrap()).unwrap_err();
        assert!(taken.to_string().contains("exists already"), "{taken}");
        let renamed = accounts.rename(&"main".parse().unwrap(), &"trading".parse().unwrap()).unwrap();
        assert_eq!(renamed.id.as_str(), "trading");
        assert_eq!(accounts.token(&"trading".parse().unwrap()).unwrap().expose(), "tok-main");
        assert!(store.get("qc-token:main").unwrap().is_none(), "the old entry is gone");
        let names: Vec<String> = accounts.list().unwrap().iter().map(|a| a.id.to_string()).collect();
        assert_eq!(names, ["trading", "other"]);
        let missing = accounts.rename(&"main".parse().unwrap(), &"x".parse().unwrap()).unwrap_err();
        assert!(missing.to_string().contains("no account named `main`"), "{missing}");
    }

    fn account(id: &str) -> Account {
        Account { id: id.parse().unwrap(), user_id: "42".into(), organization_id: None, created: 1 }
    }

    #[test]
    fn add_list_token_remove() {
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(dir.path(), Arc::new(MemoryStore::default()));
        accounts.add(account("main"), &SecretString::from("SENTINEL-T".to_string())).unwrap();
        assert_eq!(accounts.list().unwrap().len(), 1);
        assert_eq!(accounts.token(&"main".parse().unwrap()).unwrap().expose(), "SENTINEL-T");
        let file = std::fs::read_to_string(dir.path().join("accounts.json")).unwrap();
        assert!(!file.contains("SENTINEL"), "the token never reaches the file");
        let dup = accounts.add(account("main"), &SecretString::from("x".to_string())).unwrap_err();
        assert!(dup.to_string().contains("exists already"), "{dup}");
        assert!(accounts.remove(&"main".parse().unwrap()).unwrap());
        assert!(!accounts.remove(&"main".parse().unwrap()).unwrap(), "a second remove says it was not there");
        assert!(accounts.token(&"main".parse().unwrap()).is_err());
    }

    #[test]
    fn names_are_validated_with_an_example() {
        let err = "My Account".parse::<AccountId>().unwrap_err().to_string();
        assert!(err.contains("`My Account`") && err.contains("e.g."), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn the_registry_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let accounts = Accounts::new(dir.path(), Arc::new(MemoryStore::default()));
        accounts.add(account("main"), &SecretString::from("t".to_string())).unwrap();
        let mode = std::fs::metadata(dir.path().join("accounts.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
