//! The memory of the requests in flight over gRPC (`request_memory`). tonic reads a call's whole message
//! before the handler sees it, so a layer around the service admits the message when its first frame
//! arrives: the message's length prefix (five bytes: a compression flag and a big-endian length) says
//! what it will hold, and that is reserved at once, waiting as a REST body does, with the client's frames
//! left unread meanwhile (HTTP/2's flow control is its backpressure). A call's frames are then held back
//! until its message is whole; a compressed one is inflated (and passed on so: inflated once), and what
//! an inference call's message decodes to is counted (`decoded_size`): a call whose message would take
//! more than the whole limit decoded is refused before tonic decodes it, and one whose body is not one
//! gRPC message is refused as the client's error. The same [`SharedHeld`] goes to the handler, which
//! counts the decoded inputs, outputs and answer, and stays with the response's body until its last
//! slice has been taken for sending.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tonic::Status;

use super::ServeError;
use super::client_pace::{Clock, Outgoing, Pace};
use super::compression::Encoding;
use super::connections::ConnectionInfo;
use super::request_memory::{Admission, Held, RequestMemory};

/// What one call holds, shared by its request body, its handler and its response body.
#[derive(Clone)]
pub struct SharedHeld(Arc<Mutex<Held>>);

impl SharedHeld {
    fn lock(&self) -> MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `bytes` this call made while being answered ([`Held::count`]).
    pub fn count(&self, bytes: usize) {
        self.lock().count(bytes);
    }

    /// Counts `bytes`, or refuses the call when they would take it past the whole limit
    /// ([`Held::count_within_limit`]).
    pub fn count_within_limit(&self, bytes: usize, what: &str) -> Result<(), ServeError> {
        self.lock().count_within_limit(bytes, what)
    }
}

/// Wraps the gRPC service so that every call holds its memory, and gives it up when the client is too
/// slow (`client_pace`).
#[derive(Clone)]
pub struct HoldLayer {
    pub memory: RequestMemory,
    /// The largest message a call may send (and tonic decodes): a larger one is refused before it is read.
    pub max_message: usize,
    pub pace: Option<Pace>,
}

impl<S> tower_layer::Layer<S> for HoldLayer {
    type Service = Holding<S>;

    fn layer(&self, inner: S) -> Holding<S> {
        Holding {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Holding<S> {
    inner: S,
    layer: HoldLayer,
}

impl<S, B> tower_service::Service<http::Request<tonic::body::Body>> for Holding<S>
where
    S: tower_service::Service<http::Request<tonic::body::Body>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    type Response = http::Response<HeldResponse<B>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let held = SharedHeld(Arc::new(Mutex::new(self.layer.memory.held())));
        let inference = request.uri().path() == INFER_PATH;
        // The connection is no longer silent (`connections`).
        if let Some(connection) = request.extensions().get::<ConnectionInfo>() {
            connection.called();
        }
        let encoding = request
            .headers()
            .get("grpc-encoding")
            .and_then(|value| Encoding::parse(value.as_bytes(), "grpc-encoding").ok())
            .flatten();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(held.clone());
        let body = tonic::body::Body::new(HeldRequest {
            inner: body,
            held: held.clone(),
            max_message: self.layer.max_message,
            encoding,
            inference,
            prefix: Vec::with_capacity(PREFIX),
            received: 0,
            announced: 0,
            admitted: 0,
            waiting: None,
            clock: self.layer.pace.map(Pace::start),
            deadline: None,
            counted: inference.then(Instant::now),
            gathered: Some(Vec::new()),
            passing: VecDeque::new(),
        });
        let answer = self.inner.call(http::Request::from_parts(parts, body));
        let pace = self.layer.pace;
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|inner| HeldResponse {
                inner,
                answer: Outgoing::new(held, pace),
            }))
        })
    }
}

/// The protocol's inference call, whose refusals here are counted as requests (`kiln_serve_requests_total`):
/// tonic answers a call whose message cannot be read without calling the handler that counts the others.
pub(super) const INFER_PATH: &str = "/inference.GRPCInferenceService/ModelInfer";

/// A gRPC message's length prefix: a compression flag and a big-endian `u32` length.
const PREFIX: usize = 5;

/// What a refusal for a message's decoded size names.
const DECODED: &str = "this call's message and what it decodes to need";

