use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use keybridge_vault::MemoryStore;
use serde_json::{Value, json};

struct Fixture {
    _dir: tempfile::TempDir,
    issuer: TokenIssuer,
}

fn fixture(install: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::open(install, dir.path(), Arc::new(MemoryStore::default())).unwrap();
    Fixture { _dir: dir, issuer }
}

fn grant() -> Grant {
    Grant {
        client_id: "claude".into(),
        session_id: "s1".into(),
        account: "main".into(),
        scopes: [Scope::BacktestsRead, Scope::ProjectsRead].into_iter().collect(),
        ttl_secs: DEFAULT_TTL_SECS,
    }
}

impl TokenIssuer {
    /// Sign arbitrary claims with the active key: how an attacker holding our key, or a
    /// buggy minting path, would make tokens, so verification is tested on its own.
    fn sign_raw(&self, header: Value, claims: Value) -> String {
        let keys = self.keys.read().unwrap();
        let key = &keys[0];
        let mut h: Header = serde_json::from_value(header).unwrap();
        h.alg = Algorithm::EdDSA;
        jsonwebtoken::encode(&h, &claims, &key.encoding).unwrap()
    }
}

fn valid_claims(f: &Fixture) -> Value {
    let now = now();
    json!({"iss": f.issuer.issuer(), "aud": AUDIENCE, "sub": "claude", "sid": "s1", "scope": "qc:backtests:read",
           "account": "main", "iat": now, "nbf": now, "exp": now + 600, "jti": "j1"})
}

fn header(f: &Fixture) -> Value {
    json!({"alg": "EdDSA", "typ": "JWT", "kid": f.issuer.active_kid()})
}

fn check(f: &Fixture, token: &str, expected: TokenError) {
    assert_eq!(f.issuer.verify(token), Err(expected));
}

#[test]
fn a_minted_token_verifies_with_its_claims() {
    let f = fixture("install-a");
    let (token, claims) = f.issuer.mint(&grant()).unwrap();
    let verified = f.issuer.verify(&token).unwrap();
    assert_eq!(verified, claims);
    assert_eq!(verified.scopes(), grant().scopes);
    assert!(token.len() < 1024, "tokens stay small: {} bytes", token.len());
    let jwks = f.issuer.jwks();
    assert_eq!(jwks["keys"][0]["kid"], f.issuer.active_kid().as_str());
    assert_eq!(jwks["keys"][0]["x"].as_str().unwrap().len(), 43, "a 32-byte key, base64url");
}

#[test]
fn alg_none_is_refused() {
    let f = fixture("i");
    let head = B64.encode(json!({"alg": "none", "typ": "JWT", "kid": f.issuer.active_kid()}).to_string());
    let body = B64.encode(valid_claims(&f).to_string());
    let err = f.issuer.verify(&format!("{head}.{body}.")).unwrap_err();
    assert!(matches!(err, TokenError::Malformed(_) | TokenError::AlgorithmNotAllowed(_)), "{err:?}");
}

#[test]
fn algorithm_confusion_is_refused() {
    // HS256 "signed" with our public key, the classic confusion attack.
    let f = fixture("i");
    let public = f.issuer.keys.read().unwrap()[0].public;
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(f.issuer.active_kid());
    let forged = jsonwebtoken::encode(&h, &valid_claims(&f), &EncodingKey::from_secret(&public)).unwrap();
    check(&f, &forged, TokenError::AlgorithmNotAllowed("HS256".into()));
}

#[test]
fn unknown_missing_and_untrusted_keys_are_refused() {
    let f = fixture("i");
    let mut no_kid = header(&f);
    no_kid.as_object_mut().unwrap().remove("kid");
    check(&f, &f.issuer.sign_raw(no_kid, valid_claims(&f)), TokenError::MissingKeyId);
    let mut other_kid = header(&f);
    other_kid["kid"] = json!("feedface");
    check(&f, &f.issuer.sign_raw(other_kid, valid_claims(&f)), TokenError::UnknownKey("feedface".into()));
    // A key we never trusted, claiming our kid.
    let stranger = fixture("i");
    let forged = stranger.issuer.sign_raw(header(&f), valid_claims(&f));
    check(&f, &forged, TokenError::BadSignature);
}

