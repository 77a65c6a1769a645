//! HTTP/1.x messages: the head up to the blank line (parsed with `httparse`), then the body
//! that `Content-Length` or `Transfer-Encoding: chunked` describes. The record is the whole
//! message as received, so a handler parses the head again (cheaply) with `httparse`.
//!
//! Refused with [`FrameError::BadHttp`]: an unparsable head, more than 64 headers, an
//! invalid or conflicting `Content-Length`, both `Content-Length` and `Transfer-Encoding`
//! (the request-smuggling shape), a request with a transfer coding other than chunked, and
//! malformed chunks. A response with neither header runs to the end of the stream.

use super::{Decoder, Frame, FrameError};

const MAX_HEADERS: usize = 64;

#[derive(Clone, Default)]
pub(crate) struct Http {
    /// How far the head has been searched for its end.
    scanned: usize,
    body: Body,
}

#[derive(Copy, Clone, Default)]
enum Body {
    /// Still looking for the end of the head.
    #[default]
    Head,
    /// The message is `total` bytes, head included.
    Length { total: usize },
    /// Chunked; `next` is where the next chunk-size line starts.
    Chunked { next: usize },
    /// A response without length: everything until the stream ends.
    UntilEof,
}

fn bad(why: impl Into<String>) -> FrameError {
    FrameError::BadHttp(why.into())
}

/// The end of the head (just past its blank line), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf.get(i..)?.iter().position(|&b| b == b'\n') {
        let at = i + offset;
        match buf.get(at + 1..) {
            Some([b'\n', ..]) => return Some(at + 2),
            Some([b'\r', b'\n', ..]) => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

/// Works out from the head how the body is framed.
fn body_of(head: &[u8], limit: usize) -> Result<Body, FrameError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (status, parsed) = if head.starts_with(b"HTTP/") {
        let mut response = httparse::Response::new(&mut headers);
        let parsed = response.parse(head).map_err(|e| bad(e.to_string()))?;
        (response.code, parsed)
    } else {
        let mut request = httparse::Request::new(&mut headers);
        let parsed = request.parse(head).map_err(|e| bad(e.to_string()))?;
        (None, parsed)
    };
    let httparse::Status::Complete(head_len) = parsed else {
        return Err(bad("incomplete head"));
    };
    let mut length: Option<usize> = None;
    let mut chunked = None;
    for header in headers.iter().take_while(|h| !h.name.is_empty()) {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<usize>().ok())
                .ok_or_else(|| bad("invalid Content-Length"))?;
            if length.is_some_and(|l| l != value) {
                return Err(bad("conflicting Content-Length headers"));
            }
            length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = header
                .value
                .rsplit(|&b| b == b',')
                .next()
                .unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let body = match (length, chunked, status) {
        (Some(_), Some(_), _) => return Err(bad("both Content-Length and Transfer-Encoding")),
        (None, Some(true), _) => Body::Chunked { next: head_len },
        (None, Some(false), None) => return Err(bad("unsupported Transfer-Encoding in a request")),
        (None, Some(false), Some(_)) => Body::UntilEof,
        // 1xx, 204 and 304 responses never have a body.
        (_, None, Some(code)) if code < 200 || code == 204 || code == 304 => {
            Body::Length { total: head_len }
        }
        (Some(n), None, _) => Body::Length {
            total: head_len
                .checked_add(n)
                .ok_or_else(|| bad("Content-Length overflows"))?,
        },
        (None, None, None) => Body::Length { total: head_len },
        (None, None, Some(_)) => Body::UntilEof,
    };
    if let Body::Length { total } = body {
        if total > limit {
            return Err(FrameError::TooLarge {
                size: total as u64,
                limit,
            });
        }
    }
    Ok(body)
}

impl Http {
    fn complete(&mut self, total: usize) -> Option<Frame> {
        self.body = Body::Head;
        Some(Frame::new(0..total, total))
    }

    /// Walks chunks from `next`; returns the message's end once the last chunk and the
    /// trailers are in, remembering progress otherwise.
    fn chunked(
        &mut self,
        buf: &[u8],
        mut next: usize,
        limit: usize,
    ) -> Result<Option<Frame>, FrameError> {
        loop {
            if next > limit {
                return Err(FrameError::TooLarge {
                    size: next as u64,
                    limit,
                });
            }
            let status =
                httparse::parse_chunk_size(&buf[next..]).map_err(|_| bad("invalid chunk size"))?;
            let httparse::Status::Complete((line, size)) = status else {
                self.body = Body::Chunked { next };
                return Ok(None);
            };
            let data = next + line;
            if size == 0 {
                // Trailers: none (an empty line) or header lines up to a blank line.
                let end = match &buf[data..] {
                    [b'\r', b'\n', ..] => Some(data + 2),
                    [b'\n', ..] => Some(data + 1),
                    rest if rest.len() < 2 => None,
                    _ => head_end(buf, data),
                };
                return Ok(match end {
                    Some(end) => self.complete(end),
                    None => {
                        self.body = Body::Chunked { next };
                        None
                    }
                });
            }
            let size = usize::try_from(size).map_err(|_| bad("chunk too large"))?;
            let data_end = data
                .checked_add(size)
                .ok_or_else(|| bad("chunk too large"))?;
            if data_end > limit {
                return Err(FrameError::TooLarge {
                    size: data_end as u64,
                    limit,
                });
            }
            // Checked: with no input bound a peer can announce a chunk near usize::MAX.
            let chunk_end = data_end
                .checked_add(2)
                .ok_or_else(|| bad("chunk too large"))?;
            match buf.get(data_end..chunk_end) {
                None => {
                    self.body = Body::Chunked { next };
                    return Ok(None);
                }
                Some(b"\r\n") => next = data_end + 2,
                Some(_) => return Err(bad("chunk data not followed by CRLF")),
            }
        }
    }
}

