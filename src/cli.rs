//! The command-line grammar (clap derive): every subcommand and flag, with its help text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "steppy",
    version,
    about = "Run release plans: stages of builds, pipelines, waits, notifications and approvals."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// The Steppy database (default: <data dir>/steppy/steppy.db).
    #[arg(long, global = true, env = "STEPPY_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub params: ParamArgs,
    /// How log lines on standard error look (`steppy serve`'s log: engine trouble, the access
    /// log, decisions): `text` for people, `json` (one object a line) for log shippers.
    /// `RUST_LOG` filters them (default: Steppy's at info).
    #[arg(long, global = true, value_enum, env = "STEPPY_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The format of the log (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per event (`timestamp`, `level`, `target`, `message` and its fields).
    Json,
}

/// Parameter values for the plan a command reads (`validate`, `run`, `submit`, `compile`,
/// `deploy`, `iam-policy`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ParamArgs {
    /// A value for the plan's parameter NAME (`${params.NAME}`); repeatable. Wins over
    /// --params-file.
    #[arg(long = "param", global = true, value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Parameter values from a JSON or YAML file: an object of NAME: VALUE.
    #[arg(long, global = true, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

/// Settings of the AWS executors. AWS itself is configured the standard way:
/// profiles, `AWS_REGION`, `AWS_PROFILE`, `AWS_ENDPOINT_URL`…
#[derive(Debug, Clone, clap::Args)]
pub struct AwsArgs {
    /// SNS topic for notifications and approval requests when the plan names none.
    #[arg(long, global = true, env = "STEPPY_TOPIC_ARN", value_name = "ARN")]
    pub topic_arn: Option<String>,
    /// The URL people reach the approval pages at (e.g. the HTTPS name of a proxy); approval
    /// links, on screen and in e-mails, are built on it. Default: where `serve`/`run` listen
    /// (for `resume`: http://127.0.0.1:8080).
    #[arg(long, global = true, env = "STEPPY_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// How often in-flight builds, pipelines and watched S3 prefixes are read (30s, 500ms, 2m,
    /// 1h; a bare number is seconds).
    #[arg(
        long,
        global = true,
        env = "STEPPY_POLL_INTERVAL",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub poll_interval: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plans and report every problem with its place in the file.
    Validate {
        /// Plan files (JSON with comments, or YAML) or `s3://bucket/key`; `-` reads standard input.
        #[arg(required = true, value_name = "PLAN")]
        plans: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Print the JSON Schema of a plan (for editors and other tools).
    Schema,
    /// Validate, record and run a plan, showing progress until it ends.
    Run {
        /// The plan file, or `s3://bucket/key`.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Record the execution and return at once; `steppy serve` or `steppy resume` runs it.
        #[arg(long)]
        detach: bool,
        /// Who starts the execution (for forbidSelfApproval; default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        started_by: Option<String>,
        /// Address for the approval pages while the run waits (default: a free loopback port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        #[command(flatten)]
        web: WebArgs,
        /// Who runs the plan: this process (`local`), or AWS Step Functions (`sfn`: deploys the
        /// state machine if needed, starts it and follows it here).
        #[arg(long, value_enum, default_value_t = Engine::Local)]
        engine: Engine,
        #[command(flatten)]
        sfn: SfnArgs,
    },
    /// Create or update the AWS Step Functions state machine of a plan; prints its ARN.
    Deploy {
        /// The plan file, or `s3://bucket/key`.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// The engine to deploy to (only `sfn` has something to deploy).
        #[arg(long, value_enum, default_value_t = Engine::Sfn)]
        engine: Engine,
        #[command(flatten)]
        sfn: SfnArgs,
    },
    /// Record a plan for `steppy serve` (or `steppy resume`) to run; prints the execution id.
    Submit {
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Who starts the execution (for forbidSelfApproval; default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        started_by: Option<String>,
    },
    /// Run the engine and its HTTP service until interrupted.
    Serve {
        /// Address for the HTTP service.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        #[command(flatten)]
        web: WebArgs,
        /// Most HTTP connections served at once (default 1024). Never more than the open-file
        /// limit minus 256 descriptors kept for the engine; at the cap the idlest connection is
        /// closed to make room, and when all are busy a new one is answered 503.
        #[arg(long, value_name = "N")]
        max_connections: Option<std::num::NonZeroUsize>,
        /// Start every new plan object under `s3://bucket/prefix/` (once each).
        #[arg(long, value_name = "S3_URL")]
        watch: Option<String>,
    },
    /// Print the plan as an Amazon States Language definition (an AWS Step Functions Standard workflow).
    Compile {
        /// The plan file, or `s3://bucket/key`.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Seconds between two reads of a running CodePipeline (300: a 24-hour pipeline writes at most 3,744 of the 25,000 history events).
        #[arg(long, default_value_t = 300, value_name = "SECONDS")]
        pipeline_poll_seconds: u64,
    },
    /// Print the least-privilege IAM policy (JSON) a plan needs.
    IamPolicy {
        /// The plan file, or `s3://bucket/key`.
        #[arg(value_name = "PLAN")]
        plan: PathBuf,
        /// Print the policy this assumed role needs instead of Steppy's own.
        #[arg(long, value_name = "ROLE_ARN")]
        role: Option<String>,
        /// Include what `serve --watch S3_URL` needs.
        #[arg(long, value_name = "S3_URL")]
        watch: Option<String>,
        /// `sfn`: the policy of the Step Functions execution role (`--role-arn` of `deploy`).
        #[arg(long, value_enum, default_value_t = Engine::Local)]
        engine: Engine,
    },
    /// Finish every unfinished execution (after a crash or a restart), then exit.
    Resume,
    /// List executions, newest first.
    List {
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Show an execution and the state of each step (an id, or a Step Functions execution ARN).
    Status {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
        /// Only the steps of this target of a fan-out stage (`deploy [ID]`).
        #[arg(long, value_name = "ID")]
        target: Option<String>,
        /// Only the steps in this state (pending, running, waiting, succeeded, failed,
        /// timed_out, cancelled, aborted).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
    },
    /// Show the event history of an execution (an id, or a Step Functions execution ARN).
    History {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        format: OutputFormat,
    },
    /// Abort an execution: waiting steps are cancelled; running external jobs are left to finish.
    Abort {
        #[arg(value_name = "ID")]
        id: String,
        /// Stop running external jobs (builds, pipelines) too.
        #[arg(long)]
        stop_running: bool,
    },
    /// Approve a pending approval with the token shown when it was requested.
    Approve {
        #[command(flatten)]
        decision: DecisionArgs,
    },
    /// Reject a pending approval (this aborts its execution).
    Reject {
        #[command(flatten)]
        decision: DecisionArgs,
    },
}

/// Settings of the approval pages and API (`steppy serve`, `steppy run`).
#[derive(Debug, Clone, Args)]
pub struct WebArgs {
    /// Filled from the global `--public-url` (one flag for pages and e-mails alike).
    #[arg(skip)]
    pub public_url: Option<String>,
    /// A header set by an authenticating proxy that names the person deciding
    /// (e.g. X-Forwarded-Email, x-amzn-oidc-identity). Without it, people type their name.
    #[arg(long, value_name = "HEADER")]
    pub identity_header: Option<String>,
    /// A file holding the admin token that starting/aborting executions over HTTP requires
    /// (or set STEPPY_ADMIN_TOKEN). Without one, those endpoints are disabled.
    #[arg(long, value_name = "PATH")]
    pub admin_token_file: Option<PathBuf>,
    /// Print one line per HTTP request to stderr (approval tokens redacted).
    #[arg(long)]
    pub access_log: bool,
}

/// Who runs a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    /// This process, with its SQLite store.
    Local,
    /// AWS Step Functions (a Standard workflow compiled from the plan).
    Sfn,
}

/// The Step Functions state machine of `run --engine sfn` and `deploy`.
#[derive(Debug, Clone, Args)]
pub struct SfnArgs {
    /// The state machine's name (default: made from the plan's name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// The IAM role Step Functions runs the state machine as; needed to create it
    /// (`steppy iam-policy --engine sfn PLAN` prints what it needs).
    #[arg(long, env = "STEPPY_SFN_ROLE_ARN", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Seconds between two reads of a running CodePipeline.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub pipeline_poll_seconds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// What `approve` and `reject` take.
#[derive(Debug, Clone, Args)]
pub struct DecisionArgs {
    #[arg(value_name = "TOKEN", allow_hyphen_values = true)]
    pub token: String,
    /// A comment kept with the decision.
    #[arg(long)]
    pub comment: Option<String>,
    /// Who is deciding (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    pub voter: Option<String>,
    /// Decide through a running `steppy serve` at this URL instead of the database.
    #[arg(long, env = "STEPPY_SERVER", value_name = "URL")]
    pub server: Option<String>,
}
