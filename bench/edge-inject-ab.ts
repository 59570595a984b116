/**
 * The app's fixed cost per request, two builds side by side in one process,
 * rounds alternated (a comparison on a shared machine, where separate server
 * runs differ by more than a change of a few µs):
 *
 *   node --import tsx bench/edge-inject-ab.ts --base /tmp/base-tree [--rounds 20] [--requests 2000] [--auth]
 *
 * Each build's `buildApi` serves its own node (no fsync) through fastify's
 * `inject`: no socket, so what is measured is the app (hooks, routing, the
 * handler, the answer's head and its bookkeeping) and inject's own cost,
 * which both builds pay alike. Workloads: a kept get-account (`expand=volumes`,
 * read once before), the same read with nothing kept (`answerCacheBytes: 0`),
 * and a filtered first page of 15 with nothing kept. Both builds must give
 * the same answers (compared once: status, body but its dates, headers but the request id).
 * With `--auth` both builds require bearer tokens and log as `tally serve`
 * does (info, to a stream that drops the lines), and every request carries a
 * token each build issued and has verified once (a kept token): what an
 * authenticated request adds.
 * Prints the median and the fastest round in µs of process CPU per request.
 */
import os from 'node:os'
import path from 'node:path'
import { mkdtemp, rm } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { median } from './support/stats.ts'

const { values } = parseArgs({ options: { base: { type: 'string' }, rounds: { type: 'string', default: '20' }, requests: { type: 'string', default: '2000' }, auth: { type: 'boolean', default: false } } })
if (values.base === undefined) throw new Error('--base DIR: the tree to compare against')
const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const roots = { base: path.resolve(values.base), head: here }
const requests = Number(values.requests)

type Server = typeof import('../src/server/index.ts')
type Api = typeof import('../src/api/index.ts')
type Auth = typeof import('../src/api/auth/index.ts')

interface Build {
  readonly apps: { readonly kept: FastifyInstance; readonly missed: FastifyInstance }
  /** With --auth: the Authorization header every request carries. */
  readonly authorization: string | undefined
  close(): Promise<void>
}

async function open(root: string): Promise<Build> {
  const { LedgerNode } = (await import(pathToFileURL(path.join(root, 'src/server/index.ts')).href)) as Server
  const { buildApi } = (await import(pathToFileURL(path.join(root, 'src/api/index.ts')).href)) as Api
  const directories: string[] = []
  const closers: (() => Promise<void>)[] = []
  let authorization: string | undefined
  let authed = {}
  if (values.auth === true) {
    const { SigningKey, hashClientSecret, issueToken, parseApiClients } = (await import(pathToFileURL(path.join(root, 'src/api/auth/index.ts')).href)) as Auth
    const clients = parseApiClients({ clients: [{ id: 'bench', secretHash: await hashClientSecret('bench-secret-0000'), scopes: ['ledger:read', 'ledger:write', 'ledger:admin'] }] }, 'bench clients')
    const settings = { issuer: 'tally', audience: 'tally', tokenSeconds: 3600 }
    const key = await SigningKey.generate()
    const client = clients.get('bench')
    if (client === undefined) throw new Error('no bench client')
    authorization = `Bearer ${(await issueToken(key, settings, client, Math.floor(Date.now() / 1000))).token}`
    const dropped = new Writable({ write: (_chunk, _encoding, done) => done() })
    authed = { auth: { clients, key, settings }, logger: { level: 'info', stream: dropped } }
  }
  const serve = async (answerCacheBytes: number | undefined): Promise<FastifyInstance> => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-edge-ab-'))
    directories.push(directory)
    const node = await LedgerNode.open({ dataDirectory: directory, sync: false })
    const app = await buildApi(node, { ...authed, ...(answerCacheBytes === undefined ? {} : { answerCacheBytes }) })
    closers.push(async () => {
      await app.close()
      await node.close()
    })
    const json = { 'content-type': 'application/json', ...(authorization === undefined ? {} : { authorization }) }
    await app.inject({ method: 'POST', url: '/v2/main', headers: json, payload: '{}' })
    // users:0 … users:19, each in a few transactions, so a page of 15 is full.
    for (let i = 0; i < 60; i++) {
      const payload = JSON.stringify({ postings: [{ source: 'world', destination: `users:${i % 20}`, amount: 100 + i, asset: 'USD/2' }], metadata: { i: String(i) } })
      const reply = await app.inject({ method: 'POST', url: '/v2/main/transactions', headers: json, payload })
      if (reply.statusCode !== 200) throw new Error(`fill: ${reply.statusCode} ${reply.body}`)
    }
    return app
  }
  const apps = { kept: await serve(undefined), missed: await serve(0) }
  return {
    apps,
    authorization,
    async close() {
      for (const close of closers) await close()
      for (const directory of directories) await rm(directory, { recursive: true, force: true })
    },
  }
}

