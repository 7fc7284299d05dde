//! The dial log in SQLite.
//!
//! **One writer, group commits.** A thread owns the one writing connection
//! and is fed by a bounded queue. It takes whatever records are waiting (up
//! to [`MAX_BATCH`]) and commits them in one transaction, then tells each
//! request that its record is in. A request waits for its own commit, so
//! every answer is sent after its record is committed, while many requests
//! share one commit: under load the cost per dial stays small.
//!
//! **Why `synchronous=NORMAL` in WAL mode is enough.** A commit in WAL mode
//! writes the transaction to the `-wal` file before it returns; with
//! `NORMAL`, SQLite skips the fsync at commit (it syncs at checkpoints). The
//! written pages are in the operating system's page cache, which outlives
//! the process: a `kill -9`, or a panic, of webdial loses nothing that was
//! committed. Only an operating-system crash or a power cut can lose the
//! last commits before a checkpoint; `FULL` would fsync every commit to
//! guard against that too, at several milliseconds a commit on most disks.
//!
//! **Readers** use their own connections (a small pool), so a list never
//! waits for a commit: in WAL mode readers and the writer do not block each
//! other. `data: ":memory:"` is SQLite's `memdb`, shared by this process's
//! connections: the same code, nothing on disk.
//!
//! **Migrations** are the `migrations/NNNN_name.sql` files of the
//! repository, compiled in. At start each one not yet applied runs, in
//! order, in one transaction with its row in `schema_migrations`; a file
//! that is not a webdial dial log, or one written by a newer webdial, is
//! refused with the file's name, never touched.
//!
//! **Checkpoints** (folding the WAL back into the file, where SQLite
//! fsyncs) run every second on a housekeeping thread's own connection in
//! `PASSIVE` mode, so the writer does not wait for the disk.
//!
//! **Retention**: rows older than `retention` are deleted at start and then
//! every tenth of the retention (at most hourly), in small chunks between
//! commits so that a large backlog does not hold up dials.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::{mpsc, oneshot};

use super::{Call, CallState, CallStore, EventRecord, MAX_MESSAGE, Query, Receipt, StoreError, stopped};
use crate::outcome::Status;
use crate::settings::Data;

/// The migrations, in order: (version, file name, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "0001_init.sql", include_str!("../../migrations/0001_init.sql"))];

/// Marks the file as a webdial dial log (`PRAGMA application_id`, "wdl1").
pub const APPLICATION_ID: i64 = 0x7764_6c31;
/// Most records one commit carries.
pub const MAX_BATCH: usize = 1_024;
/// Records that may wait for the writer; past this, requests wait to queue.
pub const QUEUE: usize = 8_192;
/// Rows deleted per transaction by a sweep.
const SWEEP_CHUNK: i64 = 2_000;
/// Most idle reader connections kept.
const MAX_READERS: usize = 4;
/// How long a connection waits for another one's lock (another process on
/// the same file: `webdial dial`, a second gateway).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Most entries `data: ":memory:"` keeps (the oldest go first), so a
/// long-running gateway without a file stays bounded whatever its retention.
pub const MEMORY_MAX_ROWS: u64 = 100_000;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Call(Box<Call>, Reply<()>),
    Event(Box<EventRecord>, Reply<()>),
    Sweep(SystemTime, Option<Reply<u64>>),
}

/// How to open (another) connection to the log.
#[derive(Debug, Clone)]
struct Target {
    /// A path, or a `file:` URI for memdb.
    name: String,
    flags: OpenFlags,
    /// For messages: the file, or `:memory:`.
    shown: String,
}

impl Target {
    fn for_data(data: &Data) -> Target {
        let base = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match data {
            Data::File(p) => Target { name: p.display().to_string(), flags: base, shown: p.display().to_string() },
            Data::Memory => {
                // A name of its own per log: two gateways in one process
                // (tests) never share one.
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                Target {
                    name: format!("file:/webdial-{}-{n}?vfs=memdb", std::process::id()),
                    flags: base | OpenFlags::SQLITE_OPEN_URI,
                    shown: ":memory:".into(),
                }
            }
        }
    }

