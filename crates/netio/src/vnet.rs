//! The virtio-net header that `PACKET_VNET_HDR` and `IFF_VNET_HDR` put in front of every
//! frame (`struct virtio_net_hdr`, 10 bytes, native byte order as the kernel uses it on
//! little-endian hosts): checksum offload and GSO/GRO facts for the frame behind it.

use crate::batch::{ChecksumStatus, Gso};

/// Length of `struct virtio_net_hdr`.
pub const LEN: usize = 10;

const F_NEEDS_CSUM: u8 = 1;
const F_DATA_VALID: u8 = 2;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHeader {
    /// Checksum state of the frame.
    pub checksum: ChecksumStatus,
    /// Where the partial checksum's coverage starts and where the field is, from the start of
    /// the frame, when the checksum is partial.
    pub csum_start_offset: Option<(u16, u16)>,
    /// The frame is a TCP/IPv4 super-segment.
    pub gso: Option<Gso>,
}

impl VnetHeader {
    /// Reads a header; `None` for GSO types other than TCPv4 (the frame should be dropped).
    pub fn parse(bytes: &[u8; LEN]) -> Option<VnetHeader> {
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let flags = bytes[0];
        let gso = match bytes[1] & 0x7f {
            GSO_NONE => None,
            GSO_TCPV4 => Some(Gso {
                segment_size: u16_at(4),
                header_len: u16_at(2),
            }),
            _ => return None,
        };
        let (checksum, csum_start_offset) = if flags & F_NEEDS_CSUM != 0 {
            (ChecksumStatus::Partial, Some((u16_at(6), u16_at(8))))
        } else if flags & F_DATA_VALID != 0 {
            (ChecksumStatus::Valid, None)
        } else {
            (ChecksumStatus::Unverified, None)
        };
        Some(VnetHeader {
            checksum,
            csum_start_offset,
            gso,
        })
    }

    /// Writes a header asking the kernel to finish a partial TCP checksum (when
    /// `partial_tcp_csum` gives `(csum_start, csum_offset)`) and to cut `gso`.
    pub fn emit(bytes: &mut [u8], partial_tcp_csum: Option<(u16, u16)>, gso: Option<Gso>) {
        bytes[..LEN].fill(0);
        if let Some((start, offset)) = partial_tcp_csum {
            bytes[0] = F_NEEDS_CSUM;
            bytes[6..8].copy_from_slice(&start.to_le_bytes());
            bytes[8..10].copy_from_slice(&offset.to_le_bytes());
        }
        if let Some(gso) = gso {
            bytes[1] = GSO_TCPV4;
            bytes[2..4].copy_from_slice(&gso.header_len.to_le_bytes());
            bytes[4..6].copy_from_slice(&gso.segment_size.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut bytes = [0u8; LEN];
        let gso = Gso {
            segment_size: 1448,
            header_len: 66,
        };
        VnetHeader::emit(&mut bytes, Some((34, 16)), Some(gso));
        let header = VnetHeader::parse(&bytes).unwrap();
        assert_eq!(header.checksum, ChecksumStatus::Partial);
        assert_eq!(header.csum_start_offset, Some((34, 16)));
        assert_eq!(header.gso, Some(gso));
        bytes[1] = 3; // UDP fragmentation offload: not ours
        assert_eq!(VnetHeader::parse(&bytes), None);
        assert_eq!(
            VnetHeader::parse(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 0])
                .unwrap()
                .checksum,
            ChecksumStatus::Valid
        );
    }
}
