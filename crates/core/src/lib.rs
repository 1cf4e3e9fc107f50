//! Domain and wire types of the Pictograph developer API, shared by the server and the SDK.
//!
//! No I/O lives here: annotation format and validation, names and folder paths, upload
//! request fields, file types, and the error codes the API answers with.

pub mod annotation;
pub mod error;
pub mod form;
pub mod names;
