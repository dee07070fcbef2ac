//! The journal: the event kinds a run records and the replay cursor that
//! answers a resumed run's calls from them. Pure: no I/O (a run's sink,
//! which appends, is in `writes`).

pub mod calls;
mod cursor;
mod event;
mod export;
mod summary;

pub use cursor::{Cursor, DEADLINE_STOP, Divergence, Recorded, Replay, RunEnd};
pub use event::{
    ActivityOptions, Call, CancellationMode, ErrorInfo, Event, Failure, ParentClose, RetryPolicy,
    Source, StartSpec, TimeoutKind, payload_value,
};
pub use export::Export;
