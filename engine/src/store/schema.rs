//! Schema migrations: an ordered list of SQL scripts, applied once each, tracked by SQLite's
//! `PRAGMA user_version` (the number of migrations applied so far).

use rusqlite::Connection;

/// Every migration, oldest first. Never edit a released entry; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: executions, steps (materialized current state), events (history), leases, approvals.
    r#"
    CREATE TABLE executions (
        id              TEXT PRIMARY KEY,
        name            TEXT,
        plan_json       TEXT NOT NULL,
        state           TEXT NOT NULL,
        current_stage   INTEGER NOT NULL DEFAULT 0,
        reason          TEXT,
        created_ms      INTEGER NOT NULL,
        updated_ms      INTEGER NOT NULL,
        abort_requested INTEGER NOT NULL DEFAULT 0,
        stop_running    INTEGER NOT NULL DEFAULT 0,
        next_seq        INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX executions_by_state ON executions(state);
    CREATE TABLE steps (
        execution_id TEXT NOT NULL REFERENCES executions(id),
        stage        INTEGER NOT NULL,
        idx          INTEGER NOT NULL,
        name         TEXT NOT NULL,
        type         TEXT NOT NULL,
        state        TEXT NOT NULL,
        attempt      INTEGER NOT NULL DEFAULT 0,
        handle       TEXT,
        deadline_ms  INTEGER,
        retry_at_ms  INTEGER,
        started_ms   INTEGER,
        ended_ms     INTEGER,
        reason       TEXT,
        output       TEXT,
        PRIMARY KEY (execution_id, stage, idx)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        execution_id TEXT NOT NULL,
        seq          INTEGER NOT NULL,
        at_ms        INTEGER NOT NULL,
        type         TEXT NOT NULL,
        stage        INTEGER,
        step         INTEGER,
        details      TEXT NOT NULL,
        PRIMARY KEY (execution_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE leases (
        execution_id TEXT PRIMARY KEY,
        owner        TEXT NOT NULL,
        pid          INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL
    );
    CREATE TABLE approvals (
        id              TEXT PRIMARY KEY,
        execution_id    TEXT NOT NULL,
        stage           INTEGER NOT NULL,
        idx             INTEGER NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        token_sha256    TEXT NOT NULL UNIQUE,
        delivered       INTEGER NOT NULL DEFAULT 0,
        message         TEXT NOT NULL,
        approvers       TEXT NOT NULL,
        required        INTEGER NOT NULL,
        forbid_self     INTEGER NOT NULL,
        requested_by    TEXT NOT NULL,
        deadline_ms     INTEGER,
        on_timeout      TEXT NOT NULL,
        state           TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        decided_ms      INTEGER,
        decided_by      TEXT,
        comment         TEXT
    );
    CREATE TABLE approval_votes (
        approval_id TEXT NOT NULL REFERENCES approvals(id),
        voter       TEXT NOT NULL,
        approve     INTEGER NOT NULL,
        comment     TEXT,
        at_ms       INTEGER NOT NULL,
        PRIMARY KEY (approval_id, voter)
    );
    "#,
    // 2: when the current attempt's start was recorded, so executors can derive deadlines
    // from the intent (a restart before the handle was recorded keeps the same deadline).
    "ALTER TABLE steps ADD COLUMN attempt_started_ms INTEGER;",
    // 3: plans taken in from S3 (`steppy serve --watch`): each (source, key, version) once.
    r#"
    CREATE TABLE intake (
        source       TEXT NOT NULL,
        key          TEXT NOT NULL,
        version      TEXT NOT NULL,
        execution_id TEXT,
        outcome      TEXT NOT NULL,
        at_ms        INTEGER NOT NULL,
        PRIMARY KEY (source, key, version)
    ) WITHOUT ROWID;
    "#,
    // 4: decisions on AWS Step Functions task tokens redeemed by the approval API, keyed by the
    // token's SHA-256 (the token itself is never stored), and every attempt on them (audit).
    r#"
    CREATE TABLE task_token_decisions (
        token_sha256    TEXT PRIMARY KEY,
        approve         INTEGER NOT NULL,
        approver        TEXT NOT NULL,
        comment         TEXT,
        source          TEXT NOT NULL,
        decided_ms      INTEGER NOT NULL,
        state           TEXT NOT NULL,
        send_started_ms INTEGER,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_error      TEXT,
        updated_ms      INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX task_token_decisions_by_state ON task_token_decisions(state);
    CREATE TABLE task_token_attempts (
        id           INTEGER PRIMARY KEY,
        token_sha256 TEXT NOT NULL,
        at_ms        INTEGER NOT NULL,
        outcome      TEXT NOT NULL,
        approve      INTEGER,
        approver     TEXT,
        comment      TEXT,
        source       TEXT NOT NULL,
        detail       TEXT
    );
    CREATE INDEX task_token_attempts_by_token ON task_token_attempts(token_sha256, id);
    "#,
    // 5: Step Functions executions started by `steppy run --engine sfn`: the name is recorded
    // before StartExecution (which is idempotent by name), the ARN once it answered.
    r#"
    CREATE TABLE sfn_runs (
        name              TEXT PRIMARY KEY,
        state_machine_arn TEXT NOT NULL,
        execution_arn     TEXT,
        plan_name         TEXT,
        input             TEXT NOT NULL,
        status            TEXT NOT NULL,
        reason            TEXT,
        created_ms        INTEGER NOT NULL,
        ended_ms          INTEGER
    ) WITHOUT ROWID;
    "#,
    // 6: the plan moves out of the executions row (issue 12). That row is rewritten at every
    // commit (`next_seq`, `updated_ms`), and SQLite rewrites a row whole, overflow pages and all:
    // with the plan inside, each commit of a 100,000-step execution copied megabytes. The plan
    // is written once, to `plans`; stage names (approval views) go to `stages`, the stage count
    // to `executions.stage_count`. A plan that is not valid JSON is moved as it is (loading it
    // reports it) and gets no stage rows.
    r#"
    CREATE TABLE plans (
        execution_id TEXT PRIMARY KEY,
        plan_json    TEXT NOT NULL
    );
    INSERT INTO plans (execution_id, plan_json) SELECT id, plan_json FROM executions;
    CREATE TABLE stages (
        execution_id TEXT NOT NULL,
        idx          INTEGER NOT NULL,
        name         TEXT NOT NULL,
        PRIMARY KEY (execution_id, idx)
    ) WITHOUT ROWID;
    INSERT INTO stages (execution_id, idx, name)
        SELECT e.id, j.key, COALESCE(json_extract(j.value, '$.name'), '')
        FROM executions e, json_each(e.plan_json, '$.stages') j
        WHERE json_valid(e.plan_json) AND json_type(e.plan_json, '$.stages') = 'array';
    ALTER TABLE executions ADD COLUMN stage_count INTEGER NOT NULL DEFAULT 0;
    UPDATE executions SET stage_count = (SELECT COUNT(*) FROM stages s WHERE s.execution_id = executions.id);
    ALTER TABLE executions DROP COLUMN plan_json;
    "#,
];

/// Applies every migration not yet applied, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version = |c: &Connection| {
        c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map(|v| v as usize)
    };
    if version(conn)? >= MIGRATIONS.len() {
        return Ok(()); // the common case: nothing to do, and no write lock taken
    }
    loop {
        // The version is read again *inside* the write transaction: when several processes open
        // a fresh database at once, the ones that waited for the lock see what the first applied.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let applied = version(&tx)?;
        let Some(sql) = MIGRATIONS.get(applied) else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (applied + 1) as i64)?;
        tx.commit()?;
    }
}

