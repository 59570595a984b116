import { test } from 'node:test'
import assert from 'node:assert/strict'
import { benchExit, parseWorkloads, readOptions, resolveConfig, runBenchCommand } from '../../src/cli/bench-command.ts'
import { createDefaultRegistry, formatProgress, type BenchReport } from '../../src/bench/index.ts'
import { startFakeServer, type FakeServer, type FakeServerOptions } from './fake-server.ts'

interface Captured {
  code: number
  stdout: string
  stderr: string
}

async function bench(argv: string[], env: Record<string, string> = {}): Promise<Captured> {
  let stdout = ''
  let stderr = ''
  const code = await runBenchCommand(argv, {
    env,
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text), isTTY: false },
  })
  return { code, stdout, stderr }
}

async function withServer(options: FakeServerOptions, body: (server: FakeServer) => Promise<void>): Promise<void> {
  const server = await startFakeServer(options)
  try {
    await body(server)
  } finally {
    await server.close()
  }
}

test('--json prints a machine-readable report and exits 0', async () => {
  await withServer({}, async (server) => {
    const out = await bench(['--target', server.url, '--ledger', 'perf', '--workload', 'bulk', '--bulk-size', '4', '--requests', '25', '--concurrency', '3', '--json'])
    assert.equal(out.code, benchExit.ok, out.stderr)
    const report = JSON.parse(out.stdout) as BenchReport
    assert.equal(report.tool, 'tally bench')
    assert.equal(report.passed, true)
    assert.deepEqual(report.stop, { kind: 'requests', requests: 25 })
    assert.equal(report.settings.ledger, 'perf')
    assert.equal(report.workloads[0]?.name, 'bulk')
    assert.equal(report.workloads[0]?.concurrency, 3)
    assert.equal(report.total.requests, 25)
    assert.equal(report.total.transactions, 100)
    assert.equal(typeof report.total.latency.p99Ms, 'number')
    assert.equal(typeof report.environment.node, 'string')
    assert.equal(server.stats.bulkRequests, 25)
    assert.match(out.stderr, /ledger perf created/)
  })
})

test('the text summary reports each workload, throughput and percentiles', async () => {
  await withServer({ ledgerExists: true }, async (server) => {
    const out = await bench(['--target', server.url, '--workload', 'transactions:2,bulk:1', '--bulk-size', '3', '--requests', '10'])
    assert.equal(out.code, benchExit.ok, out.stderr)
    assert.match(out.stdout, /workload\s+mode\s+requests\s+tx\s+failed\s+req\/s\s+tx\/s\s+p50\s+p90\s+p99\s+max/)
    assert.match(out.stdout, /^transactions\s+closed ×2\s+10\s+10\s+0/m)
    assert.match(out.stdout, /^bulk\s+closed ×1\s+10\s+30\s+0/m)
    assert.match(out.stdout, /^total\s+20\s+40\s+0/m)
    assert.match(out.stdout, /error rate 0\.000% .*ok/)
    assert.match(out.stderr, /ledger bench exists/)
  })
})

test('flags fall back to TALLY_BENCH_* variables', async () => {
  await withServer({}, async (server) => {
    const out = await bench([], {
      TALLY_BENCH_TARGET: server.url,
      TALLY_BENCH_REQUESTS: '12',
      TALLY_BENCH_CONCURRENCY: '2',
      TALLY_BENCH_WORKLOAD: 'transactions',
      TALLY_BENCH_FORCE_RATIO: '1',
      TALLY_BENCH_JSON: '1',
    })
    assert.equal(out.code, benchExit.ok, out.stderr)
    const report = JSON.parse(out.stdout) as BenchReport
    assert.equal(report.total.requests, 12)
    assert.equal(report.settings.forceRatio, 1)
    assert.equal(server.stats.forcedTransactions, 12)
  })
  const options = readOptions(['--duration', '3'], { TALLY_BENCH_REQUESTS: '5', TALLY_BENCH_SEED: '4' })
  assert.deepEqual(options, { duration: '3', seed: '4' }, 'a stop flag overrides both stop variables')
})

test('an error rate above --max-error-rate exits 1; below it exits 0', async () => {
  await withServer({ failTransactionEvery: 4 }, async (server) => {
    const strict = await bench(['--target', server.url, '--requests', '40', '--concurrency', '2'])
    assert.equal(strict.code, benchExit.errorRateExceeded)
    assert.match(strict.stdout, /transactions: HTTP 400 INSUFFICIENT_FUND × 10/)
    assert.match(strict.stdout, /error rate 25\.000% exceeds the limit of 0%: FAILED/)
    const lenient = await bench(['--target', server.url, '--requests', '40', '--max-error-rate', '0.3', '--json'])
    assert.equal(lenient.code, benchExit.ok)
    assert.equal((JSON.parse(lenient.stdout) as BenchReport).total.errorRate, 0.25)
  })
})

