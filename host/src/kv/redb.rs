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
//!
//! A write's answer comes back on a one-shot channel, so its caller (a
//! guest's kv call) awaits it without holding a thread. Reads run on the
//! blocking pool, since one may wait on the disk.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use anyhow::Context;
use redb::{Database, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::oneshot;

use super::{KvStore, StoreError, StoreFuture, check_key, check_value, parse_decimal, refused};

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
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
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

    /// Hands `write` to the writer thread; the answer, once committed,
    /// resolves the returned future, which borrows nothing.
    fn submit(
        &self,
        write: Write,
    ) -> impl Future<Output = Result<Outcome, StoreError>> + Send + 'static {
        let stopped = || StoreError::Storage("the key-value store's writer stopped".into());
        let (reply, outcome) = oneshot::channel();
        let queued = match &self.writes {
            Some(writes) => writes.send(Job { write, reply }).map_err(|_| stopped()),
            None => Err(stopped()),
        };
        async move {
            queued?;
            outcome.await.map_err(|_| stopped())?
        }
    }

    /// Runs `read` on the blocking pool: a read transaction may wait on
    /// the disk, which must not stall an async worker.
    fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let db = self.db.clone();
        Box::pin(async move {
            match tokio::task::spawn_blocking(move || read(&db)).await {
                Ok(result) => result,
                Err(err) => Err(StoreError::Storage(format!("storage task failed: {err}"))),
            }
        })
    }
}

/// The answer of a write that answers yes or no.
fn flag(outcome: Outcome) -> Result<bool, StoreError> {
    match outcome {
        Outcome::Flag(flag) => Ok(flag),
        _ => Err(out_of_turn()),
    }
}

fn out_of_turn() -> StoreError {
    StoreError::Storage("the writer answered out of turn".into())
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
    fn get(&self, namespace: &str, key: &str) -> StoreFuture<Option<Vec<u8>>> {
        if let Err(err) = check_key(key) {
            return refused(err);
        }
        let (namespace, key) = (namespace.to_owned(), key.to_owned());
        self.read(move |db| {
            let read = db.begin_read().map_err(storage)?;
            let table = read.open_table(TABLE).map_err(storage)?;
            let value = table
                .get((namespace.as_str(), key.as_str()))
                .map_err(storage)?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    fn set(&self, namespace: &str, key: &str, value: &[u8]) -> StoreFuture<()> {
        if let Err(err) = check_key(key).and_then(|()| check_value(value)) {
            return refused(err);
        }
        let write = self.submit(Write::Set(namespace.into(), key.into(), value.to_vec()));
        Box::pin(async move { write.await.map(|_| ()) })
    }

    fn delete(&self, namespace: &str, key: &str) -> StoreFuture<bool> {
        if let Err(err) = check_key(key) {
            return refused(err);
        }
        let write = self.submit(Write::Delete(namespace.into(), key.into()));
        Box::pin(async move { flag(write.await?) })
    }

    fn list_keys(&self, namespace: &str, prefix: &str, limit: usize) -> StoreFuture<Vec<String>> {
        let (namespace, prefix) = (namespace.to_owned(), prefix.to_owned());
        self.read(move |db| {
            let read = db.begin_read().map_err(storage)?;
            let table = read.open_table(TABLE).map_err(storage)?;
            let mut keys = Vec::new();
            let start = (namespace.as_str(), prefix.as_str());
            for entry in table.range(start..).map_err(storage)? {
                if keys.len() >= limit {
                    break;
                }
                let (key, _) = entry.map_err(storage)?;
                let (entry_namespace, entry_key) = key.value();
                if entry_namespace != namespace || !entry_key.starts_with(prefix.as_str()) {
                    break;
                }
                keys.push(entry_key.to_string());
            }
            Ok(keys)
        })
    }

    fn increment(&self, namespace: &str, key: &str, delta: i64) -> StoreFuture<i64> {
        if let Err(err) = check_key(key) {
            return refused(err);
        }
        let write = self.submit(Write::Increment(namespace.into(), key.into(), delta));
        Box::pin(async move {
            match write.await? {
                Outcome::Number(next) => Ok(next),
                _ => Err(out_of_turn()),
            }
        })
    }

    fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> StoreFuture<bool> {
        if let Err(err) = check_key(key).and_then(|()| check_value(new)) {
            return refused(err);
        }
        let write = self.submit(Write::CompareAndSwap(
            namespace.into(),
            key.into(),
            expected.map(<[u8]>::to_vec),
            new.to_vec(),
        ));
        Box::pin(async move { flag(write.await?) })
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

    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        store.set("s", "k", b"kept").await.unwrap();
        drop(store);
        let reopened = RedbStore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.get("s", "k").await.unwrap().as_deref(),
            Some(&b"kept"[..])
        );
    }
}
