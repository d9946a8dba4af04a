//! Allocator settings for a server whose biggest allocations are short-lived
//! and large: an Argon2 hash takes `argon2_memory_kib` (19 MiB) for a few
//! milliseconds, an image decode tens of MB.
//!
//! glibc's malloc raises its mmap threshold each time such a block is freed
//! (up to 32 MiB), after which the next ones come from per-thread arenas and
//! are kept there: measured here, 96 sign-ups left the process at 1.1 GB
//! although at most two hashes ever ran at once. A fixed threshold keeps
//! blocks from 256 KiB up in their own mappings, returned to the system on
//! free, so memory follows what is in use.

/// Call once, early in `main`.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; it is safe to
        // call at any time, and a rejected value leaves the defaults.
        #[expect(unsafe_code, reason = "the one FFI call: glibc's mallopt")]
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
        if ok != 1 {
            tracing::warn!("mallopt(M_MMAP_THRESHOLD) refused; large blocks may be retained");
        }
    }
}
