//! Table-driven: each invalid plan yields exactly one diagnostic, with the right code, JSON
//! pointer, line, column and message. Most plans are written so that the fault sits on its own
//! line, which keeps the expected columns easy to check by eye.

use steppy_engine::validate::{Code, Paint, validate_bytes};

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

const fn case(
    name: &'static str,
    text: &'static str,
    code: Code,
    pointer: &'static str,
    line: usize,
    column: usize,
    message: &'static str,
) -> Case {
    Case {
        name,
        origin: "plan.json",
        text: text.as_bytes(),
        code,
        pointer,
        line,
        column,
        message,
    }
}

const fn yaml(
    name: &'static str,
    text: &'static str,
    code: Code,
    pointer: &'static str,
    line: usize,
    column: usize,
    message: &'static str,
) -> Case {
    Case {
        name,
        origin: "plan.yaml",
        text: text.as_bytes(),
        code,
        pointer,
        line,
        column,
        message,
    }
}

const CASES: &[Case] = &[
    // --- Reading and syntax ---
    case("empty file", "", Code::Syntax, "", 1, 1, "the plan is empty"),
    case(
        "only comments",
        "// nothing here\n",
        Code::Syntax,
        "",
        1,
        1,
        "the plan is empty",
    ),
    Case {
        name: "binary junk",
        origin: "plan.json",
        text: b"{\"stages\":\n\xff\xfe\x00\x01",
        code: Code::Encoding,
        pointer: "",
        line: 2,
        column: 1,
        message: "not UTF-8",
    },
    case(
        "trailing garbage",
        "{\"stages\": []}\nx",
        Code::Syntax,
        "",
        2,
        1,
        "invalid JSON",
    ),
    case(
        "missing comma",
        "{\"name\": \"a\"\n \"stages\": []}",
        Code::Syntax,
        "",
        1,
        13,
        "expected comma",
    ),
    case(
        "single quotes",
        "{\n  'stages': []}",
        Code::Syntax,
        "",
        2,
        3,
        "invalid JSON",
    ),
    case(
        "unterminated comment",
        "{\"stages\": [] /* never closed\n}",
        Code::Syntax,
        "",
        1,
        15,
        "invalid JSON",
    ),
    case(
        "duplicate key",
        "{\"stages\": [],\n \"stages\": []}",
        Code::Syntax,
        "",
        2,
        2,
        "duplicate key \"stages\"",
    ),
    case(
        "number out of range",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": 1e400}]}]}",
        Code::Syntax,
        "",
        2,
        14,
        "cannot be represented",
    ),
    // --- Plan and stage structure ---
    case(
        "top-level array",
        "[1, 2]",
        Code::WrongType,
        "",
        1,
        1,
        "must be an object, not a list",
    ),
    case(
        "top-level string",
        "\"stages\"",
        Code::WrongType,
        "",
        1,
        1,
        "must be an object",
    ),
    case(
        "no stages",
        "{\n  \"name\": \"x\"\n}",
        Code::MissingField,
        "",
        1,
        1,
        "missing the required field \"stages\"",
    ),
    case(
        "stages empty",
        "{\n  \"stages\": []\n}",
        Code::OutOfRange,
        "/stages",
        2,
        13,
        "needs at least 1 stage",
    ),
    case(
        "stages not a list",
        "{\n  \"stages\": {}\n}",
        Code::WrongType,
        "/stages",
        2,
        13,
        "must be a list, not an object",
    ),
    case(
        "misspelled stages",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}],\n  \"stage\": []}",
        Code::UnknownField,
        "/stage",
        2,
        3,
        "unknown field \"stage\" in the plan",
    ),
    case(
        "stage without name",
        "{\"stages\": [\n  {\"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}\n]}",
        Code::MissingField,
        "/stages/0",
        2,
        3,
        "missing the required field \"name\"",
    ),
    case(
        "stage without steps",
        "{\"stages\": [\n  {\"name\": \"s\", \"steps\": []}\n]}",
        Code::OutOfRange,
        "/stages/0/steps",
        2,
        26,
        "needs at least 1 step",
    ),
    case(
        "duplicate stage names",
        "{\"stages\": [\n  {\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]},\n  {\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}\n]}",
        Code::DuplicateName,
        "/stages/1/name",
        3,
        12,
        "stage name \"s\" is already used at /stages/0/name",
    ),
    // --- Steps ---
    case(
        "step without type",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"name\": \"w\", \"seconds\": 1}\n]}]}",
        Code::MissingField,
        "/stages/0/steps/0",
        2,
        3,
        "missing the required field \"type\"",
    ),
    case(
        "misspelled type",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"name\": \"b\", \"codeBuildName\": \"p\",\n  \"type\": \"CodeBuld\"}]}]}",
        Code::UnknownType,
        "/stages/0/steps/0/type",
        2,
        11,
        "\"CodeBuld\" is not a step type",
    ),
    case(
        "lower-case type",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"name\": \"w\", \"seconds\": 1,\n  \"type\": \"wait\"}]}]}",
        Code::UnknownType,
        "/stages/0/steps/0/type",
        2,
        11,
        "\"wait\" is not a step type",
    ),
    case(
        "misspelled field",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\",\n  \"codebuildName\": \"p\"}]}]}",
        Code::UnknownField,
        "/stages/0/steps/0/codebuildName",
        2,
        3,
        "unknown field \"codebuildName\" in CodeBuild step \"b\"",
    ),
    case(
        "field of another type",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\",\n  \"seconds\": 5}]}]}",
        Code::UnknownField,
        "/stages/0/steps/0/seconds",
        2,
        3,
        "unknown field \"seconds\" in Notify step \"n\"",
    ),
    case(
        "CodeBuild without project",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"CodeBuild\", \"name\": \"b\"}\n]}]}",
        Code::MissingField,
        "/stages/0/steps/0",
        2,
        3,
        "missing the required field \"codeBuildName\"",
    ),
    case(
        "CodePipeline without pipeline",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"CodePipelineNoWait\", \"name\": \"p\"}\n]}]}",
        Code::MissingField,
        "/stages/0/steps/0",
        2,
        3,
        "missing the required field \"codePipelineName\"",
    ),
    case(
        "Notify without message",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Notify\", \"name\": \"n\"}\n]}]}",
        Code::MissingField,
        "/stages/0/steps/0",
        2,
        3,
        "missing the required field \"message\"",
    ),
    case(
        "empty message",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\",\n  \"message\": \"\"}]}]}",
        Code::OutOfRange,
        "/stages/0/steps/0/message",
        2,
        14,
        "\"message\" must not be empty",
    ),
    case(
        "seconds as text",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": \"60\"}]}]}",
        Code::WrongType,
        "/stages/0/steps/0/seconds",
        2,
        14,
        "\"seconds\" must be an integer, not the string \"60\"",
    ),
    case(
        "seconds fractional",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": 1.5}]}]}",
        Code::WrongType,
        "/stages/0/steps/0/seconds",
        2,
        14,
        "must be an integer, not the number 1.5",
    ),
    case(
        "seconds negative",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": -5}]}]}",
        Code::OutOfRange,
        "/stages/0/steps/0/seconds",
        2,
        14,
        "\"seconds\" is -5, but must be at least 0",
    ),
    case(
        "wait over a year",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\",\n  \"seconds\": 31536001}]}]}",
        Code::OutOfRange,
        "/stages/0/steps/0/seconds",
        2,
        14,
        "at most 31536000 (365 days)",
    ),
    case(
        "wait always times out",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 60,\n  \"timeoutSeconds\": 30}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/timeoutSeconds",
        2,
        21,
        "would always time out",
    ),
    case(
        "duplicate step names",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1},\n  {\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 2}\n]}]}",
        Code::DuplicateName,
        "/stages/0/steps/1/name",
        3,
        28,
        "step name \"w\" is already used at /stages/0/steps/0/name",
    ),
    case(
        "continueOnFailure as text",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"continueOnFailure\": \"yes\"}]}]}",
        Code::WrongType,
        "/stages/0/steps/0/continueOnFailure",
        2,
        24,
        "must be a boolean",
    ),
    case(
        "retry with no attempts",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"retry\": {\"maxAttempts\": 0}}]}]}",
        Code::OutOfRange,
        "/stages/0/steps/0/retry/maxAttempts",
        2,
        28,
        "\"maxAttempts\" is 0, but must be at least 1",
    ),
    case(
        "retry misspelled",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"retry\": {\"maxAttempt\": 2}}]}]}",
        Code::UnknownField,
        "/stages/0/steps/0/retry/maxAttempt",
        2,
        13,
        "unknown field \"maxAttempt\"",
    ),
    case(
        "bad source version",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\", \"codeBuildName\": \"proj\",\n  \"sourceVersion\": {\"type\": \"branchh\", \"value\": \"main\"}}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/sourceVersion",
        2,
        20,
        "must be a branch, tag or commit",
    ),
    case(
        "bad variable type",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodeBuild\", \"name\": \"b\", \"codeBuildName\": \"proj\", \"environmentVariableOverrides\": [\n  {\"name\": \"K\", \"value\": \"v\", \"type\": \"SECRETS\"}]}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/environmentVariableOverrides/0/type",
        2,
        39,
        "\"SECRETS\" is not allowed for \"type\"",
    ),
    case(
        "pipeline variable name",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"CodePipeline\", \"name\": \"p\", \"codePipelineName\": \"x\", \"variables\": {\n  \"my var\": \"1\"}}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/variables/my var",
        2,
        3,
        "not a valid pipeline variable name",
    ),
    case(
        "more approvals than approvers",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", \"message\": \"ok?\", \"approvers\": [\"a@x\"],\n  \"requiredApprovals\": 2}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/requiredApprovals",
        2,
        24,
        "2 approvals are required but only 1 approver is listed",
    ),
    case(
        "unknown onTimeout",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", \"message\": \"ok?\",\n  \"onTimeout\": \"aprove\"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/onTimeout",
        2,
        16,
        "\"aprove\" is not allowed for \"onTimeout\"",
    ),
    case(
        "subject on two lines",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\",\n  \"subject\": \"a\\nb\"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/subject",
        2,
        14,
        "one line of ASCII text",
    ),
    case(
        "bad region",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"region\": \"useast1\"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/region",
        2,
        13,
        "\"useast1\" is not an AWS region name",
    ),
    case(
        "role ARN of a user",
        "{\"defaults\": {\n  \"roleArn\": \"arn:aws:iam::123456789012:user/bob\"},\n \"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}]}",
        Code::InvalidValue,
        "/defaults/roleArn",
        2,
        14,
        "is not an IAM role ARN",
    ),
    case(
        "topic ARN of a queue",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Notify\", \"name\": \"n\", \"message\": \"m\",\n  \"topicArn\": \"arn:aws:sqs:us-east-1:123456789012:q\"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/topicArn",
        2,
        15,
        "the service is \"sqs\", not \"sns\"",
    ),
    case(
        "name too long",
        "{\"stages\": [{\"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}],\n  \"name\": \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}]}",
        Code::OutOfRange,
        "/stages/0/name",
        2,
        11,
        "longer than 128 characters",
    ),
    case(
        "maxAttempts fractional",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1,\n  \"retry\": {\"maxAttempts\": 1.5}}]}]}",
        Code::WrongType,
        "/stages/0/steps/0/retry/maxAttempts",
        2,
        28,
        "\"maxAttempts\" must be an integer, not the number 1.5",
    ),
    case(
        "requiredApprovals fractional",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", \"message\": \"ok?\",\n  \"requiredApprovals\": 2.5}]}]}",
        Code::WrongType,
        "/stages/0/steps/0/requiredApprovals",
        2,
        24,
        "\"requiredApprovals\" must be an integer, not the number 2.5",
    ),
    // --- Names people can read and tell apart ---
    case(
        "step name only whitespace",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"seconds\": 1,\n  \"name\": \"   \"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/name",
        2,
        11,
        "the step name is only whitespace",
    ),
    case(
        "stage name only whitespace",
        "{\"stages\": [{\"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}],\n  \"name\": \" \\u00a0 \"}]}",
        Code::InvalidValue,
        "/stages/0/name",
        2,
        11,
        "the stage name is only whitespace",
    ),
    case(
        "plan name only whitespace",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}],\n  \"name\": \"  \"}",
        Code::InvalidValue,
        "/name",
        2,
        11,
        "the plan name is only whitespace",
    ),
    case(
        "NUL in a step name",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"seconds\": 1,\n  \"name\": \"a\\u0000b\"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/name",
        2,
        11,
        "the step name contains the control character U+0000",
    ),
    case(
        "escape in a stage name",
        "{\"stages\": [{\"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}],\n  \"name\": \"\\u001b[2Jdeploy\"}]}",
        Code::InvalidValue,
        "/stages/0/name",
        2,
        11,
        "the stage name contains the control character U+001B",
    ),
    case(
        "line break in a plan name",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}],\n  \"name\": \"release\\r\\nexecution FAKE SUCCEEDED\"}",
        Code::InvalidValue,
        "/name",
        2,
        11,
        "the plan name contains the control character U+000D",
    ),
    case(
        "bidi override in a step name",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Wait\", \"seconds\": 1,\n  \"name\": \"abc\\u202efed\"}]}]}",
        Code::InvalidValue,
        "/stages/0/steps/0/name",
        2,
        11,
        "the step name contains the control character U+202E",
    ),
    case(
        "step names differing by case",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Wait\", \"name\": \"Deploy\", \"seconds\": 1},\n  {\"type\": \"Wait\", \"name\": \"deploy\", \"seconds\": 2}\n]}]}",
        Code::DuplicateName,
        "/stages/0/steps/1/name",
        3,
        28,
        "step name \"deploy\" differs from \"Deploy\" at /stages/0/steps/0/name only by upper and lower case",
    ),
    case(
        "stage names differing by normalization",
        "{\"stages\": [\n  {\"name\": \"caf\\u00e9\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]},\n  {\"name\": \"cafe\\u0301\", \"steps\": [{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": 1}]}\n]}",
        Code::DuplicateName,
        "/stages/1/name",
        3,
        12,
        "stage name \"cafe\u{301}\" differs from \"caf\u{e9}\" at /stages/0/name only by Unicode normalization",
    ),
    case(
        "step names differing by case and normalization",
        "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Wait\", \"name\": \"\\u00c9t\\u00e9\", \"seconds\": 1},\n  {\"type\": \"Wait\", \"name\": \"e\\u0301te\\u0301\", \"seconds\": 2}\n]}]}",
        Code::DuplicateName,
        "/stages/0/steps/1/name",
        3,
        28,
        "only by case and Unicode normalization",
    ),
    // --- YAML ---
    yaml(
        "yaml bad indentation",
        "stages:\n  - name: s\n    steps:\n      - type: Wait\n     name: w\n",
        Code::Syntax,
        "",
        5,
        10,
        "invalid YAML",
    ),
    yaml(
        "yaml misspelled type",
        "stages:\n  - name: s\n    steps:\n      - type: Notfy\n        name: n\n        message: hi\n",
        Code::UnknownType,
        "/stages/0/steps/0/type",
        4,
        15,
        "\"Notfy\" is not a step type",
    ),
    yaml(
        "yaml seconds as text",
        "stages:\n  - name: s\n    steps:\n      - type: Wait\n        name: w\n        seconds: \"60\"\n",
        Code::WrongType,
        "/stages/0/steps/0/seconds",
        6,
        18,
        "must be an integer",
    ),
    yaml(
        "yaml two documents",
        "stages: []\n---\nstages: []\n",
        Code::Syntax,
        "",
        2,
        1,
        "more than one YAML document",
    ),
    yaml(
        "yaml duplicate key",
        "stages: []\nstages: []\n",
        Code::Syntax,
        "",
        2,
        1,
        "duplicate key \"stages\"",
    ),
    yaml(
        "yaml seconds fractional",
        "stages:\n  - name: s\n    steps:\n      - type: Wait\n        name: w\n        seconds: 1.5\n",
        Code::WrongType,
        "/stages/0/steps/0/seconds",
        6,
        18,
        "\"seconds\" must be an integer, not the number 1.5",
    ),
    yaml(
        "yaml NUL in a step name",
        "stages:\n  - name: s\n    steps:\n      - type: Wait\n        seconds: 1\n        name: \"a\\0b\"\n",
        Code::InvalidValue,
        "/stages/0/steps/0/name",
        6,
        15,
        "the step name contains the control character U+0000",
    ),
    yaml(
        "yaml with a byte-order mark, fault on the first line",
        "\u{feff}stages: 5\n",
        Code::WrongType,
        "/stages",
        1,
        9,
        "\"stages\" must be a list, not the number 5",
    ),
    case(
        "json with a byte-order mark, fault on the first line",
        "\u{feff}{\"stages\": 5}",
        Code::WrongType,
        "/stages",
        1,
        12,
        "\"stages\" must be a list, not the number 5",
    ),
];

