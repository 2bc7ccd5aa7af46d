//! rawtcp-netio: devices that move Ethernet frames (AF_PACKET, TAP, in-memory, pcap). Not built yet: see the netio issue.
