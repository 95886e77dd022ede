//! The three lib0 primitives the Yjs wire formats are built from.
//!
//! - varUint: 7 bits per byte, least significant group first, high bit = "more bytes follow".
//! - varUint8Array: varUint byte length, then the bytes.
//! - varString: a varUint8Array holding UTF-8.
//!
//! yrs has its own encoder, but our extra message types (stateless, ack, the Hocuspocus framing)
//! need exact control over the bytes, and a reader that reports *where* input ended.

use super::ProtocolError;

/// Appends `value` as a lib0 varUint.
pub fn write_var_uint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Truncation is the point: keep the low 7 bits, flag that more follow.
        buf.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends `bytes` as a lib0 varUint8Array (length prefix + bytes).
pub fn write_var_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    write_var_uint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// Appends `text` as a lib0 varString (length in UTF-8 bytes + bytes).
pub fn write_var_string(buf: &mut Vec<u8>, text: &str) {
    write_var_bytes(buf, text.as_bytes());
}

/// A cursor over untrusted bytes. Every read checks bounds and returns a [`ProtocolError`]
/// instead of panicking.
#[derive(Debug, Clone)]
pub struct Lib0Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Lib0Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, position: 0 }
    }

    /// True when every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.position >= self.bytes.len()
    }

    /// The bytes not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.position..).unwrap_or_default()
    }

    /// Reads one byte; `what` names the field for the error message.
    pub fn read_u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        let byte = *self
            .bytes
            .get(self.position)
            .ok_or(ProtocolError::Truncated { what })?;
        self.position += 1;
        Ok(byte)
    }

    /// Reads a varUint. Values that do not fit in 64 bits are rejected.
    pub fn read_var_uint(&mut self, what: &'static str) -> Result<u64, ProtocolError> {
        let mut value: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let byte = self.read_u8(what)?;
            let group = u64::from(byte & 0x7f);
            // The 10th byte may only carry the single remaining bit of a u64.
            if shift == 63 && group > 1 || shift > 63 {
                return Err(ProtocolError::VarUintOverflow { what });
            }
            value |= group << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// Reads a varUint8Array and returns the borrowed bytes.
    pub fn read_var_bytes(&mut self, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        let declared = self.read_var_uint(what)?;
        let available = self.bytes.len() - self.position;
        let len = usize::try_from(declared)
            .ok()
            .filter(|len| *len <= available)
            .ok_or(ProtocolError::Truncated { what })?;
        let start = self.position;
        self.position += len;
        Ok(&self.bytes[start..start + len])
    }

    /// Reads a varString; invalid UTF-8 is an error, not a lossy conversion.
    pub fn read_var_string(&mut self, what: &'static str) -> Result<&'a str, ProtocolError> {
        let bytes = self.read_var_bytes(what)?;
        std::str::from_utf8(bytes).map_err(|_| ProtocolError::InvalidUtf8 { what })
    }

    /// Fails if bytes remain: our messages have exact lengths, trailing bytes mean corruption.
    pub fn expect_end(&self, what: &'static str) -> Result<(), ProtocolError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes {
                what,
                count: self.bytes.len() - self.position,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var_uint(value: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        write_var_uint(&mut buf, value);
        buf
    }

    #[test]
    fn var_uint_matches_lib0_byte_vectors() {
        assert_eq!(var_uint(0), [0]);
        assert_eq!(var_uint(127), [0x7f]);
        assert_eq!(var_uint(128), [0x80, 0x01]);
        assert_eq!(var_uint(300), [0xac, 0x02]);
        assert_eq!(var_uint(16_384), [0x80, 0x80, 0x01]);
    }

    #[test]
    fn var_uint_round_trips_extremes() {
        for value in [0, 1, 127, 128, 255, 1 << 32, (1 << 53) - 1, u64::MAX] {
            let bytes = var_uint(value);
            let mut reader = Lib0Reader::new(&bytes);
            assert_eq!(reader.read_var_uint("n"), Ok(value));
            assert!(reader.is_empty());
        }
    }

    #[test]
    fn var_uint_rejects_more_than_64_bits() {
        let mut bytes = vec![0xff; 9];
        bytes.push(0x02); // bit 64 set
        let err = Lib0Reader::new(&bytes).read_var_uint("n");
        assert_eq!(err, Err(ProtocolError::VarUintOverflow { what: "n" }));
        let endless = [0x80; 20];
        assert!(Lib0Reader::new(&endless).read_var_uint("n").is_err());
    }

    #[test]
    fn var_string_matches_lib0_byte_vector() {
        let mut buf = Vec::new();
        write_var_string(&mut buf, "héllo");
        assert_eq!(buf, [6, b'h', 0xc3, 0xa9, b'l', b'l', b'o']);
        let mut reader = Lib0Reader::new(&buf);
        assert_eq!(reader.read_var_string("s"), Ok("héllo"));
        assert_eq!(reader.expect_end("s"), Ok(()));
    }

    #[test]
    fn sync_step1_of_empty_state_vector_is_0_0_1_0() {
        // The y-protocols SyncStep1 for an empty doc: [messageSync, syncStep1, varUint8Array([0])]
        let mut buf = Vec::new();
        write_var_uint(&mut buf, 0);
        write_var_uint(&mut buf, 0);
        write_var_bytes(&mut buf, &[0]);
        assert_eq!(buf, [0, 0, 1, 0]);
    }

    #[test]
    fn reads_fail_cleanly_on_short_input() {
        let mut reader = Lib0Reader::new(&[5, b'a', b'b']);
        assert_eq!(
            reader.read_var_string("name"),
            Err(ProtocolError::Truncated { what: "name" })
        );
        let mut reader = Lib0Reader::new(&[2, 0xff, 0xfe]);
        assert_eq!(
            reader.read_var_string("name"),
            Err(ProtocolError::InvalidUtf8 { what: "name" })
        );
        let reader = Lib0Reader::new(&[1, 2]);
        assert_eq!(
            reader.expect_end("frame"),
            Err(ProtocolError::TrailingBytes {
                what: "frame",
                count: 2
            })
        );
    }
}
