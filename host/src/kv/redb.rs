//! The embedded default backend: one [redb] file under `--data`, and its
//! write log beside it.
//!
//! Writes are group-committed: every write goes to one writer thread, which
//! takes all the writes waiting at that moment (from every service), applies
//! them in order in one transaction, appends what they did to the write log
//! (`log.rs`) as one record with one fsync, and only then commits the
//! transaction (without an fsync of its own) and answers each caller. So a
//! write the host acknowledged survives `kill -9` (the log is applied again
//! on open), readers never see a write that is not yet on disk (the
//! transaction commits after the log's fsync), read-modify-writes
//! (`increment`, `compare-and-swap`) stay atomic (the writes of a batch
//! apply one after another, each seeing the ones before it), and sixteen
//! concurrent writers cost one append and one fsync. redb is committed
//! durably every [`CHECKPOINT_BATCHES`] batches, when the log passes
//! [`CHECKPOINT_BYTES`], when the writer has nothing to do for
//! [`CHECKPOINT_IDLE`], and on close; then the log starts over. Reads do
//! not queue: each is its own read transaction.
//!
//! A write's answer comes back on a one-shot channel, so its caller (a
//! guest's kv call) awaits it without holding a thread. Reads run on the
//! caller's task: no thread hand-off for either.

use std::any::Any;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};
use tokio::sync::oneshot;

use super::log::{Effect, Record, WriteLog};
use super::{KvStore, StoreError, StoreFuture, check_key, check_value, parse_decimal, refused};

/// All services share one table; the key's first half is the namespace.
const TABLE: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("kv");

/// Most writes in one transaction: bounds the time the first of them waits
/// for its answer.
const MAX_BATCH: usize = 1024;

/// Batches between durable redb commits: each commit without an fsync
/// keeps pages redb can only reuse after a durable one.
const CHECKPOINT_BATCHES: u32 = 64;

/// Log size that forces a durable redb commit, bounding the log (and the
/// time to apply it again after a crash).
const CHECKPOINT_BYTES: u64 = 8 << 20;

/// Time without writes after which redb is committed durably anyway.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(50);

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
    /// Taken when the batch applies it.
    write: Option<Write>,
    reply: oneshot::Sender<Result<Outcome, StoreError>>,
}

/// The writes a service can make, and those of a leaf sharing this commit
/// path (the event queue).
enum Write {
    Set(String, String, Vec<u8>),
    Delete(String, String),
    Increment(String, String, i64),
    CompareAndSwap(String, String, Option<Vec<u8>>, Vec<u8>),
    Custom(CustomWrite),
}

/// A write of another leaf: runs inside the batch's transaction.
type CustomWrite =
    Box<dyn FnOnce(&mut Tx<'_, '_>) -> Result<Box<dyn Any + Send>, StoreError> + Send>;

/// What a write returns.
enum Outcome {
    Done,
    Flag(bool),
    Number(i64),
    Custom(Box<dyn Any + Send>),
}

/// The batch's transaction, as a custom write sees it: reads see the
/// writes before it in the batch, and every change is logged, so it is as
/// durable and atomic as a service's own writes. Namespaces starting with
/// `#` are the host's own (no service name can start with one).
pub struct Tx<'t, 'r> {
    table: &'t mut Table<'r, (&'static str, &'static str), &'static [u8]>,
    record: &'t mut Record,
}

impl Tx<'_, '_> {
    /// The value under `namespace`/`key`.
    pub fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .table
            .get((namespace, key))
            .map_err(storage)?
            .map(|value| value.value().to_vec()))
    }

    /// Stores `value` under `namespace`/`key`.
    pub fn set(&mut self, namespace: &str, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.table
            .insert((namespace, key), value)
            .map_err(storage)?;
        self.record.set(namespace, key, value);
        Ok(())
    }

    /// Removes `namespace`/`key`; returns whether it existed.
    pub fn delete(&mut self, namespace: &str, key: &str) -> Result<bool, StoreError> {
        let existed = self
            .table
            .remove((namespace, key))
            .map_err(storage)?
            .is_some();
        if existed {
            self.record.delete(namespace, key);
        }
        Ok(existed)
    }

    /// Up to `limit` entries of `namespace` whose keys start with `prefix`,
    /// in key order, from the first key at or after `from`.
    pub fn scan(
        &self,
        namespace: &str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        scan(&*self.table, namespace, prefix, from, limit)
    }
}

