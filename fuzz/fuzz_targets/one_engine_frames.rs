//! Arbitrary frames, and well-formed segments built from the input, into one engine with a
//! listener and an established connection: no panic, and the engine's invariants after every
//! frame. The logic: `rawtcp_core::fuzz::one_engine_frames`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Err(failure) = rawtcp_core::fuzz::one_engine_frames(input) {
        panic!("{failure}");
    }
});
