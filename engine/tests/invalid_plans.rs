//! Table-driven: each invalid plan yields exactly one diagnostic, with the right code, JSON
//! pointer, line, column and message. Most plans are written so that the fault sits on its own
//! line, which keeps the expected columns easy to check by eye.

use steppy_engine::validate::{validate_bytes, Code};

struct Case {
    name: &'static str,
    origin: &'static str,
    text: &'static [u8],
    code: Code,
    pointer: &'static str,
    line: usize,
    column: usize,
    message: &'static str,
}

const fn case(name: &'static str, text: &'static str, code: Code, pointer: &'static str, line: usize, column: usize, message: &'static str) -> Case {
    Case { name, origin: "plan.json", text: text.as_bytes(), code, pointer, line, column, message }
}

const fn yaml(name: &'static str, text: &'static str, code: Code, pointer: &'static str, line: usize, column: usize, message: &'static str) -> Case {
    Case { name, origin: "plan.yaml", text: text.as_bytes(), code, pointer, line, column, message }
}

const CASES: &[Case] = &[
    // --- Reading and syntax ---
    case("empty file", "", Code::Syntax, "", 1, 1, "the plan is empty"),
    case("only comments", "// nothing here\n", Code::Syntax, "", 1, 1, "the plan is empty"),
    Case { name: "binary junk", origin: "plan.json", text: b"{\"stages\":\n\xff\xfe\x00\x01", code: Code::Encoding, pointer: "", line: 2, column: 1, message: "not UTF-8" },
    case("trailing garbage", "{\"stages\": []}\nx", Code::Syntax, "", 2, 1, "invalid JSON"),
    case("missing comma", "{\"name\": \"a\"\n \"stages\": []}", Code::Syntax, "", 1, 13, "expected comma"),
    case("single quotes", "{\n  'stages': []}", Code::Syntax, "", 2, 3, "invalid JSON"),
    case("unterminated comment", "{\"stages\": [] /* never closed\n}", Code::Syntax, "", 1, 15, "invalid JSON"),
    case("duplicate key", "{\"stages\": [],\n \"stages\": []}", Code::Syntax, "", 2, 2, "duplicate key \"stages\""),
    case("number out of range", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": 1e400}]}]}", Code::Syntax, "", 2, 14, "cannot be represented"),
    // --- Plan and stage structure ---
    case("top-level array", "[1, 2]", Code::WrongType, "", 1, 1, "must be an object, not a list"),
    case("top-level string", "\"stages\"", Code::WrongType, "", 1, 1, "must be an object"),
    case("no stages", "{\n  \"name\": \"x\"\n}", Code::MissingField, "", 1, 1, "missing the required field \"stages\""),
    case("stages empty", "{\n  \"stages\": []\n}", Code::OutOfRange, "/stages", 2, 13, "needs at least 1 stage"),
    case("stages not a list", "{\n  \"stages\": {}\n}", Code::WrongType, "/stages", 2, 13, "must be a list, not an object"),
    case("misspelled stages", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}],\n  \"stage\": []}", Code::UnknownField, "/stage", 2, 3, "unknown field \"stage\" in the plan"),
    case("stage without name", "{\"stages\": [\n  {\"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}\n]}", Code::MissingField, "/stages/0", 2, 3, "missing the required field \"name\""),
    case("stage without steps", "{\"stages\": [\n  {\"name\": \"s\", \"steps\": []}\n]}", Code::OutOfRange, "/stages/0/steps", 2, 26, "needs at least 1 step"),
    case("duplicate stage names", "{\"stages\": [\n  {\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]},\n  {\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}\n]}", Code::DuplicateName, "/stages/1/name", 3, 12, "stage name \"s\" is already used at /stages/0/name"),
    // --- Steps ---
    case("step without type", "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"name\": \"w\", \"seconds\": 1}\n]}]}", Code::MissingField, "/stages/0/steps/0", 2, 3, "missing the required field \"type\""),
    case("misspelled type", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"name\": \"b\", \"codeBuildName\": \"p\",\n  \"type\": \"CodeBuld\"}]}]}", Code::UnknownType, "/stages/0/steps/0/type", 2, 11, "\"CodeBuld\" is not a step type"),
    case("lower-case type", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"name\": \"w\", \"seconds\": 1,\n  \"type\": \"wait\"}]}]}", Code::UnknownType, "/stages/0/steps/0/type", 2, 11, "\"wait\" is not a step type"),
    case("misspelled field", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\",\n  \"codebuildName\": \"p\"}]}]}", Code::UnknownField, "/stages/0/steps/0/codebuildName", 2, 3, "unknown field \"codebuildName\" in CodeBuild step \"b\""),
    case("field of another type", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\",\n  \"seconds\": 5}]}]}", Code::UnknownField, "/stages/0/steps/0/seconds", 2, 3, "unknown field \"seconds\" in Notify step \"n\""),
    case("CodeBuild without project", "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"CodeBuild\", \"name\": \"b\"}\n]}]}", Code::MissingField, "/stages/0/steps/0", 2, 3, "missing the required field \"codeBuildName\""),
    case("CodePipeline without pipeline", "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"CodePipelineNoWait\", \"name\": \"p\"}\n]}]}", Code::MissingField, "/stages/0/steps/0", 2, 3, "missing the required field \"codePipelineName\""),
    case("Notify without message", "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Notify\", \"name\": \"n\"}\n]}]}", Code::MissingField, "/stages/0/steps/0", 2, 3, "missing the required field \"message\""),
    case("empty message", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\",\n  \"message\": \"\"}]}]}", Code::OutOfRange, "/stages/0/steps/0/message", 2, 14, "\"message\" must not be empty"),
    case("seconds as text", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": \"60\"}]}]}", Code::WrongType, "/stages/0/steps/0/seconds", 2, 14, "\"seconds\" must be an integer, not the string \"60\""),
    case("seconds fractional", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": 1.5}]}]}", Code::WrongType, "/stages/0/steps/0/seconds", 2, 14, "must be an integer, not the number 1.5"),
    case("seconds negative", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": -5}]}]}", Code::OutOfRange, "/stages/0/steps/0/seconds", 2, 14, "\"seconds\" is -5, but must be at least 0"),
    case("wait over a year", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": 31536001}]}]}", Code::OutOfRange, "/stages/0/steps/0/seconds", 2, 14, "at most 31536000 (365 days)"),
    case("wait always times out", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 60,\n  \"timeoutSeconds\": 30}]}]}", Code::InvalidValue, "/stages/0/steps/0/timeoutSeconds", 2, 21, "would always time out"),
    case("duplicate step names", "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1},\n  {\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 2}\n]}]}", Code::DuplicateName, "/stages/0/steps/1/name", 3, 28, "step name \"w\" is already used at /stages/0/steps/0/name"),
    case("continueOnFailure as text", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"continueOnFailure\": \"yes\"}]}]}", Code::WrongType, "/stages/0/steps/0/continueOnFailure", 2, 24, "must be a boolean"),
    case("retry with no attempts", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"retry\": {\"maxAttempts\": 0}}]}]}", Code::OutOfRange, "/stages/0/steps/0/retry/maxAttempts", 2, 28, "\"maxAttempts\" is 0, but must be at least 1"),
    case("retry misspelled", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"retry\": {\"maxAttempt\": 2}}]}]}", Code::UnknownField, "/stages/0/steps/0/retry/maxAttempt", 2, 13, "unknown field \"maxAttempt\""),
    case("bad source version", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\", \"codeBuildName\": \"proj\",\n  \"sourceVersion\": {\"type\": \"branchh\", \"value\": \"main\"}}]}]}", Code::InvalidValue, "/stages/0/steps/0/sourceVersion", 2, 20, "must be a branch, tag or commit"),
    case("bad variable type", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\", \"codeBuildName\": \"proj\", \"environmentVariableOverrides\": [\n  {\"name\": \"K\", \"value\": \"v\", \"type\": \"SECRETS\"}]}]}]}", Code::InvalidValue, "/stages/0/steps/0/environmentVariableOverrides/0/type", 2, 39, "\"SECRETS\" is not allowed for \"type\""),
    case("pipeline variable name", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodePipeline\", \"name\": \"p\", \"codePipelineName\": \"x\", \"variables\": {\n  \"my var\": \"1\"}}]}]}", Code::InvalidValue, "/stages/0/steps/0/variables/my var", 2, 3, "not a valid pipeline variable name"),
    case("more approvals than approvers", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", \"message\": \"ok?\", \"approvers\": [\"a@x\"],\n  \"requiredApprovals\": 2}]}]}", Code::InvalidValue, "/stages/0/steps/0/requiredApprovals", 2, 24, "2 approvals are required but only 1 approver is listed"),
    case("unknown onTimeout", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", \"message\": \"ok?\",\n  \"onTimeout\": \"aprove\"}]}]}", Code::InvalidValue, "/stages/0/steps/0/onTimeout", 2, 16, "\"aprove\" is not allowed for \"onTimeout\""),
    case("subject on two lines", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\",\n  \"subject\": \"a\\nb\"}]}]}", Code::InvalidValue, "/stages/0/steps/0/subject", 2, 14, "one line of ASCII text"),
    case("bad region", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"region\": \"useast1\"}]}]}", Code::InvalidValue, "/stages/0/steps/0/region", 2, 13, "\"useast1\" is not an AWS region name"),
    case("role ARN of a user", "{\"defaults\": {\n  \"roleArn\": \"arn:aws:iam::123456789012:user/bob\"},\n \"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}]}", Code::InvalidValue, "/defaults/roleArn", 2, 14, "is not an IAM role ARN"),
    case("topic ARN of a queue", "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\",\n  \"topicArn\": \"arn:aws:sqs:us-east-1:123456789012:q\"}]}]}", Code::InvalidValue, "/stages/0/steps/0/topicArn", 2, 15, "the service is \"sqs\", not \"sns\""),
    case("name too long", "{\"stages\": [{\"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}],\n  \"name\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}", Code::OutOfRange, "/stages/0/name", 2, 11, "longer than 128 characters"),
    // --- YAML ---
    yaml("yaml bad indentation", "stages:\n  - name: s\n    steps:\n      - type: Wait\n     name: w\n", Code::Syntax, "", 5, 10, "invalid YAML"),
    yaml("yaml misspelled type", "stages:\n  - name: s\n    steps:\n      - type: Notfy\n        name: n\n        message: hi\n", Code::UnknownType, "/stages/0/steps/0/type", 4, 15, "\"Notfy\" is not a step type"),
    yaml("yaml seconds as text", "stages:\n  - name: s\n    steps:\n      - type: Wait\n        name: w\n        seconds: \"60\"\n", Code::WrongType, "/stages/0/steps/0/seconds", 6, 18, "must be an integer"),
    yaml("yaml two documents", "stages: []\n---\nstages: []\n", Code::Syntax, "", 2, 1, "more than one YAML document"),
    yaml("yaml duplicate key", "stages: []\nstages: []\n", Code::Syntax, "", 2, 1, "duplicate key \"stages\""),
];

