import { rmSync } from 'node:fs'
import type { Worker } from 'node:worker_threads'
import { invariant } from '../domain/errors.ts'
import type { RowMismatch } from './row-comparison.ts'
import { RowComparison, RowPacker } from './row-comparison.ts'
import { SpillDisk } from './spill.ts'
import { startSourceWorker } from './source-worker.ts'

/**
 * Where `tally check` keeps and compares the rows: the store's (in key
 * order) and the replay's (in the order it wrote them). The scan and the
 * replay hand rows over synchronously and await `settle()` when `backlogged`
 * (between rows and audit entries); `mismatches()` then walks both sides.
 * `InThreadRows` compares on the calling thread, `WorkerRows` on a thread of
 * its own: the same `RowComparison`, so the same findings either way.
 */
export interface ComparedRows {
  live(key: Buffer, value: Buffer): void
  replayed(key: Buffer, value: Buffer | null): void
  /** The caller should await `settle()` before handing over more. */
  readonly backlogged: boolean
  settle(): Promise<void>
  /** Every difference, in store key order, in batches; called once, after the last row. */
  mismatches(): AsyncIterable<readonly RowMismatch[]>
  /** Spills so far (all of them once `mismatches()` is done). */
  readonly spills: number
  close(): Promise<void>
}

/** Mismatches per batch of the walk. */
const mismatchBatchRows = 512

/** Compares on the calling thread: rows go straight into the `RowComparison`. */
export class InThreadRows implements ComparedRows {
  private readonly comparison: RowComparison

  constructor(private readonly disk: SpillDisk, sideBytesMax: number) {
    this.comparison = new RowComparison(disk, sideBytesMax)
  }

  live(key: Buffer, value: Buffer): void {
    this.comparison.liveRow(key, value)
  }

  replayed(key: Buffer, value: Buffer | null): void {
    this.comparison.replayedRow(key, value)
  }

  get backlogged(): boolean {
    return this.comparison.overBudget
  }

  settle(): Promise<void> {
    return this.comparison.spillIfOver()
  }

  mismatches(): AsyncIterable<readonly RowMismatch[]> {
    return this.comparison.mismatches(mismatchBatchRows)
  }

  get spills(): number {
    return this.comparison.spills
  }

  async close(): Promise<void> {
    await this.disk.close()
  }
}

/** What the comparison thread is started with. */
export interface ComparisonSetup {
  readonly spillDirectory: string | undefined
  readonly sideBytesMax: number
}

/** Main thread → comparison thread. A block's `ArrayBuffer` is transferred (its first `length` bytes are rows). */
export type ToComparison =
  | { readonly type: 'live' | 'replayed'; readonly block: ArrayBuffer; readonly length: number }
  | { readonly type: 'next'; readonly rowsMax: number }
  | { readonly type: 'close' }

/** Comparison thread → main thread. */
export type FromComparison =
  | { readonly type: 'ack'; readonly bytes: number }
  | { readonly type: 'mismatches'; readonly rows: readonly RowMismatch[]; readonly done: boolean; readonly spills: number }
  | { readonly type: 'spill-directory'; readonly location: string }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'closed' }

/** Bytes of rows per block handed to the comparison thread. */
const workerBlockBytes = 1024 * 1024
/** Blocks sent and not yet handled by the comparison thread, before the scan waits (`backlogged`): at least two. */
export const workerInFlightBytesMin = 2 * workerBlockBytes

/** The comparison thread's module, run through the same TypeScript loader as this one (tsx: `bin/tally.mjs`, the tests). */
const workerModule = new URL('./compare-worker.ts', import.meta.url)

/**
 * Compares on a worker thread: rows are packed into blocks (`RowPacker`)
 * and each block is transferred, so the main thread only copies bytes while
 * the other core digests, holds, spills and walks them. At most
 * `inFlightBytesMax` of blocks wait for the worker: beyond, the scan awaits
 * `settle()` (the memory stays bounded when the worker is slower).
 *
 * The worker starts once more than `startAfterBytes` of blocks were handed
 * over (0: at once). Until then the blocks are held; a check that ends
 * first compares them on the calling thread, with the same
 * `RowComparison`: starting a thread and its TypeScript loader costs more
 * than comparing a small ledger.
 */
export class WorkerRows implements ComparedRows {
  private worker: Worker | undefined
  /** Blocks handed over before the worker started (at most `startAfterBytes`). */
  private held: [type: 'live' | 'replayed', block: Buffer][] = []
  private heldBytes = 0
  private inThread: RowComparison | undefined
  private inThreadDisk: SpillDisk | undefined
  private readonly livePacker: RowPacker
  private readonly replayedPacker: RowPacker
  private inFlight = 0
  private waiting: (() => void) | undefined
  private failure: Error | undefined
  private replies: ((reply: FromComparison) => void)[] = []
  private spillLocation: string | undefined
  private spillsSeen = 0
  private exited: Promise<void> | undefined
  private closing = false

  constructor(
    private readonly spillDirectory: string | undefined,
    private readonly sideBytesMax: number,
    private readonly inFlightBytesMax: number,
    private readonly startAfterBytes = 0,
  ) {
    this.livePacker = new RowPacker(workerBlockBytes, (block) => this.send('live', block))
    this.replayedPacker = new RowPacker(workerBlockBytes, (block) => this.send('replayed', block))
    if (startAfterBytes === 0) this.start()
  }

