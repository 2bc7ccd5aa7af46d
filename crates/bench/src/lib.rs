//! rawtcp-bench: the load-testing harness. Not built yet: see the bench issue.
