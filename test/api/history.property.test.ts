import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { effectiveVolumes, transactionEffectiveVolumes, volumesInsertedBy } from '../../src/api/history.ts'
import type { VolumesByAsset } from '../../src/api/history.ts'
import { writeTransactionIndexes } from '../../src/fsm/indexes.ts'
import { WriteBatch } from '../../src/fsm/write-batch.ts'
import type { LedgerName, TransactionRecord } from '../../src/domain/index.ts'
import type { LedgerLog } from '../../src/orders/index.ts'
import type { RangeOptions, StoreReader } from '../../src/store/index.ts'
import { Store } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * The volume histories read the by-account index rows the FSM writes
 * (`writeTransactionIndexes`); this test holds them to a naive reference that
 * sums the transactions themselves, comparing instants as numbers, over
 * random ledgers with backdated transactions, equal timestamps, several
 * assets and dates of mixed precision.
 */

const ledger = 'main' as LedgerName
const accounts = ['world', 'a', 'b', 'a:b', 'ab']
const assets = ['USD', 'EUR/2']

/** An instant as RFC 3339 text with 0–9 fraction digits, and its value in nanoseconds. */
interface Instant {
  readonly text: string
  readonly nanos: bigint
}

function instant(seconds: number, fraction: number, digits: number): Instant {
  const base = new Date(Date.UTC(2026, 0, 1) + seconds * 1000).toISOString().slice(0, 19)
  const shown = String(fraction).padStart(9, '0').slice(0, digits)
  return { text: `${base}${digits === 0 ? '' : `.${shown}`}Z`, nanos: BigInt(Date.UTC(2026, 0, 1) / 1000 + seconds) * 1_000_000_000n + BigInt(shown.padEnd(9, '0')) }
}

const instantArbitrary = fc.tuple(fc.integer({ min: 0, max: 5 }), fc.constantFrom(0, 500_000_000, 123_456_789), fc.integer({ min: 0, max: 9 })).map(([s, f, d]) => instant(s, f, d))
const postingArbitrary = fc.record({
  source: fc.constantFrom(...accounts),
  destination: fc.constantFrom(...accounts),
  amount: fc.bigInt({ min: 1n, max: 10n ** 20n }),
  asset: fc.constantFrom(...assets),
})
const ledgerArbitrary = fc.array(fc.record({ timestamp: instantArbitrary, insertedStep: fc.integer({ min: 0, max: 2 }), postings: fc.array(postingArbitrary, { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 12 })

interface Written {
  readonly id: bigint
  readonly timestamp: Instant
  readonly insertedAt: Instant
  readonly postings: readonly { source: string; destination: string; amount: bigint; asset: string }[]
}

/** Sorted rows behind the reader interface the views use. */
class MemoryReader implements StoreReader {
  private readonly rows: [Buffer, Buffer][]
  constructor(batch: WriteBatch) {
    this.rows = batch.rows().map((row) => [row.key, row.value as Buffer] as [Buffer, Buffer])
    this.rows.sort(([x], [y]) => Buffer.compare(x, y))
  }
  async get(key: Buffer): Promise<Buffer | undefined> {
    return this.rows.find(([k]) => k.equals(key))?.[1]
  }
  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return Promise.all(keys.map((key) => this.get(key)))
  }
  async *range(options: RangeOptions): AsyncIterable<[Buffer, Buffer]> {
    let selected = this.rows.filter(([key]) => Buffer.compare(key, options.gte) >= 0 && (options.lt === undefined || Buffer.compare(key, options.lt) < 0))
    if (options.reverse === true) selected = selected.reverse()
    yield* selected.slice(0, options.limit ?? selected.length)
  }
}

function naive(written: readonly Written[], account: string, keep: (transaction: Written) => boolean, onlyAssets?: ReadonlySet<string>): VolumesByAsset {
  const volumes: VolumesByAsset = new Map()
  const add = (asset: string, input: bigint, output: bigint) => {
    if (onlyAssets !== undefined && !onlyAssets.has(asset)) return
    const entry = volumes.get(asset) ?? { input: 0n, output: 0n }
    volumes.set(asset, { input: entry.input + input, output: entry.output + output })
  }
  for (const transaction of written) {
    if (!keep(transaction)) continue
    for (const posting of transaction.postings) {
      if (posting.source === account) add(posting.asset, 0n, posting.amount)
      if (posting.destination === account) add(posting.asset, posting.amount, 0n)
    }
  }
  return volumes
}

const sorted = (volumes: VolumesByAsset) => [...volumes].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))

