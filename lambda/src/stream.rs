//! The async streaming API: `AsyncRead` in, `AsyncWrite` out, through the push parser.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::{StripError, StripOptions, Stripper, Summary};

/// Read size. With at most one segment payload buffered by the parser, memory stays at a
/// few hundred KiB whatever the picture's size.
const CHUNK: usize = 64 * 1024;

/// Strips the JPEG read from `reader` into `writer`, then flushes `writer`.
///
/// Output is written as it is produced, so on error `writer` has received a partial
/// picture that the caller must discard (abort the multipart upload, delete the file):
/// only `Ok` means the output is complete.
pub async fn strip_stream<R, W>(
    mut reader: R,
    mut writer: W,
    options: &StripOptions,
) -> Result<Summary, StripError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut stripper = Stripper::new(*options);
    let mut chunk = vec![0u8; CHUNK];
    let mut out = Vec::with_capacity(2 * CHUNK);
    loop {
        let read = reader.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        stripper.feed(&chunk[..read], &mut out)?;
        if !out.is_empty() {
            writer.write_all(&out).await?;
            out.clear();
        }
    }
    let summary = stripper.finish()?;
    writer.flush().await?;
    Ok(summary)
}