#[test]
fn audience_and_issuer_must_match() {
    let f = fixture("install-a");
    let mut claims = valid_claims(&f);
    claims["aud"] = json!("somebody-else");
    check(&f, &f.issuer.sign_raw(header(&f), claims.clone()), TokenError::WrongAudience);
    claims.as_object_mut().unwrap().remove("aud");
    check(&f, &f.issuer.sign_raw(header(&f), claims), TokenError::MissingClaim("aud".into()));
    let mut claims = valid_claims(&f);
    claims["iss"] = json!("keybridge:install-b");
    check(&f, &f.issuer.sign_raw(header(&f), claims), TokenError::WrongIssuer);
}

#[test]
fn a_token_from_another_install_is_refused() {
    let a = fixture("install-a");
    let b = fixture("install-b");
    let (token, _) = b.issuer.mint(&grant()).unwrap();
    let err = a.issuer.verify(&token).unwrap_err();
    assert!(matches!(err, TokenError::UnknownKey(_)), "{err:?}");
}

#[test]
fn a_token_is_remembered_only_inside_its_time_window() {
    let f = fixture("i");
    let (token, claims) = f.issuer.mint(&grant()).unwrap();
    f.issuer.verify(&token).unwrap();
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    assert!(f.issuer.verified.lock().unwrap().contains_key(&digest), "remembered after a full check");
    assert_eq!(f.issuer.verify(&token).unwrap(), claims, "and answered from memory");
    // The window, to the second, as the whole check has it.
    assert!(in_time(&claims, claims.exp + LEEWAY_SECS));
    assert!(!in_time(&claims, claims.exp + LEEWAY_SECS + 1), "expired");
    assert!(in_time(&claims, claims.iat - LEEWAY_SECS));
    assert!(!in_time(&claims, claims.iat - LEEWAY_SECS - 1), "a clock stepped back before its start");
}

#[test]
fn a_rotation_forgets_remembered_tokens() {
    let f = fixture("i");
    let (token, _) = f.issuer.mint(&grant()).unwrap();
    f.issuer.verify(&token).unwrap();
    f.issuer.rotate().unwrap();
    assert!(f.issuer.verified.lock().unwrap().is_empty());
    f.issuer.verify(&token).expect("the old key still verifies its tokens");
}

#[test]
fn an_edited_token_is_not_taken_for_a_remembered_one() {
    let f = fixture("i");
    let (token, _) = f.issuer.mint(&grant()).unwrap();
    f.issuer.verify(&token).unwrap();
    let (head, rest) = token.split_once('.').unwrap();
    let (body, signature) = rest.split_once('.').unwrap();
    let mut claims: Value = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
    claims["scope"] = json!("qc:live:execute qc:admin:write");
    let edited = format!("{head}.{}.{signature}", B64.encode(claims.to_string()));
    check(&f, &edited, TokenError::BadSignature);
    // The same header and payload with another signature are not the remembered token either.
    let mut forged = B64.decode(signature).unwrap();
    forged[0] ^= 1;
    check(&f, &format!("{head}.{body}.{}", B64.encode(forged)), TokenError::BadSignature);
}