impl Decoder for Http {
    fn decode(&mut self, buf: &[u8], limit: usize) -> Result<Option<Frame>, FrameError> {
        if let Body::Head = self.body {
            let Some(end) = head_end(buf, self.scanned.saturating_sub(3)) else {
                self.scanned = buf.len();
                return Ok(None);
            };
            self.scanned = 0;
            self.body = body_of(&buf[..end], limit)?;
        }
        match self.body {
            Body::Head => unreachable!("the head was just parsed"),
            Body::Length { total } if buf.len() >= total => Ok(self.complete(total)),
            Body::Length { .. } | Body::UntilEof => Ok(None),
            Body::Chunked { next } => self.chunked(buf, next, limit),
        }
    }

    fn decode_eof(&mut self, buf: &[u8]) -> Option<Frame> {
        match self.body {
            Body::UntilEof => self.complete(buf.len()),
            _ => None,
        }
    }

    fn fresh(&self) -> Box<dyn Decoder> {
        Box::new(Http::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::{frame_chunks, same_records_however_cut, Framing};

    fn records(chunks: &[&[u8]]) -> Result<(Vec<Vec<u8>>, Vec<u8>), FrameError> {
        frame_chunks(&Framing::http(), chunks)
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const POST: &[u8] = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    const CHUNKED: &[u8] =
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-T: 1\r\n\r\n";

    #[test]
    fn pipelined_requests_are_separate_records() {
        let input = [GET, POST, CHUNKED, GET].concat();
        let (got, rest) = records(&[&input]).unwrap();
        assert_eq!(
            got,
            vec![GET.to_vec(), POST.to_vec(), CHUNKED.to_vec(), GET.to_vec()]
        );
        assert!(rest.is_empty());
    }

    #[test]
    fn response_without_length_runs_to_eof() {
        let (got, _) = records(&[b"HTTP/1.1 200 OK\r\n\r\nbody", b" more"]).unwrap();
        assert_eq!(got, vec![b"HTTP/1.1 200 OK\r\n\r\nbody more".to_vec()]);
    }

    #[test]
    fn no_content_responses_have_no_body() {
        let input = b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n";
        let (got, _) = records(&[input]).unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let both = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(records(&[both]), Err(FrameError::BadHttp(_))));
        let twice = b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n";
        assert!(matches!(records(&[twice]), Err(FrameError::BadHttp(_))));
        let signed = b"POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\n";
        assert!(matches!(records(&[signed]), Err(FrameError::BadHttp(_))));
    }

    #[test]
    fn malformed_head_and_chunks_are_refused() {
        assert!(matches!(
            records(&[b"GET\x01 / HTTP/1.1\r\n\r\n"]),
            Err(FrameError::BadHttp(_))
        ));
        let bad_chunk = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX";
        assert!(matches!(records(&[bad_chunk]), Err(FrameError::BadHttp(_))));
        let bad_size = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(matches!(records(&[bad_size]), Err(FrameError::BadHttp(_))));
    }

    #[test]
    fn a_chunk_size_near_the_address_space_is_refused_without_overflow() {
        // Found by reading the fuzz target's driver: an unbounded handle (max_size 0).
        let mut http = Http::default();
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffbd\r\nx";
        assert!(matches!(
            http.decode(input, usize::MAX),
            Err(FrameError::BadHttp(_))
        ));
    }

    #[test]
    fn oversized_body_is_refused_from_the_head() {
        let mut http = Http::default();
        let head = b"POST / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n";
        assert!(matches!(
            http.decode(head, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn http_is_the_same_however_the_stream_is_cut(
            picks in proptest::collection::vec(0usize..3, 0..6),
            cuts in proptest::collection::vec(0usize..600, 0..12),
        ) {
            let input: Vec<u8> = picks.iter().flat_map(|&i| [GET, POST, CHUNKED][i].to_vec()).collect();
            same_records_however_cut(&Framing::http(), &input, &cuts);
        }
    }
}
