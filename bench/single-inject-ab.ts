/**
 * Single creates (`POST /v2/{ledger}/transactions`) against two builds in one
 * process, rounds alternated: what the app, admission, the WAL hand-off and
 * the apply loop cost per request, without the sockets and the load
 * generator (a comparison of a few µs, which separate server runs on a shared
 * machine cannot resolve):
 *
 *   node --import tsx bench/single-inject-ab.ts --base /tmp/base-tree [--head DIR] [--rounds 20] [--waves 100] [--wave 32] [--log]
 *
 * With `--log` both builds log as `tally serve` does (info, to a stream that
 * drops the lines): what fastify's request loggers cost.
 *
 * Each build serves its own node (no fsync) through fastify's `inject`. A
 * wave is `--wave` creates sent in one turn of the event loop, as 64
 * connections deliver them (admission gathers them into one proposal), each
 * `world → users:k` over 1,000 accounts as `tally bench --workload
 * transactions` sends them; the next wave starts once every answer of the
 * last is in. Both builds must answer the same (status, headers but the
 * request id and date, body but its dates). Prints the median and the fastest
 * round in µs of process CPU per request (the apply and RocksDB's own threads
 * included; no fsync). With `--heap-sample FILE` it then samples each build's
 * allocations over `--waves` waves (V8's sampling heap profiler): bytes
 * allocated per request, a figure the machine's load does not move, and the
 * heaviest sites (`FILE.base`, `FILE.head` keep the profiles).
 */
import os from 'node:os'
import path from 'node:path'
import { mkdtemp, rm } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { startAllocationSampling } from './allocation-sampling.ts'
import { median } from './support/stats.ts'

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    head: { type: 'string' },
    rounds: { type: 'string', default: '20' },
    waves: { type: 'string', default: '100' },
    wave: { type: 'string', default: '32' },
    log: { type: 'boolean', default: false },
    'heap-sample': { type: 'string' },
  },
})
if (values.base === undefined) throw new Error('--base DIR: the tree to compare against')
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const roots = { base: path.resolve(values.base), head: path.resolve(values.head ?? here) }
const waves = Number(values.waves)
const waveSize = Number(values.wave)
const accounts = 1000

type Server = typeof import('../src/server/index.ts')
type Api = typeof import('../src/api/index.ts')

interface Build {
  readonly app: FastifyInstance
  next: number
  close(): Promise<void>
}

const json = { 'content-type': 'application/json' }

async function open(root: string): Promise<Build> {
  const { LedgerNode } = (await import(pathToFileURL(path.join(root, 'src/server/index.ts')).href)) as Server
  const { buildApi } = (await import(pathToFileURL(path.join(root, 'src/api/index.ts')).href)) as Api
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-single-inject-ab-'))
  const node = await LedgerNode.open({ dataDirectory: directory, sync: false })
  const app = await buildApi(node, values.log === true ? { logger: { level: 'info', stream: new Writable({ write: (_chunk, _encoding, done) => done() }) } } : {})
  const created = await app.inject({ method: 'POST', url: '/v2/main', headers: json, payload: '{}' })
  if (created.statusCode !== 204) throw new Error(`ledger: ${created.statusCode} ${created.body}`)
  return {
    app,
    next: 0,
    async close() {
      await app.close()
      await node.close()
      await rm(directory, { recursive: true, force: true })
    },
  }
}

/** The k-th create of a build: the same bodies for both builds, in the same order. */
function body(k: number): string {
  const destination = (k * 7919) % accounts
  const amount = 1 + ((k * 104_729) % 10_000)
  return `{"postings":[{"source":"world","destination":"users:${destination}","amount":${amount},"asset":"USD/2"}],"metadata":{}}`
}

async function wave(build: Build): Promise<Awaited<ReturnType<FastifyInstance['inject']>>[]> {
  const sent = []
  for (let i = 0; i < waveSize; i++) sent.push(build.app.inject({ method: 'POST', url: '/v2/main/transactions', headers: json, payload: body(build.next++) }))
  const replies = await Promise.all(sent)
  for (const reply of replies) if (reply.statusCode !== 200) throw new Error(`create: ${reply.statusCode} ${reply.body}`)
  return replies
}

const builds = { base: await open(roots.base), head: await open(roots.head) }
try {
  const [base, head] = [await wave(builds.base), await wave(builds.head)]
  const shown = (reply: (typeof base)[number]) =>
    JSON.stringify({ status: reply.statusCode, body: reply.body.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'DATE'), headers: { ...reply.headers, 'x-request-id': undefined, date: undefined } })
  base.forEach((reply, i) => {
    const other = head[i]
    if (other === undefined || shown(reply) !== shown(other)) throw new Error(`the builds answer differently\n${shown(reply)}\n${other === undefined ? 'nothing' : shown(other)}`)
  })
  // Warm both before measuring.
  for (let i = 0; i < waves; i++) {
    await wave(builds.base)
    await wave(builds.head)
  }
  const micros: Record<'base' | 'head', number[]> = { base: [], head: [] }
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const side of round % 2 === 0 ? (['base', 'head'] as const) : (['head', 'base'] as const)) {
      const build = builds[side]
      const started = process.cpuUsage()
      for (let i = 0; i < waves; i++) await wave(build)
      const spent = process.cpuUsage(started)
      micros[side].push((spent.user + spent.system) / (waves * waveSize))
    }
  }
  process.stdout.write(`${values.rounds} rounds of ${waves} waves of ${waveSize} creates, load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')} at the end\n\n`)
  process.stdout.write('| workload | base µs/req median (fastest) | head µs/req median (fastest) | head ÷ base, medians |\n| --- | --- | --- | --- |\n')
  process.stdout.write(
    `| single creates, waves of ${waveSize} | ${median(micros.base).toFixed(1)} (${Math.min(...micros.base).toFixed(1)}) | ${median(micros.head).toFixed(1)} (${Math.min(...micros.head).toFixed(1)}) | ×${(median(micros.head) / median(micros.base)).toFixed(3)} |\n`,
  )
  process.stdout.write(`\nrounds, base: ${micros.base.map((x) => x.toFixed(1)).join(' ')}\nrounds, head: ${micros.head.map((x) => x.toFixed(1)).join(' ')}\n`)
  const sampled = values['heap-sample']
  if (sampled !== undefined) {
    for (const side of ['base', 'head'] as const) {
      process.stdout.write(`\n${side}: `)
      const sampling = await startAllocationSampling()
      for (let i = 0; i < waves; i++) await wave(builds[side])
      await sampling.stop(`${sampled}.${side}`, waves * waveSize, 'request')
    }
  }
} finally {
  await builds.base.close()
  await builds.head.close()
}