const workloads = [
  { name: 'get-account, kept', app: 'kept', method: 'GET', url: '/v2/main/accounts/users:3?expand=volumes', payload: undefined },
  { name: 'get-account, nothing kept', app: 'missed', method: 'GET', url: '/v2/main/accounts/users:3?expand=volumes', payload: undefined },
  { name: 'filtered first page of 15, nothing kept', app: 'missed', method: 'GET', url: '/v2/main/transactions?pageSize=15', payload: '{"$match":{"account":"users:3"}}' },
] as const

function request(build: Build, workload: (typeof workloads)[number]) {
  const headers = {
    ...(workload.payload === undefined ? {} : { 'content-type': 'application/json' }),
    ...(build.authorization === undefined ? {} : { authorization: build.authorization }),
  }
  return build.apps[workload.app].inject({ method: workload.method, url: workload.url, headers, ...(workload.payload === undefined ? {} : { payload: workload.payload }) })
}

const builds = { base: await open(roots.base), head: await open(roots.head) }
try {
  for (const workload of workloads) {
    const [base, head] = [await request(builds.base, workload), await request(builds.head, workload)]
    // Each build's node wrote its own fill: the dates it stamped differ, nothing else may.
    const shown = (reply: typeof base) =>
      JSON.stringify({ status: reply.statusCode, body: reply.body.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'DATE'), headers: { ...reply.headers, 'x-request-id': undefined, date: undefined } })
    if (shown(base) !== shown(head)) throw new Error(`${workload.name}: the builds answer differently\n${shown(base)}\n${shown(head)}`)
  }
  const micros: Record<string, Record<'base' | 'head', number[]>> = {}
  for (const workload of workloads) micros[workload.name] = { base: [], head: [] }
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const workload of workloads) {
      for (const side of round % 2 === 0 ? (['base', 'head'] as const) : (['head', 'base'] as const)) {
        const build = builds[side]
        const started = process.cpuUsage()
        for (let i = 0; i < requests; i++) {
          const reply = await request(build, workload)
          if (reply.statusCode !== 200) throw new Error(`${workload.name}: ${reply.statusCode} ${reply.body}`)
        }
        const spent = process.cpuUsage(started)
        micros[workload.name]?.[side].push((spent.user + spent.system) / requests)
      }
    }
  }
  process.stdout.write(`${values.rounds} rounds of ${requests} injected requests, load average ${os.loadavg().map((load) => load.toFixed(2)).join(' ')} at the end\n\n`)
  process.stdout.write('| workload | base µs/req median (fastest) | head µs/req median (fastest) | head ÷ base, medians |\n| --- | --- | --- | --- |\n')
  for (const workload of workloads) {
    const { base, head } = micros[workload.name] as Record<'base' | 'head', number[]>
    process.stdout.write(
      `| ${workload.name} | ${median(base).toFixed(1)} (${Math.min(...base).toFixed(1)}) | ${median(head).toFixed(1)} (${Math.min(...head).toFixed(1)}) | ×${(median(head) / median(base)).toFixed(3)} |\n`,
    )
  }
} finally {
  await builds.base.close()
  await builds.head.close()
}
