//! Access tokens: JWTs signed with Ed25519, verified with every pitfall closed.
//!
//! Verification pins the algorithm to EdDSA (the header's `alg` is only compared, never
//! trusted), accepts only `kid`s of keys this install made, requires every claim, allows at
//! most [`LEEWAY_SECS`] of clock leeway, refuses tokens larger than [`MAX_TOKEN_BYTES`] before
//! parsing them, and refuses any token whose lifetime exceeds [`MAX_TTL_SECS`] even if it is
//! correctly signed. Revocation of sessions and clients is checked by the caller, on every call.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use ed25519_dalek::SigningKey as Ed25519Key;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keybridge_catalog::Scope;
use keybridge_secret::Secret;
use keybridge_vault::{SecretStore, SecretString, VaultError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::primitives::{lock, now, read, write};

/// The audience of every token: only the broker accepts them.
pub const AUDIENCE: &str = "keybridge-broker";
/// Default lifetime of an access token.
pub const DEFAULT_TTL_SECS: u64 = 10 * 60;
/// Longest lifetime a token may have.
pub const MAX_TTL_SECS: u64 = 60 * 60;
/// The shortest lifetime a client's tokens may have: shorter ones would expire in transit.
pub const MIN_TTL_SECS: u64 = 60;
/// Clock leeway for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 30;
/// Tokens we mint are about 600 bytes; anything much larger is not ours.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The client id.
    pub sub: String,
    /// The session id; revoking the session kills the token at once.
    pub sid: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The QuantConnect account the client is bound to.
    pub account: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub jti: String,
}

impl Claims {
    pub fn scopes(&self) -> BTreeSet<Scope> {
        self.scope.split_whitespace().filter_map(|s| s.parse().ok()).collect()
    }

    /// Whether the token carries `scope`: the per-call check, without building the whole set.
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scope.split_whitespace().any(|s| s == scope.as_str())
    }
}

/// What to put in a new token.
#[derive(Debug, Clone)]
pub struct Grant {
    pub client_id: String,
    pub session_id: String,
    pub account: String,
    pub scopes: BTreeSet<Scope>,
    pub ttl_secs: u64,
}

/// Why a token was refused. Messages name the problem, never the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("access token is {0} bytes, more than the {MAX_TOKEN_BYTES} allowed")]
    Oversized(usize),
    #[error("access token is malformed: {0}")]
    Malformed(String),
    #[error("access token uses algorithm {0}; only EdDSA is accepted")]
    AlgorithmNotAllowed(String),
    #[error("access token has no key id (kid)")]
    MissingKeyId,
    #[error("access token was signed with unknown key `{0}`; it is from another install or a retired key")]
    UnknownKey(String),
    #[error("access token signature is invalid")]
    BadSignature,
    #[error("access token expired; the bridge refreshes it automatically")]
    Expired,
    #[error("access token is not valid yet (nbf or iat in the future)")]
    NotYetValid,
    #[error("access token is for another audience")]
    WrongAudience,
    #[error("access token was issued by another Keybridge install")]
    WrongIssuer,
    #[error("access token lacks the `{0}` claim")]
    MissingClaim(String),
    #[error("access token lives {0}s, more than the {MAX_TTL_SECS}s ceiling")]
    LifetimeTooLong(u64),
    #[error("token lifetime {0}s is outside {MIN_TTL_SECS}..={MAX_TTL_SECS}s: choose a lifetime in that range")]
    InvalidTtl(u64),
    #[error("signing key unavailable: {0}")]
    Keys(String),
}

/// One signing key: the Ed25519 seed stays in the keychain and in a [`Secret`] here.
struct KeyPair {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The raw Ed25519 public key, for publishing (JWKS) and for tests of key confusion.
    public: [u8; 32],
    /// Kept so rotation can re-save the key list; never formatted.
    _seed: Secret<Vec<u8>>,
}

/// The public index of signing keys, saved beside the data (no secret in it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct KeyIndex {
    /// Newest first; the first signs.
    keys: Vec<KeyEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyEntry {
    kid: String,
    created: u64,
    /// When a newer key took over; the key still verifies until tokens it signed expire.
    retired: Option<u64>,
}

/// Mints and verifies access tokens for one Keybridge install.
pub struct TokenIssuer {
    issuer: String,
    store: Arc<dyn SecretStore>,
    index_path: std::path::PathBuf,
    keys: RwLock<Vec<KeyPair>>,
    /// Tokens that passed every check, by the SHA-256 of their text, until they expire. A bridge
    /// sends one token for minutes, and the signature check is the largest part of a call's
    /// work in the broker; a hit still checks expiry, and revocation is the caller's, on every
    /// call. Emptied whenever the keys change.
    verified: Mutex<HashMap<[u8; 32], Claims>>,
}

