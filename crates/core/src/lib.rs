//! rawtcp-core: the sans-IO TCP/IPv4 engine. Not built yet: see the engine issue.