    fn open(&self, create: bool) -> rusqlite::Result<Connection> {
        let flags = if create { self.flags | OpenFlags::SQLITE_OPEN_CREATE } else { self.flags };
        let conn = Connection::open_with_flags(&self.name, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(conn)
    }

    /// `FILE: what: error`, the way every start-up problem is reported.
    fn error(&self, what: &str, e: impl std::fmt::Display) -> String {
        format!("{}: {what}: {e}", self.shown)
    }
}

/// The dial log: a writer thread, reader connections, a retention sweep.
pub struct Log {
    jobs: mpsc::Sender<Job>,
    target: Target,
    readers: Mutex<Vec<Connection>>,
    keeper: Option<std::thread::Thread>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log").field("data", &self.target.shown).finish_non_exhaustive()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.keeper {
            t.unpark();
        }
    }
}

impl Log {
    /// Opens (or creates) the log, applies the migrations it lacks, and
    /// starts the writer and the retention sweep. Every problem is one line,
    /// `FILE: message`.
    pub fn open(data: &Data, retention: Duration) -> Result<Log, String> {
        Log::open_bounded(data, retention, MEMORY_MAX_ROWS)
    }

    /// As [`Log::open`], keeping at most `memory_rows` entries when in memory.
    fn open_bounded(data: &Data, retention: Duration, memory_rows: u64) -> Result<Log, String> {
        let target = Target::for_data(data);
        if let Data::File(path) = data {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if !dir.is_dir() {
                    return Err(target.error("cannot open the dial log", format!("no folder {}", dir.display())));
                }
            }
        }
        let conn = target.open(true).map_err(|e| target.error("cannot open the dial log", e))?;
        prepare(&conn, matches!(data, Data::File(_))).map_err(|e| target.error("cannot use the dial log", e))?;
        migrate(&conn, &target)?;
        check_statements(&conn).map_err(|e| target.error("the dial log's tables are not webdial's", e))?;

        let (jobs, rx) = mpsc::channel(QUEUE);
        let max_rows = matches!(data, Data::Memory).then_some(memory_rows);
        let writer = Writer { conn, rx, retention, max_rows, rows: 0, shown: target.shown.clone() };
        std::thread::Builder::new()
            .name("webdial-dial-log".into())
            .spawn(move || writer.run())
            .map_err(|e| target.error("cannot start the dial log's writer", e))?;
        // The first sweep, now: whatever expired while the gateway was down.
        let _ = jobs.try_send(Job::Sweep(SystemTime::now(), None));

        let stop = Arc::new(AtomicBool::new(false));
        let checkpoints = match data {
            Data::File(_) => Some(target.open(false).map_err(|e| target.error("cannot open the dial log", e))?),
            Data::Memory => None,
        };
        let keeper = spawn_housekeeper(jobs.downgrade(), sweep_every(retention), checkpoints, stop.clone());
        Ok(Log { jobs, target, readers: Mutex::new(Vec::new()), keeper, stop })
    }

    /// Opens the log of `data` for reading, if there is one (`webdial log`):
    /// `Ok(None)` when no file exists yet; the file is never created here.
    pub fn open_existing(data: &Data, retention: Duration) -> Result<Option<Log>, String> {
        match data {
            Data::File(p) if !Path::new(p).exists() => Ok(None),
            _ => Log::open(data, retention).map(Some),
        }
    }

    /// The file, or `:memory:`.
    pub fn shown(&self) -> &str {
        &self.target.shown
    }

    /// Queues a job built around a fresh reply channel.
    fn submit<T: Send + 'static>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Receipt<T> {
        let (tx, rx) = oneshot::channel();
        match self.jobs.try_send(job(tx)) {
            Ok(()) => Receipt::waiting(rx),
            Err(mpsc::error::TrySendError::Full(job)) => {
                let jobs = self.jobs.clone();
                Receipt::later(async move {
                    jobs.send(job).await.map_err(|_| stopped())?;
                    rx.await.unwrap_or_else(|_| Err(stopped()))
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Receipt::ready(Err(stopped())),
        }
    }

    /// Runs `read` on an idle reader connection (a new one if none is idle).
    fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match idle {
            Some(c) => c,
            None => {
                let c = self.target.open(false).map_err(|e| StoreError(self.target.error("cannot read", e)))?;
                c.pragma_update(None, "query_only", true).map_err(|e| StoreError(e.to_string()))?;
                c
            }
        };
        let result = read(&conn).map_err(|e| StoreError(format!("{}: {e}", self.target.shown)));
        let mut idle = self.readers.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < MAX_READERS {
            idle.push(conn);
        }
        result
    }
}

impl CallStore for Log {
    fn remember(&self, call: Call) -> Receipt {
        self.submit(|reply| Job::Call(Box::new(call), reply))
    }

