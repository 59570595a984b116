import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, openSync, readFileSync } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { LedgerNode } from '../../src/server/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import type { ProposedOrder } from '../../src/orders/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { clock } from '../check/workload.ts'

const TALLY = fileURLToPath(new URL('../../bin/tally.mjs', import.meta.url))
const ledger = 'main' as LedgerName
/** Enough logs (~2.7 MB of lines) to fill a pipe's kernel buffer many times over. */
const transfers = 6000

async function populate(directory: string): Promise<void> {
  const node = await LedgerNode.open({ dataDirectory: directory, sync: false, now: clock() })
  try {
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
    for (let first = 0; first < transfers; first += 1000) {
      const orders: ProposedOrder[] = []
      for (let n = first; n < first + 1000; n++) {
        orders.push({
          order: {
            type: 'CREATE_TRANSACTION',
            ledger,
            postings: [{ source: 'world' as AccountAddress, destination: `users:${n % 97}` as AccountAddress, amount: BigInt(n + 1), asset: 'USD/2' as Asset }],
            metadata: { n: String(n), note: 'x'.repeat(n % 200) },
            accountMetadata: {},
            force: true,
          },
        })
      }
      await node.admission.submit(orders, { atomic: true, continueOnFailure: false })
    }
  } finally {
    await node.close()
  }
}

interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

function exited(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })))
}

function collect(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let text = ''
    stream.setEncoding('utf8')
    stream.on('data', (part: string) => (text += part))
    stream.on('end', () => resolve(text))
  })
}

function exportArgs(directory: string): string[] {
  return [TALLY, 'export', '--data', directory, '--ledger', ledger]
}

const childEnv = { ...process.env, TALLY_TARGET: '', TALLY_DATA: '' }

/**
 * `tally export … | READER` run by sh: the export's stdout is a pipe (a
 * FIFO), not the socket pair Node's `spawn` gives a child. The export's
 * status is printed on stderr as `status=N`.
 */
function shellPipeline(directory: string, reader: string): ChildProcess {
  const script = `{ "$@"; echo "status=$?" >&2; } | ${reader}`
  return spawn('sh', ['-c', script, 'sh', process.execPath, ...exportArgs(directory)], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
}

/**
 * Reads the export's stdout at most 16 KiB per turn of the event loop,
 * each turn after the next `setImmediate`: slower than the export prints,
 * so the pipe stays full and the export's writes wait on its reader.
 */
async function slowSha256(stream: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256')
  let bytes = 0
  let ended = false
  stream.once('end', () => (ended = true))
  for (;;) {
    const part = stream.read(16 * 1024) as Buffer | null ?? stream.read() as Buffer | null
    if (part !== null) {
      hash.update(part)
      bytes += part.length
      await new Promise((resolve) => setImmediate(resolve))
      continue
    }
    if (ended) break
    // Both listeners go once either fires (one left per turn piled up on the socket).
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off('readable', done).off('end', done)
        resolve()
      }
      stream.once('readable', done).once('end', done)
    })
  }
  return { sha256: hash.digest('hex'), bytes }
}

test('tally export to stdout: through a pipe to a slow reader and redirected to a file, the same bytes as --out', async () => {
  const temp = tempDirectory('tally-cli-export-')
  try {
    await populate(temp.directory)
    const file = path.join(temp.directory, 'out.jsonl')
    const toFile = spawn(process.execPath, [...exportArgs(temp.directory), '--out', file], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'] })
    const toFileErr = collect(toFile.stderr!)
    assert.deepEqual(await exited(toFile), { code: 0, signal: null }, await toFileErr)
    const expected = readFileSync(file)
    assert.equal(expected.toString('utf8').split('\n').length - 1, transfers)
    const sha256 = createHash('sha256').update(expected).digest('hex')

    const piped = spawn(process.execPath, exportArgs(temp.directory), { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    const pipedErr = collect(piped.stderr!)
    const pipedExit = exited(piped)
    const read = await slowSha256(piped.stdout!)
    assert.deepEqual(await pipedExit, { code: 0, signal: null }, await pipedErr)
    assert.deepEqual(read, { sha256, bytes: expected.length })
    assert.equal(await pipedErr, '')

    const throughFifo = shellPipeline(temp.directory, 'cat')
    const fifoErr = collect(throughFifo.stderr!)
    const fifoExit = exited(throughFifo)
    assert.deepEqual(await slowSha256(throughFifo.stdout!), { sha256, bytes: expected.length })
    assert.deepEqual(await fifoExit, { code: 0, signal: null })
    assert.equal(await fifoErr, 'status=0\n')

    const redirected = path.join(temp.directory, 'redirected.jsonl')
    const fd = openSync(redirected, 'w')
    try {
      const child = spawn(process.execPath, exportArgs(temp.directory), { env: childEnv, stdio: ['ignore', fd, 'pipe'] })
      const childErr = collect(child.stderr!)
      assert.deepEqual(await exited(child), { code: 0, signal: null }, await childErr)
    } finally {
      closeSync(fd)
    }
    assert.equal(createHash('sha256').update(readFileSync(redirected)).digest('hex'), sha256)
  } finally {
    temp.remove()
  }
})

test('tally export | head -c 100: the export ends with a message and status 1, no stack trace, no hang', async () => {
  const temp = tempDirectory('tally-cli-export-head-')
  try {
    await populate(temp.directory)
    const exporter = spawn(process.execPath, exportArgs(temp.directory), { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
    const exporterErr = collect(exporter.stderr!)
    const exporterExit = exited(exporter)
    const head = spawn('head', ['-c', '100'], { stdio: [exporter.stdout!, 'pipe', 'ignore'] })
    const headOut = collect(head.stdout!)
    // The parent's copy of the pipe's read end would keep it open after head exits.
    exporter.stdout!.destroy()
    assert.deepEqual(await exited(head), { code: 0, signal: null })
    assert.equal((await headOut).length, 100)
    const exit = await exporterExit
    const stderr = await exporterErr
    assert.deepEqual(exit, { code: 1, signal: null }, stderr)
    assert.match(stderr, /^tally export: the reader of standard output closed it before the export ended \(after \d+ logs\)\n$/)
  } finally {
    temp.remove()
  }
})

test('tally export through a shell pipe into head -c 100: the same message and status 1', async () => {
  const temp = tempDirectory('tally-cli-export-fifo-')
  try {
    await populate(temp.directory)
    const pipeline = shellPipeline(temp.directory, 'head -c 100')
    const out = collect(pipeline.stdout!)
    const stderr = collect(pipeline.stderr!)
    assert.deepEqual(await exited(pipeline), { code: 0, signal: null })
    assert.equal((await out).length, 100)
    assert.match(await stderr, /^tally export: the reader of standard output closed it before the export ended \(after \d+ logs\)\nstatus=1\n$/)
  } finally {
    temp.remove()
  }
})
