/**
 * The thread `tally check` compares rows on (`WorkerRows`, `compared-rows.ts`):
 * it digests and holds both sides (`RowComparison`), spills them beyond its
 * share of the memory bound, and walks them when asked, while the check's
 * main thread scans the store and replays the chain. Messages are handled
 * one at a time, in the order they were sent.
 */
import type { MessagePort } from 'node:worker_threads'
import { parentPort, workerData } from 'node:worker_threads'
import { InvariantViolation } from '../domain/errors.ts'
import type { RowMismatch } from './row-comparison.ts'
import { RowComparison } from './row-comparison.ts'
import { SpillDisk } from './spill.ts'
import type { ToComparison, FromComparison, ComparisonSetup } from './compared-rows.ts'

if (parentPort === null) throw new InvariantViolation('compare-worker.ts runs as a worker thread')
const port: MessagePort = parentPort
const setup = workerData as ComparisonSetup
const post = (message: FromComparison): void => port.postMessage(message)

const disk = new SpillDisk(setup.spillDirectory, (location) => post({ type: 'spill-directory', location }))
const comparison = new RowComparison(disk, setup.sideBytesMax)
let walk: AsyncGenerator<RowMismatch[]> | undefined
let failed = false

async function handle(message: ToComparison): Promise<void> {
  switch (message.type) {
    case 'live':
    case 'replayed': {
      const block = Buffer.from(message.block, 0, message.length)
      if (message.type === 'live') comparison.addLive(block)
      else comparison.addReplayed(block)
      await comparison.spillIfOver()
      post({ type: 'ack', bytes: message.length })
      return
    }
    case 'next': {
      walk ??= comparison.mismatches(message.rowsMax)
      const step = await walk.next()
      post({ type: 'mismatches', rows: step.done === true ? [] : step.value, done: step.done === true, spills: comparison.spills })
      return
    }
    case 'close':
      await walk?.return(undefined)
      await disk.close()
      post({ type: 'closed' })
      port.close()
      return
    default: {
      const never: never = message
      throw new InvariantViolation(`unknown comparison message ${String((never as { type: unknown }).type)}`)
    }
  }
}

let queue = Promise.resolve()
port.on('message', (message: ToComparison) => {
  queue = queue.then(async () => {
    // After a failure only `close` still runs: the main thread stops at the first error.
    if (failed && message.type !== 'close') return
    try {
      await handle(message)
    } catch (error) {
      failed = true
      post({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
    }
  })
})
