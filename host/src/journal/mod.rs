//! The journal: the event kinds a run records and the replay cursor that
//! answers a resumed run's calls from them. Pure: no I/O (a run's sink,
//! which appends, is in `writes`).

pub mod calls;
mod cursor;
mod event;
mod export;
mod failure;
mod options;
mod summary;

pub use cursor::{Cursor, DEADLINE_STOP, Divergence, Recorded, Replay, RunEnd};
pub use event::{Call, Event, Source, StartSpec, payload_value};
pub use export::Export;
pub use failure::{ErrorInfo, Failure, TimeoutKind};
pub use options::{ActivityOptions, CancellationMode, ParentClose, RetryPolicy};
