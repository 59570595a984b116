/**
 * Formance v2's log hash (`v2LogHash`), once per v2 log the FSM appends: the
 * per-call cost for NEW_TRANSACTION logs shaped as a bulk transfer writes
 * them, chained as the ledger chains them.
 *
 *   node --import tsx bench/v2-log-hash.ts [--logs 10000] [--rounds 7]
 *
 * Prints the best round in ns per log of the whole call and of building the
 * hashed text alone (`v2LogHashText`: since the hashed form is written as
 * bytes, that is the bytes decoded into a string, not a part of the call),
 * their difference, the whole call's best round in CPU time of the process
 * (`cpuNsPerLog`: on a shared machine, less disturbed by other processes
 * than the wall clock), and the last hash (equal across builds that hash the
 * same bytes).
 */
import { parseArgs } from 'node:util'
import { v2LogHash, v2LogHashText } from '../src/audit/v2-log-hash.ts'
import type { Json } from '../src/domain/index.ts'

const { values } = parseArgs({ options: { logs: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '7' } } })
const count = Number(values.logs)
const logs = Array.from({ length: count }, (_, i) => ({
  type: 'NEW_TRANSACTION',
  date: '2026-12-07T02:00:00.123Z',
  data: {
    transaction: {
      id: BigInt(i),
      postings: [{ source: `users:${(i * 7) % 1000}`, destination: `users:${(i * 13) % 1000}`, amount: BigInt(1 + (i % 97)), asset: 'USD/2' }],
      metadata: {},
      timestamp: '2026-12-07T02:00:00.123Z',
      insertedAt: '2026-12-07T02:00:00.123Z',
      reverted: false,
    },
    accountMetadata: {},
  } as unknown as Json,
}))

let last = ''
let textBytes = 0
const rounds: number[] = []
const cpuRounds: number[] = []
const textRounds: number[] = []
for (let round = 0; round < Number(values.rounds); round++) {
  let started = process.hrtime.bigint()
  for (const log of logs) textBytes += v2LogHashText(log).length
  textRounds.push(Number(process.hrtime.bigint() - started) / count)
  let previous = ''
  const cpu = process.cpuUsage()
  started = process.hrtime.bigint()
  for (const log of logs) previous = v2LogHash(previous, log)
  rounds.push(Number(process.hrtime.bigint() - started) / count)
  const used = process.cpuUsage(cpu)
  cpuRounds.push(((used.user + used.system) * 1000) / count)
  last = previous
}
const whole = Math.min(...rounds)
const text = Math.min(...textRounds)
console.log(JSON.stringify({ logs: count, nsPerLog: Math.round(whole), textNsPerLog: Math.round(text), hashingNsPerLog: Math.round(whole - text), cpuNsPerLog: Math.round(Math.min(...cpuRounds)), textBytes, lastHash: last }))
