//! Two engines over a link whose frames the input drops, duplicates, reorders, delays and
//! mutates, with application calls and clock advances from the same input; then the
//! mutations stop and the transfer must complete byte-exact or end with an allowed error.
//! The logic, its corruption rule and its allowed outcomes: `rawtcp_core::fuzz::two_engines`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Err(failure) = rawtcp_core::fuzz::two_engines(input) {
        panic!("{failure}");
    }
});