    fn record_event(&self, event: EventRecord) -> Receipt {
        self.submit(|reply| Job::Event(Box::new(event), reply))
    }

    fn find(&self, id: &str) -> Result<Option<Call>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!("SELECT {CALL_COLUMNS} FROM calls WHERE id = ?1"))?
                .query_row([id], call_row)
                .optional()
        })
    }

    fn list(&self, query: &Query) -> Result<Vec<Call>, StoreError> {
        if query.scope.as_ref().is_some_and(Vec::is_empty) || query.limit == 0 {
            return Ok(Vec::new());
        }
        let (sql, values) = list_sql(query);
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), call_row)?;
            rows.collect()
        })
    }

    fn events(&self, dial_id: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, branch, kind, dial_id, call_id, at, body FROM events WHERE dial_id = ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map([dial_id], |r| {
                Ok(EventRecord {
                    id: r.get(0)?,
                    branch: r.get(1)?,
                    kind: r.get(2)?,
                    dial_id: r.get(3)?,
                    call_id: r.get(4)?,
                    at: from_millis(r.get(5)?),
                    json: r.get(6)?,
                    state: None,
                })
            })?;
            rows.collect()
        })
    }

    fn sweep(&self, now: SystemTime) -> Receipt<u64> {
        self.submit(|reply| Job::Sweep(now, Some(reply)))
    }
}

/// How often the retention sweep runs: a tenth of the retention, between a
/// second and an hour, so a row outlives its retention by at most a tenth.
fn sweep_every(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// How often the housekeeper folds the WAL back into the file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// The housekeeping thread, until the log is dropped: queues a retention
/// sweep every `sweep`, and (with a file) checkpoints the WAL every second
/// on its own connection. Checkpoints are where SQLite fsyncs; run here in
/// `PASSIVE` mode, they never hold up the writer, which then never waits
/// for the disk. It holds the queue weakly: it never keeps a dropped log's
/// writer alive.
fn spawn_housekeeper(
    jobs: mpsc::WeakSender<Job>,
    sweep: Duration,
    checkpoints: Option<Connection>,
    stop: Arc<AtomicBool>,
) -> Option<std::thread::Thread> {
    let spawned = std::thread::Builder::new().name("webdial-dial-log-keeper".into()).spawn(move || {
        let mut next_sweep = Instant::now() + sweep;
        loop {
            let next_checkpoint = Instant::now() + CHECKPOINT_EVERY;
            let due = if checkpoints.is_some() { next_sweep.min(next_checkpoint) } else { next_sweep };
            // park_timeout may wake early (unpark, or spuriously).
            while !stop.load(Ordering::Relaxed) && Instant::now() < due {
                std::thread::park_timeout(due.saturating_duration_since(Instant::now()));
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if let Some(conn) = &checkpoints {
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("dial log: checkpoint failed (the writer will checkpoint instead): {e}");
                }
            }
            if Instant::now() >= next_sweep {
                next_sweep = Instant::now() + sweep;
                let Some(jobs) = jobs.upgrade() else { return };
                if jobs.blocking_send(Job::Sweep(SystemTime::now(), None)).is_err() {
                    return;
                }
            }
        }
    });
    match spawned {
        Ok(handle) => Some(handle.thread().clone()),
        Err(e) => {
            tracing::error!("the dial log's housekeeping cannot start ({e}); old rows are deleted at start only");
            None
        }
    }
}

/// Connection settings. For a file: WAL (readers never wait for the
/// writer, and a commit is one sequential write) with `synchronous=NORMAL`
/// (see the module's documentation for why that keeps every commit across
/// a `kill -9`). Reading the application id also makes SQLite read the
/// file's header, so a file that is not a database fails here.
fn prepare(conn: &Connection, file: bool) -> rusqlite::Result<()> {
    let _: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if file {
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("cannot switch to WAL journal mode (got {mode})")),
            ));
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The housekeeper checkpoints; the writer only does past 16 MiB of
        // WAL (should the housekeeper fall behind), so it rarely waits for
        // an fsync.
        conn.pragma_update(None, "wal_autocheckpoint", 4_000)?;
        // Keep the -wal file from staying large after a burst.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    Ok(())
}