  /** Starts the worker and hands it the blocks held so far. */
  private start(): Worker {
    const setup: ComparisonSetup = { spillDirectory: this.spillDirectory, sideBytesMax: this.sideBytesMax }
    const worker = startSourceWorker(workerModule, { workerData: setup, name: 'tally-check-comparison' })
    this.worker = worker
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()))
    worker.on('message', (message: FromComparison) => this.received(message))
    worker.on('error', (error) => this.fail(error))
    // Exiting before it was told to close is a failure, whether or not anything waits on it now (a later request would wait forever).
    worker.once('exit', (code) => {
      if (!this.closing) this.fail(new Error(`the comparison thread exited (code ${code})`))
    })
    const held = this.held
    this.held = []
    this.heldBytes = 0
    for (const [type, block] of held) this.post(worker, type, block)
    return worker
  }

  live(key: Buffer, value: Buffer): void {
    this.livePacker.add(key, value)
  }

  replayed(key: Buffer, value: Buffer | null): void {
    this.replayedPacker.add(key, value)
  }

  get backlogged(): boolean {
    return this.failure !== undefined || this.inFlight > this.inFlightBytesMax
  }

  async settle(): Promise<void> {
    while (this.inFlight > this.inFlightBytesMax) {
      this.throwIfFailed()
      await new Promise<void>((resolve) => (this.waiting = resolve))
    }
    this.throwIfFailed()
  }

  async *mismatches(): AsyncIterable<readonly RowMismatch[]> {
    this.livePacker.flush()
    this.replayedPacker.flush()
    if (this.worker === undefined) {
      yield* this.compareInThread()
      return
    }
    for (;;) {
      const reply = await this.request({ type: 'next', rowsMax: mismatchBatchRows })
      invariant(reply.type === 'mismatches', 'the comparison thread answers `next` with mismatches')
      this.spillsSeen = reply.spills
      // Buffers arrive as plain Uint8Arrays (structured clone).
      const rows = reply.rows.map((row) => ({ key: asBuffer(row.key), expected: typeof row.expected === 'object' ? asBuffer(row.expected) : row.expected, present: row.present }))
      if (rows.length > 0) yield rows
      if (reply.done) return
    }
  }

  /** The held blocks compared on this thread (the worker never started): the same comparison, within the same bound. */
  private async *compareInThread(): AsyncIterable<readonly RowMismatch[]> {
    this.inThreadDisk = new SpillDisk(this.spillDirectory)
    const comparison = new RowComparison(this.inThreadDisk, this.sideBytesMax)
    this.inThread = comparison
    const held = this.held
    this.held = []
    this.heldBytes = 0
    for (const [type, block] of held) {
      if (type === 'live') comparison.addLive(block)
      else comparison.addReplayed(block)
      await comparison.spillIfOver()
    }
    yield* comparison.mismatches(mismatchBatchRows)
  }

  get spills(): number {
    return this.inThread?.spills ?? this.spillsSeen
  }

  async close(): Promise<void> {
    const worker = this.worker
    this.closing = true
    try {
      if (worker !== undefined && this.failure === undefined) await this.request({ type: 'close' })
    } catch {
      // Reported by whoever awaited the failed request; the directory is removed below.
    } finally {
      if (worker !== undefined) {
        await worker.terminate()
        await this.exited
      }
      await this.inThreadDisk?.close()
      if (this.spillLocation !== undefined) rmSync(this.spillLocation, { recursive: true, force: true })
    }
  }

  private send(type: 'live' | 'replayed', block: Buffer): void {
    if (this.failure !== undefined) return
    if (this.worker !== undefined) {
      this.post(this.worker, type, block)
      return
    }
    this.held.push([type, block])
    this.heldBytes += block.length
    if (this.heldBytes > this.startAfterBytes) this.start()
  }

  private post(worker: Worker, type: 'live' | 'replayed', block: Buffer): void {
    invariant(block.byteOffset === 0, 'a packed block starts its own ArrayBuffer')
    const buffer = block.buffer as ArrayBuffer
    this.inFlight += block.length
    const message: ToComparison = { type, block: buffer, length: block.length }
    worker.postMessage(message, [buffer])
  }

  private request(message: ToComparison): Promise<FromComparison> {
    this.throwIfFailed()
    const worker = this.worker
    invariant(worker !== undefined, 'requests go to a started worker')
    return new Promise((resolve) => {
      this.replies.push(resolve)
      worker.postMessage(message)
    }).then((reply) => {
      this.throwIfFailed()
      return reply as FromComparison
    })
  }

  private received(message: FromComparison): void {
    switch (message.type) {
      case 'ack':
        this.inFlight -= message.bytes
        this.wake()
        return
      case 'spill-directory':
        this.spillLocation = message.location
        return
      case 'error':
        this.fail(new Error(`the comparison thread failed: ${message.message}`))
        return
      case 'mismatches':
      case 'closed':
        this.replies.shift()?.(message)
        return
      default: {
        const never: never = message
        throw new Error(`unknown message from the comparison thread ${String((never as { type: unknown }).type)}`)
      }
    }
  }

  private fail(error: Error): void {
    this.failure ??= error
    this.wake()
    // Pending requests settle; each rethrows the failure.
    for (const reply of this.replies.splice(0)) reply({ type: 'closed' })
  }

  private wake(): void {
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.()
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
}
