//! Domain and wire types of the Pictograph developer API, shared by the server and the SDK.
//!
//! No I/O lives here: annotation format and validation, names and folder paths, upload
//! request fields, file types, the error codes the API answers with, and the compact hash
//! sets the clients keep of the paths they give out.

pub mod annotation;
pub mod error;
pub mod form;
pub mod hashes;
pub mod names;
