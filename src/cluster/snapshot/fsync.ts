import * as fs from 'node:fs/promises'

/** fsyncs a file or a directory (a directory's sync makes the names created or renamed in it durable). */
export async function fsyncPath(target: string): Promise<void> {
  const handle = await fs.open(target, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
