//! rawtcp
