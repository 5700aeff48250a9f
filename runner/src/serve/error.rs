//! The one error of `kiln-runner serve`, mapped to HTTP in `rest` and to gRPC statuses in `grpc`.

/// Why a request or a load failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request is wrong: HTTP 400, gRPC INVALID_ARGUMENT.
    #[error("{0}")]
    BadRequest(String),
    /// No such model or version here: HTTP 404, gRPC NOT_FOUND.
    #[error("{0}")]
    NotFound(String),
    /// Too busy or shutting down: HTTP 503, gRPC UNAVAILABLE.
    #[error("{0}")]
    Unavailable(String),
    /// The engine could not run the model on these inputs: HTTP 400, gRPC INVALID_ARGUMENT (the inputs
    /// passed the signature's checks, so their values are what the model refused).
    #[error("the model could not run on these inputs: {0}")]
    Inference(String),
    /// The registry could not be reached or answered with an error.
    #[error("{0}")]
    Registry(String),
    /// A manifest that does not verify, rolls back, or names a variant that cannot be served.
    #[error("{0}")]
    Refused(String),
    /// A webhook delivery that does not verify: HTTP 401.
    #[error("{0}")]
    Unauthorized(String),
    /// The client sent its body, or took its answer, slower than `--client-timeout-s` and
    /// `--min-client-rate-kib` let it: HTTP 408, gRPC DEADLINE_EXCEEDED.
    #[error("{0}")]
    TooSlow(String),
    /// The run passed `--run-timeout-s` and was stopped, or the request's own deadline passed before it
    /// was answered: HTTP 504, gRPC DEADLINE_EXCEEDED.
    #[error("{0}")]
    DeadlineExceeded(String),
}

/// The most of an error's text a client is sent. Errors quote what the client sent (a model's, an input's
/// or an output's name), and an echo of a 10 kB name made a gRPC status whose `grpc-message` trailer passed
/// the 8 KiB of metadata gRPC clients accept by default: the client saw its call reset
/// (RESOURCE_EXHAUSTED, "received metadata size exceeds soft limit") instead of the error.
const MAX_ERROR_TEXT: usize = 1024;

impl ServeError {
    /// The error's text for a client: past [`MAX_ERROR_TEXT`] bytes, its middle left out, keeping its
    /// beginning (what is wrong) and its end (what to do).
    pub(crate) fn client_text(&self) -> String {
        let text = self.to_string();
        if text.len() <= MAX_ERROR_TEXT {
            return text;
        }
        let head = text.floor_char_boundary(MAX_ERROR_TEXT * 2 / 3);
        let tail = text.ceil_char_boundary(text.len() - MAX_ERROR_TEXT / 4);
        format!(
            "{} [… {} bytes left out …] {}",
            &text[..head],
            tail - head,
            &text[tail..]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_keeps_its_beginning_and_end_within_the_bound() {
        let name = "é".repeat(5000);
        let e = ServeError::NotFound(format!("no model '{name}' here; try another"));
        let text = e.client_text();
        assert!(text.len() <= MAX_ERROR_TEXT + 64, "{}", text.len());
        assert!(text.starts_with("no model 'é"), "{text}");
        assert!(text.ends_with("é' here; try another"), "{text}");
        assert!(text.contains("bytes left out"), "{text}");
        let short = ServeError::BadRequest("input 'x' is missing".into());
        assert_eq!(short.client_text(), "input 'x' is missing");
    }
}
