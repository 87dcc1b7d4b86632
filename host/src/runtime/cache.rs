//! An on-disk cache of compiled components, so a restart with many services
//! does not recompile them all.
//!
//! An entry is keyed by the SHA-256 of the `.wasm` and by the engine's
//! compatibility hash (wasmtime version, target and compiler settings), so a
//! changed file or a changed engine simply misses. Each entry records the
//! SHA-256 of the `.wasm` it was compiled from, checked against the file
//! being loaded (so one component's entry copied over another's is never
//! run under the wrong name), and a SHA-256 of its own payload; an entry
//! that fails either check, or that wasmtime refuses to deserialize, is
//! deleted and rebuilt, never used.
//!
//! Trust: deserializing runs native code produced earlier by this host. The
//! checks catch corruption and mix-ups, not a deliberate forgery; the cache
//! folder must be as protected as the `hive` binary itself.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// First bytes of every entry; bump the number when the layout changes.
const MAGIC: &[u8] = b"HIVE-CACHE-2\n";

/// Length of the hex SHA-256 of the source `.wasm` stored after the magic.
const SOURCE_DIGEST_LEN: usize = 64;

/// Where a component came from, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Loaded from a valid cache entry.
    Hit,
    /// Compiled; the cache had no entry (or caching is off).
    Miss,
    /// Compiled because the entry was corrupt or stale; the entry was replaced.
    Rejected,
}

/// A folder of compiled components for one engine configuration.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir` (created if missing) for `engine`.
    pub fn open(dir: &Path, engine: &Engine) -> Result<CompileCache> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the compile cache folder {}", dir.display()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompileCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    fn entry_path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `bytes` (whose SHA-256 is `digest`), from
    /// the cache when a valid entry exists, else compiled and stored.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CacheOutcome)> {
        let path = self.entry_path(digest);
        let mut outcome = CacheOutcome::Miss;
        match std::fs::read(&path) {
            Ok(entry) => match self.decode(engine, &entry, digest) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(err) => {
                    tracing::warn!(
                        entry = %path.display(),
                        "ignoring a bad compile cache entry and recompiling: {err:#}"
                    );
                    let _ = std::fs::remove_file(&path);
                    outcome = CacheOutcome::Rejected;
                }
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(entry = %path.display(), "cannot read compile cache entry: {err}");
            }
        }

        let component = compile(engine, bytes)?;
        if let Err(err) = self.store(&path, &component, digest) {
            // A cache that cannot be written only costs speed.
            tracing::warn!(entry = %path.display(), "cannot write compile cache entry: {err:#}");
        }
        Ok((component, outcome))
    }

    fn decode(&self, engine: &Engine, entry: &[u8], digest: &str) -> Result<Component> {
        let rest = entry
            .strip_prefix(MAGIC)
            .context("not a Hive cache entry (bad header)")?;
        anyhow::ensure!(rest.len() >= SOURCE_DIGEST_LEN + 32, "entry is truncated");
        let (source, rest) = rest.split_at(SOURCE_DIGEST_LEN);
        anyhow::ensure!(
            source == digest.as_bytes(),
            "the entry was compiled from another .wasm (sha256 {})",
            String::from_utf8_lossy(source)
        );
        let (checksum, payload) = rest.split_at(32);
        anyhow::ensure!(
            Sha256::digest(payload).as_slice() == checksum,
            "checksum mismatch: the entry is corrupt"
        );
        // SAFETY: the payload is exactly what `Component::serialize` wrote
        // for this engine configuration (the checksum proves it is unchanged
        // since), and wasmtime itself rejects artifacts from another engine
        // version or configuration.
        unsafe { Component::deserialize(engine, payload) }
            .map_err(anyhow::Error::from)
            .context("wasmtime rejected the entry (stale or incompatible)")
    }

    fn store(&self, path: &Path, component: &Component, digest: &str) -> Result<()> {
        anyhow::ensure!(
            digest.len() == SOURCE_DIGEST_LEN,
            "not a hex SHA-256: {digest}"
        );
        let payload = component.serialize().map_err(anyhow::Error::from)?;
        let mut entry = Vec::with_capacity(MAGIC.len() + SOURCE_DIGEST_LEN + 32 + payload.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(digest.as_bytes());
        entry.extend_from_slice(&Sha256::digest(&payload));
        entry.extend_from_slice(&payload);
        // Write then rename, so a crash never leaves a half entry under the
        // final name (and the checksum would catch one anyway).
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&temporary, &entry)
            .with_context(|| format!("writing {}", temporary.display()))?;
        std::fs::rename(&temporary, path).with_context(|| format!("renaming to {}", path.display()))
    }
}

