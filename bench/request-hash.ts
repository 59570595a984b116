/**
 * An idempotency key's request hash (`requestHash`: sha256 of the request's
 * canonical JSON), in process, for the order of a `_bulk` element:
 *
 *   node --import tsx bench/request-hash.ts [--rounds 10]
 *
 * - string: `canonicalJson` built as a string, hashed by `createHash`
 *   (the code before the canonical text was written as bytes);
 * - bytes: `requestHash` (the canonical text written into a `JsonBytes`,
 *   hashed in one `crypto.hash` call).
 *
 * Both give the same digest (checked first). Rounds alternate; prints the
 * median and the fastest round in ns of CPU per hash.
 */
import { createHash } from 'node:crypto'
import { parseArgs } from 'node:util'
import { canonicalJson, parseJson } from '../src/domain/index.ts'
import { parseCreateTransaction } from '../src/orders/index.ts'
import { requestHash } from '../src/api/requests.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } })
const orders = Array.from({ length: 1000 }, (_, i) =>
  parseCreateTransaction('bench' as never, parseJson(`{"postings":[{"source":"world","destination":"users:${i}","amount":${1 + ((i * 7919) % 10_000)},"asset":"USD/2"}],"metadata":{}}`)),
)
const hashers: Record<string, (parts: unknown) => string> = {
  string: (parts) => createHash('sha256').update(canonicalJson(parts)).digest('base64url'),
  bytes: requestHash,
}
for (const order of orders) if (hashers.string?.(['bulk', order]) !== requestHash(['bulk', order])) throw new Error('the two hashes differ')
const timings = new Map<string, number[]>(Object.keys(hashers).map((name) => [name, []]))
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [name, hasher] of Object.entries(hashers)) {
    const started = process.cpuUsage()
    for (let repeat = 0; repeat < 20; repeat++) for (const order of orders) hasher(['bulk', order])
    const used = process.cpuUsage(started)
    timings.get(name)?.push(((used.user + used.system) * 1000) / (20 * orders.length))
  }
}
process.stdout.write('| request hash | median ns | fastest round ns |\n| --- | --- | --- |\n')
for (const [name, samples] of timings) {
  samples.sort((a, b) => a - b)
  process.stdout.write(`| ${name} | ${Math.round(samples[Math.floor(samples.length / 2)] as number)} | ${Math.round(samples[0] as number)} |\n`)
}
