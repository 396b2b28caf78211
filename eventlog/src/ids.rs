//! Typed identifiers, parsed once at the edge and trusted everywhere after.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Account and webhook ids are 32 lowercase hex characters.
    #[error("expected 32 lowercase hex characters")]
    NotHex32,
    /// Event ids are 1 to 64 of `[A-Za-z0-9_-]`.
    #[error("expected 1 to 64 characters of [A-Za-z0-9_-]")]
    BadEventId,
}

fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh random 32-hex id (16 random bytes), as Kazoo's `kz_binary:rand_hex(16)`.
fn random_hex32() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

macro_rules! hex32_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// A new random id.
            pub fn generate() -> Self {
                Self(random_hex32())
            }

            /// Parses a 32-lowercase-hex id.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                if is_hex32(s) {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError::NotHex32)
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                if is_hex32(&s) {
                    Ok(Self(s))
                } else {
                    Err(IdError::NotHex32)
                }
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

hex32_id!(
    /// An account id: 32 lowercase hex characters.
    AccountId
);
hex32_id!(
    /// A webhook id: 32 lowercase hex characters.
    WebhookId
);

/// The id of one accepted call event: the producer's `event_id`, or one assigned at
/// acceptance. The same for every hook and every retry (`X-Event-ID`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EventId(String);

impl EventId {
    /// A new random id (32 hex characters).
    pub fn generate() -> Self {
        Self(random_hex32())
    }

    /// Parses a producer-supplied id: 1 to 64 of `[A-Za-z0-9_-]`.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::BadEventId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for EventId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<EventId> for String {
    fn from(id: EventId) -> String {
        id.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex32_ids_accept_only_lowercase_hex_of_length_32() {
        assert!(AccountId::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert_eq!(
            AccountId::parse("0123456789ABCDEF0123456789abcdef"),
            Err(IdError::NotHex32)
        );
        assert_eq!(WebhookId::parse("abc"), Err(IdError::NotHex32));
        assert_eq!(AccountId::generate().as_str().len(), 32);
    }

    #[test]
    fn event_ids_follow_the_producer_rule() {
        assert!(EventId::parse("call-1_A").is_ok());
        assert!(EventId::parse(&"x".repeat(64)).is_ok());
        assert_eq!(EventId::parse(&"x".repeat(65)), Err(IdError::BadEventId));
        assert_eq!(EventId::parse(""), Err(IdError::BadEventId));
        assert_eq!(EventId::parse("a b"), Err(IdError::BadEventId));
    }

    #[test]
    fn ids_round_trip_through_serde_and_refuse_bad_text() {
        let id = WebhookId::generate();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<WebhookId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<WebhookId>("\"nothex\"").is_err());
    }
}
