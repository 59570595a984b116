import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createReadStream } from 'node:fs'
import path from 'node:path'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { tempDirectory } from '../support/temp.ts'

/**
 * `tally export` writes standard output asynchronously (`src/cli/export-output.ts`);
 * its memory must not follow the ledger when the reader is slow. With a reader
 * that takes nothing, a writer is held once about `queueBytes` are queued (plus
 * what the kernel's buffer took and the chunk in hand), and every byte arrives,
 * in order, once the reader reads. Both kinds of standard output a pipeline
 * gives: a socket pair (Node's `spawn`) and a FIFO (a shell's `|`, here a named
 * pipe, which the export reopens through /proc).
 */

const WRITER = fileURLToPath(new URL('./fixtures/export-output-writer.ts', import.meta.url))
const queueBytes = 4 << 20
const chunkBytes = 256 << 10
const totalBytes = 32 << 20
/** What a kernel buffer may hold beyond the queue: a pipe takes 64 KiB by default, a socket a few hundred. */
const kernelSlack = 2 << 20

function writerArgs(): string[] {
  return ['--import', 'tsx', WRITER, String(queueBytes), String(chunkBytes), String(totalBytes)]
}

/** Resolves with the stderr lines seen so far each time `wanted` matches one. */
function lineOf(child: ChildProcess, wanted: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = ''
    const onData = (part: Buffer): void => {
      text += part.toString('utf8')
      const line = text.split('\n').find((candidate) => wanted.test(candidate))
      if (line !== undefined) {
        child.stderr?.off('data', onData)
        resolve(line)
      }
    }
    child.stderr?.on('data', onData)
    child.once('exit', (code) => reject(new Error(`the writer exited (${code}) before printing ${wanted}; stderr: ${text}`)))
  })
}

/** Reads every byte and checks chunk i is all 'a' + i % 26. */
async function readAll(stream: Readable): Promise<number> {
  let at = 0
  for await (const part of stream as AsyncIterable<Buffer>) {
    for (let i = 0; i < part.length; i++, at++) {
      if (part[i] !== 97 + (Math.floor(at / chunkBytes) % 26)) throw new Error(`byte ${at} is ${part[i]}: out of order or lost`)
    }
  }
  return at
}

function assertHeldWithinBound(line: string): void {
  assert.match(line, /^blocked /, `a reader that took nothing held no write (${line})`)
  const accepted = Number(/^blocked (\d+)$/.exec(line)?.[1])
  assert.ok(accepted + chunkBytes >= queueBytes - kernelSlack, `held after only ${accepted} bytes`)
  assert.ok(accepted <= queueBytes + chunkBytes + kernelSlack, `${accepted} bytes accepted by a reader that took nothing (bound ${queueBytes})`)
}

test('export to a socket pair whose reader takes nothing: the writer is held within the queue bound, then every byte arrives in order', { timeout: 120_000 }, async () => {
  const child = spawn(process.execPath, writerArgs(), { stdio: ['ignore', 'pipe', 'pipe'] })
  try {
    child.stdout.pause()
    const blocked = lineOf(child, /^(blocked|queued) /)
    assertHeldWithinBound(await blocked)
    const done = lineOf(child, /^done /)
    assert.equal(await readAll(child.stdout), totalBytes)
    assert.equal(await done, `done ${totalBytes}`)
  } finally {
    child.kill('SIGKILL')
  }
})

test('export to a FIFO whose reader takes nothing: the writer is held within the queue bound, then every byte arrives in order', { timeout: 120_000 }, async () => {
  const temp = tempDirectory()
  const fifo = path.join(temp.directory, 'out')
  execFileSync('mkfifo', [fifo])
  const child = spawn('sh', ['-c', 'exec "$@" > "$0"', fifo, process.execPath, ...writerArgs()], { stdio: ['ignore', 'ignore', 'pipe'] })
  // Opening a FIFO for reading waits for its writer (on the thread pool); nothing is read until asked.
  const reader = createReadStream(fifo)
  try {
    const blocked = lineOf(child, /^(blocked|queued) /)
    assertHeldWithinBound(await blocked)
    const done = lineOf(child, /^done /)
    assert.equal(await readAll(reader), totalBytes)
    assert.equal(await done, `done ${totalBytes}`)
  } finally {
    child.kill('SIGKILL')
    reader.destroy()
    temp.remove()
  }
})
