//! The rules: what each operation checks and decides, between the handlers and the stores.

pub mod annotations;
pub mod backup;
pub mod batch;
pub mod datasets;
pub mod exports;
pub mod maintenance;
pub mod uploads;
