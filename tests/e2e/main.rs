//! End-to-end tests: a real `weft serve` process, real components built
//! from the guest crates in `examples/` and `fixtures/`, HTTP over a socket, SQLite on disk.

mod bad_input;
mod batch;
mod cluster;
mod component_builds;
mod controlplane;
mod durability;
mod eviction;
mod failures;
mod limits;
mod metrics;
mod openapi;
mod pause;
mod payloads;
mod postgres;
mod primitives;
mod proxy;
mod reset;
mod schedules;
mod search;
mod support;
mod tenancy;
mod tls;
mod traces;
mod ui;
mod updates;
mod versioning;
mod workflows;
