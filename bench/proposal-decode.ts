/**
 * What the leader's apply no longer does per `_bulk` proposal: decode the
 * WAL record admission just encoded (`decodeProposal`), in isolation, for a
 * bulk of transfers with the coverage admission plans for it (three keys per
 * transfer, a third of them seeded with a stored row).
 *
 *   node --import tsx bench/proposal-decode.ts [--bulk-size 100] [--iterations 2000] [--rounds 5]
 *
 * Prints the best round, in ns per transaction, of encoding (still done: the
 * WAL record) and of decoding (now done only by recovery, replicas and check).
 * Both include what the seeds cost on their way: encoding turns each stored
 * row into its seed (`coverageSeed`, as admission does), decoding turns each
 * seed back into row bytes (as the FSM does before decoding the attribute),
 * so builds that carry seeds differently (base64 text or bytes) compare.
 */
import { parseArgs } from 'node:util'
import { coverageSeed, decodeProposal, encodeProposal } from '../src/fsm/index.ts'
import type { CoverageEntry, Proposal } from '../src/fsm/index.ts'
import type { Order } from '../src/orders/index.ts'
import type { CanonicalKey } from '../src/domain/index.ts'

const { values } = parseArgs({
  options: {
    'bulk-size': { type: 'string', default: '100' },
    iterations: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
  },
})
const bulkSize = Number(values['bulk-size'])
const iterations = Number(values.iterations)

const coverage: CoverageEntry[] = []
const rows: (Buffer | undefined)[] = []
const orders: Proposal['orders'][number][] = []
for (let i = 0; i < bulkSize; i++) {
  const source = `users:${(i * 7) % 1000}`
  const destination = `users:${(i * 13) % 1000}`
  const first = coverage.length
  // Key shapes as the cache names them; the seed stands for a stored attribute row of ~90 bytes.
  coverage.push({ key: `v\u0000bench\u0000${source}\u0000USD/2` as CanonicalKey, seed: coverageSeed(Buffer.alloc(90, i)) })
  coverage.push({ key: `v\u0000bench\u0000${destination}\u0000USD/2` as CanonicalKey })
  coverage.push({ key: `a\u0000bench\u0000${destination}` as CanonicalKey, seed: null })
  rows.push(Buffer.alloc(90, i), undefined, undefined)
  const order = {
    type: 'CREATE_TRANSACTION',
    ledger: 'bench',
    postings: [{ source, destination, amount: BigInt(1 + i), asset: 'USD/2' }],
    metadata: {},
    accountMetadata: {},
    force: false,
  } as unknown as Order
  orders.push({ order, coverageIndexes: [first, first + 1, first + 2] })
}
const proposal: Proposal = {
  id: 'bench-proposal',
  date: '2026-12-06T12:00:00.000Z',
  predictedIndex: 123_456,
  cacheEpoch: 1,
  cacheGeneration: 42,
  storeIndexAtLoad: 123_400,
  coverage,
  orders,
  atomic: false,
  continueOnFailure: false,
}
const record = encodeProposal(proposal)

let sink = 0
function time(work: () => number): number {
  const started = process.hrtime.bigint()
  for (let index = 0; index < iterations; index++) sink += work()
  return Number(process.hrtime.bigint() - started) / (iterations * bulkSize)
}

const encode: number[] = []
const decode: number[] = []
for (let round = 0; round < Number(values.rounds); round++) {
  encode.push(
    time(() => {
      const seeded = coverage.map((entry, i) => (entry.seed === undefined ? entry : { key: entry.key, seed: coverageSeed(rows[i]) }))
      return encodeProposal({ ...proposal, coverage: seeded }).length
    }),
  )
  decode.push(
    time(() => {
      let seedBytes = 0
      for (const entry of decodeProposal(record).coverage) {
        const seed: unknown = entry.seed
        if (typeof seed === 'string') seedBytes += Buffer.from(seed, 'base64').length
        else if (seed instanceof Uint8Array) seedBytes += seed.length
      }
      return seedBytes
    }),
  )
}
console.log(JSON.stringify({ bulkSize, iterations, recordBytes: record.length, encodeNsPerTransaction: Math.round(Math.min(...encode)), decodeNsPerTransaction: Math.round(Math.min(...decode)), sink }))
