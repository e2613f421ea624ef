//! Opening one fresh database from many connections at once (several `steppy` processes
//! starting together) must work for all of them: migrations are applied once, by one of them.

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
