//! Typed ids for the things most often passed side by side.
//!
//! A service call such as `favourite(user, listing, on)` takes two plain
//! numbers that nothing stops a caller from swapping; with `UserId` and
//! `ListingId` the compiler does. The wire format is unchanged (a bare
//! number, `#[serde(transparent)]`) and the store binds the inner `i64`
//! (`.get()`), so the ids cost nothing at run time.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! ids {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl $name {
            /// The number as stored and sent.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for i64 {
            fn from(id: $name) -> i64 {
                id.0
            }
        }
    )*};
}

ids! {
    /// An account.
    UserId;
    /// A used-goods listing.
    ListingId;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bare_numbers_on_the_wire() {
        let id = ListingId(42);
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("42"));
        let back: Option<UserId> = serde_json::from_str("7").ok();
        assert_eq!(back, Some(UserId(7)));
        assert_eq!(id.to_string(), "42");
        assert_eq!(i64::from(ListingId(3)), 3);
    }
}
