//! Test harness: a temp SQLite store, the real engine with this build's executors, and the real
//! router served on 127.0.0.1:0; approval tokens are caught where the Human executor hands
//! them out ([`Notices::approval_token`]). [`FakeSfn`] stands in for Step Functions where task
//! tokens are redeemed.
#![allow(dead_code)]

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use steppy_engine::executor::BoxFuture;
use steppy_engine::executor::Notices;
use steppy_engine::scheduler::{Engine, NoObserver};
use steppy_engine::state::ExecutionState;
use steppy_engine::store::Store;
use steppy_human_approval_api::{ApiConfig, AppState, RedeemError, TaskTokens};

/// Tokens as issued: (execution id, step name, token).
#[derive(Default)]
pub struct Tokens(Mutex<Vec<(String, String, String)>>);

impl Notices for Tokens {
    fn notice(&self, _: &str, _: &str, _: &str) {}
    fn approval_token(&self, execution_id: &str, step: &str, token: &str) {
        self.0
            .lock()
            .expect("tokens")
            .push((execution_id.into(), step.into(), token.into()));
    }
}

pub struct Harness {
    pub base: String,
    pub store: Store,
    pub engine: Engine,
    pub tokens: Arc<Tokens>,
    pub client: reqwest::Client,
    /// The state the server runs with (for `resend_pending`).
    pub state: AppState,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(|_| {}).await
    }

    /// Starts everything; `tune` adjusts the service's settings.
    pub async fn start_with(tune: impl FnOnce(&mut ApiConfig)) -> Harness {
        Self::start_full(tune, None).await
    }

    /// Starts everything with `task_tokens` redeeming Step Functions task tokens.
    pub async fn start_with_task_tokens(
        tune: impl FnOnce(&mut ApiConfig),
        task_tokens: Arc<dyn TaskTokens>,
    ) -> Harness {
        Self::start_full(tune, Some(task_tokens)).await
    }

    async fn start_full(tune: impl FnOnce(&mut ApiConfig), task_tokens: Option<Arc<dyn TaskTokens>>) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("steppy.db")).expect("store");
        let tokens = Arc::new(Tokens::default());
        let registry = steppy_executors::local_registry(dir.path().join("outbox.jsonl"));
        let engine = Engine::new(store.clone(), Arc::new(registry), tokens.clone(), Arc::new(NoObserver));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = ApiConfig::new(base.clone());
        tune(&mut config);
        let mut state = AppState::new(store.clone(), config);
        if let Some(t) = task_tokens {
            state = state.with_task_tokens(t);
        }
        tokio::spawn(steppy_human_approval_api::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Harness {
            base,
            store,
            engine,
            tokens,
            client,
            state,
            _dir: dir,
        }
    }

    /// Submits `plan` as started by `started_by`, runs it on the engine in the background, and
    /// returns the execution id and the token of its first approval.
    pub async fn run_plan(&self, plan: Value, started_by: &str) -> (String, String) {
        let plan: steppy_engine::Plan = serde_json::from_value(plan).expect("plan");
        let id = self
            .store
            .submit(
                &plan,
                steppy_engine::clock::system_now_ms(),
                steppy_engine::store::SubmitOptions {
                    started_by: Some(started_by),
                    ..Default::default()
                },
            )
            .expect("submit");
        let engine = self.engine.clone();
        let run_id = id.clone();
        tokio::spawn(async move { engine.run(&[run_id]).await });
        for _ in 0..1000 {
            if let Some(t) = self
                .tokens
                .0
                .lock()
                .expect("tokens")
                .iter()
                .find(|t| t.0 == id)
                .map(|t| t.2.clone())
            {
                return (id, t);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("execution {id} issued no approval token within 10 s");
    }

    pub fn state(&self, id: &str) -> ExecutionState {
        self.store.load(id).expect("load").summary.state
    }

    /// Waits (up to 20 s) for the execution to end and returns how.
    pub async fn finished(&self, id: &str) -> ExecutionState {
        for _ in 0..2000 {
            let s = self.state(id);
            if s.is_terminal() {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("execution {id} did not end within 20 s (state {:?})", self.state(id));
    }

    /// The history's event types and details, as JSON text per event.
    pub fn history(&self, id: &str) -> Vec<(String, Value)> {
        self.store
            .history(id)
            .expect("history")
            .into_iter()
            .map(|e| (e.kind.as_str().to_string(), e.details))
            .collect()
    }

    pub fn count(&self, id: &str, kind: &str) -> usize {
        self.history(id).iter().filter(|(k, _)| k == kind).count()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    /// Posts the decision form as a browser on the page would.
    pub async fn post_form(&self, token: &str, decision: &str, approver: &str, comment: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/approvals/{token}", self.base))
            .header("Sec-Fetch-Site", "same-origin")
            .header("Origin", "null")
            .form(&[("decision", decision), ("approver", approver), ("comment", comment)])
            .send()
            .await
            .expect("POST")
    }
}

/// A plan with one Human step, then a Notify.
pub fn human_plan(human: Value) -> Value {
    let mut step = serde_json::json!({ "type": "Human", "name": "Go / no-go", "message": "Ship release 1.2.3?" });
    if let (Some(s), Some(extra)) = (step.as_object_mut(), human.as_object()) {
        for (k, v) in extra {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::json!({
        "name": "Release 1.2.3",
        "stages": [
            { "name": "Sign-off", "steps": [step] },
            { "name": "Announce", "steps": [{ "type": "Notify", "name": "Tell", "subject": "s", "message": "done" }] }
        ]
    })
}

/// One call the API made to [`FakeSfn`].
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Succeed {
        token: String,
        output: Value,
    },
    Fail {
        token: String,
        error: String,
        cause: String,
    },
}

/// A **fake** Step Functions, in process: it is not AWS and checks nothing about tokens. It
/// exists to count exactly which calls the API makes (a real or moto Step Functions cannot tell
/// us that) and to answer with the errors Step Functions can give, on demand (`answer_next`).
/// The same flow against moto is in `tests/task_tokens_moto.rs`.
#[derive(Default)]
pub struct FakeSfn {
    calls: Mutex<Vec<Call>>,
    script: Mutex<VecDeque<Result<(), RedeemError>>>,
    delay_ms: AtomicU64,
}

impl FakeSfn {
    /// The answer to the next call not yet scripted (by default every call succeeds).
    pub fn answer_next(&self, answer: Result<(), RedeemError>) {
        self.script.lock().expect("script").push_back(answer);
    }

    /// Every call takes this long (so that concurrent requests overlap a send in flight).
    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("calls").clone()
    }

    async fn answer(&self, call: Call) -> Result<(), RedeemError> {
        self.calls.lock().expect("calls").push(call);
        let delay = self.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.script.lock().expect("script").pop_front().unwrap_or(Ok(()))
    }
}

impl TaskTokens for FakeSfn {
    fn succeed<'a>(&'a self, token: &'a str, output_json: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        let output = serde_json::from_str(output_json).expect("the output is JSON");
        Box::pin(self.answer(Call::Succeed {
            token: token.into(),
            output,
        }))
    }

    fn fail<'a>(&'a self, token: &'a str, error: &'a str, cause: &'a str) -> BoxFuture<'a, Result<(), RedeemError>> {
        Box::pin(self.answer(Call::Fail {
            token: token.into(),
            error: error.into(),
            cause: cause.into(),
        }))
    }
}
