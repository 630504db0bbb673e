//! Access-token verification on any text: refused with a reason, never a panic; and a real
//! token with any byte changed is refused.
#![no_main]

use std::sync::{Arc, OnceLock};

use keybridge_broker::tokens::{Grant, TokenIssuer};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    issuer: TokenIssuer,
    token: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(keybridge_vault::MemoryStore::default());
        let issuer = TokenIssuer::open("fuzz", dir.path(), store).unwrap();
        let grant = Grant {
            client_id: "c".into(),
            session_id: "s".into(),
            account: "main".into(),
            scopes: [keybridge_catalog::Scope::AccountRead].into(),
            ttl_secs: 600,
        };
        let (token, _) = issuer.mint(&grant).unwrap();
        Fixture { issuer, token, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fixture.issuer.verify(text);
    }
    // Change one byte of a valid token: it must not verify.
    if let Some((&at, &with)) = data.first().zip(data.get(1)) {
        let mut bytes = fixture.token.clone().into_bytes();
        let at = at as usize % bytes.len();
        if bytes[at] != with {
            bytes[at] = with;
            if let Ok(altered) = String::from_utf8(bytes) {
                assert!(fixture.issuer.verify(&altered).is_err(), "an altered token verified");
            }
        }
    }
});