#[test]
fn every_invalid_plan_gets_exactly_its_one_located_diagnostic() {
    assert!(CASES.len() >= 30);
    let mut failures = Vec::new();
    for c in CASES {
        let Err(report) = validate_bytes(c.origin, c.text, None) else {
            failures.push(format!("{}: accepted", c.name));
            continue;
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
        let ok = d.code == c.code
            && d.pointer == c.pointer
            && d.line == c.line
            && d.column == c.column
            && d.message.contains(c.message);
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
        let text = report.render(Paint::Plain);
        if !text.contains(&format!("{}:{}:{}", c.origin, d.line, d.column))
            || (!d.pointer.is_empty() && !text.contains(&format!("at {}", d.pointer)))
        {
            failures.push(format!("{}: rendering lacks the position or pointer:\n{text}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// Plans that must be accepted: JSON Schema counts `1.0` and `-0` as integers, and a YAML file
/// may start with a byte-order mark as a JSON one may.
#[test]
fn integral_floats_and_byte_order_marks_are_accepted() {
    let wait = |seconds: &str| {
        format!(
            "{{\"stages\": [{{\"name\": \"s\", \"steps\": [{{\"type\": \"Wait\", \"name\": \"w\", \"seconds\": {seconds}, \"timeoutSeconds\": 1e4, \"retry\": {{\"maxAttempts\": 2.0, \"intervalSeconds\": 30.0}}}}]}}]}}"
        )
    };
    for (seconds, expected) in [("1.0", 1), ("-0", 0), ("-0.0", 0), ("3e2", 300), ("0.0", 0)] {
        let text = wait(seconds);
        let plan = validate_bytes("plan.json", text.as_bytes(), None).unwrap_or_else(|r| panic!("{seconds}: {r}"));
        let value = serde_json::to_value(&plan).expect("plan as JSON");
        let step = &value["stages"][0]["steps"][0];
        assert_eq!(step["seconds"], expected, "{seconds}: {step}");
        assert_eq!(step["timeoutSeconds"], 10_000, "{step}");
        assert_eq!(step["retry"]["maxAttempts"], 2, "{step}");
    }
    let human = "{\"stages\": [{\"name\": \"s\", \"steps\": [{\"type\": \"Human\", \"name\": \"h\", \"message\": \"ok?\", \"approvers\": [\"a@x\", \"b@x\"], \"requiredApprovals\": 2.0}]}]}";
    assert!(validate_bytes("plan.json", human.as_bytes(), None).is_ok());
    let yaml = "stages:\n  - name: s\n    steps:\n      - type: Wait\n        name: w\n        seconds: 1.0\n      - type: Wait\n        name: v\n        seconds: -0.0\n";
    assert!(validate_bytes("plan.yaml", yaml.as_bytes(), None).is_ok());
    for (origin, text) in [
        ("plan.yaml", format!("\u{feff}{yaml}")),
        ("plan", format!("\u{feff}{yaml}")),
        ("plan.json", format!("\u{feff}{human}")),
    ] {
        assert!(
            validate_bytes(origin, text.as_bytes(), None).is_ok(),
            "{origin} with a byte-order mark"
        );
    }
}

/// A report quotes the plan's text; what it prints must not carry the plan's control
/// characters to the terminal (a comment may hold anything in JSON; names are refused).
#[test]
fn reports_show_control_characters_as_escapes() {
    let text = "{\"stages\": [{\"name\": \"s\", \"steps\": [\n  {\"type\": \"Wait\", \"seconds\": 1, \"name\": \"\\u001b]0;owned\\u0007\"}, // \u{1b}[2J clears the screen\n  {\"type\": \"Wait\", \"seconds\": 1, \"name\": \"\\u001b]0;owned\\u0007\"}]}]}";
    let report = validate_bytes("plan.json", text.as_bytes(), None).expect_err("refused");
    let rendered = report.render(Paint::Plain);
    assert!(
        !rendered.contains('\u{1b}') && !rendered.contains('\u{7}'),
        "{rendered}"
    );
    assert!(!report.to_string().contains('\u{1b}'), "{report}");
    assert!(
        report
            .diagnostics
            .iter()
            .any(|d| d.code == Code::DuplicateName && d.message.contains("\\u{1b}]0;owned\\u{7}")),
        "{report}"
    );
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
