import { hash } from 'node:crypto'
import { invariant } from '../domain/errors.ts'
import { Zone } from '../store/layout.ts'
import type { SpilledValue } from './spill.ts'
import { OrderedSpillRows, SpillDisk, SpillRows, compareLatin1 } from './spill.ts'

/**
 * The comparison half of `tally check`: the store's live rows and the rows
 * the replay wrote, each side held within its share of the memory bound
 * (spilled beyond), then walked once in store key order. It needs no store
 * and no FSM, so it can run on a thread of its own (`compare-worker.ts`)
 * while the check's main thread scans the store and replays the chain; or
 * on the main thread itself (`InThreadRows` in `check.ts`), the same code.
 *
 * Rows reach it packed into blocks (`RowPacker`): one transfer per block of
 * rows, not one message or call per row.
 */

/** A row a replay deleted: its value length in a packed block. */
const DELETED = 0xffffffff

/**
 * A row's fingerprint for comparison: the first 16 bytes of its SHA-256
 * (22 base64 characters), so millions of rows fit in memory.
 */
export const digestOf = (value: Buffer): string => hash('sha256', value, 'base64').slice(0, 22)

/** Zones the comparison keeps whole on the replay's side (a finding prints them; there are few): the cache mirror. Others as digests. */
const keptWhole = (zone: number): boolean => zone === Zone.cacheMirror

/** A difference the walk found: `expected` is the replay's row (whole, or a digest: `string`), absent when the replay wrote none; `present` when the store holds the key. */
export interface RowMismatch {
  readonly key: Buffer
  readonly expected: SpilledValue | undefined
  readonly present: boolean
}

/**
 * Rows packed into one buffer: `[u16 key length][key][u32 value length][value]`,
 * a value length of 0xffffffff for a deletion (no value bytes). Blocks are
 * handed over whole when full (`onBlock`), so the receiver can own them
 * (a transfer to another thread copies nothing).
 */
export class RowPacker {
  private block: Buffer
  private used = 0

  constructor(
    private readonly blockBytes: number,
    private readonly onBlock: (block: Buffer) => void,
  ) {
    this.block = Buffer.allocUnsafeSlow(blockBytes)
  }

  add(key: Buffer, value: Buffer | null): void {
    invariant(key.length <= 0xffff, 'a row key too long to pack')
    const size = 6 + key.length + (value === null ? 0 : value.length)
    if (this.used + size > this.block.length) {
      this.flush()
      if (size > this.block.length) this.block = Buffer.allocUnsafeSlow(size)
    }
    const block = this.block
    let at = this.used
    block.writeUInt16BE(key.length, at)
    at += 2
    at += key.copy(block, at)
    if (value === null) {
      block.writeUInt32BE(DELETED, at)
      at += 4
    } else {
      block.writeUInt32BE(value.length, at)
      at += 4
      at += value.copy(block, at)
    }
    this.used = at
  }

  /** Hands over what is packed (nothing when empty) and starts a new block. */
  flush(): void {
    if (this.used === 0) return
    const full = this.block.subarray(0, this.used)
    this.block = Buffer.allocUnsafeSlow(this.blockBytes)
    this.used = 0
    this.onBlock(full)
  }
}

/** Each row of a packed block, in order; `value` null for a deletion. Key and value are views into the block. */
export function forEachPacked(block: Buffer, visit: (key: Buffer, value: Buffer | null) => void): void {
  let at = 0
  while (at < block.length) {
    const keyLength = block.readUInt16BE(at)
    at += 2
    const key = block.subarray(at, at + keyLength)
    at += keyLength
    const valueLength = block.readUInt32BE(at)
    at += 4
    if (valueLength === DELETED) {
      visit(key, null)
      continue
    }
    visit(key, block.subarray(at, at + valueLength))
    at += valueLength
  }
  invariant(at === block.length, 'a packed block ends on a row boundary')
}

/** Rows of the store zones the replay writes and the check compares (logs, attributes, indexes, mirror); audit entries and meta rows are compared apart. */
export const comparedZone = (zone: number): boolean => zone === Zone.logs || zone === Zone.attributes || zone === Zone.indexes || zone === Zone.cacheMirror

export class RowComparison {
  /** The store's rows, in key order: key and digest. */
  private readonly live: OrderedSpillRows
  /** The replay's rows by latin1 key: digests, the mirror whole; a deletion null until spilled. */
  private readonly replayed: SpillRows

