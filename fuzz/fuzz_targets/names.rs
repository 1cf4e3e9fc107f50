#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pictograph_fuzz::names(data));
