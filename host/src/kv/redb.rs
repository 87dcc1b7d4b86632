//! The embedded default backend: one [redb] file under `--data`. redb commits
//! are durable (fsync) before they return, so a write the host acknowledged
//! survives `kill -9`; its single writer makes read-modify-write atomic.

use std::path::Path;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{KvStore, StoreError, check_key, check_value, parse_decimal};

/// All services share one table; the key's first half is the namespace.
const TABLE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// A redb-backed [`KvStore`].
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the database file `dir/kv.redb`.
    pub fn open(dir: &Path) -> anyhow::Result<RedbStore> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data folder {}", dir.display()))?;
        let path = dir.join("kv.redb");
        let db = Database::create(&path)
            .with_context(|| format!("opening the key-value store {}", path.display()))?;
        // Create the table up front so readers never find it missing.
        let write = db
            .begin_write()
            .context("initialising the key-value store")?;
        write.open_table(TABLE).context("creating the kv table")?;
        write.commit().context("initialising the key-value store")?;
        Ok(RedbStore { db })
    }
}

fn storage(err: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(err.to_string())
}

impl KvStore for RedbStore {
    fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TABLE).map_err(storage)?;
        let value = table.get((namespace, key)).map_err(storage)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        check_value(value)?;
        let write = self.db.begin_write().map_err(storage)?;
        {
            let mut table = write.open_table(TABLE).map_err(storage)?;
            table.insert((namespace, key), value).map_err(storage)?;
        }
        write.commit().map_err(storage)
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        let write = self.db.begin_write().map_err(storage)?;
        let existed = {
            let mut table = write.open_table(TABLE).map_err(storage)?;
            table.remove((namespace, key)).map_err(storage)?.is_some()
        };
        write.commit().map_err(storage)?;
        Ok(existed)
    }

    fn list_keys(
        &self,
        namespace: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let read = self.db.begin_read().map_err(storage)?;
        let table = read.open_table(TABLE).map_err(storage)?;
        let mut keys = Vec::new();
        for entry in table.range((namespace, prefix)..).map_err(storage)? {
            if keys.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(storage)?;
            let (entry_namespace, entry_key) = key.value();
            if entry_namespace != namespace || !entry_key.starts_with(prefix) {
                break;
            }
            keys.push(entry_key.to_string());
        }
        Ok(keys)
    }

    fn increment(&self, namespace: &str, key: &str, delta: i64) -> Result<i64, StoreError> {
        check_key(key)?;
        let write = self.db.begin_write().map_err(storage)?;
        let next = {
            let mut table = write.open_table(TABLE).map_err(storage)?;
            let current = match table.get((namespace, key)).map_err(storage)? {
                None => 0,
                Some(value) => parse_decimal(value.value()).ok_or(StoreError::NotANumber)?,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| StoreError::Storage("increment overflows i64".into()))?;
            table
                .insert((namespace, key), next.to_string().as_bytes())
                .map_err(storage)?;
            next
        };
        write.commit().map_err(storage)?;
        Ok(next)
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool, StoreError> {
        check_key(key)?;
        check_value(new)?;
        let write = self.db.begin_write().map_err(storage)?;
        let swapped = {
            let mut table = write.open_table(TABLE).map_err(storage)?;
            let current = table
                .get((namespace, key))
                .map_err(storage)?
                .map(|v| v.value().to_vec());
            if current.as_deref() == expected {
                table.insert((namespace, key), new).map_err(storage)?;
                true
            } else {
                false
            }
        };
        if swapped {
            write.commit().map_err(storage)?;
        } else {
            write.abort().map_err(storage)?;
        }
        Ok(swapped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        (dir, store)
    }

    crate::kv::suite::kv_suite!(store());

    #[test]
    fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        RedbStore::open(dir.path())
            .unwrap()
            .set("s", "k", b"kept")
            .unwrap();
        let reopened = RedbStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get("s", "k").unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }
}