/// Up to `limit` entries of `namespace` in `table` whose keys start with
/// `prefix`, in key order, from the first key at or after `from`.
pub fn scan(
    table: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    namespace: &str,
    prefix: &str,
    from: &str,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let start = if from > prefix { from } else { prefix };
    let mut found = Vec::new();
    for entry in table.range((namespace, start)..).map_err(storage)? {
        if found.len() >= limit {
            break;
        }
        let (key, value) = entry.map_err(storage)?;
        let (entry_namespace, entry_key) = key.value();
        if entry_namespace != namespace || !entry_key.starts_with(prefix) {
            break;
        }
        found.push((entry_key.to_string(), value.value().to_vec()));
    }
    Ok(found)
}

/// A read transaction's view of the store, for a leaf's reads.
pub struct ReadTx {
    table: redb::ReadOnlyTable<(&'static str, &'static str), &'static [u8]>,
}

impl ReadTx {
    /// The value under `namespace`/`key`.
    pub fn get(&self, namespace: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .table
            .get((namespace, key))
            .map_err(storage)?
            .map(|value| value.value().to_vec()))
    }

    /// As [`Tx::scan`].
    pub fn scan(
        &self,
        namespace: &str,
        prefix: &str,
        from: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        scan(&self.table, namespace, prefix, from, limit)
    }
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
        let (mut log, logged) = WriteLog::open(&dir.join("kv.log"))?;
        // Create the table up front so readers never find it missing, and
        // apply again what the log kept from before a crash.
        let write = db
            .begin_write()
            .context("initialising the key-value store")?;
        {
            let mut table = write.open_table(TABLE).context("creating the kv table")?;
            for effect in logged.iter().flatten() {
                redo(&mut table, effect).context("applying the write log")?;
            }
        }
        write.commit().context("initialising the key-value store")?;
        if !logged.is_empty() {
            tracing::info!(
                "applied {} batches of writes from {}'s write log",
                logged.len(),
                path.display()
            );
        }
        log.clear().context("emptying the write log")?;
        let db = Arc::new(db);
        let (writes, jobs) = channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("hive-kv-writer".into())
            .spawn(move || run_writer(&writer_db, &mut log, &jobs))
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
            Some(writes) => writes
                .send(Job {
                    write: Some(write),
                    reply,
                })
                .map_err(|_| stopped()),
            None => Err(stopped()),
        };
        async move {
            queued?;
            outcome.await.map_err(|_| stopped())?
        }
    }

    /// Runs `write` in the writer's next batch: atomic with the batch's
    /// other writes and durable when the future resolves. `write` must
    /// fail only with [`StoreError::Storage`] once it has changed anything
    /// (which fails the whole batch); any other error it returns must come
    /// before its first change.
    pub fn transact<T: Send + 'static>(
        &self,
        write: impl FnOnce(&mut Tx<'_, '_>) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let custom: CustomWrite =
            Box::new(move |tx| write(tx).map(|value| Box::new(value) as Box<dyn Any + Send>));
        let outcome = self.submit(Write::Custom(custom));
        Box::pin(async move {
            match outcome.await? {
                Outcome::Custom(value) => value
                    .downcast::<T>()
                    .map(|value| *value)
                    .map_err(|_| out_of_turn()),
                _ => Err(out_of_turn()),
            }
        })
    }

    /// Runs `read` on a read transaction.
    pub fn read_with<T: Send + 'static>(
        &self,
        read: impl FnOnce(&ReadTx) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        self.read(move |db| {
            let transaction = db.begin_read().map_err(storage)?;
            let table = transaction.open_table(TABLE).map_err(storage)?;
            read(&ReadTx { table })
        })
    }

    /// Runs `read` on the calling task. A read transaction over pages the
    /// kernel has cached takes microseconds, less than the hand-off to the
    /// blocking pool and back that every read used to take (see
    /// `docs/benchmarks.md`, "Reads without the blocking pool"); one that
    /// must wait for the disk holds its worker thread that long.
    fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<T> {
        let db = self.db.clone();
        Box::pin(async move { read(&db) })
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
/// logged record, one commit, then every answer; a durable commit now and
/// then, and one before it ends.
fn run_writer(db: &Database, log: &mut WriteLog, jobs: &Receiver<Job>) {
    let mut since_checkpoint = 0;
    loop {
        // With nothing to checkpoint, sleep until a write comes.
        let next = if since_checkpoint == 0 {
            jobs.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            jobs.recv_timeout(CHECKPOINT_IDLE)
        };
        let first = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                checkpoint(db, log);
                since_checkpoint = 0;
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcomes = commit(db, log, &mut batch);
        for (job, outcome) in batch.into_iter().zip(outcomes) {
            // A caller that went away no longer needs its answer.
            let _ = job.reply.send(outcome);
        }
        since_checkpoint += 1;
        if since_checkpoint >= CHECKPOINT_BATCHES || log.len() >= CHECKPOINT_BYTES {
            checkpoint(db, log);
            since_checkpoint = 0;
        }
    }
    checkpoint(db, log);
}

/// Commits redb durably, which makes every commit before it durable too,
/// and then empties the log. A failure leaves the log as it is (it is
/// applied again on open), so nothing acknowledged is lost.
fn checkpoint(db: &Database, log: &mut WriteLog) {
    let durable = db
        .begin_write()
        .map_err(storage)
        .and_then(|write| write.commit().map_err(storage));
    match durable {
        Ok(()) => {
            if let Err(err) = log.clear() {
                tracing::warn!("cannot empty the key-value store's write log: {err}");
            }
        }
        Err(err) => tracing::warn!("cannot commit the key-value store to disk: {err}"),
    }
}

/// Applies `batch` in order in one transaction, logs what it did and
/// commits it. A write refused on its own terms (a value that is not a
/// number) changes nothing and does not stop the others; a failure of the
/// store fails them all, and nothing is committed.
fn commit(
    db: &Database,
    log: &mut WriteLog,
    batch: &mut [Job],
) -> Vec<Result<Outcome, StoreError>> {
    let jobs = batch.len();
    let all_failed = |err: StoreError| {
        (0..jobs)
            .map(|_| Err(StoreError::Storage(err.to_string())))
            .collect()
    };
    let mut transaction = match db.begin_write() {
        Ok(transaction) => transaction,
        Err(err) => return all_failed(storage(err)),
    };
    // The log makes it durable; redb's own fsync waits for a checkpoint.
    if let Err(err) = transaction.set_durability(Durability::None) {
        return all_failed(storage(err));
    }
    let mut record = Record::default();
    let mut outcomes = Vec::with_capacity(batch.len());
    {
        let mut table = match transaction.open_table(TABLE) {
            Ok(table) => table,
            Err(err) => return all_failed(storage(err)),
        };
        for job in batch.iter_mut() {
            let Some(write) = job.write.take() else {
                outcomes.push(Err(out_of_turn()));
                continue;
            };
            match apply(&mut table, write, &mut record) {
                Err(StoreError::Storage(reason)) => {
                    return all_failed(StoreError::Storage(reason));
                }
                outcome => outcomes.push(outcome),
            }
        }
    }
    // On disk before anyone can read it: until the commit below, the
    // batch is invisible to readers.
    if !record.is_empty()
        && let Err(err) = log.append(&record)
    {
        return all_failed(StoreError::Storage(format!("writing the write log: {err}")));
    }
    // Should this fail, the batch is in the log all the same and is
    // applied on the next open: its callers hear of a failed store, and
    // their writes may still have happened, as with any storage failure.
    match transaction.commit() {
        Ok(()) => outcomes,
        Err(err) => all_failed(storage(err)),
    }
}

/// Applies one logged effect again, on open.
fn redo(table: &mut Table<(&str, &str), &[u8]>, effect: &Effect) -> Result<(), redb::StorageError> {
    match effect {
        Effect::Set {
            namespace,
            key,
            value,
        } => {
            table.insert((namespace.as_str(), key.as_str()), value.as_slice())?;
        }
        Effect::Delete { namespace, key } => {
            table.remove((namespace.as_str(), key.as_str()))?;
        }
    }
    Ok(())
}

/// One write, inside the batch's transaction; what it did goes in `record`.
fn apply(
    table: &mut Table<(&'static str, &'static str), &'static [u8]>,
    write: Write,
    record: &mut Record,
) -> Result<Outcome, StoreError> {
    match write {
        Write::Custom(write) => write(&mut Tx { table, record }).map(Outcome::Custom),
        Write::Set(namespace, key, value) => {
            table
                .insert((namespace.as_str(), key.as_str()), value.as_slice())
                .map_err(storage)?;
            record.set(&namespace, &key, &value);
            Ok(Outcome::Done)
        }
        Write::Delete(namespace, key) => {
            let existed = table
                .remove((namespace.as_str(), key.as_str()))
                .map_err(storage)?
                .is_some();
            if existed {
                record.delete(&namespace, &key);
            }
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
                .checked_add(delta)
                .ok_or_else(|| StoreError::Storage("increment overflows i64".into()))?;
            let text = next.to_string();
            table
                .insert((namespace.as_str(), key.as_str()), text.as_bytes())
                .map_err(storage)?;
            // The value it left, so applying the log again adds nothing.
            record.set(&namespace, &key, text.as_bytes());
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
            record.set(&namespace, &key, &new);
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

    fn keys_after(&self, namespace: &str, after: &str, limit: usize) -> StoreFuture<Vec<String>> {
        let (namespace, after) = (namespace.to_owned(), after.to_owned());
        self.read(move |db| {
            let read = db.begin_read().map_err(storage)?;
            let table = read.open_table(TABLE).map_err(storage)?;
            let start = (namespace.as_str(), after.as_str());
            let mut keys = Vec::new();
            for entry in table
                .range((Bound::Excluded(start), Bound::Unbounded))
                .map_err(storage)?
            {
                if keys.len() >= limit {
                    break;
                }
                let (key, _) = entry.map_err(storage)?;
                let (entry_namespace, entry_key) = key.value();
                if entry_namespace != namespace {
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
    async fn writes_left_in_the_log_by_a_crash_are_applied_on_open() {
        let dir = tempfile::tempdir().unwrap();
        // As a crash leaves it: the batches logged, redb without them.
        let (mut log, _) = WriteLog::open(&dir.path().join("kv.log")).unwrap();
        let mut first = Record::default();
        first.set("s", "k", b"1");
        first.set("s", "gone", b"x");
        log.append(&first).unwrap();
        let mut second = Record::default();
        second.set("s", "k", b"2");
        second.delete("s", "gone");
        log.append(&second).unwrap();
        drop(log);
        let store = RedbStore::open(dir.path()).unwrap();
        assert_eq!(
            store.get("s", "k").await.unwrap().as_deref(),
            Some(&b"2"[..])
        );
        assert_eq!(store.get("s", "gone").await.unwrap(), None);
        assert!(
            WriteLog::records(&dir.path().join("kv.log"))
                .unwrap()
                .is_empty(),
            "the log starts over once applied"
        );
    }

    #[tokio::test]
    async fn an_idle_writer_commits_redb_to_disk_and_empties_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        store.set("s", "k", b"kept").await.unwrap();
        assert_eq!(store.increment("s", "n", 5).await.unwrap(), 5);
        let log = dir.path().join("kv.log");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !WriteLog::records(&log).unwrap().is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the log was never emptied"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The database file alone, as a crash would leave it now, holds both.
        let copy = tempfile::tempdir().unwrap();
        std::fs::copy(dir.path().join("kv.redb"), copy.path().join("kv.redb")).unwrap();
        let db = Database::create(copy.path().join("kv.redb")).unwrap();
        let read = db.begin_read().unwrap();
        let table = read.open_table(TABLE).unwrap();
        let value = |key: &str| table.get(("s", key)).unwrap().map(|v| v.value().to_vec());
        assert_eq!(value("k").as_deref(), Some(&b"kept"[..]));
        assert_eq!(value("n").as_deref(), Some(&b"5"[..]));
    }

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
