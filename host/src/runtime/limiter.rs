//! The memory limit of one instance, checked by wasmtime whenever the guest
//! grows a memory or a table.

use wasmtime::ResourceLimiter;

/// Most table elements per table; generous for real code, small enough that
/// a table cannot be used to exhaust host memory.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Enforces the memory limit on one instance and remembers whether the guest
/// hit it, so a resulting trap can be reported as "out of memory" rather than
/// as whatever the guest did when its allocation failed.
#[derive(Debug)]
pub struct MemoryLimiter {
    max_bytes: usize,
    /// Set once a growth request was refused.
    pub hit: bool,
}

impl MemoryLimiter {
    /// A limiter allowing up to `max_bytes` of linear memory per memory.
    pub fn new(max_bytes: usize) -> MemoryLimiter {
        MemoryLimiter {
            max_bytes,
            hit: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn limiter_refuses_growth_past_the_limit_and_remembers() {
        let mut limiter = MemoryLimiter::new(2 * MIB);
        assert!(limiter.memory_growing(0, MIB, None).unwrap());
        assert!(!limiter.hit);
        assert!(!limiter.memory_growing(MIB, 3 * MIB, None).unwrap());
        assert!(limiter.hit);
    }
}