#[test]
fn every_invalid_plan_gets_exactly_its_one_located_diagnostic() {
    assert!(CASES.len() >= 30);
    let mut failures = Vec::new();
    for c in CASES {
        let report = match validate_bytes(c.origin, c.text, None) {
            Ok(_) => {
                failures.push(format!("{}: accepted", c.name));
                continue;
            }
            Err(report) => report,
        };
        let got: Vec<String> = report
            .diagnostics
            .iter()
            .map(|d| format!("{:?} {:?} {}:{} {}", d.code, d.pointer, d.line, d.column, d.message))
            .collect();
        let [d] = report.diagnostics.as_slice() else {
            failures.push(format!("{}: expected one diagnostic, got {got:#?}", c.name));
            continue;
        };
        let ok = d.code == c.code && d.pointer == c.pointer && d.line == c.line && d.column == c.column && d.message.contains(c.message);
        if !ok {
            failures.push(format!(
                "{}:\n   expected {:?} {:?} {}:{} …{}…\n   got      {}",
                c.name, c.code, c.pointer, c.line, c.column, c.message, got[0]
            ));
        }
        // Every diagnostic says how to fix it, and the text rendering shows where.
        if d.help.is_none() {
            failures.push(format!("{}: no help line", c.name));
        }
        let text = report.render(false);
        if !text.contains(&format!("{}:{}:{}", c.origin, d.line, d.column)) || (!d.pointer.is_empty() && !text.contains(&format!("at {}", d.pointer))) {
            failures.push(format!("{}: rendering lacks the position or pointer:\n{text}", c.name));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

#[test]
fn two_hundred_thousand_nested_brackets_give_a_clean_error() {
    for (origin, open) in [("deep.json", "["), ("deep.json", "{\"a\":"), ("deep.yaml", "[")] {
        let text = open.repeat(200_000);
        let report = validate_bytes(origin, text.as_bytes(), None).expect_err("refused");
        assert_eq!(report.diagnostics.len(), 1);
        assert_eq!(report.diagnostics[0].code, Code::Syntax, "{origin} {open}");
    }
}

#[test]
fn all_problems_are_reported_in_one_run() {
    let text = "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"CodeBuld\", \"name\": \"a\"},\n  {\"type\": \"Wait\", \"name\": \"b\", \"seconds\": \"x\"},\n  {\"type\": \"Notify\", \"name\": \"b\"}\n]}]}";
    let report = validate_bytes("plan.json", text.as_bytes(), None).unwrap_err();
    let lines: Vec<usize> = report.diagnostics.iter().map(|d| d.line).collect();
    assert_eq!(lines, [2, 3, 4, 4], "{report}");
}

#[test]
fn suggestions_are_machine_readable() {
    let text = "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\", \"codebuildName\": \"p\"}]}]}";
    let report = validate_bytes("plan.json", text.as_bytes(), None).unwrap_err();
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["errors"][0]["suggestion"], "codeBuildName");
    assert_eq!(json["errors"][0]["code"], "unknown-field");
    assert_eq!(json["errors"][0]["line"], 1);
}
