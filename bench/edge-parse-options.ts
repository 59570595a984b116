/**
 * Ways to parse a `_bulk` body, and to print a write's answer, in process
 * (docs/performance.md, "The `_bulk` edge and write answers"):
 *
 *   node --import tsx bench/edge-parse-options.ts [--rounds 60]
 *
 * Parse, a body of 100 CREATE_TRANSACTION elements as the load generator
 * sends them, ns of process CPU per element:
 * - lossless: the edge's parser (`parseJson`: integers as exact bigint, a
 *   repeated key refused);
 * - native: `JSON.parse` alone (rounds integers beyond 2^53: not usable);
 * - native + bigint walk: `JSON.parse`, then every number made a bigint
 *   (exact only when every number literal is a short integer);
 * - pre-scan + native + walk: the same, behind a scan of the text that
 *   checks that condition (what an exact native path would cost, still
 *   without the repeated-key refusal).
 *
 * Answer, one transaction with its commit volumes as a write answers it,
 * with an HTTP head, ns per answer:
 * - string: printed to a string, wrapped in `{"data":…}`, encoded with the
 *   head as one string (what the socket did with a string answer);
 * - bytes: printed as UTF-8 into a `JsonBytes`, taken as one `Buffer`, the
 *   head encoded apart (what it does with a `Buffer` answer).
 */
import { parseArgs } from 'node:util'
import type { AggregatedVolumes, Json, TransactionRecord } from '../src/domain/index.ts'
import { JsonBytes, asciiText, canonicalMetadata, emptyKeyed, keyedChild, parseJson, printTransaction, writeTransaction } from '../src/domain/index.ts'

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '60' } } })
const rounds = Number(values.rounds)
const count = 100

const body = `[${Array.from({ length: count }, (_, i) => `{"action":"CREATE_TRANSACTION","data":{"postings":[{"source":"users:${(i * 7) % 1000}","destination":"users:${i}","amount":${i + 1},"asset":"USD/2"}],"force":true}}`).join(',')}]`

function bigintsFor(value: unknown): unknown {
  if (typeof value === 'number') return BigInt(value)
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = bigintsFor(value[i])
    return value
  }
  if (value !== null && typeof value === 'object') {
    const object = value as Record<string, unknown>
    for (const key of Object.keys(object)) object[key] = bigintsFor(object[key])
  }
  return value
}

/** True when every number outside strings is an integer literal of at most 15 digits (exact as a double). */
function onlyShortIntegers(text: string): boolean {
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c >= 0x30 && c <= 0x39) {
      const start = i
      let d = c
      while (d >= 0x30 && d <= 0x39) d = text.charCodeAt(++i)
      if (d === 0x2e || d === 0x65 || d === 0x45 || i - start > 15) return false
      i--
    }
  }
  return true
}

const parsers: Record<string, () => unknown> = {
  lossless: () => parseJson(body),
  native: () => JSON.parse(body),
  'native + bigint walk': () => bigintsFor(JSON.parse(body)),
  'pre-scan + native + walk': () => (onlyShortIntegers(body) ? bigintsFor(JSON.parse(body)) : parseJson(body)),
}

function volumes(entries: readonly [string, bigint, bigint][]): AggregatedVolumes {
  const result: AggregatedVolumes = emptyKeyed()
  for (const [account, input, output] of entries) keyedChild(result, account)['USD/2'] = { input, output, balance: input - output }
  return result
}
const record = {
  id: 123_456n,
  postings: [{ source: 'users:17', destination: 'users:3', amount: 42n, asset: 'USD/2' }],
  timestamp: '2026-12-07T04:00:00.123Z',
  insertedAt: '2026-12-07T04:00:00.123Z',
  updatedAt: '2026-12-07T04:00:00.123Z',
  metadata: canonicalMetadata([]),
  reverted: false,
  preCommitVolumes: volumes([['users:17', 5_000_000n, 100_000n], ['users:3', 10_000n, 0n]]),
  postCommitVolumes: volumes([['users:17', 5_000_000n, 100_042n], ['users:3', 10_042n, 0n]]),
} as unknown as TransactionRecord
const head =
  'HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\nx-request-id: 3b8e0a4c-9f7e-4c1e-8d0e-1a2b3c4d5e6f\r\n' +
  'tally-applied-index: 123456\r\ncontent-length: 700\r\nDate: Mon, 07 Dec 2026 06:35:43 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n'
const out = new JsonBytes()
const dataOpen = asciiText('{"data":')
const dataClose = asciiText('}')
const answers: Record<string, () => unknown> = {
  string: () => Buffer.from(head + `{"data":${printTransaction(record, { volumes: true })}}`, 'utf8'),
  bytes: () => {
    out.ascii(dataOpen)
    writeTransaction(out, record, { volumes: true })
    out.ascii(dataClose)
    return [Buffer.from(head, 'latin1'), out.take()]
  },
}
{
  const [string, bytes] = [answers.string?.() as Buffer, answers.bytes?.() as Buffer[]]
  if (!string.equals(Buffer.concat(bytes))) throw new Error('the two answers differ')
  const exact = parseJson(body) as Json
  for (const name of ['native + bigint walk', 'pre-scan + native + walk']) {
    if (JSON.stringify(parsers[name]?.(), (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v)) !== JSON.stringify(exact, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v))) {
      throw new Error(`${name} parses another value`)
    }
  }
}

function measure(cases: Record<string, () => unknown>, repeats: number, per: number): Map<string, number[]> {
  const timings = new Map<string, number[]>(Object.keys(cases).map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(cases)) {
      const started = process.cpuUsage()
      for (let repeat = 0; repeat < repeats; repeat++) run()
      const used = process.cpuUsage(started)
      timings.get(name)?.push(((used.user + used.system) * 1000) / repeats / per)
    }
  }
  return timings
}

function print(title: string, unit: string, timings: Map<string, number[]>): void {
  process.stdout.write(`\n${title}\n\n| case | median CPU ns/${unit} | fastest round CPU ns/${unit} |\n| --- | --- | --- |\n`)
  for (const [name, samples] of timings) {
    samples.sort((a, b) => a - b)
    process.stdout.write(`| ${name} | ${Math.round(samples[Math.floor(samples.length / 2)] as number)} | ${Math.round(samples[0] as number)} |\n`)
  }
}

print(`Parsing a _bulk body of ${count} transfers (${(body.length / count).toFixed(0)} bytes per element)`, 'element', measure(parsers, 200, count))
print('A write answer: one transaction with its commit volumes, and the HTTP head', 'answer', measure(answers, 2000, 1))
