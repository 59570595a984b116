/**
 * What the load generator itself costs, with no ledger behind it.
 *
 *   node --import tsx bench/generator-cost.ts [--duration 5] [--client lean|node|both]
 *
 * Spawns a stand-in server (a bare TCP loop answering every request with a
 * canned 200, in its own process) and drives it with the bench's runner,
 * workloads and HTTP client, reporting the client's CPU per request and per
 * transaction. This is the generator's floor: what it takes from a shared
 * machine before the server does any work. The stand-in answers a `_bulk`
 * with a 200 the size of Tally's (≈ 520 bytes per element), which the
 * generator counts without parsing except for its samples.
 */
import { spawn } from 'node:child_process'
import net from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import {
  bulkWorkload,
  createHttpTransport,
  createLeanHttpTransport,
  runBench,
  startCpuMeter,
  transactionsWorkload,
  type HttpTransportOptions,
  type HttpTransport,
} from '../src/bench/index.ts'

const { values } = parseArgs({
  options: {
    serve: { type: 'boolean', default: false },
    duration: { type: 'string', default: '5' },
    client: { type: 'string', default: 'both' },
  },
})

const bulkElement =
  '{"responseType":"CREATE_TRANSACTION","logID":0,"data":{"id":0,"postings":[{"source":"world","destination":"users:1","amount":5,"asset":"USD/2"}],' +
  '"timestamp":"2026-12-06T20:54:28.270Z","insertedAt":"2026-12-06T20:54:28.270Z","updatedAt":"2026-12-06T20:54:28.270Z","metadata":{},"reverted":false,' +
  '"preCommitVolumes":{"world":{"USD/2":{"input":0,"output":0,"balance":0}},"users:1":{"USD/2":{"input":0,"output":0,"balance":0}}},' +
  '"postCommitVolumes":{"world":{"USD/2":{"input":0,"output":5,"balance":-5}},"users:1":{"USD/2":{"input":5,"output":0,"balance":5}}}}}'

/** The stand-in: frames requests by Content-Length and answers each at once. */
function serve(): void {
  const single = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${bulkElement.length - 38}\r\n\r\n${bulkElement.slice(37, -1)}`)
  const bulkAnswers = new Map<number, Buffer>()
  const bulkAnswer = (elements: number): Buffer => {
    let answer = bulkAnswers.get(elements)
    if (answer === undefined) {
      const body = `{"data":[${new Array(elements).fill(bulkElement).join(',')}]}`
      answer = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
      bulkAnswers.set(elements, answer)
    }
    return answer
  }
  const server = net.createServer((socket) => {
    socket.setNoDelay(true)
    let pending: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      for (;;) {
        const headEnd = pending.indexOf('\r\n\r\n')
        if (headEnd === -1) return
        const head = pending.toString('latin1', 0, headEnd)
        const length = Number(/content-length: *([0-9]+)/i.exec(head)?.[1] ?? '0')
        if (pending.length < headEnd + 4 + length) return
        const body = pending.subarray(headEnd + 4, headEnd + 4 + length)
        pending = pending.subarray(headEnd + 4 + length)
        if (head.includes('/_bulk')) {
          let elements = 0
          for (let at = body.indexOf('"action"'); at !== -1; at = body.indexOf('"action"', at + 1)) elements += 1
          socket.write(bulkAnswer(elements))
        } else if (/^POST \/v2\/[^/ ]+ /.test(head)) {
          socket.write('HTTP/1.1 204 No Content\r\n\r\n')
        } else {
          socket.write(single)
        }
      }
    })
    socket.on('error', () => socket.destroy())
  })
  server.listen(0, '127.0.0.1', () => {
    const address = server.address() as net.AddressInfo
    process.stdout.write(`listening 127.0.0.1:${address.port}\n`)
  })
}

async function measure(): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const url = await new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`stand-in exited ${code}`)))
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const match = /^listening (\S+)$/.exec(line.trim())
      if (match !== null) resolve(`http://${match[1]}`)
    })
  })
  const clients: Record<string, (options: HttpTransportOptions) => HttpTransport> = { lean: createLeanHttpTransport, node: createHttpTransport }
  const chosen = values.client === 'both' ? ['lean', 'node'] : [values.client ?? 'lean']
  const shapes = [
    { name: 'transactions ×16', definition: transactionsWorkload, concurrency: 16, bulkSize: 1 },
    { name: 'bulk of 100 ×4', definition: bulkWorkload, concurrency: 4, bulkSize: 100 },
  ]
  process.stdout.write('| client | workload | requests/s | client µs/request | client µs/tx |\n| --- | --- | --- | --- | --- |\n')
  try {
    for (const shape of shapes) {
      for (const name of chosen) {
        const create = clients[name]
        if (create === undefined) throw new Error(`--client lean, node or both, not ${name}`)
        const transport = create({ target: new URL(url), socketsMax: shape.concurrency, requestTimeoutMs: 30_000 })
        const settings = { ledger: 'cost', accounts: 1000, bulkSize: shape.bulkSize, forceRatio: 0 }
        const plans = [{ definition: shape.definition, concurrency: shape.concurrency }]
        await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs: 1000 }, seed: 2 })
        const meter = startCpuMeter(undefined)
        const run = await runBench({ transport, plans, settings, stop: { kind: 'duration', durationMs: Number(values.duration) * 1000 }, seed: 1 })
        const cpu = meter.finish(run.total.transactions)
        transport.close()
        process.stdout.write(
          `| ${name} | ${shape.name} | ${run.total.requestsPerSecond.toFixed(0)} | ${(cpu.client.micros / run.total.requests).toFixed(1)} | ${(cpu.client.microsPerTransaction ?? 0).toFixed(2)} |\n`,
        )
      }
    }
  } finally {
    child.kill('SIGTERM')
  }
}

if (values.serve) serve()
else await measure()
