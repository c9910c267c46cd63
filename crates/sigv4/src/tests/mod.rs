//! In-crate tests that need the crate-private canonical builder (AWS's published vectors).

mod date_header;
mod vectors;
