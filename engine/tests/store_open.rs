//! Opening the database: one fresh database from many connections at once (several `steppy`
//! processes starting together) works for all of them, migrations applied once, by one of them;
//! and each open mode treats Steppy's files, other applications' files and missing files as
//! documented ([`modes`]), with the integrity check `serve` runs at start.

use std::sync::{Arc, Barrier};
use steppy_engine::store::Store;

#[test]
fn concurrent_first_opens_all_succeed_and_migrate_once() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join("steppy.db"));
        let barrier = Arc::new(Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    Store::open(&path).map(|_| ()).map_err(|e| e.to_string())
                })
            })
            .collect();
        for h in handles {
            let opened = h.join().expect("no panic");
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
        let store = Store::open(&path).unwrap();
        assert!(store.list().unwrap().is_empty());
    }
}

mod modes {
    //! What each [`OpenMode`] does to the file: Steppy's own files are marked, other
    //! applications' files are refused untouched, and a read-only open creates and writes
    //! nothing.

    use rusqlite::Connection;
    use std::path::Path;
    use steppy_engine::store::{APPLICATION_ID, OpenMode, Store, StoreError};

    fn plan() -> steppy_engine::plan::Plan {
        let text = r#"{"stages": [{"name": "s", "steps": [{"type": "Wait", "name": "w", "seconds": 60}]}]}"#;
        steppy_engine::validate::validate_text("p.json", text, None).expect("valid plan")
    }

    fn pragma(path: &Path, name: &str) -> String {
        let conn = Connection::open(path).expect("open");
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .expect("pragma")
    }

    #[test]
    fn new_databases_are_marked_as_steppys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steppy.db");
        drop(Store::open(&path).unwrap());
        assert_eq!(pragma(&path, "application_id"), APPLICATION_ID.to_string());
    }

    #[test]
    fn foreign_files_are_refused_in_every_mode_and_left_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        for (name, setup) in [
            (
                "marked.db",
                "PRAGMA application_id = 42; CREATE TABLE notes (body TEXT);",
            ),
            (
                "unmarked.db",
                "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');",
            ),
            // Not even one of Steppy's tables is enough to pass for Steppy's.
            (
                "lookalike.db",
                "CREATE TABLE executions (id TEXT); PRAGMA user_version = 1;",
            ),
        ] {
            let path = dir.path().join(name);
            Connection::open(&path).unwrap().execute_batch(setup).unwrap();
            let before = std::fs::read(&path).unwrap();
            for mode in [OpenMode::Create, OpenMode::Existing, OpenMode::ReadOnly] {
                let err = Store::open_as(&path, mode)
                    .err()
                    .unwrap_or_else(|| panic!("{name} opened as {mode:?}"));
                assert!(matches!(err, StoreError::Foreign(_)), "{name} {mode:?}: {err}");
                assert!(err.to_string().contains(&path.display().to_string()), "{err}");
            }
            assert_eq!(std::fs::read(&path).unwrap(), before, "{name} was modified");
            assert_eq!(pragma(&path, "journal_mode"), "delete", "{name}");
            assert!(!dir.path().join(format!("{name}-wal")).exists());
        }
    }

    #[test]
    fn a_database_of_an_earlier_steppy_is_adopted_and_marked_by_writers_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steppy.db");
        let id = Store::open(&path)
            .unwrap()
            .submit(&plan(), 1_000, Default::default())
            .unwrap();
        Connection::open(&path)
            .unwrap()
            .execute_batch("PRAGMA application_id = 0")
            .unwrap();
        let reader = Store::open_as(&path, OpenMode::ReadOnly).unwrap();
        assert_eq!(reader.list().unwrap()[0].id, id);
        drop(reader);
        assert_eq!(pragma(&path, "application_id"), "0", "a reader marked the file");
        drop(Store::open_as(&path, OpenMode::Existing).unwrap());
        assert_eq!(pragma(&path, "application_id"), APPLICATION_ID.to_string());
    }

    #[test]
    fn without_a_database_only_create_makes_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no").join("such").join("steppy.db");
        for mode in [OpenMode::Existing, OpenMode::ReadOnly] {
            let err = Store::open_as(&path, mode).err().expect("refused");
            assert!(matches!(err, StoreError::NoDatabase(_)), "{mode:?}: {err}");
            assert!(!dir.path().join("no").exists(), "{mode:?} created a directory");
        }
        // An empty file is no database either, and is left empty.
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        for mode in [OpenMode::Existing, OpenMode::ReadOnly] {
            assert!(
                matches!(Store::open_as(&empty, mode), Err(StoreError::NoDatabase(_))),
                "{mode:?}"
            );
        }
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
        // Create adopts the empty file.
        Store::open_as(&empty, OpenMode::Create)
            .unwrap()
            .submit(&plan(), 1_000, Default::default())
            .unwrap();
        assert!(Store::open_as(&path, OpenMode::Create).is_ok());
    }

    #[test]
    fn a_read_only_store_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steppy.db");
        let id = Store::open(&path)
            .unwrap()
            .submit(&plan(), 1_000, Default::default())
            .unwrap();
        let before = std::fs::read(&path).unwrap();
        let reader = Store::open_as(&path, OpenMode::ReadOnly).unwrap();
        assert_eq!(reader.load(&id).unwrap().summary.id, id);
        assert!(
            reader
                .request_abort(&id, steppy_engine::executor::RunningWork::LetFinish, 2_000)
                .is_err(),
            "a read-only store wrote"
        );
        drop(reader);
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_read_only_open_brings_an_earlier_schema_up_to_date_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steppy.db");
        drop(Store::open(&path).unwrap());
        // As a database of the Steppy before migration 5 (Step Functions runs) left it: also
        // without what migration 6 changed (the plan in the executions row).
        Connection::open(&path)
            .unwrap()
            .execute_batch(
                "DROP TABLE sfn_runs; DROP TABLE plans; DROP TABLE stages;
                 ALTER TABLE executions DROP COLUMN stage_count;
                 ALTER TABLE executions ADD COLUMN plan_json TEXT NOT NULL DEFAULT '{}';
                 PRAGMA user_version = 4;",
            )
            .unwrap();
        let reader = Store::open_as(&path, OpenMode::ReadOnly).unwrap();
        assert!(reader.sfn_runs().unwrap().is_empty());
    }

    #[test]
    fn the_integrity_check_passes_a_sound_file_and_refuses_damaged_pages() {
        use std::io::{Seek, SeekFrom, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steppy.db");
        let store = Store::open(&path).unwrap();
        let text = format!(
            r#"{{"stages": [{{"name": "s", "steps": [{{"type": "Notify", "name": "n", "message": "{}"}}]}}]}}"#,
            "x".repeat(4000)
        );
        let big = steppy_engine::validate::validate_text("p.json", &text, None).unwrap();
        for i in 0..40 {
            store.submit(&big, 1_000 + i, Default::default()).unwrap();
        }
        store.check_integrity().expect("a sound file passes");
        drop(store);
        let pages = std::fs::metadata(&path).unwrap().len() / 4096;
        assert!(pages > 20, "{pages} pages");
        let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(pages / 2 * 4096)).unwrap();
        f.write_all(&[0xA5; 4 * 4096]).unwrap();
        drop(f);
        let store = Store::open(&path).expect("the first page is intact, so the file opens");
        let err = store.check_integrity().expect_err("damaged pages are found");
        assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
        let message = err.to_string();
        assert!(
            message.contains(&format!(
                "the database {} is damaged (integrity check: ",
                path.display()
            )),
            "{message}"
        );
    }
}
