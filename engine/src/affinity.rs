//! Pinning long-lived threads to configured cores.

/// Pins the calling thread to core `core` (an index into the cores the OS reports). `None` leaves the
/// thread unpinned. An index past the last core is an error naming how many there are, so a config
/// written for a bigger machine fails loudly instead of silently sharing a core.
pub fn pin_current(core: Option<usize>) -> Result<(), String> {
    let Some(core) = core else { return Ok(()) };
    let ids = core_affinity::get_core_ids().ok_or("cannot list CPU cores")?;
    let id = ids
        .get(core)
        .copied()
        .ok_or_else(|| format!("core {core} does not exist: this machine has {} cores", ids.len()))?;
    if core_affinity::set_for_current(id) {
        Ok(())
    } else {
        Err(format!("could not pin thread to core {core}"))
    }
}

/// Number of cores the OS reports.
pub fn core_count() -> usize {
    core_affinity::get_core_ids().map_or(1, |v| v.len())
}
