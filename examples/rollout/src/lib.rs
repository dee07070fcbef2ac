//! Roll a new version across a fleet: batches of cells over rings 0..N.
//! Before each batch, say in chat what is next and how long the rollout
//! sleeps (waits respect business hours, from the journaled clock); then
//! ask each cell's entity workflow to upgrade (an update, accepted or
//! refused while the cell is busy) and wait for its answer. On a
//! failure: halt, page, and wait for an operator's `resume`, `skip` or
//! `abort` signal. The status says where it is and when it wakes up next;
//! search attributes (`version`, `ring`, `cells`: the batch's, joined by
//! commas, `state`) let an operator find rollouts with a query:
//! `weft runs --query "workflow = 'rollout' AND cells STARTS_WITH 'eu-'"`.
mod business;

use business::Hours;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use weft_sdk::{Context, Error, Workflow};

#[derive(Deserialize)]
struct Plan {
    version: String,
    cloud: String,
    batches: Vec<Batch>,
    #[serde(default)]
    business_hours: Option<Hours>,
    #[serde(default = "default_channel")]
    channel: String,
    /// Passed to each cell entity (pause between services, canary window).
    #[serde(default)]
    cell: Value,
    /// How long to wait before asking a busy cell again, in ms.
    #[serde(default = "default_busy_retry")]
    busy_retry_ms: u64,
}

fn default_busy_retry() -> u64 {
    500
}

fn default_channel() -> String {
    "#rollouts".into()
}

#[derive(Deserialize)]
struct Batch {
    ring: u32,
    cells: Vec<String>,
    /// Wait before this batch, in ms.
    #[serde(default)]
    wait_ms: u64,
}

#[derive(Deserialize)]
struct Operator {
    /// `resume` (retry the failed cells), `skip` (move on) or `abort`.
    action: String,
}

fn human(ms: i64) -> String {
    match ms {
        ms if ms >= 3_600_000 => format!("{:.1}h", ms as f64 / 3_600_000.0),
        ms if ms >= 60_000 => format!("{:.1}m", ms as f64 / 60_000.0),
        ms => format!("{:.1}s", ms as f64 / 1000.0),
    }
}

struct Rollout;

impl Rollout {
    /// Where the rollout is, for list queries.
    fn mark(ctx: &Context, plan: &Plan, batch: &Batch, state: &str) {
        ctx.upsert_search_attributes(&json!({
            "version": plan.version,
            "ring": batch.ring,
            "cells": batch.cells.join(","),
            "state": state,
        }));
    }

    fn post(ctx: &Context, plan: &Plan, kind: &str, text: String) -> Result<(), Error> {
        let channel = if kind == "page" {
            "oncall"
        } else {
            plan.channel.as_str()
        };
        ctx.activity("sim/post")
            .input(&json!({ "cloud": plan.cloud, "kind": kind, "channel": channel, "text": text }))
            .call::<Value>()
            .map(|_| ())
    }

    /// Ask every cell to upgrade — an update to its entity, started if
    /// absent, answered at once: accepted, or refused while the cell is
    /// busy, when it is asked again after a pause — then wait for each
    /// accepted upgrade's end (the entity signals it). Answers the cells
    /// that failed, with why.
    fn upgrade_cells(
        ctx: &Context,
        plan: &Plan,
        cells: &[String],
        round: u32,
    ) -> Result<Vec<(String, String)>, Error> {
        let me = ctx.info();
        let mut waiting = Vec::new();
        let mut failed = Vec::new();
        let mut to_ask: Vec<&String> = cells.iter().collect();
        while !to_ask.is_empty() {
            let mut asked = Vec::new();
            for cell in to_ask {
                let request_id = format!("{}-{cell}-{round}", plan.version);
                let mut input = plan.cell.clone();
                if !input.is_object() {
                    input = json!({});
                }
                input["cell"] = json!(cell);
                input["cloud"] = json!(plan.cloud);
                let pending = ctx
                    .update_workflow(&format!("cell-{cell}"), "upgrade")
                    .payload(&json!({ "version": plan.version, "request_id": request_id, "reply_to": me.workflow_id }))
                    .with_start("cell-entity", &input)
                    .start::<Value>()?;
                asked.push((cell, request_id, pending));
            }
            let mut busy = Vec::new();
            for (cell, request_id, pending) in asked {
                match pending.wait() {
                    Ok(_) => waiting.push((cell.clone(), format!("reply-{request_id}"))),
                    Err(e) if e.kind == "upgrade-in-progress" => busy.push(cell),
                    Err(e) => failed.push((cell.clone(), e.message)),
                }
            }
            if !busy.is_empty() {
                ctx.sleep(Duration::from_millis(plan.busy_retry_ms))?;
            }
            to_ask = busy;
        }
        for (cell, reply) in waiting {
            let answer: Value = ctx.signal(&reply).recv()?;
            if answer["ok"] != json!(true) {
                let why = answer["error"].as_str().unwrap_or("failed").to_string();
                failed.push((cell, why));
            }
        }
        Ok(failed)
    }
}

