/**
 * The `_bulk` answer of 100 transfers (each with its commit volumes), as the
 * HTTP edge prints it, in process:
 *
 *   node --import tsx bench/bulk-answer.ts [--rounds 30]
 *
 * - generic: the objects printed by `stringifyJson` (the reply serializer
 *   before the transaction printer), then encoded as UTF-8 as the socket does;
 * - bytes: the field-by-field printer into a `JsonBytes` (what `_bulk` does);
 * - string: the printer's string form (`printTransaction`), joined and encoded.
 *
 * All three give the same bytes (checked first). Rounds alternate; prints the
 * median and the fastest round in ns per transaction.
 */
import { parseArgs } from 'node:util'
import type { AggregatedVolumes, Json, TransactionRecord } from '../src/domain/index.ts'
import { JsonBytes, canonicalMetadata, emptyKeyed, keyedChild, printTransaction, stringifyJson, writeTransaction } from '../src/domain/index.ts'
import { transactionView } from '../src/orders/index.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '30' } } })
const rounds = Number(values.rounds)
const count = 100

function volumes(entries: readonly [string, bigint, bigint][]): AggregatedVolumes {
  const result: AggregatedVolumes = emptyKeyed()
  for (const [account, input, output] of entries) keyedChild(result, account)['USD/2'] = { input, output, balance: input - output }
  return result
}

const views = Array.from({ length: count }, (_, i) => {
  const source = `users:${(i * 7) % 1000}`
  const destination = `users:${i}`
  const record = {
    id: BigInt(1000 + i),
    postings: [{ source, destination, amount: BigInt(i + 1), asset: 'USD/2' }],
    timestamp: '2026-12-07T04:00:00.123Z',
    insertedAt: '2026-12-07T04:00:00.123Z',
    updatedAt: '2026-12-07T04:00:00.123Z',
    metadata: canonicalMetadata([]),
    reverted: false,
    preCommitVolumes: volumes([[source, 5000n, 100n], [destination, 10n, 0n]]),
    postCommitVolumes: volumes([[source, 5000n, 101n], [destination, 11n, 0n]]),
  } as unknown as TransactionRecord
  return transactionView(record, { volumes: true })
})
const elements: Json[] = views.map((data, i) => ({ responseType: 'CREATE_TRANSACTION', logID: BigInt(2000 + i), data }))

const out = new JsonBytes()
const printers: Record<string, () => Buffer> = {
  generic: () => Buffer.from(stringifyJson({ data: elements }), 'utf8'),
  bytes: () => {
    out.raw('{"data":[')
    views.forEach((view, i) => {
      out.raw(i === 0 ? '{"responseType":"CREATE_TRANSACTION","logID":' : ',{"responseType":"CREATE_TRANSACTION","logID":')
      out.integer(BigInt(2000 + i))
      out.raw(',"data":')
      writeTransaction(out, view as unknown as TransactionRecord, { volumes: true })
      out.raw('}')
    })
    out.raw(']}')
    return out.take()
  },
  string: () =>
    Buffer.from(
      `{"data":[${views.map((view, i) => `{"responseType":"CREATE_TRANSACTION","logID":${2000 + i},"data":${printTransaction(view as unknown as TransactionRecord, { volumes: true })}}`).join(',')}]}`,
      'utf8',
    ),
}
const reference = printers.generic?.() as Buffer
for (const [name, print] of Object.entries(printers)) if (!print().equals(reference)) throw new Error(`${name} prints other bytes`)

const timings = new Map<string, number[]>(Object.keys(printers).map((name) => [name, []]))
for (let round = 0; round < rounds; round++) {
  for (const [name, print] of Object.entries(printers)) {
    const started = process.hrtime.bigint()
    for (let repeat = 0; repeat < 50; repeat++) print()
    timings.get(name)?.push(Number(process.hrtime.bigint() - started) / 50 / count)
  }
}
process.stdout.write(`| printer | median ns/tx | fastest round ns/tx |\n| --- | --- | --- |\n`)
for (const [name, samples] of timings) {
  samples.sort((a, b) => a - b)
  process.stdout.write(`| ${name} | ${Math.round(samples[Math.floor(samples.length / 2)] as number)} | ${Math.round(samples[0] as number)} |\n`)
}
