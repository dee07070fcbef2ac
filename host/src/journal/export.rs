//! The journal export document: what `GET /v1/runs/{id}/journal` answers,
//! `weft show --json` prints and `weft replay` reads. Its format version is
//! here and nowhere else.

use super::Recorded;
use serde::{Deserialize, Serialize};

/// The format this weft writes and reads.
pub const FORMAT: &str = "weft-journal/1";

/// Only `events` is required to read one (a hand-trimmed file still
/// replays); the rest describes the run it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Export {
    #[serde(default = "format")]
    pub format: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub workflow: String,
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub digest: String,
    pub events: Vec<Recorded>,
}

fn format() -> String {
    FORMAT.to_string()
}

impl Export {
    pub fn new(
        run_id: String,
        workflow: String,
        version: u32,
        digest: String,
        events: Vec<Recorded>,
    ) -> Self {
        Export {
            format: FORMAT.to_string(),
            run_id,
            workflow,
            version,
            digest,
            events,
        }
    }

    /// Read a document, refusing other formats with a message that says so.
    pub fn parse(text: &str) -> Result<Export, String> {
        #[derive(Deserialize)]
        struct Head {
            format: Option<String>,
        }
        let head: Head = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(format) = head.format
            && format != FORMAT
        {
            return Err(format!(
                "journal format `{format}` is not one this weft reads ({FORMAT})"
            ));
        }
        serde_json::from_str(text)
            .map_err(|e| format!("not a weft journal export (GET /v1/runs/{{id}}/journal): {e}"))
    }
}