#[test]
fn time_claims_are_enforced() {
    let f = fixture("i");
    let now = now();
    let mut expired = valid_claims(&f);
    expired["iat"] = json!(now - 1200);
    expired["nbf"] = json!(now - 1200);
    expired["exp"] = json!(now - LEEWAY_SECS - 5);
    check(&f, &f.issuer.sign_raw(header(&f), expired), TokenError::Expired);
    let mut no_exp = valid_claims(&f);
    no_exp.as_object_mut().unwrap().remove("exp");
    check(&f, &f.issuer.sign_raw(header(&f), no_exp), TokenError::MissingClaim("exp".into()));
    let mut future = valid_claims(&f);
    future["nbf"] = json!(now + 600);
    future["exp"] = json!(now + 1200);
    check(&f, &f.issuer.sign_raw(header(&f), future), TokenError::NotYetValid);
    let mut long = valid_claims(&f);
    long["iat"] = json!(now);
    long["nbf"] = json!(now);
    long["exp"] = json!(now + MAX_TTL_SECS + 600);
    check(&f, &f.issuer.sign_raw(header(&f), long), TokenError::LifetimeTooLong(MAX_TTL_SECS + 600));
    let mut small_skew = valid_claims(&f);
    small_skew["nbf"] = json!(now + 10);
    assert!(f.issuer.verify(&f.issuer.sign_raw(header(&f), small_skew)).is_ok(), "within leeway");
}

#[test]
fn every_claim_is_required() {
    let f = fixture("i");
    for claim in ["jti", "sid", "scope", "account", "sub", "iat", "nbf"] {
        let mut claims = valid_claims(&f);
        claims.as_object_mut().unwrap().remove(claim);
        let err = f.issuer.verify(&f.issuer.sign_raw(header(&f), claims)).unwrap_err();
        assert_eq!(err, TokenError::MissingClaim(claim.into()), "without {claim}");
    }
}

#[test]
fn an_edited_payload_fails_the_signature() {
    let f = fixture("i");
    let (token, _) = f.issuer.mint(&grant()).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("qc:live:execute qc:projects:delete");
    let edited = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    check(&f, &edited, TokenError::BadSignature);
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let f = fixture("i");
    let huge = "a".repeat(MAX_TOKEN_BYTES + 1);
    check(&f, &huge, TokenError::Oversized(MAX_TOKEN_BYTES + 1));
}

#[test]
fn lifetimes_outside_the_bounds_are_not_minted() {
    let f = fixture("i");
    let mut g = grant();
    g.ttl_secs = MAX_TTL_SECS + 1;
    assert_eq!(f.issuer.mint(&g).unwrap_err(), TokenError::InvalidTtl(MAX_TTL_SECS + 1));
    g.ttl_secs = MAX_TTL_SECS;
    assert!(f.issuer.mint(&g).is_ok());
}

#[test]
fn rotation_keeps_old_tokens_valid_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let issuer = TokenIssuer::open("i", dir.path(), store.clone()).unwrap();
    let (old_token, _) = issuer.mint(&grant()).unwrap();
    let old_kid = issuer.active_kid();
    let new_kid = issuer.rotate().unwrap();
    assert_ne!(old_kid, new_kid);
    let (new_token, _) = issuer.mint(&grant()).unwrap();
    assert!(issuer.verify(&old_token).is_ok(), "tokens of the retired key still verify");
    let reopened = TokenIssuer::open("i", dir.path(), store).unwrap();
    assert_eq!(reopened.active_kid(), new_kid);
    assert!(reopened.verify(&old_token).is_ok() && reopened.verify(&new_token).is_ok());
    let index = std::fs::read_to_string(dir.path().join("signing-keys.json")).unwrap();
    assert!(!index.contains("seed") && index.len() < 400, "the index holds no key material: {index}");
}

#[test]
fn a_token_has_exactly_the_scopes_it_lists() {
    let f = fixture("scopes");
    let (token, _) = f.issuer.mint(&grant()).unwrap();
    let claims = f.issuer.verify(&token).unwrap();
    for scope in Scope::ALL.iter().copied() {
        assert_eq!(claims.has_scope(scope), claims.scopes().contains(&scope), "{scope}");
    }
    assert!(claims.has_scope(Scope::ProjectsRead));
    assert!(!claims.has_scope(Scope::ProjectsDelete));
    // A scope's name as part of a longer one is not the scope.
    let longer = Claims { scope: "qc:projects:read:all".into(), ..claims };
    assert!(!longer.has_scope(Scope::ProjectsRead));
}

