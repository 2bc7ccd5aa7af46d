use core::fmt;

/// Why bytes could not be read as a packet.
///
/// Each malformation has its own variant so that the engine can count drops by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer is shorter than the fixed part of the header.
    Truncated,
    /// IPv4 version field is not 4.
    Version,
    /// IPv4 IHL is below 5 (a header shorter than 20 bytes).
    HeaderLenTooSmall,
    /// IPv4 IHL, or TCP data offset, points past the end of the buffer.
    HeaderLenPastBuffer,
    /// IPv4 total length is smaller than the header length.
    TotalLenTooSmall,
    /// IPv4 total length claims more bytes than the buffer holds.
    TotalLenPastBuffer,
    /// TCP data offset is below 5.
    DataOffsetTooSmall,
    /// A TCP option's length byte is 0 or 1, or wrong for its kind.
    OptionLen,
    /// A TCP option runs past the end of the options area.
    OptionOverrun,
    /// The checksum does not match the contents.
    Checksum,
    /// A well-formed packet this crate does not model (e.g. ARP for a non-Ethernet
    /// hardware type, an ICMP type with no representation).
    Unsupported,
    /// A field holds a value its protocol forbids (e.g. a zero TCP port, an ARP opcode
    /// other than request and reply, a fragment offset past 65535).
    Malformed,
}

/// The result of a wire operation.
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Error::Truncated => "buffer shorter than the header",
            Error::Version => "IP version is not 4",
            Error::HeaderLenTooSmall => "IPv4 header length below 20 bytes",
            Error::HeaderLenPastBuffer => "header length past the end of the buffer",
            Error::TotalLenTooSmall => "IPv4 total length below the header length",
            Error::TotalLenPastBuffer => "IPv4 total length past the end of the buffer",
            Error::DataOffsetTooSmall => "TCP data offset below 5",
            Error::OptionLen => "TCP option with an invalid length",
            Error::OptionOverrun => "TCP option overruns the options area",
            Error::Checksum => "checksum mismatch",
            Error::Unsupported => "unsupported packet",
            Error::Malformed => "malformed field",
        };
        f.write_str(text)
    }
}

impl core::error::Error for Error {}
