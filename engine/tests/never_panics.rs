//! Property tests: whatever bytes arrive, validation returns (a plan or a report) and never
//! panics; and a report's positions always lie inside the text.

use proptest::prelude::*;
use steppy_engine::validate::{Format, Paint, validate_bytes, validate_text};

const VALID: &str = include_str!("../../examples/full-release.json");

fn check_report(origin: &str, bytes: &[u8], format: Option<Format>) {
    if let Err(report) = validate_bytes(origin, bytes, format) {
        assert!(!report.diagnostics.is_empty());
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() + 1;
        for d in &report.diagnostics {
            assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}", d.line);
            assert!(d.column >= 1);
        }
        let _ = report.render(Paint::Plain);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_report("fuzz.json", &bytes, None);
        check_report("fuzz.yaml", &bytes, None);
        let with_bom = [&[0xEF, 0xBB, 0xBF][..], &bytes].concat();
        check_report("fuzz.json", &with_bom, None);
        check_report("fuzz.yaml", &with_bom, None);
    }

    #[test]
    fn json_like_text_never_panics(text in "[\\[\\]{}\":,0-9a-zA-Z /*\\n\\\\-]{0,300}") {
        check_report("fuzz.json", text.as_bytes(), Some(Format::Json));
        check_report("fuzz.yaml", text.as_bytes(), Some(Format::Yaml));
    }

    #[test]
    fn mutated_valid_plans_never_panic(at in 0usize..VALID.len(), len in 0usize..40, insert in "[\\[\\]{}\":,0-9a-z -]{0,8}") {
        let mut text = VALID.as_bytes().to_vec();
        let end = (at + len).min(text.len());
        text.splice(at..end, insert.bytes());
        check_report("mutated.json", &text, None);
    }
}

#[test]
fn a_valid_plan_survives_the_round_trip() {
    assert!(validate_text("full-release.json", VALID, None).is_ok());
}