#[test]
fn the_time_bounds_hold_at_their_edges() {
    let f = fixture("i");
    let now = now();
    // Issued exactly at the edge of the leeway: taken; a little later: not yet valid, even with
    // `nbf` in the past.
    let mut edge = valid_claims(&f);
    edge["iat"] = json!(now + LEEWAY_SECS);
    assert!(f.issuer.verify(&f.issuer.sign_raw(header(&f), edge)).is_ok(), "iat at the leeway");
    let mut later = valid_claims(&f);
    later["iat"] = json!(now + LEEWAY_SECS + 120);
    check(&f, &f.issuer.sign_raw(header(&f), later), TokenError::NotYetValid);
    // A lifetime of exactly the longest allowed: taken.
    let mut longest = valid_claims(&f);
    longest["exp"] = json!(now + MAX_TTL_SECS);
    assert!(f.issuer.verify(&f.issuer.sign_raw(header(&f), longest)).is_ok(), "the longest lifetime");
    // A token of exactly the largest size gets past the size check (and fails as what it is).
    let largest = "a".repeat(MAX_TOKEN_BYTES);
    assert!(matches!(f.issuer.verify(&largest), Err(TokenError::Malformed(_))));
}

#[test]
fn the_memory_of_verified_tokens_stays_bounded() {
    let f = fixture("i");
    let tokens: Vec<String> = (0..MAX_VERIFIED + 10).map(|_| f.issuer.mint(&grant()).unwrap().0).collect();
    for (n, token) in tokens.iter().enumerate() {
        f.issuer.verify(token).unwrap();
        let remembered = f.issuer.verified.lock().unwrap().len();
        assert!(remembered <= MAX_VERIFIED, "{remembered} remembered after {} tokens", n + 1);
        if n < MAX_VERIFIED {
            assert_eq!(remembered, n + 1, "every token is remembered until the memory is full");
        }
    }
    // Full of live tokens, the memory starts over rather than sweeping on every new one.
    assert!(f.issuer.verified.lock().unwrap().len() <= 10, "the full memory of live tokens was cleared");
}

#[test]
fn retired_keys_are_deleted_only_once_their_tokens_cannot_be_valid() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::open("i", dir.path(), Arc::new(MemoryStore::default())).unwrap();
    let first = issuer.active_kid();
    issuer.rotate().unwrap();
    let second = issuer.active_kid();
    issuer.rotate().unwrap();
    // The first key retired just long enough ago that nothing it signed can still be valid; the
    // second only just inside that time.
    let path = dir.path().join("signing-keys.json");
    let mut index: KeyIndex = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let now = now();
    for entry in &mut index.keys {
        if entry.kid == first {
            entry.retired = Some(now - MAX_TTL_SECS - LEEWAY_SECS - 5);
        } else if entry.kid == second {
            entry.retired = Some(now - MAX_TTL_SECS - LEEWAY_SECS + 5);
        }
    }
    std::fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
    issuer.rotate().unwrap();
    let kept: Vec<String> = issuer.load_index().unwrap().keys.into_iter().map(|e| e.kid).collect();
    assert!(!kept.contains(&first), "a key past every token's lifetime is deleted: {kept:?}");
    assert!(kept.contains(&second), "a key whose tokens may still be valid is kept: {kept:?}");
}

#[test]
fn an_unreadable_key_index_is_an_error_not_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("signing-keys.json")).unwrap();
    let err = TokenIssuer::open("i", dir.path(), Arc::new(MemoryStore::default())).unwrap_err();
    assert!(matches!(err, TokenError::Keys(_)), "{err:?}");
}
