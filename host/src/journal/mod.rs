//! The journal: the event kinds a run records, the replay cursor that
//! answers a resumed run's calls from them, and the sink that appends them.

pub mod calls;
mod event;
mod replay;
mod sink;
mod summary;

pub use event::{
    ActivityOptions, Call, ErrorInfo, Event, Failure, ParentClose, RetryPolicy, Source, StartSpec,
    payload_value,
};
pub use replay::{Cursor, DEADLINE_STOP, Divergence, Recorded, RunEnd};
pub use sink::Sink;