  constructor(
    disk: SpillDisk,
    /** Bytes each side holds in memory before it spills. */
    sideBytesMax: number,
  ) {
    this.live = new OrderedSpillRows(disk, 'store-rows', sideBytesMax)
    this.replayed = new SpillRows(disk, 0x52, sideBytesMax, (zone) => !keptWhole(zone))
  }

  get spills(): number {
    return this.live.spills + this.replayed.spills
  }

  get overBudget(): boolean {
    return this.live.overBudget || this.replayed.overBudget
  }

  /** One of the store's rows; they come in key order (the scan's). */
  liveRow(key: Buffer, value: Buffer): void {
    this.live.append(key, digestOf(value))
  }

  /** One row the replay wrote (null: deleted); a later write of a key wins. A row kept whole is copied: `value` may be a view into a larger buffer. */
  replayedRow(key: Buffer, value: Buffer | null): void {
    this.replayed.set(key.toString('latin1'), value === null ? null : keptWhole(key[0] as number) ? Buffer.from(value) : digestOf(value))
  }

  /** A packed block of the store's rows, in key order. */
  addLive(block: Buffer): void {
    forEachPacked(block, (key, value) => {
      invariant(value !== null, 'a store row has a value')
      this.liveRow(key, value)
    })
  }

  /** A packed block of rows the replay wrote, in the order it wrote them. */
  addReplayed(block: Buffer): void {
    forEachPacked(block, (key, value) => this.replayedRow(key, value))
  }

  /** Spills whichever side outgrew its share. */
  async spillIfOver(): Promise<void> {
    if (this.live.overBudget) await this.live.spill()
    if (this.replayed.overBudget) await this.replayed.spill()
  }

  /**
   * Both sides walked once, in store key order (memory and spilled rows
   * merged), in batches of at most `batchRows` mismatches: every replayed
   * row against the live digest, every live row nothing replayed.
   */
  async *mismatches(batchRows: number): AsyncGenerator<RowMismatch[]> {
    const expected = new BatchCursor(this.replayed.sorted())
    const live = new BatchCursor<[string, SpilledValue]>(this.live.sorted())
    let found: RowMismatch[] = []
    await expected.fill()
    await live.fill()
    for (;;) {
      const expectedRow = expected.current
      const liveRow = live.current
      if (expectedRow === undefined && liveRow === undefined) break
      const order = expectedRow === undefined ? 1 : liveRow === undefined ? -1 : compareLatin1(expectedRow[0], liveRow[0])
      if (order < 0) {
        const [id, row] = expectedRow as [string, SpilledValue]
        found.push({ key: Buffer.from(id, 'latin1'), expected: row, present: false })
      } else if (order > 0) {
        found.push({ key: Buffer.from((liveRow as [string, SpilledValue])[0], 'latin1'), expected: undefined, present: true })
      } else {
        const [id, row] = expectedRow as [string, SpilledValue]
        if ((liveRow as [string, SpilledValue])[1] !== (typeof row === 'string' ? row : digestOf(row))) found.push({ key: Buffer.from(id, 'latin1'), expected: row, present: true })
      }
      if (order <= 0 && !expected.advance()) await expected.fill()
      if (order >= 0 && !live.advance()) await live.fill()
      if (found.length >= batchRows) {
        yield found
        found = []
      }
    }
    if (found.length > 0) yield found
  }
}

/** Reads an async source of batches an entry at a time, awaiting only when a batch is used up. */
class BatchCursor<T> {
  private batch: readonly T[] = []
  private at = 0
  private readonly source: AsyncIterator<readonly T[]>

  constructor(source: AsyncIterable<readonly T[]>) {
    this.source = source[Symbol.asyncIterator]()
  }

  /** The entry at the cursor; undefined once the source is used up. */
  get current(): T | undefined {
    return this.batch[this.at]
  }

  /** Moves to the next entry; false when the batch is used up (then `fill` reads the next). */
  advance(): boolean {
    this.at++
    return this.at < this.batch.length
  }

  /** Reads batches until one has an entry, or the source ends. */
  async fill(): Promise<void> {
    while (this.at >= this.batch.length) {
      const step = await this.source.next()
      if (step.done === true) {
        this.batch = []
        this.at = 0
        return
      }
      this.batch = step.value
      this.at = 0
    }
  }
}