/// Applies the migrations the file lacks, each in one transaction.
fn migrate(conn: &Connection, target: &Target) -> Result<(), String> {
    let fail = |what: &str, e: rusqlite::Error| target.error(what, e);
    let app_id: i64 =
        conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(|e| fail("cannot read", e))?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(target.error(
            "not a webdial dial log",
            format!("the file belongs to another program (application_id {app_id:#x}); point data: elsewhere"),
        ));
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| fail("cannot read", e))?;
    if !tables.is_empty() && !tables.iter().any(|t| t == "schema_migrations") {
        return Err(target.error(
            "not a webdial dial log",
            format!("it has tables ({}) but no schema_migrations; point data: elsewhere", tables.join(", ")),
        ));
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| fail("cannot migrate", e))?;
    let result = (|| {
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version INTEGER PRIMARY KEY NOT NULL,
                 name    TEXT NOT NULL,
                 applied INTEGER NOT NULL
             )",
        )
        .map_err(|e| fail("cannot migrate", e))?;
        conn.pragma_update(None, "application_id", APPLICATION_ID).map_err(|e| fail("cannot migrate", e))?;
        let newest: Option<i64> = conn
            .query_row("SELECT max(version) FROM schema_migrations", [], |r| r.get(0))
            .map_err(|e| fail("cannot read schema_migrations", e))?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if let Some(v) = newest.filter(|v| *v > known) {
            return Err(target.error(
                "written by a newer webdial",
                format!("its schema is version {v}, this webdial knows up to {known}; upgrade webdial or point data: elsewhere"),
            ));
        }
        for (version, name, sql) in MIGRATIONS.iter().filter(|m| newest.is_none_or(|v| m.0 > v)) {
            conn.execute_batch(sql).map_err(|e| target.error(&format!("migration {name}"), e))?;
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?1, ?2, ?3)",
                params![version, name, millis(SystemTime::now())],
            )
            .map_err(|e| target.error(&format!("migration {name}"), e))?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => conn.execute_batch("COMMIT").map_err(|e| fail("cannot migrate", e)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// Prepares every statement the log runs, so a file whose tables do not
/// have webdial's columns fails at start, not at the first dial.
fn check_statements(conn: &Connection) -> rusqlite::Result<()> {
    for sql in [INSERT_CALL, INSERT_EVENT, UPDATE_STATE, SWEEP_CALLS, SWEEP_EVENTS] {
        conn.prepare_cached(sql)?;
    }
    let all = Query {
        scope: Some(vec![String::new()]),
        branch: Some(String::new()),
        extension: Some(String::new()),
        number: Some(String::new()),
        action: Some(String::new()),
        since: Some(UNIX_EPOCH),
        before: Some(String::new()),
        limit: 1,
    };
    conn.prepare(&list_sql(&all).0)?;
    conn.prepare("SELECT id, branch, kind, dial_id, call_id, at, body FROM events WHERE dial_id = ?1 ORDER BY id")?;
    Ok(())
}

const CALL_COLUMNS: &str =
    "id, created, branch, action, extension, number, dialled, call_id, dial_id, key, state, status, message";
const INSERT_CALL: &str = "INSERT OR REPLACE INTO calls \
     (id, created, branch, action, extension, number, dialled, call_id, dial_id, key, state, status, message) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
const INSERT_EVENT: &str = "INSERT OR REPLACE INTO events (id, at, branch, kind, dial_id, call_id, body) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
const UPDATE_STATE: &str = "UPDATE calls SET state = ?2 WHERE id = ?1";
const SWEEP_CALLS: &str = "DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE created < ?1 LIMIT ?2)";
const SWEEP_EVENTS: &str = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE at < ?1 LIMIT ?2)";

/// The SQL and parameters of a list. Only filters that are given appear, so
/// each combination is its own (cached) statement.
fn list_sql(q: &Query) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE 1 = 1");
    let mut values: Vec<Value> = Vec::new();
    let text = |s: &str| Value::Text(s.to_string());
    if let Some(scope) = &q.scope {
        let marks = vec!["?"; scope.len()].join(", ");
        sql.push_str(&format!(" AND branch IN ({marks})"));
        values.extend(scope.iter().map(|b| text(b)));
    }
    if let Some(b) = &q.branch {
        sql.push_str(" AND branch = ?");
        values.push(text(b));
    }
    if let Some(e) = &q.extension {
        sql.push_str(" AND extension = ?");
        values.push(text(e));
    }
    if let Some(n) = &q.number {
        sql.push_str(" AND (number = ? OR dialled = ?)");
        values.push(text(n));
        values.push(text(n));
    }
    if let Some(a) = &q.action {
        sql.push_str(" AND action = ?");
        values.push(text(a));
    }
    if let Some(t) = q.since {
        sql.push_str(" AND created >= ?");
        values.push(Value::Integer(millis(t)));
    }
    if let Some(b) = &q.before {
        sql.push_str(" AND id < ?");
        values.push(text(b));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    values.push(Value::Integer(i64::try_from(q.limit).unwrap_or(i64::MAX)));
    (sql, values)
}

