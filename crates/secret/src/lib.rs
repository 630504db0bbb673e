//! `Secret`: the only way Keybridge holds a credential in memory.
//!
//! A [`Secret`] prints as `<redacted>` under both `Debug` and `Display`, implements neither
//! `Serialize` nor `Clone`-by-accident (cloning is explicit and zeroizes the copy too), and
//! overwrites its bytes when dropped. Reading the value needs a deliberate call to
//! [`Secret::expose`], so every place a secret leaves this type is greppable.
//!
//! This crate must never gain a `serde` dependency, a `Display` that shows the value, or a
//! conversion that hands out an owned copy of the plain text.
//!
//! ```
//! use keybridge_secret::Secret;
//! let token = Secret::new("s3cr3t".to_string());
//! assert_eq!(format!("{token:?}"), "<redacted>");
//! assert_eq!(token.expose().len(), 6);
//! ```

use std::fmt;
use zeroize::Zeroize;

/// A secret value: opaque to formatting, zeroized on drop.
pub struct Secret<T: Zeroize> {
    value: T,
}

impl<T: Zeroize> Secret<T> {
    pub fn new(value: T) -> Self {
        Self { value }
    }

    /// Borrow the plain value. Keep the borrow short and never format it.
    pub fn expose(&self) -> &T {
        &self.value
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self::new(self.value.clone())
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.value.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl From<String> for Secret<String> {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// A secret string, the common case (API tokens, client keys).
pub type SecretString = Secret<String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_never_shows_the_value() {
        let s = SecretString::from("SENTINEL-abc".to_string());
        let shown = format!("{s:?} {s} {s:#?}");
        assert!(!shown.contains("SENTINEL"), "secret leaked into formatting: {shown}");
    }

    #[test]
    fn clone_is_an_independent_secret() {
        let a = SecretString::from("x".repeat(8));
        let b = a.clone();
        drop(a);
        assert_eq!(b.expose(), "xxxxxxxx");
    }
}
