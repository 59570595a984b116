/**
 * Health-check latency while large request bodies arrive (issue 9, point 11).
 *
 *   node --import tsx bench/healthz-under-load.ts [--posts N] [--rounds R] [--body-mb M | --bulk-elements E] [--ledger missing|main] [--seconds-baseline S]
 *                                                 [--preload-tx T] [--seconds-after S]
 *
 * Starts `tally serve` on a fresh data directory (defaults: body limit
 * 1 MiB + 2 KiB × 10 000 bulk elements), then:
 *   baseline — polls GET /_/healthz back to back for a few seconds, nothing else running;
 *   loaded   — the same polling while R rounds of N parallel `_bulk` bodies of M MB are posted.
 * `--ledger missing` posts to a ledger that does not exist: the whole body is
 * read and parsed, then 404 — the cost of parsing alone. `--ledger main`
 * applies the bulks too (the FSM's apply is measured with it).
 * A body over the limit (`--body-mb 30`) shows the 413 refusal from Content-Length.
 * `--bulk-elements E` posts bulks of exactly E padded elements instead
 * (10000: the largest bulk accepted). `--preload-tx T` first loads T small
 * transactions in bulks of 1,000 (two at a time) and polls healthz for
 * `--seconds-after` seconds right after that load ("right after a large load").
 * Besides the poller's view, each phase reports the server's own maximum
 * event-loop delay (`nodejs_eventloop_lag_max_seconds`, reset at every
 * scrape) and, while posting, the transactions per second applied.
 * Prints a Markdown table of healthz latency percentiles. A benchmark, not a test.
 * BENCH_SERVER_NODE_FLAGS passes node flags to the server (`--trace-gc`, `--cpu-prof`).
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

function argument(name: string, fallback: string): string {
  const at = process.argv.indexOf(name)
  return at >= 0 ? (process.argv[at + 1] ?? fallback) : fallback
}

const posts = Number(argument('--posts', '6'))
const rounds = Number(argument('--rounds', '3'))
const bodyMegabytes = Number(argument('--body-mb', '19'))
const ledger = argument('--ledger', 'missing')
const baselineSeconds = Number(argument('--seconds-baseline', '3'))
const bulkElements = Number(argument('--bulk-elements', '0'))
const preloadTransactions = Number(argument('--preload-tx', '0'))
const afterSeconds = Number(argument('--seconds-after', '5'))
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })

function request(port: number, method: string, url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path: url, agent, headers: body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (text += chunk))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** A `_bulk` of CREATE_TRANSACTION elements padded with metadata to about `megabytes` MB (or of exactly `elementsWanted` elements). */
function bulkBody(megabytes: number, elementsWanted = 0): string {
  const padding = 'p'.repeat(1500)
  const elements: string[] = []
  let length = 2
  for (let i = 0; elementsWanted > 0 ? i < elementsWanted : length < megabytes * 1e6; i++) {
    const element = `{"action":"CREATE_TRANSACTION","data":{"postings":[{"source":"world","destination":"users:${i}","amount":${100 + i},"asset":"USD/2"}],"metadata":{"pad":"${padding}"}}}`
    elements.push(element)
    length += element.length + 1
  }
  return `[${elements.join(',')}]`
}

function percentiles(samples: number[]): string {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number): string => (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN).toFixed(1)
  return `| ${sorted.length} | ${at(0.5)} | ${at(0.9)} | ${at(0.99)} | ${(sorted.at(-1) ?? Number.NaN).toFixed(1)} |`
}

/** A `_bulk` of `count` small transactions, accounts `prefix:0..`. */
function smallBulk(prefix: string, count: number): string {
  return `[${Array.from({ length: count }, (_, i) => `{"action":"CREATE_TRANSACTION","data":{"postings":[{"source":"world","destination":"${prefix}:${i % 5000}","amount":1,"asset":"USD/2"}]}}`).join(',')}]`
}

/** The server's maximum event-loop delay since the previous scrape, in ms. */
async function serverLoopDelayMaxMs(port: number): Promise<number> {
  const reply = await request(port, 'GET', '/_/metrics')
  const match = /^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(reply.text)
  return match === null ? Number.NaN : Number(match[1]) * 1000
}

let healthFailures = 0

async function pollHealth(port: number, until: () => boolean): Promise<number[]> {
  const latencies: number[] = []
  while (!until()) {
    const started = performance.now()
    const reply = await request(port, 'GET', '/_/healthz').catch(() => ({ status: 0, text: '' }))
    if (reply.status !== 200) healthFailures++
    else latencies.push(performance.now() - started)
  }
  return latencies
}

