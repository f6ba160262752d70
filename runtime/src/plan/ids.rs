//! Typed ids of a plan's values, arena slots and steps: `u32` newtypes, encoded exactly like the
//! bare `u32`s they replace (`#[serde(transparent)]`), so the postcard bytes of a plan are
//! unchanged. Each displays as its bare number, as messages have always shown ids.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! plan_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u32);

        impl $name {
            /// The id as an index into its table.
            pub fn index(self) -> usize {
                self.0 as usize
            }

            /// The id of the entry at `index` of its table (tables hold far fewer than 2³²
            /// entries: their length comes from a `u32`-indexed encoding).
            pub fn from_index(index: usize) -> $name {
                $name(u32::try_from(index).expect("plan tables are indexed by u32"))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

plan_id!(
    /// Id of a value: an index into [`Plan::values`](super::Plan::values).
    ValueId
);
plan_id!(
    /// Id of an arena slot: an index into [`Plan::slots`](super::Plan::slots).
    SlotId
);
plan_id!(
    /// Id of a step: an index into [`Plan::steps`](super::Plan::steps), in execution order.
    StepId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_encode_like_bare_u32s() {
        for n in [0u32, 1, 127, 128, 300, u32::MAX] {
            let bare = postcard::to_allocvec(&n).unwrap();
            assert_eq!(postcard::to_allocvec(&ValueId(n)).unwrap(), bare);
            assert_eq!(postcard::to_allocvec(&SlotId(n)).unwrap(), bare);
            assert_eq!(postcard::to_allocvec(&StepId(n)).unwrap(), bare);
            assert_eq!(postcard::from_bytes::<ValueId>(&bare).unwrap(), ValueId(n));
        }
    }

    #[test]
    fn ids_index_and_display_as_their_number() {
        let v = ValueId::from_index(7);
        assert_eq!(v.index(), 7);
        assert_eq!(v.to_string(), "7");
        assert_eq!(format!("v{v}"), "v7");
        assert_eq!(SlotId(3).index(), 3);
        assert_eq!(StepId::from_index(2), StepId(2));
    }
}