test('volume histories from the by-account index equal a naive sum over the transactions (property)', async () => {
  await fc.assert(
    fc.asyncProperty(ledgerArbitrary, instantArbitrary, instantArbitrary, async (drafts, pit, from) => {
      const batch = new WriteBatch()
      const written: Written[] = []
      let inserted = 0
      for (const [index, draft] of drafts.entries()) {
        inserted += draft.insertedStep
        const transaction: Written = { id: BigInt(index), timestamp: draft.timestamp, insertedAt: instant(inserted, 0, 3), postings: draft.postings }
        written.push(transaction)
        const logged = { id: transaction.id, timestamp: transaction.timestamp.text, insertedAt: transaction.insertedAt.text, postings: transaction.postings, metadata: {}, reverted: false }
        writeTransactionIndexes(ledger, { id: BigInt(index), type: 'NEW_TRANSACTION', data: { transaction: logged } } as unknown as LedgerLog, batch)
      }
      const store = new MemoryReader(batch)
      for (const account of accounts) {
        assert.deepEqual(sorted(await effectiveVolumes(store, ledger, account)), sorted(naive(written, account, () => true)))
        assert.deepEqual(sorted(await effectiveVolumes(store, ledger, account, pit.text)), sorted(naive(written, account, (t) => t.timestamp.nanos <= pit.nanos)))
        assert.deepEqual(
          sorted(await effectiveVolumes(store, ledger, account, pit.text, from.text)),
          sorted(naive(written, account, (t) => t.timestamp.nanos <= pit.nanos && t.timestamp.nanos >= from.nanos)),
        )
        assert.deepEqual(sorted(await volumesInsertedBy(store, ledger, account, pit.text)), sorted(naive(written, account, (t) => t.insertedAt.nanos <= pit.nanos)))
        assert.deepEqual(
          sorted(await volumesInsertedBy(store, ledger, account, pit.text, from.text)),
          sorted(naive(written, account, (t) => t.insertedAt.nanos <= pit.nanos && t.insertedAt.nanos >= from.nanos)),
        )
      }
      for (const transaction of written) {
        const record = { id: transaction.id, timestamp: transaction.timestamp.text, postings: transaction.postings } as unknown as TransactionRecord
        const { pre, post } = await transactionEffectiveVolumes(store, ledger, record)
        const before = (t: Written) => t.timestamp.nanos < transaction.timestamp.nanos || (t.timestamp.nanos === transaction.timestamp.nanos && t.id < transaction.id)
        const touched = new Set(transaction.postings.flatMap((posting) => [posting.source, posting.destination]))
        assert.deepEqual(Object.keys(pre).sort(), [...touched].sort())
        for (const account of touched) {
          const own = new Set(transaction.postings.filter((p) => p.source === account || p.destination === account).map((p) => p.asset))
          const expectedPre = naive(written, account, before, own)
          const expectedPost = naive(written, account, (t) => before(t) || t.id === transaction.id, own)
          for (const asset of own) {
            const p = expectedPre.get(asset) ?? { input: 0n, output: 0n }
            const q = expectedPost.get(asset) ?? { input: 0n, output: 0n }
            assert.deepEqual(pre[account]?.[asset], { ...p, balance: p.input - p.output }, `pre ${account} ${asset} of ${transaction.id}`)
            assert.deepEqual(post[account]?.[asset], { ...q, balance: q.input - q.output }, `post ${account} ${asset} of ${transaction.id}`)
          }
          assert.deepEqual(Object.keys(pre[account] ?? {}).sort(), [...own].sort())
        }
      }
    }),
    { numRuns: 150 },
  )
})

test('volume histories read from a real store in growing batches (an account with hundreds of rows) equal the naive sum', async () => {
  const temp = tempDirectory('tally-history-batches-')
  const store = await Store.open(temp.directory)
  try {
    const batch = new WriteBatch()
    const written: Written[] = []
    // 700 transactions: 'a' and 'world' hold enough rows for batches of 64, 128, 256 and a partial one.
    for (let index = 0; index < 700; index++) {
      const postings = [{ source: index % 3 === 0 ? 'world' : 'b', destination: 'a', amount: BigInt(index + 1), asset: assets[index % 2] as string }]
      const transaction: Written = { id: BigInt(index), timestamp: instant((index * 7) % 5, 0, 3), insertedAt: instant(index, 0, 3), postings }
      written.push(transaction)
      const logged = { id: transaction.id, timestamp: transaction.timestamp.text, insertedAt: transaction.insertedAt.text, postings, metadata: {}, reverted: false }
      writeTransactionIndexes(ledger, { id: BigInt(index), type: 'NEW_TRANSACTION', data: { transaction: logged } } as unknown as LedgerLog, batch)
    }
    await store.write(batch.rows(), { sync: false })
    const pit = instant(2, 0, 3)
    for (const account of ['a', 'world', 'b']) {
      assert.deepEqual(sorted(await effectiveVolumes(store, ledger, account)), sorted(naive(written, account, () => true)))
      assert.deepEqual(sorted(await effectiveVolumes(store, ledger, account, pit.text)), sorted(naive(written, account, (t) => t.timestamp.nanos <= pit.nanos)))
      // Stops at its date: after 300 of the 700 insertions, inside the third batch.
      const inserted = instant(300, 0, 3)
      assert.deepEqual(sorted(await volumesInsertedBy(store, ledger, account, inserted.text)), sorted(naive(written, account, (t) => t.insertedAt.nanos <= inserted.nanos)))
    }
  } finally {
    await store.close()
    temp.remove()
  }
})
