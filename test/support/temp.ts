import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

/** A fresh directory under the OS temp dir, removed by the returned function. */
export function tempDirectory(prefix = 'tally-test-'): { directory: string; remove: () => void } {
  const directory = mkdtempSync(path.join(os.tmpdir(), prefix))
  return { directory, remove: () => rmSync(directory, { recursive: true, force: true }) }
}
