//! Credentials as a type that cannot leak: no `Debug`, `Display` or error
//! message ever shows the value.

use std::fmt;

use crate::ProviderError;

/// A credential. Its `Debug` and `Display` never show the value, so it can
/// sit in any struct that gets logged or dumped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The only way to the value: grep for `expose` to audit every use.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the value in `text`, for messages built
    /// from what a server sent back (some APIs echo the header they got).
    pub(crate) fn redact(&self, text: String) -> String {
        if self.0.is_empty() || !text.contains(&self.0) {
            text
        } else {
            text.replace(&self.0, "***")
        }
    }

    /// [`Secret::redact`] over every message of `e`: belt and braces, as
    /// messages are built from what servers send, and a proxy may echo our
    /// headers back.
    pub(crate) fn redact_error(&self, e: ProviderError) -> ProviderError {
        match e {
            ProviderError::Rejected {
                operation,
                status,
                message,
            } => ProviderError::Rejected {
                operation: self.redact(operation),
                status,
                message: self.redact(message),
            },
            ProviderError::Transient {
                operation,
                message,
                retry_after,
                cause,
            } => ProviderError::Transient {
                operation: self.redact(operation),
                message: self.redact(message),
                retry_after,
                cause,
            },
            ProviderError::NotFound { operation, message } => ProviderError::NotFound {
                operation: self.redact(operation),
                message: self.redact(message),
            },
            ProviderError::Setup(m) => ProviderError::Setup(self.redact(m)),
            ProviderError::Withheld { operation } => ProviderError::Withheld {
                operation: self.redact(operation),
            },
            ProviderError::Deferred {
                operation,
                why,
                wait,
            } => ProviderError::Deferred {
                operation: self.redact(operation),
                why: self.redact(why),
                wait,
            },
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        let s = Secret::new("tok");
        assert_eq!(s.redact("a tok b tok".into()), "a *** b ***");
        assert_eq!(Secret::new("").redact("abc".into()), "abc");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    }
}
