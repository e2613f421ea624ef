//! The HTML people see, written with maud (every interpolated value is escaped, so a `<script>`
//! in a step message stays text). No JavaScript; the stylesheet is served from this origin
//! ([`STYLESHEET`]) because the Content-Security-Policy forbids inline styles.

use crate::time;
use maud::{DOCTYPE, Markup, html};
use steppy_engine::plan::OnTimeout;
use steppy_engine::store::{ApprovalState, ApprovalView, TaskTokenDecision, TaskTokenState};

/// What the page needs besides the approval.
pub struct PageContext<'a> {
    /// Relative path from the page's URL to the service root (`"../"` under `/approvals/`).
    pub root: &'a str,
    /// The token of the link followed (the form posts back to `{root}approvals/{token}`).
    pub token: &'a str,
    /// `approve` or `reject` if the link preselected one.
    pub preselect: Option<bool>,
    /// The identity from the trusted header, if configured (`Some(None)`: configured, missing).
    pub signed_in: Option<Option<String>>,
    pub now_ms: i64,
}

/// The approval page: context, decisions so far, and (while open) the decision form.
pub fn approval(view: &ApprovalView, ctx: &PageContext<'_>) -> Markup {
    let open = view.state == ApprovalState::Pending && !view.expired_at(ctx.now_ms);
    let title = if open { "Approval needed" } else { "Approval closed" };
    layout(
        ctx.root,
        title,
        html! {
            header.top {
                p.eyebrow { "Steppy · " (view.plan_name.as_deref().unwrap_or("release plan")) }
                h1 { (view.step_name) }
                (state_badge(view, ctx.now_ms))
            }
            section.message aria-label="Message" {
                p #step-message { (view.message) }
            }
            (details(view, ctx.now_ms))
            @if open {
                (form(view, ctx))
            } @else {
                (closed(view, ctx.now_ms))
            }
        },
    )
}

/// A page with one sentence (errors, refusals) and, when known, the approval's state.
pub fn notice(root: &str, title: &str, sentence: &str, view: Option<&ApprovalView>, now_ms: i64) -> Markup {
    layout(
        root,
        title,
        html! {
            header.top {
                p.eyebrow { "Steppy" }
                h1 { (title) }
            }
            p.notice #notice { (sentence) }
            @if let Some(v) = view {
                section.message aria-label="Message" { p #step-message { (v.message) } }
                (details(v, now_ms))
            }
        },
    )
}

fn layout(root: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (title) " · Steppy" }
                link rel="stylesheet" href={ (root) "assets/approval.css" };
            }
            body { main.card { (body) } }
        }
    }
}

fn state_badge(view: &ApprovalView, now_ms: i64) -> Markup {
    let (class, text) = match view.state {
        ApprovalState::Pending if view.expired_at(now_ms) => ("badge expired", "Expired".to_string()),
        ApprovalState::Pending => (
            "badge pending",
            format!("Waiting · {} of {} approvals", view.approvals_so_far(), view.required),
        ),
        ApprovalState::Approved => ("badge approved", "Approved".to_string()),
        ApprovalState::Rejected => ("badge rejected", "Rejected".to_string()),
        ApprovalState::Cancelled => ("badge expired", "Cancelled".to_string()),
    };
    html! { p class=(class) #state { (text) } }
}

fn details(view: &ApprovalView, now_ms: i64) -> Markup {
    html! {
        dl.details {
            dt { "Plan" } dd { (view.plan_name.as_deref().unwrap_or("(unnamed)")) }
            dt { "Execution" } dd { code { (view.execution_id) } " · " (view.execution_state.to_lowercase()) }
            dt { "Stage" } dd { (view.stage + 1) ". " (view.stage_name) }
            dt { "Step" } dd { (view.step_name) }
            dt { "Started by" } dd { (view.requested_by) }
            @if !view.approvers.is_empty() {
                dt { "Approvers" } dd { (view.approvers.join(", ")) }
            }
            dt { "Needs" } dd { (view.required) " approval" @if view.required != 1 { "s" } "; any reject aborts the release" }
            dt { "Expires" }
            dd #expiry {
                @match view.deadline_ms {
                    Some(d) => { (time::utc(d)) " (" (time::relative(d, now_ms)) "); then " (match view.on_timeout { OnTimeout::Approve => "approved", OnTimeout::Reject => "rejected" }) " automatically" },
                    None => "never (waits for a decision)",
                }
            }
            dt { "Decisions" } dd { (votes(view)) }
        }
    }
}

