//! The embedded default backend: one [redb] file under `--data`.
//!
//! Writes are group-committed: every write goes to one writer thread, which
//! takes all the writes waiting at that moment (from every service), applies
//! them in order in one transaction, and commits it with one fsync; only
//! then is each caller answered. So a write the host acknowledged survives
//! `kill -9`, read-modify-writes (`increment`, `compare-and-swap`) stay
//! atomic (the writes of a batch apply one after another, each seeing the
//! ones before it), and sixteen concurrent writers cost one fsync rather
//! than sixteen. Reads do not queue: each is its own read transaction.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::thread::JoinHandle;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};

use super::{KvStore, StoreError, check_key, check_value, parse_decimal};

/// All services share one table; the key's first half is the namespace.
const TABLE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// Most writes in one transaction: bounds the time the first of them waits
/// for its answer.
const MAX_BATCH: usize = 1024;

/// A redb-backed [`KvStore`].
pub struct RedbStore {
    db: Arc<Database>,
    /// `None` only while dropping.
    writes: Option<Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

impl Drop for RedbStore {
    /// Stops the writer (it finishes the batch in hand) and waits for it, so
    /// the database file is closed when the store is gone.
    fn drop(&mut self) {
        self.writes.take();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// A write waiting for the writer thread, and where its outcome goes.
struct Job {
    write: Write,
    reply: SyncSender<Result<Outcome, StoreError>>,
}

/// The writes a service can make.
enum Write {
    Set(String, String, Vec<u8>),
    Delete(String, String),
    Increment(String, String, i64),
    CompareAndSwap(String, String, Option<Vec<u8>>, Vec<u8>),
}

/// What a write returns.
enum Outcome {
    Done,
    Flag(bool),
    Number(i64),
}

impl RedbStore {
    /// Opens (or creates) the database file `dir/kv.redb` and starts its
    /// writer thread (which ends when the store is dropped).
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
        let db = Arc::new(db);
        let (writes, jobs) = channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("hive-kv-writer".into())
            .spawn(move || run_writer(&writer_db, &jobs))
            .context("starting the key-value store's writer")?;
        Ok(RedbStore {
            db,
            writes: Some(writes),
            writer: Some(writer),
        })
    }

    /// Hands `write` to the writer thread and waits until it is committed.
    fn write(&self, write: Write) -> Result<Outcome, StoreError> {
        let (reply, outcome) = sync_channel(1);
        let stopped = || StoreError::Storage("the key-value store's writer stopped".into());
        self.writes
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { write, reply })
            .map_err(|_| StoreError::Storage("the key-value store's writer stopped".into()))?;
        outcome
            .recv()
            .map_err(|_| StoreError::Storage("the key-value store's writer stopped".into()))?
    }
}

fn storage(err: impl std::fmt::Display) -> StoreError {
    StoreError::Storage(err.to_string())
}

/// The writer thread: a batch of every job waiting, one transaction, one
/// commit, then every answer.
fn run_writer(db: &Database, jobs: &Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit(db, &batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // A caller that went away no longer needs its answer.
            let _ = job.reply.send(outcome);
        }
    }
}

/// Applies `batch` in order in one transaction and commits it. A write
/// refused on its own terms (a value that is not a number) changes nothing
/// and does not stop the others; a failure of the store fails them all,
/// and nothing is committed.
fn commit(db: &Database, batch: &[Job]) -> Vec<Result<Outcome, StoreError>> {
    let all_failed = |err: StoreError| {
        batch
            .iter()
            .map(|_| Err(StoreError::Storage(err.to_string())))
            .collect()
    };
    let transaction = match db.begin_write() {
        Ok(transaction) => transaction,
        Err(err) => return all_failed(storage(err)),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut table = match transaction.open_table(TABLE) {
            Ok(table) => table,
            Err(err) => return all_failed(storage(err)),
        };
        for job in batch {
            match apply(&mut table, &job.write) {
                Err(StoreError::Storage(reason)) => {
                    return all_failed(StoreError::Storage(reason));
                }
                outcome => outcomes.push(outcome),
            }
        }
    }
    match transaction.commit() {
        Ok(()) => outcomes,
        Err(err) => all_failed(storage(err)),
    }
}

/// One write, inside the batch's transaction.
fn apply(table: &mut Table<(&str, &str), &[u8]>, write: &Write) -> Result<Outcome, StoreError> {
    match write {
        Write::Set(namespace, key, value) => {
            table
                .insert((namespace.as_str(), key.as_str()), value.as_slice())
                .map_err(storage)?;
            Ok(Outcome::Done)
        }
        Write::Delete(namespace, key) => {
            let existed = table
                .remove((namespace.as_str(), key.as_str()))
                .map_err(storage)?
                .is_some();
            Ok(Outcome::Flag(existed))
        }
        Write::Increment(namespace, key, delta) => {
            let current = match table
                .get((namespace.as_str(), key.as_str()))
                .map_err(storage)?
            {
                None => 0,
                Some(value) => parse_decimal(value.value()).ok_or(StoreError::NotANumber)?,
            };
            let next = current
                .checked_add(*delta)
                .ok_or_else(|| StoreError::Storage("increment overflows i64".into()))?;
            table
                .insert(
                    (namespace.as_str(), key.as_str()),
                    next.to_string().as_bytes(),
                )
                .map_err(storage)?;
            Ok(Outcome::Number(next))
        }
        Write::CompareAndSwap(namespace, key, expected, new) => {
            let current = table
                .get((namespace.as_str(), key.as_str()))
                .map_err(storage)?
                .map(|value| value.value().to_vec());
            if current.as_deref() != expected.as_deref() {
                return Ok(Outcome::Flag(false));
            }
            table
                .insert((namespace.as_str(), key.as_str()), new.as_slice())
                .map_err(storage)?;
            Ok(Outcome::Flag(true))
        }
    }
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
        let write = Write::Set(namespace.into(), key.into(), value.to_vec());
        self.write(write).map(|_| ())
    }

    fn delete(&self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        check_key(key)?;
        match self.write(Write::Delete(namespace.into(), key.into()))? {
            Outcome::Flag(existed) => Ok(existed),
            _ => Err(StoreError::Storage(
                "the writer answered out of turn".into(),
            )),
        }
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
        match self.write(Write::Increment(namespace.into(), key.into(), delta))? {
            Outcome::Number(next) => Ok(next),
            _ => Err(StoreError::Storage(
                "the writer answered out of turn".into(),
            )),
        }
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
        let write = Write::CompareAndSwap(
            namespace.into(),
            key.into(),
            expected.map(<[u8]>::to_vec),
            new.to_vec(),
        );
        match self.write(write)? {
            Outcome::Flag(swapped) => Ok(swapped),
            _ => Err(StoreError::Storage(
                "the writer answered out of turn".into(),
            )),
        }
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