/// Compiles without the cache.
pub fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component> {
    Component::new(engine, bytes)
        .map_err(anyhow::Error::from)
        .context("not a valid WebAssembly component")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest valid component: the preamble alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn engine() -> Engine {
        Engine::default()
    }

    /// A well-formed stand-in for a `.wasm`'s SHA-256.
    fn digest(tag: &str) -> String {
        crate::digest::hex_digest(tag.as_bytes())
    }

    #[test]
    fn second_load_hits_and_corruption_is_detected_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        let digest = &digest("d1");

        let (_, first) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT, digest)
            .unwrap();
        assert_eq!(first, CacheOutcome::Miss);
        let (_, second) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT, digest)
            .unwrap();
        assert_eq!(second, CacheOutcome::Hit);

        // Flip one byte of the payload: the checksum must catch it.
        let path = cache.entry_path(digest);
        let mut entry = std::fs::read(&path).unwrap();
        let last = entry.len() - 1;
        entry[last] ^= 0xff;
        std::fs::write(&path, &entry).unwrap();
        let (_, third) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT, digest)
            .unwrap();
        assert_eq!(third, CacheOutcome::Rejected);
        let (_, fourth) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT, digest)
            .unwrap();
        assert_eq!(fourth, CacheOutcome::Hit);
    }

    #[test]
    fn garbage_and_truncated_entries_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        for (tag, junk) in [("a", &b"garbage"[..]), ("b", MAGIC)] {
            let digest = &digest(tag);
            std::fs::write(cache.entry_path(digest), junk).unwrap();
            let (_, outcome) = cache
                .load_or_compile(&engine, EMPTY_COMPONENT, digest)
                .unwrap();
            assert_eq!(outcome, CacheOutcome::Rejected, "{digest}");
        }
    }

    #[test]
    fn an_entry_with_a_valid_checksum_but_foreign_payload_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        let payload = b"not a compiled artifact";
        let digest = &digest("c");
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(digest.as_bytes());
        entry.extend_from_slice(&Sha256::digest(payload));
        entry.extend_from_slice(payload);
        std::fs::write(cache.entry_path(digest), entry).unwrap();
        let (_, outcome) = cache
            .load_or_compile(&engine, EMPTY_COMPONENT, digest)
            .unwrap();
        assert_eq!(outcome, CacheOutcome::Rejected);
    }

    #[test]
    fn an_entry_copied_over_another_components_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine();
        let cache = CompileCache::open(dir.path(), &engine).unwrap();
        let (a, b) = (&digest("a"), &digest("b"));
        cache.load_or_compile(&engine, EMPTY_COMPONENT, a).unwrap();
        cache.load_or_compile(&engine, EMPTY_COMPONENT, b).unwrap();
        // A valid entry, checksum and all, but compiled from a's .wasm.
        std::fs::copy(cache.entry_path(a), cache.entry_path(b)).unwrap();
        let (_, outcome) = cache.load_or_compile(&engine, EMPTY_COMPONENT, b).unwrap();
        assert_eq!(outcome, CacheOutcome::Rejected);
        let (_, again) = cache.load_or_compile(&engine, EMPTY_COMPONENT, b).unwrap();
        assert_eq!(again, CacheOutcome::Hit);
    }

    #[test]
    fn another_engine_configuration_uses_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let plain = CompileCache::open(dir.path(), &engine()).unwrap();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other_engine = Engine::new(&config).unwrap();
        let other = CompileCache::open(dir.path(), &other_engine).unwrap();
        assert_ne!(plain.entry_path("x"), other.entry_path("x"));
    }
}
