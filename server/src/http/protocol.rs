//! [`HttpProtocol`]: HTTP/1.1 as a gev [`Protocol`], with its limits (largest head, largest
//! body). `unpack` is the request parser (`request.rs`), `pack` the response writer
//! (`response.rs`); no per-connection state is needed beyond the buffered input.

use crate::protocol::{Protocol, Unpacked};
use crate::ProtocolError;

use super::request::{parse, Request};
use super::response::{pack, Response};

/// Headers accepted per request; more gets `431`.
pub const MAX_HEADERS: usize = 64;

/// HTTP/1.1 request framing with its limits.
#[derive(Debug, Clone, Copy)]
pub struct HttpProtocol {
    /// Largest request head (request line + headers) in bytes; larger gets `431` and a close.
    /// Default 16 KiB.
    pub max_head: usize,
    /// Largest request body in bytes; larger gets `413` and a close. Default 1 MiB.
    pub max_body: usize,
}

impl Default for HttpProtocol {
    fn default() -> Self {
        HttpProtocol {
            max_head: 16 * 1024,
            max_body: 1024 * 1024,
        }
    }
}

impl Protocol for HttpProtocol {
    type Decoder = ();
    type Encoder = ();
    type Message<'a> = Request<'a>;
    type Reply<'a> = Response<'a>;

    fn unpack<'a>(
        &self,
        _decoder: &'a mut (),
        _encoder: &mut (),
        input: &'a mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Unpacked<Request<'a>>, ProtocolError> {
        parse(input, self.max_head, self.max_body, out)
    }

    #[inline]
    fn pack(&self, _encoder: &mut (), reply: Response<'_>, out: &mut Vec<u8>) {
        pack(reply, out);
    }
}