fn votes(view: &ApprovalView) -> Markup {
    html! {
        @if view.votes.is_empty() {
            span.muted #votes { "nobody has decided yet" }
        } @else {
            ul #votes {
                @for v in &view.votes {
                    li {
                        span class={ "vote " (if v.approve { "yes" } else { "no" }) } { (if v.approve { "Approved" } else { "Rejected" }) }
                        " by " strong { (v.voter) } " · " span.muted { (time::utc(v.at_ms)) }
                        @if let Some(c) = &v.comment { q { (c) } }
                    }
                }
            }
        }
    }
}

fn form(view: &ApprovalView, ctx: &PageContext<'_>) -> Markup {
    html! {
        form.decide method="post" action={ (ctx.root) "approvals/" (ctx.token) } {
            @match ctx.preselect {
                Some(true) => p.hint { "You followed the " strong { "Approve" } " link. Nothing is decided until you press a button below." },
                Some(false) => p.hint { "You followed the " strong { "Reject" } " link. Nothing is decided until you press a button below." },
                None => {},
            }
            @match &ctx.signed_in {
                Some(Some(who)) => p.muted { "Deciding as " strong { (who) } "." },
                Some(None) => p.notice { "Your sign-in proxy did not say who you are; open this link through it to decide." },
                None => {
                    label for="approver" { "Your name or e-mail" }
                    input #approver type="text" name="approver" required maxlength="200" autocomplete="email" placeholder="alice@example.com";
                },
            }
            label for="comment" { "Comment " span.muted { "(optional)" } }
            textarea #comment name="comment" rows="2" maxlength="2000" placeholder="Why? Kept in the execution history." {}
            div.buttons {
                button #approve type="submit" name="decision" value="approve"
                    class={ "approve" (if ctx.preselect == Some(false) { " quiet" } else { "" }) }
                    { "Approve" }
                button #reject type="submit" name="decision" value="reject"
                    class={ "reject" (if ctx.preselect == Some(true) { " quiet" } else { "" }) }
                    { "Reject" }
            }
            p.muted.small { "Needs " (view.required) " approval" @if view.required != 1 { "s" } ". A decision is final." }
        }
    }
}

fn closed(view: &ApprovalView, now_ms: i64) -> Markup {
    let by = view.decided_by.as_deref().unwrap_or("someone");
    let sentence = match view.state {
        ApprovalState::Approved if view.timed_out() => "Approved automatically when it expired.".to_string(),
        ApprovalState::Rejected if view.timed_out() => "Rejected automatically when it expired.".to_string(),
        ApprovalState::Approved => format!("Approved by {by}. A decision is final."),
        ApprovalState::Rejected => format!("Rejected by {by}. A decision is final."),
        ApprovalState::Cancelled => "The execution was aborted before anyone decided.".to_string(),
        ApprovalState::Pending if view.expired_at(now_ms) => {
            "This approval expired; it is being settled as the plan says.".to_string()
        }
        ApprovalState::Pending => String::new(),
    };
    html! { p.notice #closed { (sentence) } }
}

/// What the page of a Step Functions task token needs.
pub struct TaskTokenPage<'a> {
    /// The task token of the link (posted back in a hidden field).
    pub token: &'a str,
    /// `approve` or `reject` if the link preselected one.
    pub preselect: Option<bool>,
    /// As [`PageContext::signed_in`].
    pub signed_in: Option<Option<String>>,
    /// The decision recorded so far, if any.
    pub decision: Option<&'a TaskTokenDecision>,
}