impl Workflow for Rollout {
    type Input = Plan;
    type Output = Value;

    fn run(ctx: &Context, plan: Plan) -> Result<Value, Error> {
        let operator = ctx.signal::<Operator>("operator");
        let mut upgraded = Vec::new();
        let mut skipped = Vec::new();
        let mut round = 0;
        let total = plan.batches.len();
        for (b, batch) in plan.batches.iter().enumerate() {
            let now = ctx.now_ms() as i64;
            let mut wake = now + batch.wait_ms as i64;
            if let Some(hours) = &plan.business_hours {
                wake = hours.next_open(wake);
            }
            let place =
                json!({ "ring": batch.ring, "batch": b + 1, "of": total, "cells": batch.cells });
            Self::post(
                ctx,
                &plan,
                "chat",
                format!(
                    "rollout {}: ring {} batch {}/{} next: {}; sleeping {}",
                    plan.version,
                    batch.ring,
                    b + 1,
                    total,
                    batch.cells.join(", "),
                    human(wake - now)
                ),
            )?;
            // Attributes first: once the status says where it is, a query
            // finds it there too (the writer commits a run's writes in order).
            Self::mark(ctx, &plan, batch, "waiting");
            ctx.set_status(&json!({ "version": plan.version, "at": place, "state": "waiting", "next_wake_at_ms": wake }));
            ctx.sleep(Duration::from_millis((wake - now).max(0) as u64))?;

            let mut cells = batch.cells.clone();
            loop {
                Self::mark(ctx, &plan, batch, "upgrading");
                ctx.set_status(
                    &json!({ "version": plan.version, "at": place, "state": "upgrading" }),
                );
                round += 1;
                let failed = Self::upgrade_cells(ctx, &plan, &cells, round)?;
                let failed_cells: Vec<String> = failed.iter().map(|(c, _)| c.clone()).collect();
                upgraded.extend(cells.iter().filter(|c| !failed_cells.contains(c)).cloned());
                if failed.is_empty() {
                    break;
                }
                let why: Vec<String> = failed.iter().map(|(c, e)| format!("{c}: {e}")).collect();
                let text = format!(
                    "rollout {} halted in ring {} batch {}: {}",
                    plan.version,
                    batch.ring,
                    b + 1,
                    why.join("; ")
                );
                Self::post(ctx, &plan, "page", text.clone())?;
                Self::post(
                    ctx,
                    &plan,
                    "chat",
                    format!("{text}. Waiting for an operator."),
                )?;
                Self::mark(ctx, &plan, batch, "halted");
                ctx.set_status(&json!({ "version": plan.version, "at": place, "state": "halted", "failed": why }));
                match operator.recv()?.action.as_str() {
                    "resume" => cells = failed_cells,
                    "skip" => {
                        skipped.extend(failed_cells);
                        break;
                    }
                    _ => {
                        Self::post(
                            ctx,
                            &plan,
                            "chat",
                            format!("rollout {} aborted", plan.version),
                        )?;
                        return Err(Error::new(
                            "aborted",
                            format!("aborted by an operator: {text}"),
                        ));
                    }
                }
            }
            if cfg!(feature = "summary") && ctx.patched("batch-summary") {
                Self::post(
                    ctx,
                    &plan,
                    "chat",
                    format!(
                        "rollout {}: ring {} batch {}/{} done",
                        plan.version,
                        batch.ring,
                        b + 1,
                        total
                    ),
                )?;
            }
        }
        Self::post(
            ctx,
            &plan,
            "chat",
            format!("rollout {} done: {} cells", plan.version, upgraded.len()),
        )?;
        ctx.upsert_search_attributes(&json!({ "state": "done" }));
        ctx.set_status(&json!({ "version": plan.version, "state": "done" }));
        Ok(json!({ "version": plan.version, "upgraded": upgraded, "skipped": skipped }))
    }
}

weft_sdk::workflow!(Rollout);