/// The message's `length` bytes after its prefix, as slices of the frames that brought them.
fn message_pieces(frames: &[Bytes], length: usize) -> Vec<&[u8]> {
    let (mut skip, mut left) = (PREFIX, length);
    let mut pieces = Vec::new();
    for frame in frames {
        let from = skip.min(frame.len());
        skip -= from;
        let piece = &frame[from..(from + left).min(frame.len())];
        left -= piece.len();
        if !piece.is_empty() {
            pieces.push(piece);
        }
    }
    pieces
}

/// A request's body whose data frames are admitted before tonic reads them.
struct HeldRequest {
    inner: tonic::body::Body,
    held: SharedHeld,
    max_message: usize,
    /// What the client compressed its message with (`grpc-encoding`), when it is one read here. (tonic
    /// refuses a call naming another before its body is read, but for `identity`, which compresses
    /// nothing.)
    encoding: Option<Encoding>,
    /// Whether the call is the inference call, whose message is walked for what it decodes to.
    inference: bool,
    /// The first message's prefix, as far as it has come.
    prefix: Vec<u8>,
    /// Bytes of the body received; the first message's length with its prefix, once known; bytes admitted.
    received: u64,
    announced: u64,
    admitted: u64,
    /// A frame received, the wait for the memory it needs, and when that wait began.
    waiting: Option<(Frame<Bytes>, Admission, Instant)>,
    /// The body's time against the client's pace, and the timer set at its deadline while a frame is
    /// awaited.
    clock: Option<Clock>,
    deadline: Option<Pin<Box<Sleep>>>,
    /// When an inference call began: its refusal is counted as a request.
    counted: Option<Instant>,
    /// The call's message as it comes, held back until whole to count what it takes decoded
    /// (`decoded_size`); `None` once passed on.
    gathered: Option<Vec<Bytes>>,
    /// Frames admitted and gathered, to pass on.
    passing: VecDeque<Frame<Bytes>>,
}

impl HeldRequest {
    /// The bytes to admit now that `data` has come: the first message whole once its length is known,
    /// and whatever comes past what was admitted.
    fn needed(&mut self, data: &[u8]) -> u64 {
        self.received += data.len() as u64;
        if self.prefix.len() < PREFIX {
            let more = (PREFIX - self.prefix.len()).min(data.len());
            self.prefix.extend_from_slice(&data[..more]);
            // The length once its four bytes are in (an empty first frame, or trailers, bring none).
            if let Some(length) = self.announced_length() {
                let length = u64::from(length);
                if length <= self.max_message as u64 {
                    self.announced = PREFIX as u64 + length;
                }
            }
        }
        let needed = self
            .received
            .max(self.announced)
            .saturating_sub(self.admitted);
        self.admitted += needed;
        needed
    }

