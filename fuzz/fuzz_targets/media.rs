#![no_main]

use std::sync::Once;

static DECODER_PANICS_CAUGHT: Once = Once::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // libFuzzer's hook aborts on every panic, even one the checks catch from a decoder as
    // the server does; the default hook leaves those caught. A panic nothing catches still
    // aborts the run when it leaves this closure.
    DECODER_PANICS_CAUGHT.call_once(|| drop(std::panic::take_hook()));
    pictograph_fuzz::media(data)
});
