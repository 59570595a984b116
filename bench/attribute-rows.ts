/**
 * The attribute rows one bulk transaction writes, in isolation: the
 * transaction record and the two volumes it moves, encoded as the FSM writes
 * them (`encodeAttribute`) and decoded as a reader or a restore reads them
 * (`decodeAttribute`).
 *
 *   node --import tsx bench/attribute-rows.ts [--root DIR] [--iterations 20000] [--rounds 5]
 *
 * --root points at another checkout so that two versions are timed
 * alternately in one run; the best round is printed, in ns per transaction,
 * with the bytes those rows take.
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
type AttributeValue = import('../src/domain/index.ts').AttributeValue

// Shaped like a bulk element's rows: a transfer between two users with commit volumes.
function rowsOf(i: number): AttributeValue[] {
  const source = `users:${String((i * 7) % 1000).padStart(4, '0')}`
  const destination = `users:${String((i * 13) % 1000).padStart(4, '0')}`
  const volumes = (input: bigint, output: bigint) => ({ 'USD/2': { input, output } })
  return [
    {
      kind: 't',
      value: {
        id: BigInt(1_000_000 + i),
        postings: [{ source, destination, amount: 100n, asset: 'USD/2' }],
        timestamp: '2026-12-06T22:00:00.000Z',
        insertedAt: '2026-12-06T22:00:00.000Z',
        updatedAt: '2026-12-06T22:00:00.000Z',
        metadata: {},
        reverted: false,
        preCommitVolumes: { [source]: volumes(50_000n, 20_000n), [destination]: volumes(7_000n, 300n) },
        postCommitVolumes: { [source]: volumes(50_000n, 20_100n), [destination]: volumes(7_100n, 300n) },
      } as never,
    },
    { kind: 'v', value: { input: 50_000n, output: 20_100n } },
    { kind: 'v', value: { input: 7_100n, output: 300n } },
  ]
}

const iterations = Number(values.iterations)
const samples = Array.from({ length: 1000 }, (_, i) => rowsOf(i))
let bytes = 0
let sink = 0
function round(): { encode: number; decode: number } {
  const encoded: Buffer[][] = []
  let started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) {
    const rows = samples[i % samples.length] as AttributeValue[]
    const out: Buffer[] = []
    for (const row of rows) out.push(domain.encodeAttribute(row).bytes)
    if (i < samples.length) encoded.push(out)
  }
  const encode = Number(process.hrtime.bigint() - started) / iterations
  bytes = encoded.reduce((sum, rows) => sum + rows.reduce((s, row) => s + row.length, 0), 0) / encoded.length
  started = process.hrtime.bigint()
  for (let i = 0; i < iterations; i++) {
    const rows = encoded[i % encoded.length] as Buffer[]
    sink += (domain.decodeAttribute('t', rows[0] as Buffer).value.value as unknown as { postings: unknown[] }).postings.length
    sink += domain.decodeAttribute('v', rows[1] as Buffer).bytes.length + domain.decodeAttribute('v', rows[2] as Buffer).bytes.length
  }
  const decode = Number(process.hrtime.bigint() - started) / iterations
  return { encode, decode }
}

const rounds = Array.from({ length: Number(values.rounds) }, round)
console.log(
  JSON.stringify({
    root,
    encodeNsPerTransaction: Math.round(Math.min(...rounds.map((r) => r.encode))),
    decodeNsPerTransaction: Math.round(Math.min(...rounds.map((r) => r.decode))),
    rowBytesPerTransaction: Math.round(bytes),
    sink,
  }),
)