/// The schema version this build writes.
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as Steppy left it before migration 6: the plan inside the executions row.
    fn at_version_5() -> Connection {
        let conn = Connection::open_in_memory().expect("in memory");
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).expect("earlier migration");
        }
        conn.pragma_update(None, "user_version", 5).expect("version");
        conn.execute_batch(
            r#"INSERT INTO executions (id, name, plan_json, state, created_ms, updated_ms) VALUES
                 ('ok', 'p', '{"name":"p","stages":[{"name":"build","steps":[]},{"name":"ship","steps":[]}]}', 'SUCCEEDED', 1, 1),
                 ('broken', 'b', '{oops', 'FAILED', 2, 2);
               INSERT INTO approvals (id, execution_id, stage, idx, idempotency_key, token_sha256, message, approvers,
                   required, forbid_self, requested_by, on_timeout, state, created_ms)
                 VALUES ('a', 'ok', 1, 0, 'k', 'h', 'm', '[]', 1, 0, 'me', 'reject', 'pending', 1);"#,
        )
        .expect("rows of version 5");
        conn
    }

    #[test]
    fn migration_6_moves_each_plan_to_its_own_row_and_keeps_stage_names_and_counts() {
        let mut conn = at_version_5();
        migrate(&mut conn).expect("migrate");
        let plans: Vec<(String, String)> = conn
            .prepare("SELECT execution_id, plan_json FROM plans ORDER BY execution_id")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("plans");
        assert_eq!(plans.len(), 2);
        assert_eq!(plans[0], ("broken".to_string(), "{oops".to_string()), "moved as it was");
        assert!(plans[1].1.contains("\"ship\""));
        let stages: Vec<(String, i64, String)> = conn
            .prepare("SELECT execution_id, idx, name FROM stages ORDER BY execution_id, idx")
            .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect())
            .expect("stages");
        assert_eq!(
            stages,
            [("ok".into(), 0, "build".into()), ("ok".into(), 1, "ship".into())]
        );
        let counts: Vec<i64> = conn
            .prepare("SELECT stage_count FROM executions ORDER BY id")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("counts");
        assert_eq!(counts, [0, 2]);
        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_table_info('executions')")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .expect("columns");
        assert!(!columns.iter().any(|c| c == "plan_json"), "{columns:?}");
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version as usize, latest_version());
    }
}
