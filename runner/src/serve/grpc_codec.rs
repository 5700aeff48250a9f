//! tonic's prost codec, except that a message which does not decode is the client's error: INVALID_ARGUMENT
//! naming the message and what is wrong with it. tonic answers it INTERNAL, as gRPC's table of the codes its
//! libraries generate says ("error parsing request proto"); but the bytes came from the client, and
//! INTERNAL is the code the protocol reserves for the server's own broken invariants, the one operators
//! alert on and clients report as the server's fault. The hostile-request drill
//! (`scripts/serving_hostile.py`) sent 140 such messages among 999 gRPC requests in one seed.
//! The benchmark's client (`examples/grpc_load.rs`) shares the generated code and so this codec: an
//! answer it cannot decode (a `…Response`) is the server's fault, and stays INTERNAL.

use std::any::type_name;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::{Code, Status};
use tonic_prost::{ProstCodec, ProstDecoder};

/// The inference service's codec (`build.rs` names it for tonic's generated code).
pub struct MessageCodec<T, U>(ProstCodec<T, U>);

impl<T, U> Default for MessageCodec<T, U> {
    fn default() -> Self {
        Self(ProstCodec::default())
    }
}

impl<T, U> Codec for MessageCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        self.0.encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        MessageDecoder(self.0.decoder())
    }
}

pub struct MessageDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| match status.code() {
            Code::Internal if message_name::<U>().ends_with("Request") => {
                Status::invalid_argument(format!(
                    "the message is not a valid inference.{} ({})",
                    message_name::<U>(),
                    status.message()
                ))
            }
            _ => status,
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

/// The protocol's name of a message (`ModelInferRequest`), as a client knows it, not its Rust path.
fn message_name<U>() -> &'static str {
    type_name::<U>().rsplit("::").next().unwrap_or("message")
}

#[cfg(test)]
mod tests {
    use super::super::grpc::inference::{ModelInferRequest, ModelInferResponse};
    use super::*;

    #[test]
    fn messages_are_named_without_their_rust_path() {
        assert_eq!(message_name::<ModelInferRequest>(), "ModelInferRequest");
        // What the benchmark's client decodes: the server's answer, whose faults stay INTERNAL.
        assert_eq!(message_name::<ModelInferResponse>(), "ModelInferResponse");
    }
}