fn call_row(r: &Row<'_>) -> rusqlite::Result<Call> {
    let unknown = |i: usize, what: &str, v: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown {what} {v:?} (written by a newer webdial?)").into(),
        )
    };
    let state: String = r.get(10)?;
    let status: String = r.get(11)?;
    Ok(Call {
        id: r.get(0)?,
        created: from_millis(r.get(1)?),
        branch: r.get(2)?,
        action: r.get(3)?,
        extension: r.get(4)?,
        number: r.get(5)?,
        dialled: r.get(6)?,
        call_id: r.get(7)?,
        dial_id: r.get(8)?,
        key: r.get(9)?,
        state: CallState::parse(&state).ok_or_else(|| unknown(10, "state", state.clone()))?,
        status: Status::parse(&status).ok_or_else(|| unknown(11, "status", status.clone()))?,
        message: r.get(12)?,
    })
}

/// Unix milliseconds (0 before the epoch).
fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The writer thread's side.
struct Writer {
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    retention: Duration,
    /// A bound on rows (in memory only), and the rows held, roughly.
    max_rows: Option<u64>,
    rows: u64,
    shown: String,
}

impl Writer {
    fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let mut sweeps = Vec::new();
            self.commit(batch, &mut sweeps);
            for (now, reply) in sweeps {
                let deleted = self.sweep(now);
                if let Some(reply) = reply {
                    let _ = reply.send(deleted);
                }
            }
        }
    }

    /// Commits the records of `batch` in one transaction and answers each;
    /// sweeps are set aside into `sweeps`.
    fn commit(&mut self, batch: Vec<Job>, sweeps: &mut Vec<(SystemTime, Option<Reply<u64>>)>) {
        let mut replies: Vec<(Reply<()>, Result<(), StoreError>)> = Vec::with_capacity(batch.len());
        let records: Vec<Job> = batch
            .into_iter()
            .filter_map(|job| match job {
                Job::Sweep(now, reply) => {
                    sweeps.push((now, reply));
                    None
                }
                record => Some(record),
            })
            .collect();
        if records.is_empty() {
            return;
        }
        if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
            let e = self.error(e);
            for job in records {
                if let Job::Call(_, reply) | Job::Event(_, reply) = job {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            return;
        }
        let mut inserted = 0;
        for job in records {
            let (reply, result) = match job {
                Job::Call(call, reply) => (reply, self.insert_call(&call)),
                Job::Event(event, reply) => (reply, self.insert_event(&event)),
                Job::Sweep(..) => continue,
            };
            inserted += u64::from(result.is_ok());
            replies.push((reply, result.map_err(|e| self.error(e))));
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            let e = self.error(e);
            for (_, r) in &mut replies {
                *r = Err(e.clone());
            }
            inserted = 0;
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        self.rows += inserted;
        if let Some(max) = self.max_rows {
            if self.rows > max + max / 10 {
                self.trim(max);
            }
        }
    }

    fn error(&self, e: rusqlite::Error) -> StoreError {
        StoreError(format!("{}: {e}", self.shown))
    }

    fn insert_call(&self, c: &Call) -> rusqlite::Result<()> {
        let message = c.message.as_deref().map(|m| match m.char_indices().nth(MAX_MESSAGE) {
            Some((cut, _)) => &m[..cut],
            None => m,
        });
        self.conn.prepare_cached(INSERT_CALL)?.execute(params![
            c.id,
            millis(c.created),
            c.branch,
            c.action,
            c.extension,
            c.number,
            c.dialled,
            c.call_id,
            c.dial_id,
            c.key,
            c.state.as_str(),
            c.status.as_str(),
            message,
        ])?;
        Ok(())
    }

    fn insert_event(&self, e: &EventRecord) -> rusqlite::Result<()> {
        self.conn.prepare_cached(INSERT_EVENT)?.execute(params![
            e.id,
            millis(e.at),
            e.branch,
            e.kind,
            e.dial_id,
            e.call_id,
            e.json
        ])?;
        if let (Some(dial), Some(state)) = (&e.dial_id, e.state) {
            self.conn.prepare_cached(UPDATE_STATE)?.execute(params![dial, state.as_str()])?;
        }
        Ok(())
    }

    /// Deletes rows older than the retention as of `now`, a chunk per
    /// transaction, committing the records that arrive in between.
    fn sweep(&mut self, now: SystemTime) -> Result<u64, StoreError> {
        let cutoff = millis(now.checked_sub(self.retention).unwrap_or(UNIX_EPOCH));
        let mut total = 0u64;
        let mut later = Vec::new();
        loop {
            let mut deleted = 0usize;
            for sql in [SWEEP_CALLS, SWEEP_EVENTS] {
                let n = self
                    .conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute(params![cutoff, SWEEP_CHUNK]))
                    .map_err(|e| self.error(e))?;
                deleted = deleted.max(n);
                total += n as u64;
            }
            if (deleted as i64) < SWEEP_CHUNK {
                break;
            }
            // Let waiting dials through before the next chunk.
            let mut waiting = Vec::new();
            while waiting.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(job) => waiting.push(job),
                    Err(_) => break,
                }
            }
            self.commit(waiting, &mut later);
        }
        self.rows = self.rows.saturating_sub(total);
        if total > 0 {
            tracing::info!("dial log: {total} row(s) older than the retention deleted");
        }
        for (_, reply) in later {
            // Asked while this sweep ran: this sweep answers them too.
            if let Some(reply) = reply {
                let _ = reply.send(Ok(0));
            }
        }
        Ok(total)
    }

    /// Keeps the newest `max` entries, and the events no older than the
    /// oldest of them (memory only; ids of both sort by time).
    fn trim(&mut self, max: u64) {
        let over = self.rows.saturating_sub(max);
        let trimmed = self
            .conn
            .execute(
                "DELETE FROM calls WHERE id IN (SELECT id FROM calls ORDER BY id LIMIT ?1)",
                params![i64::try_from(over).unwrap_or(i64::MAX)],
            )
            .and_then(|_| self.conn.execute("DELETE FROM events WHERE id < (SELECT min(id) FROM calls)", []))
            .and_then(|_| self.conn.query_row("SELECT count(*) FROM calls", [], |r| r.get::<_, i64>(0)));
        match trimmed {
            Ok(n) => self.rows = u64::try_from(n).unwrap_or(0),
            Err(e) => tracing::error!("dial log: cannot drop the oldest entries: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, created: SystemTime) -> Call {
        Call {
            id: id.into(),
            branch: "b".into(),
            action: "dial".into(),
            extension: "201".into(),
            number: "187".into(),
            dialled: Some("187".into()),
            call_id: Some("3250".into()),
            dial_id: None,
            key: "-".into(),
            created,
            state: CallState::Requested,
            status: Status::Accepted,
            message: None,
        }
    }

    #[tokio::test]
    async fn memory_keeps_a_bounded_number_of_entries_newest_first() {
        let log = Log::open_bounded(&Data::Memory, Duration::from_secs(3600), 100).unwrap();
        let now = SystemTime::now();
        for i in 0..1000 {
            log.remember(call(&format!("{i:08}"), now)).wait().await.unwrap();
            let count: i64 = log.read(|c| c.query_row("SELECT count(*) FROM calls", [], |r| r.get(0))).unwrap();
            // Trimmed after the commit is answered: one over, at most, when read.
            assert!(count <= 111, "{count}");
        }
        let newest = log.list(&Query { limit: 1, ..Query::default() }).unwrap();
        assert_eq!(newest[0].id, "00000999");
        assert!(log.find("00000000").unwrap().is_none(), "the oldest went first");
        assert!(log.find("00000950").unwrap().is_some());
    }

    #[test]
    fn the_sweep_interval_is_a_tenth_of_the_retention_within_bounds() {
        assert_eq!(sweep_every(Duration::from_secs(30 * 86_400)), Duration::from_secs(3600));
        assert_eq!(sweep_every(Duration::from_secs(600)), Duration::from_secs(60));
        assert_eq!(sweep_every(Duration::from_secs(2)), Duration::from_secs(1));
    }

    #[test]
    fn every_migration_file_is_compiled_in_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS.iter().map(|m| m.1.to_string()).collect();
        assert_eq!(files, listed);
        for (i, (version, name, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
            assert!(name.starts_with(&format!("{version:04}_")), "{name}");
        }
    }
}
