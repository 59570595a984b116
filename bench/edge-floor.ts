/**
 * The HTTP floor under Tally's edge: what a server that answers every read
 * with a get-account's bytes at once costs per request, as bare `node:http`
 * and as bare Fastify with one route, each in a process of its own, driven
 * by the bench's load generator (the same client as `tally bench`):
 *
 *   node --import tsx bench/edge-floor.ts [--concurrency 16] [--duration 8] [--rounds 3]
 *
 * Prints per run requests/s and the server's CPU per request from /proc
 * (all threads, JavaScript thread), and the client's. What Tally adds on top
 * is its kept get-account, measured the same way by `bench/reads.ts`
 * (docs/performance.md, "The HTTP edge's fixed cost per request").
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import Fastify from 'fastify'
import { createLeanHttpTransport, runBench, startCpuMeter } from '../src/bench/index.ts'
import { getAccountWorkload } from '../src/bench/workloads/index.ts'

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
  },
})

/** A kept get-account's answer as Tally prints it (227 bytes with its volumes). */
const answer =
  '{"data":{"address":"users:123","metadata":{},"volumes":{"USD/2":{"input":1500,"output":700,"balance":800}},' +
  '"firstUsage":"2026-12-07T14:00:00.000Z","insertionDate":"2026-12-07T14:00:00.000Z","updatedAt":"2026-12-07T14:00:00.000Z"}}'

async function serve(kind: string): Promise<void> {
  const listening = (port: number): void => void process.stdout.write(`listening 127.0.0.1:${port}\n`)
  if (kind === 'node-http') {
    const server = http.createServer((request, response) => {
      // A ledger creation (the generator's set-up) is answered 204; every read the answer.
      if (request.method === 'POST') return void response.writeHead(204).end()
      response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(answer) }).end(answer)
    })
    server.keepAliveTimeout = 5_000
    server.listen(0, '127.0.0.1', () => listening((server.address() as { port: number }).port))
    return
  }
  if (kind === 'fastify') {
    const app = Fastify({ logger: false })
    app.post('/v2/:ledger', (_request, reply) => reply.code(204).send())
    app.get('/v2/:ledger/accounts/:address', (_request, reply) => reply.header('content-type', 'application/json; charset=utf-8').send(answer))
    await app.listen({ host: '127.0.0.1', port: 0 })
    listening((app.server.address() as { port: number }).port)
    return
  }
  throw new Error(`--serve node-http or fastify, not ${kind}`)
}

async function start(kind: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', kind], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} stand-in exited ${code}`)))
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^listening (\S+)$/.exec(line.trim())
      if (match !== null) resolve(`http://${match[1]}`)
    })
  })
  return { child, url }
}

async function measure(): Promise<void> {
  const concurrency = Number(values.concurrency)
  const settings = { ledger: 'floor', accounts: 1000, bulkSize: 1, forceRatio: 0 }
  const plans = [{ definition: getAccountWorkload, concurrency }]
  process.stdout.write(`get-account's answer from a stand-in, ${concurrency} clients, ${values.duration} s per run\n\n`)
  process.stdout.write('| round | server | load average | req/s | server µs/req (JS thread) | client µs/req |\n| --- | --- | --- | --- | --- | --- |\n')
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const kind of ['node-http', 'fastify']) {
      const { child, url } = await start(kind)
      const transport = createLeanHttpTransport({ target: new URL(url), socketsMax: concurrency, requestTimeoutMs: 30_000 })
      try {
        await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs: 2000 }, seed: 2 })
        const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')
        const meter = startCpuMeter(child.pid)
        const run = await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs: Number(values.duration) * 1000 }, seed: 1 })
        const cpu = meter.finish({ transactions: 0, operations: run.total.requests })
        const perRequest = (micros: number | undefined): string => (micros === undefined ? '–' : (micros / run.total.requests).toFixed(1))
        process.stdout.write(
          `| ${round} | ${kind} | ${load} | ${run.total.requestsPerSecond.toFixed(0)} | ${perRequest(cpu.server?.micros)} (${perRequest(cpu.server?.mainThreadMicros)}) | ${perRequest(cpu.client.micros)} |\n`,
        )
      } finally {
        transport.close()
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        await exited
      }
    }
  }
}

if (values.serve !== undefined) await serve(values.serve)
else await measure()
