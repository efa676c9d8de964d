//! Pinning long-lived threads to configured cores.

/// Pins the calling thread to CPU `core` (the OS's CPU number, as in `taskset -c`). `None` leaves
/// the thread unpinned.
///
/// The number is taken as given rather than as an index into the CPUs this process may use: a child
/// inherits its parent's affinity mask, so "the first allowed CPU" of a process spawned by a pinned
/// parent would be the parent's CPU, and the two would share it. A CPU the process may not use is
/// an error naming it, so a config written for a bigger machine fails loudly instead of silently
/// sharing a core.
pub fn pin_current(core: Option<usize>) -> Result<(), String> {
    let Some(core) = core else { return Ok(()) };
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        Err(format!(
            "could not pin thread to CPU {core} (this machine has {} CPUs; is it outside the allowed set?)",
            core_count()
        ))
    }
}

/// Number of CPUs online.
pub fn core_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