test('an unreachable target or a refused ledger exits 3 with a clear message', async () => {
  const closed = await startFakeServer()
  await closed.close()
  const unreachable = await bench(['--target', closed.url, '--requests', '1'])
  assert.equal(unreachable.code, benchExit.targetFailed)
  assert.match(unreachable.stderr, /tally bench: cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/)
  await withServer({ ledgerCreateStatus: 403 }, async (server) => {
    const refused = await bench(['--target', server.url, '--requests', '1'])
    assert.equal(refused.code, benchExit.targetFailed)
    assert.match(refused.stderr, /cannot create ledger bench .*HTTP 403/)
  })
})

test('usage errors exit 2; --help lists options, variables and workloads', async () => {
  for (const argv of [
    ['--duration', '1', '--requests', '1'],
    ['--workload', 'nope'],
    ['--workload', 'transactions,transactions'],
    ['--workload', 'transactions:0'],
    ['--concurrency', 'many'],
    ['--force-ratio', '1.5'],
    ['--rate', '0'],
    ['--target', 'ftp://x'],
    ['--frobnicate'],
    ['positional'],
  ]) {
    const out = await bench(argv)
    assert.equal(out.code, benchExit.usage, `${argv.join(' ')} → ${out.stderr}`)
    assert.match(out.stderr, /^tally bench: /)
  }
  const help = await bench(['--help'])
  assert.equal(help.code, benchExit.ok)
  for (const fragment of ['--target URL', 'TALLY_BENCH_TARGET', '--rate R', 'open loop', 'transactions', 'bulk', '--max-error-rate']) {
    assert.ok(help.stdout.includes(fragment), `help mentions ${fragment}`)
  }
})

test('workload lists carry per-item concurrency and rate; defaults fill the rest', () => {
  const registry = createDefaultRegistry()
  const plans = parseWorkloads('transactions:16@2000,bulk', registry, 4, undefined)
  assert.deepEqual(
    plans.map((plan) => [plan.definition.name, plan.concurrency, plan.ratePerSecond]),
    [
      ['transactions', 16, 2000],
      ['bulk', 4, undefined],
    ],
  )
  const config = resolveConfig({ rate: '50' }, registry)
  assert.equal(config.plans[0]?.ratePerSecond, 50)
  assert.deepEqual(config.stop, { kind: 'duration', durationMs: 10_000 })
  assert.equal(config.target.href, 'http://127.0.0.1:3068/')
  assert.deepEqual(config.settings, { ledger: 'bench', accounts: 1000, bulkSize: 100, forceRatio: 0 })
})

test('progress lines show cumulative counts and per-second rates', () => {
  const line = formatProgress({
    elapsedMs: 3000,
    intervalMs: 1000,
    requests: 12_345,
    transactions: 12_000,
    operationsFailed: 2,
    intervalRequests: 4100,
    intervalTransactions: 4000,
    intervalLatency: { count: 4100, minMs: 0.1, meanMs: 1, p50Ms: 1.2, p90Ms: 2, p99Ms: 5.1, p999Ms: 6, maxMs: 7 },
  })
  assert.equal(line, '[   3.0s]  12,345 req (4,100/s)  12,000 tx (4,000/s)  2 failed  p50 1.20 ms p99 5.10 ms')
})

test('--server-pid reports the server CPU per transaction beside the client\'s', { skip: process.platform !== 'linux' && 'reads Linux /proc' }, async () => {
  await withServer({}, async (server) => {
    // The fake server runs in this process, so its pid is ours.
    const out = await bench(['--target', server.url, '--workload', 'bulk', '--bulk-size', '10', '--requests', '20', '--server-pid', String(process.pid), '--json'])
    assert.equal(out.code, benchExit.ok, out.stderr)
    const report = JSON.parse(out.stdout) as BenchReport
    assert.equal(report.reportVersion, 3)
    assert.ok(report.cpu !== null)
    assert.ok(report.cpu.server !== null, 'server measured')
    assert.equal(report.cpu.server.microsPerTransaction, report.cpu.server.micros / 200)
    assert.equal(report.cpu.client.microsPerTransaction, report.cpu.client.micros / 200)
    const text = await bench(['--target', server.url, '--requests', '5'])
    assert.match(text.stdout, /CPU per transaction: client [0-9.]+ µs, server not measured/)
  })
})

