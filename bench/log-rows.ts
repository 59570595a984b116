/**
 * The v2 log row of one bulk transfer (a NEW_TRANSACTION log), in
 * isolation: encoded as the FSM writes it (`encodeLogRow`) and decoded as
 * export, the logs list and pipelines read it (`decodeLogRow`).
 *
 *   node --import tsx bench/log-rows.ts [--root DIR] [--iterations 20000] [--rounds 5]
 *
 * --root points at another checkout so that two versions are timed
 * alternately in one run; the best round is printed, in ns per log, with
 * the row's bytes. (A build with the short NEW_TRANSACTION row of branch
 * `h/rows-short-log-experiment` takes the transaction's record and decodes
 * through `decodeLogRows`, the transaction rows read from memory: both are
 * handled.)
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    iterations: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '5' },
  },
})
const root = path.resolve(values.root)
const domain = (await import(pathToFileURL(path.join(root, 'src/domain/index.ts')).href)) as typeof import('../src/domain/index.ts')
const layout = (await import(pathToFileURL(path.join(root, 'src/store/layout.ts')).href)) as Record<string, unknown>
const orders = (await import(pathToFileURL(path.join(root, 'src/orders/output.ts')).href)) as typeof import('../src/orders/output.ts')
type TransactionRecord = import('../src/domain/index.ts').TransactionRecord
type LedgerName = import('../src/domain/index.ts').LedgerName

const encodeLogRow = layout.encodeLogRow as (log: unknown, created?: TransactionRecord) => Buffer
const decodeLogRows = layout.decodeLogRows as ((ledger: string, rows: Buffer[], read: (keys: readonly Buffer[]) => (Buffer | undefined)[]) => unknown[]) | undefined
const decodeLogRow = layout.decodeLogRow as ((row: Buffer) => unknown) | undefined
const ledger = 'bench' as LedgerName

// A transfer between two users with commit volumes, as a bulk element creates it, and its NEW_TRANSACTION log.
function sampleOf(i: number): { record: TransactionRecord; log: unknown } {
  const source = `users:${String((i * 7) % 1000).padStart(4, '0')}`
  const destination = `users:${String((i * 13) % 1000).padStart(4, '0')}`
  const volumes = (input: bigint, output: bigint) => ({ 'USD/2': { input, output } })
  const record = {
    id: BigInt(1_000_000 + i),
    postings: [{ source, destination, amount: 100n, asset: 'USD/2' }],
    timestamp: '2026-12-06T22:00:00.000Z',
    insertedAt: '2026-12-06T22:00:00.000Z',
    updatedAt: '2026-12-06T22:00:00.000Z',
    metadata: domain.canonicalMetadata([]),
    reverted: false,
    preCommitVolumes: { [source]: volumes(50_000n, 20_000n), [destination]: volumes(7_000n, 300n) },
    postCommitVolumes: { [source]: volumes(50_000n, 20_100n), [destination]: volumes(7_100n, 300n) },
  } as unknown as TransactionRecord
  const log = {
    id: BigInt(2_000_000 + i),
    hash: 'q0J5Yg8GZ1oQcf1mB2b0b5y6oH3b9b0oLk2m0p2n8wA=',
    type: 'NEW_TRANSACTION',
    data: { transaction: orders.transactionView(record), accountMetadata: {} },
    date: '2026-12-06T22:00:00Z',
  }
  return { record, log }
}

const iterations = Number(values.iterations)
const samples = Array.from({ length: 1000 }, (_, i) => sampleOf(i))
const transactionRows = new Map<string, Buffer>()
for (const { record } of samples) {
  transactionRows.set(domain.transactionKey(ledger, record.id), domain.encodeAttribute({ kind: 't', value: record }).bytes)
}
const read = (keys: readonly Buffer[]) => keys.map((key) => transactionRows.get(key.toString('utf8', 1)))
let bytes = 0
let sink = 0
function round(): { encode: number; decode: number } {
  const encoded: Buffer[] = []
  let started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) {
    const { record, log } = samples[i % samples.length] as { record: TransactionRecord; log: unknown }
    const row = encodeLogRow(log, record)
    if (i < samples.length) encoded.push(row)
  }
  const encode = Number(process.hrtime.bigint() - started) / iterations
  bytes = encoded.reduce((sum, row) => sum + row.length, 0) / encoded.length
  started = process.hrtime.bigint()
  // In batches of 100, as export and the logs list read them.
  for (let i = 0; i < iterations; i += 100) {
    const batch = Array.from({ length: 100 }, (_, j) => encoded[(i + j) % encoded.length] as Buffer)
    if (decodeLogRows !== undefined) sink += decodeLogRows(ledger, batch, read).length
    else if (decodeLogRow !== undefined) for (const row of batch) sink += decodeLogRow(row) === null ? 0 : 1
  }
  const decode = Number(process.hrtime.bigint() - started) / iterations
  return { encode, decode }
}

const rounds = Array.from({ length: Number(values.rounds) }, round)
console.log(
  JSON.stringify({
    root,
    encodeNsPerLog: Math.round(Math.min(...rounds.map((r) => r.encode))),
    decodeNsPerLog: Math.round(Math.min(...rounds.map((r) => r.decode))),
    rowBytes: Math.round(bytes),
    sink,
  }),
)
