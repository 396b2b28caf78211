//! The top-level fields of a Crossbar answer, as plain data: [`EnvelopeFields`] (what a
//! handler or an error decided) and [`PageInfo`] (the paging fields of a listing).
//!
//! The bottom of `api/`: it imports nothing from the API, so the modules that fill these
//! fields (`error`, `listing`) and the one that writes them out (`envelope`) all point
//! down to it and never at one another.

use serde_json::{Map, Value};

/// The envelope fields a handler decided, left in the response's extensions; completed
/// and written out by `envelope::complete_envelope`.
#[derive(Debug, Clone)]
pub(crate) struct EnvelopeFields(pub(crate) Map<String, Value>);

/// Paging fields of a listing answer.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PageInfo {
    pub(crate) page_size: usize,
    pub(crate) start_key: Option<String>,
    pub(crate) next_start_key: Option<String>,
}