    /// The length the message's prefix gives, once its four bytes have come.
    fn announced_length(&self) -> Option<u32> {
        let bytes = self.prefix.get(1..PREFIX)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    /// Takes an admitted frame: the call's data is gathered until its message is whole, what it will
    /// take decoded counted, and the call refused when that passes the whole limit or the message does
    /// not inflate; then the frames go on to `passing`. Trailers before the message is whole end it cut
    /// short (tonic takes them for the body's end).
    fn gather(&mut self, frame: Frame<Bytes>) -> Result<(), Status> {
        let Some(gathered) = &mut self.gathered else {
            self.passing.push_back(frame);
            return Ok(());
        };
        let after = match frame.into_data() {
            Ok(data) => {
                gathered.push(data);
                // A known length is within the size limit (`malformed` refused others).
                if self.prefix.len() < PREFIX || self.received < self.announced {
                    return Ok(());
                }
                match self.count_decoded() {
                    // A compressed message goes on inflated, marked uncompressed: inflated once.
                    Ok(Some((prefix, inflated))) => {
                        self.gathered = Some(vec![prefix, inflated]);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(self.refuse(e)),
                }
                None
            }
            Err(other) => {
                if let Some(e) = self.cut_short() {
                    return Err(self.refuse(e));
                }
                Some(other)
            }
        };
        self.pass_gathered();
        self.passing.extend(after);
        Ok(())
    }

    /// Counts what the whole message gathered takes decoded, inflated first when it is compressed, and
    /// returns the inflated message with its uncompressed prefix, to go on in its place. A message that
    /// does not inflate, or inflates past the limit, is refused here as the client's, where tonic would
    /// say `INTERNAL` or `RESOURCE_EXHAUSTED`.
    fn count_decoded(&self) -> Result<Option<(Bytes, Bytes)>, ServeError> {
        let gathered = self.gathered.as_deref().unwrap_or_default();
        let length = self.announced as usize - PREFIX;
        // Compressed only when flagged in an encoding read here (`malformed` refused the rest).
        let Some(encoding) = self.encoding.filter(|_| self.prefix[0] == 1) else {
            let decoded = self.decoded(gathered, PREFIX, length);
            self.held.count_within_limit(decoded, DECODED)?;
            return Ok(None);
        };
        let pieces = message_pieces(gathered, length);
        // No more than a gRPC prefix can announce, since it goes on with one.
        let most = self.max_message.min(u32::MAX as usize);
        let limit = (most, "kiln-runner serve --max-request-mib");
        let what = "this call's inflated message needs";
        let count = |bytes| self.held.count_within_limit(bytes, what);
        let inflated = Bytes::from(super::compression::inflate(
            encoding, &pieces, limit, count,
        )?);
        // tonic copies the message into a buffer of its own while this copy is still held.
        let what = "this call's inflated message, copied for decoding, needs";
        self.held.count_within_limit(inflated.len(), what)?;
        let decoded = self.decoded(std::slice::from_ref(&inflated), 0, inflated.len());
        self.held.count_within_limit(decoded, DECODED)?;
        let length = u32::try_from(inflated.len()).unwrap_or(u32::MAX);
        let mut prefix = vec![0];
        prefix.extend(length.to_be_bytes());
        Ok(Some((Bytes::from(prefix), inflated)))
    }

    /// What the message of `length` bytes in `frames` after `skip` takes decoded: an inference
    /// request's walked (`decoded_size`); the other calls' messages (a model's name and version) about
    /// their size.
    fn decoded(&self, frames: &[Bytes], skip: usize, length: usize) -> usize {
        match self.inference {
            true => super::decoded_size::model_infer_request(frames, skip, length),
            false => length,
        }
    }

    /// Why the body, as far as it has come, is not one gRPC message this server reads: a compression
    /// flag gRPC does not have, a compressed message in a call that names no encoding read here (tonic
    /// would answer INTERNAL, a server's fault), a length past `--max-request-mib` (tonic's refusal would
    /// be `OUT_OF_RANGE`, REST's is a 400 naming the flag), or bytes after the message (every call of
    /// the protocol sends one; tonic failed on a partial second message as INTERNAL and dropped a whole
    /// one unread, as grpc-go refuses both).
    fn malformed(&self) -> Option<ServeError> {
        match self.prefix.first() {
            Some(&flag) if flag > 1 => {
                return Some(ServeError::BadRequest(format!(
                    "the message's compression flag is {flag}; gRPC's are 0 and 1"
                )));
            }
            Some(1) if self.encoding.is_none() => {
                return Some(ServeError::BadRequest(
                    "the message is marked compressed, but the call names no grpc-encoding this \
                     server inflates (gzip, deflate)"
                        .to_owned(),
                ));
            }
            _ => {}
        }
        if let Some(length) = self.announced_length()
            && self.announced == 0
        {
            return Some(ServeError::BadRequest(format!(
                "the message is {length} bytes, more than the {} bytes kiln-runner serve --max-request-mib allows",
                self.max_message
            )));
        }
        (self.announced > 0 && self.received > self.announced).then(|| {
            ServeError::BadRequest(format!(
                "the call's body holds more than its one message: at least {} bytes follow it",
                self.received - self.announced
            ))
        })
    }

    /// Why the body, now ended, holds no whole message, when it does not: no bytes, part of a prefix, or
    /// fewer bytes than the prefix announced. (A length past the size limit was refused by `malformed`.)
    fn cut_short(&self) -> Option<ServeError> {
        let why = if self.received == 0 {
            "the call's body holds no message".to_owned()
        } else if self.prefix.len() < PREFIX {
            format!(
                "the call's body ended within its message's {PREFIX}-byte prefix, after {} bytes",
                self.received
            )
        } else if self.received < self.announced {
            format!(
                "the call's body ended after {} of its message's {} bytes",
                self.received - PREFIX as u64,
                self.announced - PREFIX as u64
            )
        } else {
            return None;
        };
        Some(ServeError::BadRequest(why))
    }

    /// What was gathered goes on as it came; gathering ends.
    fn pass_gathered(&mut self) {
        if let Some(gathered) = self.gathered.take() {
            self.passing.extend(gathered.into_iter().map(Frame::data));
        }
    }

    /// The call's refusal, counted as a request's outcome when it is an inference.
    fn refuse(&self, e: ServeError) -> Status {
        if let Some(started) = self.counted {
            let outcome = super::rest::outcome(Some(&e));
            super::metrics::request("grpc", outcome, None, started.elapsed());
        }
        super::grpc::status(e)
    }

    /// The client's next frame; the call refused as too slow once its pace's deadline has passed.
    fn poll_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        let Some(clock) = &self.clock else {
            return Poll::Pending;
        };
        let at = clock.deadline();
        let timer = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        if timer.deadline() != at {
            timer.as_mut().reset(at);
        }
        ready!(timer.as_mut().poll(cx));
        let announced = (self.announced > 0).then_some(self.announced);
        Poll::Ready(Some(Err(self.refuse(clock.too_slow(announced)))))
    }
}

impl Body for HeldRequest {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if let Some(frame) = this.passing.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.waiting.is_none() {
                let frame = match ready!(this.poll_inner(cx)) {
                    Some(Ok(frame)) => frame,
                    // A body that ended before its message was whole is the client's error (tonic's
                    // would be INTERNAL, a server's).
                    None => match this.cut_short() {
                        Some(e) => return Poll::Ready(Some(Err(this.refuse(e)))),
                        None => return Poll::Ready(None),
                    },
                    other => return Poll::Ready(other),
                };
                let data = frame.data_ref().map_or(&[][..], |d| d.as_ref());
                if let Some(clock) = &mut this.clock {
                    clock.moved(data.len());
                }
                let needed = this.needed(data);
                if let Some(e) = this.malformed() {
                    return Poll::Ready(Some(Err(this.refuse(e))));
                }
                match this.held.lock().admission(needed) {
                    Ok(admission) => this.waiting = Some((frame, admission, Instant::now())),
                    Err(e) => return Poll::Ready(Some(Err(this.refuse(e)))),
                }
            }
            let Some((_, admission, _)) = this.waiting.as_mut() else {
                return Poll::Ready(None);
            };
            let admitted = ready!(admission.as_mut().poll(cx));
            let Some((frame, _, since)) = this.waiting.take() else {
                return Poll::Ready(None);
            };
            if let Some(clock) = &mut this.clock {
                clock.pause(since.elapsed());
            }
            let reserved = match admitted {
                Ok(reserved) => reserved,
                Err(e) => return Poll::Ready(Some(Err(this.refuse(e)))),
            };
            this.held.lock().absorb(reserved);
            if let Err(refused) = this.gather(frame) {
                return Poll::Ready(Some(Err(refused)));
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.waiting.is_none()
            && self.passing.is_empty()
            && self.gathered.as_ref().is_none_or(Vec::is_empty)
            && self.inner.is_end_stream()
            // An empty body has its refusal to give (tonic, told the body is over, says INTERNAL).
            && self.cut_short().is_none()
    }

