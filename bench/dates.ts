/**
 * The date work one `_bulk` transaction does, per transaction, in isolation.
 *
 *   node --import tsx bench/dates.ts [--root DIR] [--iterations 200000] [--rounds 5]
 *
 * Per transaction the bulk path prints the proposal's date in Go's form twice
 * (ledger log, v2 log hash) and the transaction's timestamp once, compares
 * the date with each of two existing accounts' first usage, and reads a
 * timestamp a client gave. --root points at another checkout (an extracted
 * older commit) so that two versions are timed alternately in one run; the
 * best round is printed, in ns per transaction.
 */
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: path.resolve(import.meta.dirname, '..') },
    iterations: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
  },
})
const root = path.resolve(values.root)
const dates = (await import(pathToFileURL(path.join(root, 'src/domain/dates.ts')).href)) as typeof import('../src/domain/dates.ts')
const hash = (await import(pathToFileURL(path.join(root, 'src/audit/v2-log-hash.ts')).href)) as typeof import('../src/audit/v2-log-hash.ts')

const iterations = Number(values.iterations)
// Dates as the server sees them: its own clock's `toISOString`, earlier first usages, a client's microsecond timestamp.
const base = Date.UTC(2026, 11, 6, 12)
const proposalDates = Array.from({ length: 1024 }, (_, index) => new Date(base + index * 37).toISOString())
const firstUsages = Array.from({ length: 1024 }, (_, index) => new Date(base - 86_400_000 + index * 1013).toISOString())
const clientTimestamps = Array.from({ length: 1024 }, (_, index) => `2026-12-06T11:${String(index % 60).padStart(2, '0')}:00.${String(100_001 + index).slice(0, 6)}Z`)

let sink = 0
function round(): number {
  const started = process.hrtime.bigint()
  for (let index = 0; index < iterations; index++) {
    const date = proposalDates[index & 1023] as string
    const timestamp = dates.parseDate(clientTimestamps[index & 1023], 'timestamp') as string
    sink += hash.goDate(date).length + hash.goDate(date).length + hash.goDate(timestamp).length
    sink += dates.compareDates(date, firstUsages[index & 1023] as string) + dates.compareDates(date, firstUsages[(index + 7) & 1023] as string)
  }
  return Number(process.hrtime.bigint() - started) / iterations
}

const rounds = Array.from({ length: Number(values.rounds) }, round)
console.log(JSON.stringify({ root, iterations, nsPerTransaction: Math.min(...rounds), rounds: rounds.map((value) => Math.round(value)), sink }))