/// Verified tokens remembered at most; beyond, expired ones are dropped, then all. (Fewer under
/// test, where filling it means signing that many tokens in a debug build.)
const MAX_VERIFIED: usize = if cfg!(test) { 64 } else { 4096 };

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// Whether tokens may live `secs`: every place a lifetime is set checks it here.
pub fn check_lifetime(secs: u64) -> Result<(), TokenError> {
    if (MIN_TTL_SECS..=MAX_TTL_SECS).contains(&secs) { Ok(()) } else { Err(TokenError::InvalidTtl(secs)) }
}

pub(crate) fn random_id(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random number generator is available");
    hex::encode(buf)
}

fn seed_name(kid: &str) -> String {
    format!("jwt-signing-key:{kid}")
}

fn vault_error(e: VaultError) -> TokenError {
    TokenError::Keys(e.to_string())
}

impl KeyPair {
    fn from_seed(kid: String, seed: Secret<Vec<u8>>) -> Result<Self, TokenError> {
        let bytes: [u8; 32] =
            seed.expose().as_slice().try_into().map_err(|_| TokenError::Keys(format!("key {kid} is not 32 bytes")))?;
        let signing = Ed25519Key::from_bytes(&bytes);
        // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410): a fixed prefix, then the seed.
        let mut der = Secret::new(hex::decode("302e020100300506032b657004220420").unwrap_or_default());
        let mut with_seed = der.expose().clone();
        with_seed.extend_from_slice(&bytes);
        der = Secret::new(with_seed);
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.expose()),
            decoding: DecodingKey::from_ed_der(signing.verifying_key().as_bytes()),
            public: signing.verifying_key().to_bytes(),
            kid,
            _seed: seed,
        })
    }
}

