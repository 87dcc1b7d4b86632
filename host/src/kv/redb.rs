//! The embedded default backend: one [redb] file under `--data`. redb commits
//! are durable (fsync) before they return, so a write the host acknowledged
//! survives `kill -9`; its single writer makes read-modify-write atomic.

use std::path::Path;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::{KvStore, StoreError, check_key, check_value};

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
                Some(value) => std::str::from_utf8(value.value())
                    .ok()
                    .and_then(|text| text.trim().parse::<i64>().ok())
                    .ok_or(StoreError::NotANumber)?,
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
    use crate::kv::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

    fn store() -> (tempfile::TempDir, RedbStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        (dir, store)
    }

    #[test]
    fn set_get_delete() {
        let (_dir, kv) = store();
        assert_eq!(kv.get("a", "k").unwrap(), None);
        kv.set("a", "k", b"v").unwrap();
        assert_eq!(kv.get("a", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert!(kv.delete("a", "k").unwrap());
        assert!(!kv.delete("a", "k").unwrap());
        assert_eq!(kv.get("a", "k").unwrap(), None);
    }

    #[test]
    fn namespaces_are_isolated() {
        let (_dir, kv) = store();
        kv.set("a", "k", b"from a").unwrap();
        assert_eq!(kv.get("b", "k").unwrap(), None);
        kv.set("ab", "x", b"1").unwrap();
        assert_eq!(kv.list_keys("a", "", 100).unwrap(), vec!["k"]);
        assert_eq!(kv.list_keys("b", "", 100).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn list_keys_by_prefix_with_limit() {
        let (_dir, kv) = store();
        for key in ["user/2", "user/1", "order/1", "user/3", "userx"] {
            kv.set("s", key, b"").unwrap();
        }
        assert_eq!(
            kv.list_keys("s", "user/", 100).unwrap(),
            vec!["user/1", "user/2", "user/3"]
        );
        assert_eq!(
            kv.list_keys("s", "user/", 2).unwrap(),
            vec!["user/1", "user/2"]
        );
    }

    #[test]
    fn increment_counts_from_zero_and_rejects_text() {
        let (_dir, kv) = store();
        assert_eq!(kv.increment("s", "n", 1).unwrap(), 1);
        assert_eq!(kv.increment("s", "n", 5).unwrap(), 6);
        assert_eq!(kv.get("s", "n").unwrap().as_deref(), Some(&b"6"[..]));
        kv.set("s", "t", b"abc").unwrap();
        assert!(matches!(
            kv.increment("s", "t", 1),
            Err(StoreError::NotANumber)
        ));
    }

    #[test]
    fn compare_and_swap_only_swaps_on_match() {
        let (_dir, kv) = store();
        assert!(kv.compare_and_swap("s", "k", None, b"1").unwrap());
        assert!(!kv.compare_and_swap("s", "k", None, b"2").unwrap());
        assert!(!kv.compare_and_swap("s", "k", Some(b"9"), b"2").unwrap());
        assert!(kv.compare_and_swap("s", "k", Some(b"1"), b"2").unwrap());
        assert_eq!(kv.get("s", "k").unwrap().as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn limits_are_enforced() {
        let (_dir, kv) = store();
        assert!(matches!(
            kv.set("s", "", b""),
            Err(StoreError::InvalidKey(_))
        ));
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(kv.get("s", &long), Err(StoreError::InvalidKey(_))));
        let big = vec![0; MAX_VALUE_BYTES + 1];
        assert!(matches!(
            kv.set("s", "k", &big),
            Err(StoreError::ValueTooLarge(_))
        ));
    }

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

    #[test]
    fn concurrent_increments_are_atomic() {
        let (_dir, kv) = store();
        let kv = std::sync::Arc::new(kv);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        kv.increment("s", "n", 1).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(kv.increment("s", "n", 0).unwrap(), 200);
    }
}