/// The page of an approval on AWS Step Functions (`/humanConfirmation?taskToken=…`): what is
/// known (the decision so far, if any) and, while undecided, the decision form. Steppy knows
/// nothing else about such an approval: the message that brought the person here says it.
pub fn task_token(p: &TaskTokenPage<'_>) -> Markup {
    let title = match p.decision.map(|d| d.state) {
        None => "Approval needed",
        Some(TaskTokenState::Sent) => "Approval decided",
        Some(TaskTokenState::Sending) => "Decision not delivered yet",
        Some(TaskTokenState::Closed) => "Approval closed",
    };
    layout(
        "",
        title,
        html! {
            header.top {
                p.eyebrow { "Steppy · AWS Step Functions approval" }
                h1 { (title) }
                (task_token_badge(p.decision))
            }
            p.notice #about {
                "This link comes from a state machine on AWS Step Functions (a plan compiled with steppy compile, or one deployed by the original Steppy). "
                "This service does not know what it is about: the message that brought you here says what you are deciding. "
                "Whoever holds the link can decide, once."
            }
            @if let Some(d) = p.decision {
                (task_token_details(d))
            }
            @match p.decision {
                None => (task_token_form(p, None)),
                Some(d) if d.state == TaskTokenState::Sending && !d.in_flight => (task_token_form(p, Some(d))),
                Some(_) => {},
            }
        },
    )
}

/// A refusal or failure about a task token, with the decision recorded so far when known.
pub fn task_token_notice(title: &str, sentence: &str, decision: Option<&TaskTokenDecision>) -> Markup {
    layout(
        "",
        title,
        html! {
            header.top {
                p.eyebrow { "Steppy · AWS Step Functions approval" }
                h1 { (title) }
                @if decision.is_some() { (task_token_badge(decision)) }
            }
            p.notice #notice { (sentence) }
            @if let Some(d) = decision {
                (task_token_details(d))
            }
        },
    )
}

fn task_token_badge(decision: Option<&TaskTokenDecision>) -> Markup {
    let (class, text) = match decision {
        None => ("badge pending", "Waiting for a decision"),
        Some(d) if d.state == TaskTokenState::Closed => ("badge expired", "Closed"),
        Some(d) if d.approve => ("badge approved", "Approved"),
        Some(_) => ("badge rejected", "Rejected"),
    };
    html! { p class=(class) #state { (text) } }
}

fn task_token_details(d: &TaskTokenDecision) -> Markup {
    let delivery = match d.state {
        TaskTokenState::Sent => "accepted by Step Functions; the execution has moved on".to_string(),
        TaskTokenState::Sending if d.in_flight => "being sent to Step Functions right now".to_string(),
        TaskTokenState::Sending => format!(
            "recorded, not delivered yet: Step Functions could not be reached ({}); it is sent again automatically while this service runs, or press the button below",
            d.last_error.as_deref().unwrap_or("no answer")
        ),
        TaskTokenState::Closed => format!(
            "not delivered: Step Functions said the task was no longer waiting ({})",
            d.last_error.as_deref().unwrap_or("closed")
        ),
    };
    html! {
        dl.details {
            dt { "Decision" }
            dd #decision {
                span class={ "vote " (if d.approve { "yes" } else { "no" }) } { (if d.approve { "Approved" } else { "Rejected" }) }
                " by " strong { (d.approver) } " · " span.muted { (time::utc(d.decided_ms)) }
                @if let Some(c) = &d.comment { q #comment-text { (c) } }
            }
            dt { "Delivery" } dd #delivery { (delivery) }
        }
    }
}

/// The decision form; with `resend`, only the recorded decision can be confirmed again.
fn task_token_form(p: &TaskTokenPage<'_>, resend: Option<&TaskTokenDecision>) -> Markup {
    html! {
        form.decide method="post" action="humanConfirmation" {
            input type="hidden" name="taskToken" value=(p.token);
            @if resend.is_none() {
                @match p.preselect {
                    Some(true) => p.hint { "You followed the " strong { "Approve" } " link. Nothing is decided until you press a button below." },
                    Some(false) => p.hint { "You followed the " strong { "Reject" } " link. Nothing is decided until you press a button below." },
                    None => {},
                }
            }
            @match &p.signed_in {
                Some(Some(who)) => p.muted { "Deciding as " strong { (who) } "." },
                Some(None) => p.notice { "Your sign-in proxy did not say who you are; open this link through it to decide." },
                None => {
                    label for="approver" { "Your name or e-mail" }
                    input #approver type="text" name="approver" required maxlength="200" autocomplete="email" placeholder="alice@example.com";
                },
            }
            @match resend {
                Some(d) => {
                    input type="hidden" name="decision" value=(if d.approve { "approve" } else { "reject" });
                    div.buttons {
                        button #resend type="submit" class=(if d.approve { "approve" } else { "reject" }) {
                            "Send the recorded decision again"
                        }
                    }
                    p.muted.small { "The decision recorded above is what is sent; it cannot be changed." }
                },
                None => {
                    label for="comment" { "Comment " span.muted { "(optional)" } }
                    textarea #comment name="comment" rows="2" maxlength="2000" placeholder="Why? Sent to Step Functions with the decision." {}
                    div.buttons {
                        button #approve type="submit" name="decision" value="approve"
                            class={ "approve" (if p.preselect == Some(false) { " quiet" } else { "" }) }
                            { "Approve" }
                        button #reject type="submit" name="decision" value="reject"
                            class={ "reject" (if p.preselect == Some(true) { " quiet" } else { "" }) }
                            { "Reject" }
                    }
                    p.muted.small { "A decision is final: the first one recorded is sent to Step Functions." }
                },
            }
        }
    }
}

