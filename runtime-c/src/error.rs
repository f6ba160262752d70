//! The boundary: [`guard`] (every entry point's body runs inside it: the thread's last error
//! cleared, panics caught, failures turned into a status and a message), the thread-local last
//! error behind `kiln_last_error`, and the checked conversions of C arguments (NULL pointers,
//! UTF-8 strings, out-parameters).

use crate::KilnStatus;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A failed call: its status and the message `kiln_last_error` returns.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: KilnStatus,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn new(status: KilnStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// A NULL pointer where one is required; `what` names the argument.
    pub(crate) fn null(what: &str) -> Failure {
        Failure::new(KilnStatus::NullArgument, format!("`{what}` is NULL"))
    }

    /// An invalid argument.
    pub(crate) fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(KilnStatus::InvalidArgument, message)
    }

    /// The same failure with `context` in front of its message.
    pub(crate) fn context(self, context: &str) -> Failure {
        Failure::new(self.status, format!("{context}: {}", self.message))
    }
}

impl From<kiln_runtime::Error> for Failure {
    fn from(e: kiln_runtime::Error) -> Failure {
        use kiln_runtime::Error as E;
        let status = match &e {
            E::ElementCount { .. }
            | E::ByteCount { .. }
            | E::ShapeOverflow { .. }
            | E::UnknownDType { .. } => KilnStatus::InvalidArgument,
            E::Artifact(_) | E::Plan { .. } | E::Code { .. } | E::Assets { .. } => {
                KilnStatus::LoadFailed
            }
            E::Input(_) => KilnStatus::InvalidInput,
            E::Budget(_) => KilnStatus::OutOfMemory,
            E::Step { .. } | E::Run { .. } => KilnStatus::RunFailed,
        };
        Failure::new(status, e.to_string())
    }
}

pub(crate) type Result<T> = std::result::Result<T, Failure>;

thread_local! {
    /// The message of this thread's last failed call (empty after a successful one).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Replaces this thread's last error. A NUL inside the message (from a file name, say) becomes
/// U+FFFD so the message stays one C string.
fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "\u{FFFD}")).unwrap_or_default();
    // A thread that is being torn down has no thread-locals left; the message is dropped.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = c);
}

/// What a caught panic said.
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

/// Runs one entry point's body: clears this thread's last error, runs `body` with panics caught,
/// and returns its status (recording the message of a failure or panic as the last error).
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> KilnStatus {
    set_last_error("");
    // `AssertUnwindSafe`: after a panic nothing of the call's state is used again except what
    // the handles hold, and a session whose run panicked is replaced before its next run.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => KilnStatus::Ok,
        Ok(Err(f)) => {
            set_last_error(&f.message);
            f.status
        }
        Err(payload) => {
            set_last_error(&format!(
                "internal error (a bug in Kiln, please report it): {}",
                panic_message(payload.as_ref())
            ));
            KilnStatus::Internal
        }
    }
}

/// Runs a `*_free` function's body: panics are caught (and recorded as the last error), and the
/// last error of an earlier call is otherwise left as it was.
pub(crate) fn guard_free(body: impl FnOnce()) {
    if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
        set_last_error(&format!(
            "internal error while freeing (a bug in Kiln, please report it): {}",
            panic_message(payload.as_ref())
        ));
    }
}

/// The message of the last failed call made on this thread, or "" when the last call succeeded.
///
/// The returned string is owned by the library and stays valid until this thread's next call
/// into the library (other than kiln_last_error itself); copy it to keep it. Never NULL.
#[no_mangle]
pub extern "C" fn kiln_last_error() -> *const c_char {
    static EMPTY: &CStr = c"";
    catch_unwind(|| {
        LAST_ERROR
            .try_with(|e| e.borrow().as_ptr())
            .unwrap_or(EMPTY.as_ptr())
    })
    .unwrap_or(EMPTY.as_ptr())
}

/// The UTF-8 string at `p`; `what` names the argument in errors.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that lives and stays unchanged for `'a`.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, what: &str) -> Result<&'a str> {
    if p.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: `p` is not NULL, and the caller guarantees it points to a NUL-terminated string
    // that outlives `'a`.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|e| Failure::invalid(format!("`{what}` is not valid UTF-8 ({e})")))
}

/// The object a handle points to; `what` names the argument in errors.
///
/// # Safety
/// `p` is NULL or points to a live `T` (made by this library) that outlives `'a`.
pub(crate) unsafe fn handle<'a, T>(p: *const T, what: &str) -> Result<&'a T> {
    // SAFETY: the caller guarantees that a non-NULL `p` points to a live `T` outliving `'a`.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// An out-parameter checked for NULL, so a call fails before doing any work.
#[derive(Debug)]
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Checks `p`; `what` names the argument in errors.
    pub(crate) fn new(p: *mut T, what: &str) -> Result<Out<T>> {
        if p.is_null() {
            Err(Failure::null(what))
        } else {
            Ok(Out(p))
        }
    }

    /// Stores `v` (the old value, whatever it was, is not read or dropped).
    ///
    /// # Safety
    /// The pointer given to [`Out::new`] is valid for writing a `T` and suitably aligned.
    pub(crate) unsafe fn write(&self, v: T) {
        // SAFETY: not NULL (checked by `new`), and the caller guarantees it is valid for writes
        // and aligned.
        unsafe { self.0.write(v) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> String {
        // SAFETY: never NULL, and read before the next call into the library.
        unsafe { CStr::from_ptr(kiln_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_an_internal_error_with_its_message() {
        let status = guard(|| panic!("boom at the boundary"));
        assert_eq!(status, KilnStatus::Internal);
        assert!(last().contains("boom at the boundary"), "{}", last());
        // The next call clears it.
        assert_eq!(guard(|| Ok(())), KilnStatus::Ok);
        assert_eq!(last(), "");
    }

    #[test]
    fn a_panic_while_freeing_is_caught_and_reported() {
        guard_free(|| panic!("bad drop"));
        assert!(last().contains("bad drop"), "{}", last());
    }

    #[test]
    fn messages_with_nul_stay_one_c_string() {
        let status = guard(|| Err(Failure::invalid("a\0b")));
        assert_eq!(status, KilnStatus::InvalidArgument);
        assert_eq!(last(), "a\u{FFFD}b");
    }
}
