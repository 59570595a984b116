/**
 * A buffer with room for `more` bytes after its first `used`: `buffer`
 * itself when it has it, else a larger one (doubling, so a writer that
 * grows byte by byte copies each byte a bounded number of times) holding
 * `buffer`'s first `used` bytes. For the reusable writers of the packed
 * rows and the JSON printer.
 */
export function withRoom(buffer: Buffer, used: number, more: number): Buffer {
  if (used + more <= buffer.length) return buffer
  let size = Math.max(1, buffer.length) * 2
  while (size < used + more) size *= 2
  const larger = Buffer.allocUnsafe(size)
  buffer.copy(larger, 0, 0, used)
  return larger
}