    fn size_hint(&self) -> SizeHint {
        // A compressed message goes on inflated: the client's length says nothing of it.
        match self.encoding {
            Some(_) => SizeHint::default(),
            None => self.inner.size_hint(),
        }
    }
}

/// A response's body, given to hyper in slices (it sends a frame whole once given it, whatever the
/// client's window), holding the call's memory until the last slice has been taken, and dropped with it
/// when the client does not take it at the pace (`client_pace`).
pub struct HeldResponse<B> {
    inner: B,
    answer: Outgoing<SharedHeld>,
}

impl<B> Body for HeldResponse<B>
where
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        let too_slow = |e| Poll::Ready(Some(Err(super::grpc::status(e))));
        if this.answer.remaining() == 0 {
            if let Err(e) = this.answer.alive() {
                return too_slow(e);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.answer.push(data),
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => {
                    this.answer.finish();
                    return Poll::Ready(other);
                }
            }
        }
        match this.answer.take() {
            Ok(Some(slice)) => Poll::Ready(Some(Ok(Frame::data(slice)))),
            // An empty data frame.
            Ok(None) => Poll::Ready(Some(Ok(Frame::data(Bytes::new())))),
            Err(e) => too_slow(e),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.answer.remaining() == 0 && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let rest = self.answer.remaining() as u64;
        hint.set_lower(hint.lower().saturating_add(rest));
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(rest));
        }
        hint
    }
}

#[cfg(test)]
mod tests;
