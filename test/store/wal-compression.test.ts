// Stores now write RocksDB's own log uncompressed (src/store/store.ts,
// `walCompression`): a store whose log was written compressed by an earlier
// release, then killed before a flush, must still open with every row.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Store } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

const storeModule = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/store/index.ts')
const rows = 4000
const valueBytes = 1000

/** Bytes of RocksDB's live log files (`*.log`) in a store directory. */
function logBytes(directory: string): number {
  return readdirSync(directory)
    .filter((name) => name.endsWith('.log'))
    .reduce((sum, name) => sum + statSync(path.join(directory, name)).size, 0)
}

test("a store killed with rows only in a compressed RocksDB log (an earlier release's) opens with every row", async () => {
  const tmp = tempDirectory()
  const storeDirectory = path.join(tmp.directory, 'store')
  const script = path.join(tmp.directory, 'writer.mts')
  // The writer: the earlier release's setting, a synced write of rows that fit in one memtable (never flushed), then it waits to be killed.
  writeFileSync(
    script,
    `import { Store } from ${JSON.stringify(storeModule)}
const store = await Store.open(${JSON.stringify(storeDirectory)}, { walCompression: true })
const rows = Array.from({ length: ${rows} }, (_, i) => ({ key: Buffer.from('k-' + String(i).padStart(6, '0')), value: Buffer.alloc(${valueBytes}, i % 251) }))
await store.write(rows, { sync: true })
console.log('written')
setInterval(() => {}, 1000)
`,
  )
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before writing`)))
      createInterface({ input: child.stdout }).on('line', (line) => {
        if (line === 'written') resolve()
      })
    })
    child.kill('SIGKILL')
    await exited
    // The rows are in the log only, compressed: 4 MB of repetitive values take far less.
    const logged = logBytes(storeDirectory)
    assert.ok(logged > 0 && logged < (rows * valueBytes) / 4, `log of ${logged} bytes`)
    const store = await Store.open(storeDirectory)
    try {
      const keys = Array.from({ length: rows }, (_, i) => Buffer.from('k-' + String(i).padStart(6, '0')))
      const values = await store.getMany(keys)
      values.forEach((value, i) => assert.deepEqual(value, Buffer.alloc(valueBytes, i % 251), `row ${i}`))
      // And this store's own writes go to an uncompressed log.
      const before = logBytes(storeDirectory)
      await store.write([{ key: Buffer.from('z'), value: Buffer.alloc(100_000) }], { sync: true })
      assert.ok(logBytes(storeDirectory) - before >= 100_000, 'a 100 kB row is logged uncompressed')
    } finally {
      await store.close()
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    tmp.remove()
  }
})
