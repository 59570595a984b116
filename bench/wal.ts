/**
 * WAL group-commit benchmark.
 *
 *   node --import tsx bench/wal.ts [--seconds S] [--directory DIR] [--no-sync]
 *
 * Scenarios (sync on unless --no-sync):
 *   batch    — append G records, flush(), repeat: one group per flush.
 *   clients  — C concurrent producers, each: append one record, waitDurable(index), repeat;
 *              groups form naturally (this is the pipeline's shape).
 *   append   — append() alone (no I/O) to show the per-append CPU cost.
 * Prints a Markdown table.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Wal } from '../src/wal/index.ts'

interface Row {
  scenario: string
  payloadBytes: number
  group: string
  appendsPerSecond: number
  fsyncsPerSecond: number
  recordsPerGroup: number
  megabytesPerSecond: number
  latencyMsP50: number | undefined
  latencyMsP99: number | undefined
}

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name)
  return at >= 0 ? process.argv[at + 1] : undefined
}

const secondsPerCase = Number(argument('--seconds') ?? '2')
const sync = !process.argv.includes('--no-sync')
const root = argument('--directory') ?? os.tmpdir()

function percentile(sorted: number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]
}

async function withWal<T>(body: (wal: Wal) => Promise<T>): Promise<T> {
  const directory = fs.mkdtempSync(path.join(root, 'tally-wal-bench-'))
  try {
    const { wal } = await Wal.open({ directory, sync })
    try {
      return await body(wal)
    } finally {
      await wal.close()
    }
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

async function batch(payloadBytes: number, groupRecords: number): Promise<Row> {
  return withWal(async (wal) => {
    const payload = new Uint8Array(payloadBytes).fill(7)
    const latencies: number[] = []
    const start = performance.now()
    const deadline = start + secondsPerCase * 1000
    let records = 0
    while (performance.now() < deadline) {
      const groupStart = performance.now()
      for (let i = 0; i < groupRecords; i += 1) wal.append({ epoch: 1, type: 1, payload })
      await wal.flush()
      latencies.push(performance.now() - groupStart)
      records += groupRecords
    }
    const seconds = (performance.now() - start) / 1000
    const counters = wal.counters
    latencies.sort((a, b) => a - b)
    return {
      scenario: 'batch',
      payloadBytes,
      group: String(groupRecords),
      appendsPerSecond: records / seconds,
      fsyncsPerSecond: counters.syncCount / seconds,
      recordsPerGroup: records / counters.groupCount,
      megabytesPerSecond: counters.bytesWritten / seconds / 1e6,
      latencyMsP50: percentile(latencies, 50),
      latencyMsP99: percentile(latencies, 99),
    }
  })
}

async function clients(payloadBytes: number, clientCount: number): Promise<Row> {
  return withWal(async (wal) => {
    const payload = new Uint8Array(payloadBytes).fill(7)
    const latencies: number[] = []
    const start = performance.now()
    const deadline = start + secondsPerCase * 1000
    let records = 0
    const client = async (): Promise<void> => {
      while (performance.now() < deadline) {
        const appendedAt = performance.now()
        const index = wal.append({ epoch: 1, type: 1, payload })
        await wal.waitDurable(index)
        latencies.push(performance.now() - appendedAt)
        records += 1
      }
    }
    await Promise.all(Array.from({ length: clientCount }, client))
    const seconds = (performance.now() - start) / 1000
    const counters = wal.counters
    latencies.sort((a, b) => a - b)
    return {
      scenario: 'clients',
      payloadBytes,
      group: `${clientCount} clients`,
      appendsPerSecond: records / seconds,
      fsyncsPerSecond: counters.syncCount / seconds,
      recordsPerGroup: records / counters.groupCount,
      megabytesPerSecond: counters.bytesWritten / seconds / 1e6,
      latencyMsP50: percentile(latencies, 50),
      latencyMsP99: percentile(latencies, 99),
    }
  })
}

async function appendOnly(payloadBytes: number): Promise<Row> {
  return withWal(async (wal) => {
    const payload = new Uint8Array(payloadBytes).fill(7)
    const recordsPerRound = 50_000
    let records = 0
    let appendMs = 0
    const deadline = performance.now() + secondsPerCase * 1000
    while (performance.now() < deadline) {
      const roundStart = performance.now()
      for (let i = 0; i < recordsPerRound; i += 1) wal.append({ epoch: 1, type: 1, payload })
      appendMs += performance.now() - roundStart
      records += recordsPerRound
      await wal.flush() // keeps the pending buffer under its bound; not timed
    }
    return {
      scenario: 'append() only',
      payloadBytes,
      group: `${recordsPerRound}`,
      appendsPerSecond: records / (appendMs / 1000),
      fsyncsPerSecond: 0,
      recordsPerGroup: records / wal.counters.groupCount,
      megabytesPerSecond: 0,
      latencyMsP50: undefined,
      latencyMsP99: undefined,
    }
  })
}

function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined) return '—'
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

async function main(): Promise<void> {
  const rows: Row[] = []
  for (const payloadBytes of [100, 1024]) {
    for (const groupRecords of [1, 10, 100, 1000, 10_000]) rows.push(await batch(payloadBytes, groupRecords))
    for (const clientCount of [1, 16, 256, 4096]) rows.push(await clients(payloadBytes, clientCount))
    rows.push(await appendOnly(payloadBytes))
    process.stderr.write(`payload ${payloadBytes} done\n`)
  }
  const lines = [
    `sync: ${sync ? 'on (fdatasync per group)' : 'OFF'}; ${secondsPerCase} s per case; directory ${root}`,
    '',
    '| scenario | payload B | group | appends/s | fsyncs/s | records/group | MB/s | latency p50 ms | latency p99 ms |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (row) =>
        `| ${row.scenario} | ${row.payloadBytes} | ${row.group} | ${formatNumber(row.appendsPerSecond)} | ${formatNumber(row.fsyncsPerSecond)} | ${formatNumber(row.recordsPerGroup, 1)} | ${formatNumber(row.megabytesPerSecond, 1)} | ${formatNumber(row.latencyMsP50, 2)} | ${formatNumber(row.latencyMsP99, 2)} |`,
    ),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