/// The stylesheet (served at `/assets/approval.css`).
pub const STYLESHEET: &str = r#"
:root { color-scheme: light; --ink: #1d2430; --muted: #5b6676; --line: #e3e7ee; --ok: #1f7a4d; --no: #b42318; --bg: #f4f6f9; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink); font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main.card { max-width: 720px; margin: 24px auto; background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 24px 32px; box-shadow: 0 1px 3px rgba(16,24,40,.06); }
.eyebrow { margin: 0; color: var(--muted); font-size: 14px; text-transform: uppercase; letter-spacing: .04em; }
h1 { margin: 4px 0 8px; font-size: 26px; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.badge { display: inline-block; margin: 0; padding: 2px 10px; border-radius: 999px; font-size: 14px; font-weight: 600; }
.badge.pending { background: #fff4d6; color: #7a5300; }
.badge.approved { background: #dcf5e7; color: var(--ok); }
.badge.rejected { background: #fde4e1; color: var(--no); }
.badge.expired { background: #eceff3; color: var(--muted); }
.message { margin: 16px 0; padding: 14px 16px; background: #f8fafc; border-left: 4px solid #4b6bfb; border-radius: 6px; }
.message p { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 17px; }
dl.details { display: grid; grid-template-columns: 110px 1fr; gap: 4px 16px; margin: 0; font-size: 15px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: anywhere; }
code { font-size: 14px; }
ul#votes { padding-left: 0; list-style: none; margin: 0; }
ul#votes li { padding: 0 0 4px; }
.vote { font-weight: 600; }
.vote.yes { color: var(--ok); }
.vote.no { color: var(--no); }
q { display: block; color: var(--muted); margin-top: 2px; }
.muted { color: var(--muted); }
.small { font-size: 14px; }
form.decide { margin-top: 20px; padding-top: 16px; border-top: 1px solid var(--line); }
label { display: block; font-weight: 600; margin: 10px 0 4px; }
input, textarea { width: 100%; padding: 8px 10px; font: inherit; border: 1px solid #c9d1dc; border-radius: 8px; }
.buttons { display: flex; gap: 12px; margin-top: 16px; }
button { font: inherit; font-weight: 600; padding: 10px 26px; border-radius: 8px; border: 2px solid transparent; cursor: pointer; }
button.approve { background: var(--ok); color: #fff; }
button.reject { background: var(--no); color: #fff; }
button.quiet { background: #fff; }
button.approve.quiet { color: var(--ok); border-color: var(--ok); }
button.reject.quiet { color: var(--no); border-color: var(--no); }
.hint { background: #eef2ff; padding: 10px 12px; border-radius: 8px; margin: 0 0 8px; }
.notice { background: #f1f4f8; padding: 12px 14px; border-radius: 8px; }
"#;
