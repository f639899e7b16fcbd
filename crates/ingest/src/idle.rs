//! An idle timeout for streamed bodies: the SDK's timeouts end when an answer's headers arrive, so
//! a GET whose body stops flowing would otherwise hold its reader until the function times out.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Wraps a reader so that waiting longer than `idle` for its next byte fails the read with
/// [`io::ErrorKind::TimedOut`] (which the core treats as a failing stream, retryable, not as
/// corrupt data). Only time spent waiting counts: a consumer that is busy between reads is never
/// timed out for it.
pub struct IdleTimeout<R> {
    inner: R,
    idle: Duration,
    /// Armed when a read starts waiting; `None` between reads.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<R> IdleTimeout<R> {
    pub fn new(inner: R, idle: Duration) -> Self {
        IdleTimeout { inner, idle, timer: None }
    }
}

impl<R> std::fmt::Debug for IdleTimeout<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleTimeout").field("idle", &self.idle).finish()
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for IdleTimeout<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                this.timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(()) => {
                        this.timer = None;
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("no data for {idle:?}: read timed out"),
                        )))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // Paused time: the runtime jumps to the next timer when every task waits, so these tests
    // neither sleep nor depend on the machine's speed.

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_stops_fails_timed_out_after_the_idle_time() {
        let (mut tx, rx) = tokio::io::duplex(64);
        tx.write_all(b"head").await.unwrap();
        let mut reader = IdleTimeout::new(rx, Duration::from_secs(7));
        let mut first = [0u8; 4];
        reader.read_exact(&mut first).await.unwrap();
        assert_eq!(&first, b"head");
        let started = Instant::now();
        let err = reader.read(&mut [0u8; 4]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("timed out"), "{err}");
        // Virtual time: exactly the idle time passed while waiting.
        assert_eq!(started.elapsed(), Duration::from_secs(7));
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn time_between_reads_does_not_count_and_slow_progress_is_not_a_stall() {
        let (mut tx, rx) = tokio::io::duplex(64);
        let mut reader = IdleTimeout::new(rx, Duration::from_secs(5));
        let writer = tokio::spawn(async move {
            // t = 4 s, then t = 38 s: each byte within 5 s of the read that waits for it.
            tokio::time::sleep(Duration::from_secs(4)).await;
            tx.write_all(b"a").await.unwrap();
            tokio::time::sleep(Duration::from_secs(34)).await;
            tx.write_all(b"b").await.unwrap();
        });
        let mut byte = [0u8; 1];
        reader.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"a");
        // A busy consumer (30 s, far beyond the idle time) before it waits again, at t = 34 s.
        tokio::time::sleep(Duration::from_secs(30)).await;
        reader.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"b");
        writer.await.unwrap();
        assert_eq!(reader.read(&mut byte).await.unwrap(), 0, "end of stream after the writer is gone");
    }
}
