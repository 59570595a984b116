/**
 * The WAL's fdatasync latency, one small entry per group (the shape of single
 * transactions below the peak), with and without zeros written ahead of the
 * entries (`preallocateBytes`), with and without another process writing to
 * the same disk the way RocksDB's flushes and compactions do (buffered
 * writes, an fsync per finished file).
 *
 *   node --import tsx bench/wal-fsync-latency.ts [--seconds S] [--rounds R]
 *     [--background-mib-per-second M] [--directory DIR] [--payload-bytes B]
 *
 * Each round runs every case once, in turn (alternated, so that load drifts
 * hit both). A case: open a fresh WAL, then append one entry and wait for
 * it to be durable, repeatedly, for S seconds; the fdatasync of each group
 * is timed inside the WAL's io. Prints one Markdown row per case and round:
 * percentiles of the fdatasync and of append → durable, and the load average.
 *
 * With --paired, each round instead opens one WAL of each kind side by side
 * and alternates single-entry groups between them (A, B, A, B …), so that
 * both see the same moments of the disk: on a shared machine this tells
 * them apart far better than runs one after the other.
 */
import { fork, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { Wal } from '../src/wal/index.ts'

function argument(name: string): string | undefined {
  const at = process.argv.indexOf(name)
  return at >= 0 ? process.argv[at + 1] : undefined
}

const backgroundRole = process.argv[2] === '--background-writer'

/** The other writer: 1 MiB buffered writes at `mibPerSecond`, an fsync after each 16 MiB file, two files in turn. */
async function backgroundWriter(directory: string, mibPerSecond: number): Promise<never> {
  const chunk = Buffer.alloc(1024 * 1024, 0x5a)
  const pause = 1000 / mibPerSecond
  for (let file = 0; ; file += 1) {
    const name = path.join(directory, `background-${file % 2}`)
    const descriptor = fs.openSync(name, 'w')
    for (let mib = 0; mib < 16; mib += 1) {
      fs.writeSync(descriptor, chunk)
      await new Promise((resolve) => setTimeout(resolve, pause))
    }
    fs.fsyncSync(descriptor)
    fs.closeSync(descriptor)
  }
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN
}

interface Case {
  name: string
  preallocateBytes: number
  background: boolean
}

async function runCase(root: string, spec: Case, seconds: number, payloadBytes: number, backgroundMib: number): Promise<string> {
  const directory = fs.mkdtempSync(path.join(root, 'tally-wal-fsync-'))
  let child: ChildProcess | undefined
  try {
    if (spec.background) {
      child = fork(new URL(import.meta.url).pathname, ['--background-writer', directory, String(backgroundMib)], { execArgv: ['--import', 'tsx'] })
      // Let it dirty some pages first.
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    const syncs: number[] = []
    const durables: number[] = []
    const { wal } = await Wal.open({
      directory: path.join(directory, 'wal'),
      preallocateBytes: spec.preallocateBytes,
      io: {
        async sync(handle: FileHandle) {
          const started = performance.now()
          await handle.datasync()
          syncs.push(performance.now() - started)
        },
      },
    })
    const payload = new Uint8Array(payloadBytes).fill(7)
    const load = os.loadavg()[0] ?? 0
    const deadline = performance.now() + seconds * 1000
    try {
      while (performance.now() < deadline) {
        const started = performance.now()
        const index = wal.append({ epoch: 1, type: 1, payload })
        await wal.waitDurable(index)
        durables.push(performance.now() - started)
      }
    } finally {
      await wal.close()
    }
    syncs.sort((a, b) => a - b)
    durables.sort((a, b) => a - b)
    const ms = (value: number): string => value.toFixed(value < 1 ? 3 : 2)
    const { preallocateCount } = wal.counters
    return `| ${spec.name} | ${syncs.length} | ${ms(percentile(syncs, 50))} / ${ms(percentile(syncs, 90))} / ${ms(percentile(syncs, 99))} / ${ms(percentile(syncs, 99.9))} / ${ms(syncs.at(-1) ?? Number.NaN)} | ${ms(percentile(durables, 50))} / ${ms(percentile(durables, 99))} | ${preallocateCount} | ${load.toFixed(2)} |`
  } finally {
    child?.kill('SIGKILL')
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

/** One WAL with and one without zeros ahead, groups alternated between them. */
async function runPaired(root: string, background: boolean, seconds: number, payloadBytes: number, backgroundMib: number): Promise<string[]> {
  const directory = fs.mkdtempSync(path.join(root, 'tally-wal-fsync-'))
  let child: ChildProcess | undefined
  try {
    if (background) {
      child = fork(new URL(import.meta.url).pathname, ['--background-writer', directory, String(backgroundMib)], { execArgv: ['--import', 'tsx'] })
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    const kinds = [
      { name: 'appending', preallocateBytes: 0 },
      { name: 'zeros ahead', preallocateBytes: 4 * 1024 * 1024 },
    ]
    const opened = await Promise.all(
      kinds.map(async (kind) => {
        const syncs: number[] = []
        const { wal } = await Wal.open({
          directory: path.join(directory, kind.name.replace(' ', '-')),
          preallocateBytes: kind.preallocateBytes,
          io: {
            async sync(handle: FileHandle) {
              const started = performance.now()
              await handle.datasync()
              syncs.push(performance.now() - started)
            },
          },
        })
        return { ...kind, wal, syncs }
      }),
    )
    const payload = new Uint8Array(payloadBytes).fill(7)
    const load = os.loadavg()[0] ?? 0
    const deadline = performance.now() + seconds * 1000
    try {
      while (performance.now() < deadline) {
        for (const { wal } of opened) await wal.waitDurable(wal.append({ epoch: 1, type: 1, payload }))
      }
    } finally {
      for (const { wal } of opened) await wal.close()
    }
    const ms = (value: number): string => value.toFixed(value < 1 ? 3 : 2)
    return opened.map(({ name, wal, syncs }) => {
      syncs.sort((a, b) => a - b)
      const mean = syncs.reduce((sum, value) => sum + value, 0) / syncs.length
      return `| ${name}${background ? `, another writer at ${backgroundMib} MiB/s` : ''} | ${syncs.length} | ${ms(percentile(syncs, 50))} / ${ms(percentile(syncs, 90))} / ${ms(percentile(syncs, 99))} / ${ms(percentile(syncs, 99.9))} / ${ms(syncs.at(-1) ?? Number.NaN)} | ${ms(mean)} | ${wal.counters.preallocateCount} | ${load.toFixed(2)} |`
    })
  } finally {
    child?.kill('SIGKILL')
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const seconds = Number(argument('--seconds') ?? '8')
  const rounds = Number(argument('--rounds') ?? '2')
  const backgroundMib = Number(argument('--background-mib-per-second') ?? '20')
  const payloadBytes = Number(argument('--payload-bytes') ?? '300')
  const root = argument('--directory') ?? os.tmpdir()
  const cases: Case[] = [
    { name: 'appending (preallocateBytes 0), quiet disk', preallocateBytes: 0, background: false },
    { name: 'zeros ahead (4 MiB), quiet disk', preallocateBytes: 4 * 1024 * 1024, background: false },
    { name: `appending, another writer at ${backgroundMib} MiB/s`, preallocateBytes: 0, background: true },
    { name: `zeros ahead, another writer at ${backgroundMib} MiB/s`, preallocateBytes: 4 * 1024 * 1024, background: true },
  ]
  if (process.argv.includes('--paired')) {
    console.log(`WAL fdatasync latency, paired: one ${payloadBytes}-byte entry per group, groups alternated between a WAL appending and one with zeros ahead, ${seconds} s per case, ${rounds} rounds, in ${root}`)
    console.log('')
    console.log('| WAL | groups | fdatasync p50 / p90 / p99 / p99.9 / max ms | mean ms | zero fills | load |')
    console.log('| --- | --- | --- | --- | --- | --- |')
    for (let round = 0; round < rounds; round += 1) {
      for (const background of [false, true]) for (const row of await runPaired(root, background, seconds, payloadBytes, backgroundMib)) console.log(row)
    }
    return
  }
  console.log(`WAL fdatasync latency, one ${payloadBytes}-byte entry per group, ${seconds} s per case, ${rounds} rounds, in ${root}`)
  console.log('')
  console.log('| case | groups | fdatasync p50 / p90 / p99 / p99.9 / max ms | append → durable p50 / p99 ms | zero fills | load |')
  console.log('| --- | --- | --- | --- | --- | --- |')
  for (let round = 0; round < rounds; round += 1) {
    for (const spec of cases) console.log(await runCase(root, spec, seconds, payloadBytes, backgroundMib))
  }
}

if (backgroundRole) {
  const directory = process.argv[3]
  const mib = Number(process.argv[4])
  if (directory === undefined || !(mib > 0)) throw new Error('background writer: directory and MiB/s expected')
  void backgroundWriter(directory, mib)
} else {
  main().catch((error: unknown) => {
    console.error(error)
    process.exitCode = 1
  })
}