async function main(): Promise<void> {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'tally-healthz-'))
  // BENCH_SERVER_NODE_FLAGS (e.g. --trace-gc, --cpu-prof) go to the server's node.
  const nodeFlags = (process.env.BENCH_SERVER_NODE_FLAGS ?? '').split(' ').filter((flag) => flag !== '')
  const child = spawn(process.execPath, [...nodeFlags, path.join(root, 'bin', 'tally.mjs'), 'serve', '--data', directory, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        const match = /^listening \S+:(\d+)$/.exec(line)
        if (match !== null) resolve(Number(match[1]))
        else process.stderr.write(`server: ${line}\n`) // --trace-gc and the like
      })
      child.once('exit', (code) => reject(new Error(`tally serve exited ${code}`)))
    })
    await request(port, 'POST', '/v2/main')
    const body = bulkBody(bodyMegabytes, bulkElements)
    const elementsPerBody = (body.match(/"action"/g) ?? []).length
    const target = ledger === 'main' ? '/v2/main/_bulk' : '/v2/missing/_bulk'

    let after: { latencies: number[]; loopMs: number } | undefined
    if (preloadTransactions > 0) {
      const started = performance.now()
      for (let loaded = 0; loaded < preloadTransactions; loaded += 2000) {
        const replies = await Promise.all([0, 1].map((k) => request(port, 'POST', '/v2/main/_bulk', smallBulk(`load${k}`, 1000))))
        for (const reply of replies) if (reply.status !== 200) throw new Error(`preload: ${reply.status} ${reply.text.slice(0, 200)}`)
      }
      console.log(`preloaded ${preloadTransactions} transactions in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      await serverLoopDelayMaxMs(port)
      const afterEnd = performance.now() + afterSeconds * 1000
      after = { latencies: await pollHealth(port, () => performance.now() > afterEnd), loopMs: await serverLoopDelayMaxMs(port) }
    }

    await serverLoopDelayMaxMs(port)
    const baselineEnd = performance.now() + baselineSeconds * 1000
    const baseline = await pollHealth(port, () => performance.now() > baselineEnd)
    const baselineLoopMs = await serverLoopDelayMaxMs(port)

    // The posts run in another process: building and sending large bodies would otherwise delay this one's polling.
    let posting = true
    const postedStarted = performance.now()
    const poster = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--poster', String(port), target, String(bodyMegabytes), String(posts), String(rounds), String(bulkElements)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let posterOutput = ''
    poster.stdout.setEncoding('utf8').on('data', (chunk: string) => (posterOutput += chunk))
    const load = new Promise<Record<string, number>>((resolve, reject) => {
      poster.once('exit', (code) => (code === 0 ? resolve(JSON.parse(posterOutput) as Record<string, number>) : reject(new Error(`poster exited ${code}`))))
    }).finally(() => {
      posting = false
    })
    const loaded = await pollHealth(port, () => !posting)
    const statuses = await load
    const postedSeconds = (performance.now() - postedStarted) / 1000
    const loadedLoopMs = await serverLoopDelayMaxMs(port)
    const applied = ledger === 'main' ? (statuses['200'] ?? 0) * elementsPerBody : 0

    console.log(
      `body ${(body.length / 1e6).toFixed(1)} MB (${elementsPerBody} elements), ${posts} parallel × ${rounds} rounds to ${target}; statuses ${JSON.stringify(statuses)}; ` +
        `${postedSeconds.toFixed(1)} s; ${(applied / postedSeconds).toFixed(0)} tx/s; failed healthz requests ${healthFailures}`,
    )
    console.log('')
    console.log('| phase | healthz requests | p50 ms | p90 ms | p99 ms | max ms | server loop delay max ms |')
    console.log('| --- | --- | --- | --- | --- | --- | --- |')
    if (after !== undefined) console.log(`| right after the preload ${percentiles(after.latencies)} ${after.loopMs.toFixed(0)} |`)
    console.log(`| baseline ${percentiles(baseline)} ${baselineLoopMs.toFixed(0)} |`)
    console.log(`| while posting ${percentiles(loaded)} ${loadedLoopMs.toFixed(0)} |`)
  } finally {
    child.kill('SIGTERM')
    await new Promise<void>((resolve) => child.once('exit', () => resolve()))
    agent.destroy()
    rmSync(directory, { recursive: true, force: true })
  }
}

/** The poster process: `rounds` rounds of `posts` parallel bodies; prints the statuses as JSON. */
async function postBodies(): Promise<void> {
  const at = process.argv.indexOf('--poster')
  const [port, target, megabytes, count, times, elements] = process.argv.slice(at + 1)
  const body = bulkBody(Number(megabytes), Number(elements ?? '0'))
  const statuses: Record<string, number> = {}
  for (let round = 0; round < Number(times); round++) {
    const replies = await Promise.all(
      Array.from({ length: Number(count) }, () => request(Number(port), 'POST', target as string, body).catch((error: Error & { code?: string }) => ({ status: error.code ?? 'error', text: '' }))),
    )
    for (const reply of replies) statuses[reply.status] = (statuses[reply.status] ?? 0) + 1
  }
  agent.destroy()
  process.stdout.write(JSON.stringify(statuses))
}

if (process.argv.includes('--poster')) await postBodies()
else await main()
