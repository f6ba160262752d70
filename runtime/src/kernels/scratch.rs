//! Per-thread scratch vectors reused across kernel calls, so that a steady stream of runs (a
//! decode loop) allocates nothing once every buffer has reached its largest size.

use std::cell::RefCell;

/// A per-thread vector of `T` lent to one user at a time.
pub(crate) struct Reusable<T: 'static> {
    key: &'static std::thread::LocalKey<RefCell<Vec<T>>>,
}

impl<T: 'static> Reusable<T> {
    /// The vector behind `key`.
    pub(crate) const fn new(key: &'static std::thread::LocalKey<RefCell<Vec<T>>>) -> Self {
        Reusable { key }
    }

    /// Runs `f` with this thread's vector (its contents are whatever the last user left;
    /// callers clear or overwrite it). A nested use on the same thread — a worker that runs
    /// another call while it waits — gets a fresh vector instead, which is only slower.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Vec<T>) -> R) -> R {
        self.key.with(|cell| match cell.try_borrow_mut() {
            Ok(mut v) => f(&mut v),
            Err(_) => f(&mut Vec::new()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static BUF: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    }
    static SHARED: Reusable<u32> = Reusable::new(&BUF);

    #[test]
    fn the_buffer_is_kept_between_uses_and_nested_uses_get_their_own() {
        SHARED.with(|v| {
            v.clear();
            v.extend([1, 2, 3]);
        });
        let cap = SHARED.with(|v| {
            assert_eq!(v.as_slice(), [1, 2, 3], "contents survive between uses");
            // A nested use cannot take the same vector.
            SHARED.with(|inner| assert!(inner.is_empty()));
            v.capacity()
        });
        assert!(SHARED.with(|v| v.capacity()) >= cap);
    }
}
