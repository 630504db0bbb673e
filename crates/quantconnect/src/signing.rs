//! QuantConnect's request signature.

use base64::Engine;
use keybridge_secret::SecretString;
use sha2::{Digest, Sha256};

use crate::Credentials;

/// The `Authorization` header value for a request made at `timestamp` (unix seconds):
/// `Basic base64(user_id ":" sha256_hex(api_token ":" timestamp))`.
pub(crate) fn authorization(creds: &Credentials, timestamp: i64) -> String {
    // The pre-image contains the token: keep it in a Secret so it is wiped when dropped.
    let preimage = SecretString::from(format!("{}:{timestamp}", creds.api_token.expose()));
    let hash = hex::encode(Sha256::digest(preimage.expose().as_bytes()));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{hash}", creds.user_id));
    format!("Basic {basic}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hash_computed_independently() {
        // sha256("tok:1700000000") computed with coreutils' sha256sum.
        let creds = Credentials::new("42", "tok".to_string());
        let header = authorization(&creds, 1_700_000_000);
        let decoded = base64::engine::general_purpose::STANDARD.decode(header.trim_start_matches("Basic ")).unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        assert_eq!(decoded, "42:46abad9794ccd937cdba972f3bc431110051db35e84180095796c76cef4d0141");
    }
}