test('--fill commits transactions by _bulk before the load, funding every account first, so reads find them', async () => {
  await withServer({}, async (server) => {
    const out = await bench(['--target', server.url, '--fill', '45', '--accounts', '40', '--bulk-size', '10', '--workload', 'get-account:4', '--requests', '60', '--json'])
    assert.equal(out.code, benchExit.ok, out.stderr)
    const report = JSON.parse(out.stdout) as BenchReport
    assert.equal(report.fill?.transactions, 45)
    assert.equal(server.stats.transactionsReceived, 45, 'the fill is all the server was sent to write')
    assert.deepEqual([...server.stats.bulkElementCounts].sort((a, b) => a - b), [5, 10, 10, 10, 10])
    for (let k = 0; k < 40; k++) assert.ok(server.stats.accounts.has(`users:${k}`), `users:${k} funded`)
    assert.deepEqual(server.stats.invalid, [])
    // Measured: the reads alone, every one answered 200.
    assert.equal(server.stats.accountReads, 60)
    assert.equal(report.total.transactions, 0)
    assert.equal(report.total.operations, 60)
    assert.equal(report.total.operationsFailed, 0)
    assert.match(out.stderr, /filled 45 transactions/)
  })
})

test('a read-only run reports CPU per operation, since it commits no transaction', { skip: process.platform !== 'linux' && 'reads Linux /proc' }, async () => {
  await withServer({}, async (server) => {
    const out = await bench(['--target', server.url, '--fill', '10', '--accounts', '10', '--workload', 'get-account:2', '--requests', '50', '--server-pid', String(process.pid), '--json'])
    assert.equal(out.code, benchExit.ok, out.stderr)
    const report = JSON.parse(out.stdout) as BenchReport
    assert.ok(report.cpu?.server != null)
    assert.equal(report.cpu.server.microsPerTransaction, null)
    assert.equal(report.cpu.server.microsPerOperation, report.cpu.server.micros / 50)
    assert.equal(report.cpu.server.mainThreadMicrosPerOperation, report.cpu.server.mainThreadMicros / 50)
    const text = await bench(['--target', server.url, '--accounts', '10', '--workload', 'get-account:2', '--requests', '20', '--server-pid', String(process.pid)])
    assert.equal(text.code, benchExit.ok, text.stderr)
    assert.doesNotMatch(text.stdout, /CPU per transaction/)
    assert.match(text.stdout, /CPU per operation \(a transaction or a read\): client [0-9.]+ µs, server [0-9.]+ µs \(JS thread [0-9.]+ µs\)/)
    // A mixed run says both.
    const mixed = await bench(['--target', server.url, '--accounts', '10', '--workload', 'bulk:1,get-account:1', '--bulk-size', '5', '--requests', '4'])
    assert.match(mixed.stdout, /CPU per transaction: client [0-9.]+ µs/)
    assert.match(mixed.stdout, /CPU per operation \(a transaction or a read\): client [0-9.]+ µs/)
  })
})

test('a --fill the server does not commit stops the bench before the load (exit 3)', async () => {
  await withServer({ failElementEvery: 7 }, async (server) => {
    const out = await bench(['--target', server.url, '--fill', '20', '--bulk-size', '10', '--workload', 'get-account', '--requests', '5'])
    assert.equal(out.code, benchExit.targetFailed)
    assert.match(out.stderr, /fill: a bulk of 10 committed 9 \(element INSUFFICIENT_FUND × 1/)
    assert.equal(server.stats.accountReads, 0)
  })
})

test('--client picks the lean socket client (default for http) or node:http; lean refuses https', async () => {
  await withServer({}, async (server) => {
    for (const client of ['lean', 'node']) {
      const out = await bench(['--target', server.url, '--client', client, '--workload', 'transactions:2,bulk:1', '--bulk-size', '3', '--requests', '10'])
      assert.equal(out.code, benchExit.ok, `${client}: ${out.stderr}`)
      assert.match(out.stdout, /^total\s+20\s+40\s+0/m)
    }
  })
  const https = await bench(['--target', 'https://127.0.0.1:1', '--client', 'lean'])
  assert.equal(https.code, benchExit.usage)
  assert.match(https.stderr, /--client lean speaks plain http/)
  const unknown = await bench(['--client', 'curl'])
  assert.equal(unknown.code, benchExit.usage)
})