impl TokenIssuer {
    /// Load this install's signing keys, creating the first one when there is none.
    /// `install_id` makes the issuer unique, so tokens of another install are refused.
    pub fn open(install_id: &str, data_dir: &std::path::Path, store: Arc<dyn SecretStore>) -> Result<Self, TokenError> {
        let issuer = Self {
            issuer: format!("keybridge:{install_id}"),
            store,
            index_path: data_dir.join("signing-keys.json"),
            keys: RwLock::new(Vec::new()),
            verified: Mutex::default(),
        };
        let index = issuer.load_index()?;
        if index.keys.is_empty() {
            issuer.rotate()?;
        } else {
            let mut keys = Vec::new();
            for entry in &index.keys {
                let seed = issuer.store.get(&seed_name(&entry.kid)).map_err(vault_error)?.ok_or_else(|| {
                    TokenError::Keys(format!("signing key {} is missing from the keychain", entry.kid))
                })?;
                let seed = Secret::new(hex::decode(seed.expose()).map_err(|_| TokenError::Keys("corrupt key".into()))?);
                keys.push(KeyPair::from_seed(entry.kid.clone(), seed)?);
            }
            *write(&issuer.keys) = keys;
        }
        Ok(issuer)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn load_index(&self) -> Result<KeyIndex, TokenError> {
        match std::fs::read(&self.index_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TokenError::Keys(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyIndex::default()),
            Err(e) => Err(TokenError::Keys(e.to_string())),
        }
    }

    /// Make a new signing key. It signs from now on; older keys keep verifying until the
    /// tokens they signed have expired, then they are deleted.
    pub fn rotate(&self) -> Result<String, TokenError> {
        let kid = random_id(8);
        let mut seed = vec![0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| TokenError::Keys(e.to_string()))?;
        let seed = Secret::new(seed);
        self.store.set(&seed_name(&kid), &SecretString::from(hex::encode(seed.expose()))).map_err(vault_error)?;
        let pair = KeyPair::from_seed(kid.clone(), seed)?;

        let mut index = self.load_index()?;
        let now = now();
        for entry in &mut index.keys {
            entry.retired.get_or_insert(now);
        }
        let expired: Vec<String> = index
            .keys
            .iter()
            .filter(|e| e.retired.is_some_and(|r| r + MAX_TTL_SECS + LEEWAY_SECS < now))
            .map(|e| e.kid.clone())
            .collect();
        index.keys.retain(|e| !expired.contains(&e.kid));
        index.keys.insert(0, KeyEntry { kid: kid.clone(), created: now, retired: None });
        let bytes = serde_json::to_vec_pretty(&index).map_err(|e| TokenError::Keys(e.to_string()))?;
        keybridge_vault::write_private(&self.index_path, &bytes).map_err(vault_error)?;
        for old in &expired {
            self.store.delete(&seed_name(old)).map_err(vault_error)?;
        }

        let mut keys = write(&self.keys);
        keys.retain(|k| !expired.contains(&k.kid));
        keys.insert(0, pair);
        lock(&self.verified).clear();
        Ok(kid)
    }

    /// The public keys as a JWK set (RFC 8037 `OKP`/`Ed25519`), for verifiers outside the
    /// broker; it contains nothing secret.
    pub fn jwks(&self) -> serde_json::Value {
        use base64::Engine;
        let keys = read(&self.keys);
        let keys: Vec<_> = keys
            .iter()
            .map(|k| {
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.kid,
                    "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k.public)})
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The key id that signs new tokens.
    pub fn active_kid(&self) -> String {
        read(&self.keys).first().map(|k| k.kid.clone()).unwrap_or_default()
    }

    pub fn mint(&self, grant: &Grant) -> Result<(String, Claims), TokenError> {
        check_lifetime(grant.ttl_secs)?;
        let now = now();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: AUDIENCE.into(),
            sub: grant.client_id.clone(),
            sid: grant.session_id.clone(),
            scope: grant.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "),
            account: grant.account.clone(),
            iat: now,
            nbf: now,
            exp: now + grant.ttl_secs,
            jti: random_id(16),
        };
        let keys = read(&self.keys);
        let key = keys.first().ok_or_else(|| TokenError::Keys("no signing key".into()))?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| TokenError::Keys(e.to_string()))?;
        Ok((token, claims))
    }

    /// Check a token's form, signature and claims. Does not check revocation.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Oversized(token.len()));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = lock(&self.verified).get(&digest).cloned();
        // Out of its time window (a clock stepped back, too) a remembered token goes through the
        // whole check, which says why.
        if let Some(claims) = remembered.filter(|c| in_time(c, now())) {
            return Ok(claims);
        }
        // The keys stay read-locked until the token is remembered: a rotation, which empties the
        // memory under the write lock, cannot slip in between.
        let keys = read(&self.keys);
        let claims = self.verify_afresh(token, &keys)?;
        let mut verified = lock(&self.verified);
        if verified.len() >= MAX_VERIFIED {
            let now = now();
            verified.retain(|_, c| in_time(c, now));
            // Mostly live tokens: start over rather than sweep on every miss.
            if verified.len() >= MAX_VERIFIED * 3 / 4 {
                verified.clear();
            }
        }
        verified.insert(digest, claims.clone());
        Ok(claims)
    }

    fn verify_afresh(&self, token: &str, keys: &[KeyPair]) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::AlgorithmNotAllowed(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(TokenError::MissingKeyId)?;
        let key = keys.iter().find(|k| k.kid == kid).ok_or_else(|| TokenError::UnknownKey(shorten(&kid)))?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation).map_err(map_jwt_error)?;
        for claim in ["sid", "scope", "account", "jti", "iat"] {
            if data.claims.get(claim).is_none() {
                return Err(TokenError::MissingClaim(claim.into()));
            }
        }
        let claims: Claims = serde_json::from_value(data.claims).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if claims.iat > now() + LEEWAY_SECS {
            return Err(TokenError::NotYetValid);
        }
        let lifetime = claims.exp.saturating_sub(claims.iat.min(claims.nbf));
        if lifetime > MAX_TTL_SECS {
            return Err(TokenError::LifetimeTooLong(lifetime));
        }
        Ok(claims)
    }
}

/// Whether claims that were valid are still inside their time window at `now`, with the same
/// leeway as the whole check: not expired, not before `nbf` or `iat`.
fn in_time(claims: &Claims, now: u64) -> bool {
    now <= claims.exp.saturating_add(LEEWAY_SECS) && claims.nbf.max(claims.iat) <= now.saturating_add(LEEWAY_SECS)
}

fn shorten(text: &str) -> String {
    text.chars().take(32).collect()
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> TokenError {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => TokenError::BadSignature,
        K::ExpiredSignature => TokenError::Expired,
        K::ImmatureSignature => TokenError::NotYetValid,
        K::InvalidAudience => TokenError::WrongAudience,
        K::InvalidIssuer => TokenError::WrongIssuer,
        K::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        K::InvalidAlgorithm => TokenError::AlgorithmNotAllowed("mismatch".into()),
        _ => TokenError::Malformed(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
