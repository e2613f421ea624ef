//! `Store::decide_batch`, the group commit behind the approval API: decisions in one
//! transaction behave exactly as one transaction each would.

use steppy_engine::store::{ApprovalState, Attempt, DecideError, NewApproval, Refusal, Store};

fn approval(store: &Store, exec: &str, key: &str, hash: &str, required: u32) -> String {
    let new = NewApproval {
        execution_id: exec.into(),
        stage: 0,
        index: 0,
        idempotency_key: key.into(),
        token_sha256: hash.into(),
        message: "ship it?".into(),
        approvers: vec![],
        required,
        forbid_self: false,
        requested_by: "starter".into(),
        deadline_ms: None,
        on_timeout: steppy_engine::plan::OnTimeout::Reject,
    };
    store.create_approval(&new, 1_000).expect("create").0.id
}

fn vote(voter: &str, approve: bool) -> Attempt {
    Attempt {
        approve,
        voter: voter.into(),
        comment: None,
        source: "test".into(),
    }
}

#[test]
fn a_batch_serializes_races_and_keeps_every_refusal_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("steppy.db")).unwrap();
    let plan = steppy_engine::validate::validate_text(
        "p.json",
        r#"{"stages": [{"name": "s", "steps": [{"type": "Human", "name": "h", "message": "ok?"}]}]}"#,
        None,
    )
    .unwrap();
    let exec = store.submit(&plan, 1_000, Default::default()).unwrap();
    let single = approval(&store, &exec, "k1", "hash-one", 1);
    let pair = approval(&store, &exec, "k2", "hash-two", 2);

    let results = store
        .decide_batch(
            &[
                ("hash-one".into(), vote("ann", true)),     // decides `single`
                ("hash-one".into(), vote("ben", false)),    // too late: already approved
                ("no-such-hash".into(), vote("eve", true)), // unknown: refused, others unaffected
                ("hash-two".into(), vote("ann", true)),     // 1 of 2
                ("hash-two".into(), vote("ann", true)),     // the same person twice: refused
                ("hash-two".into(), vote("ben", true)),     // 2 of 2: decides `pair`
            ],
            2_000,
        )
        .unwrap();

    assert!(matches!(&results[0], Ok(d) if d.decisive && d.approval.state == ApprovalState::Approved));
    assert!(matches!(&results[1], Err(DecideError::Refused(Refusal::AlreadyDecided { by, .. }, _)) if by == "ann"));
    assert!(matches!(
        &results[2],
        Err(DecideError::Refused(Refusal::UnknownToken, None))
    ));
    assert!(matches!(&results[3], Ok(d) if !d.decisive));
    assert!(matches!(&results[4], Err(DecideError::Refused(_, _))));
    assert!(matches!(&results[5], Ok(d) if d.decisive && d.approval.state == ApprovalState::Approved));

    // Committed: the store agrees, and the refusals are in the history.
    assert_eq!(store.approval(&single).unwrap().state, ApprovalState::Approved);
    assert_eq!(store.approval(&pair).unwrap().state, ApprovalState::Approved);
    let history = store.history(&exec).unwrap();
    let refused = history
        .iter()
        .filter(|e| e.kind == steppy_engine::events::EventType::ApprovalRefused)
        .count();
    assert_eq!(
        refused, 2,
        "the late reject and the second vote are audited; the unknown token has no execution"
    );
}
