import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  NetworkError,
  bulkWorkload,
  createDefaultRegistry,
  parseResponseBody,
  runBench,
  transactionsWorkload,
  type Clock,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
  type WorkloadDefinition,
  type WorkloadSettings,
  relativeErrorMax,
} from '../../src/bench/index.ts'
import { parseJson } from '../../src/domain/index.ts'
import { checkTransactionData } from './fake-server.ts'

/** Time moves only when the scripted transport or a sleep says so. */
class FakeClock implements Clock {
  timeMs = 0
  now(): number {
    return this.timeMs
  }
  async sleepUntil(timeMs: number): Promise<void> {
    if (timeMs > this.timeMs) this.timeMs = timeMs
  }
}

/** Answers every request after `latencyMs` of fake time with whatever `answer` returns. */
class ScriptedTransport implements HttpTransport {
  readonly sent: HttpRequest[] = []
  constructor(
    readonly clock: FakeClock,
    readonly latencyMs: number,
    readonly answer: (request: HttpRequest, index: number) => HttpResponse | NetworkError = () => ({ status: 200, body: '{"data":{}}' }),
  ) {}
  async send(request: HttpRequest): Promise<HttpResponse> {
    const index = this.sent.length
    this.sent.push(request)
    await Promise.resolve()
    this.clock.timeMs += this.latencyMs
    const answer = this.answer(request, index)
    if (answer instanceof NetworkError) throw answer
    return answer
  }
  close(): void {}
}

const settings: WorkloadSettings = { ledger: 'bench', accounts: 50, bulkSize: 5, forceRatio: 0 }

function bulkAnswer(request: HttpRequest, failEvery: number, counter: { elements: number }): HttpResponse {
  const elements = parseJson(request.body ?? '') as unknown[]
  let failed = false
  const data = elements.map((_, logID) => {
    counter.elements += 1
    if (counter.elements % failEvery === 0) {
      failed = true
      return { responseType: 'ERROR', logID, errorCode: 'INSUFFICIENT_FUND', errorDescription: 'x' }
    }
    return { responseType: 'CREATE_TRANSACTION', logID, data: { id: logID } }
  })
  return { status: failed ? 400 : 200, body: JSON.stringify({ data }) }
}

test('closed loop stops after --requests per workload and counts every request once', async () => {
  const clock = new FakeClock()
  const transport = new ScriptedTransport(clock, 2)
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 7 }],
    settings,
    stop: { kind: 'requests', requests: 123 },
    seed: 9,
  })
  assert.equal(transport.sent.length, 123)
  const [workload] = result.workloads
  assert.equal(workload?.requests, 123)
  assert.equal(workload?.transactions, 123)
  assert.equal(workload?.operationsFailed, 0)
  assert.equal(workload?.latency.count, 123)
  assert.equal(workload?.mode, 'closed-loop')
  for (const request of transport.sent) {
    assert.equal(request.method, 'POST')
    assert.equal(request.path, '/v2/bench/transactions')
    assert.equal(checkTransactionData(parseJson(request.body ?? '')), undefined)
  }
})

test('closed loop with a duration stops at the deadline', async () => {
  const clock = new FakeClock()
  const transport = new ScriptedTransport(clock, 100)
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 1 }],
    settings,
    stop: { kind: 'duration', durationMs: 1000 },
    seed: 1,
  })
  assert.equal(transport.sent.length, 10)
  assert.equal(result.total.elapsedMs, 1000)
  assert.equal(result.total.requestsPerSecond, 10)
  assert.equal(result.total.latency.p50Ms, 100)
})

test('open loop measures latency from the due time, so a slow server is not hidden', async () => {
  const clock = new FakeClock()
  // 10 requests/s are due every 100 ms, but each takes 250 ms with one client:
  // sends at 0, 250, 500, 750, 1000 for due times 0, 100, 200, 300, 400.
  const transport = new ScriptedTransport(clock, 250)
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 1, ratePerSecond: 10 }],
    settings,
    stop: { kind: 'requests', requests: 5 },
    seed: 1,
  })
  const [workload] = result.workloads
  assert.equal(workload?.mode, 'open-loop')
  assert.equal(workload?.requests, 5)
  assert.equal(workload?.latency.minMs, 250)
  // Min and max are exact; percentiles carry the histogram's bounded error.
  assert.ok(workload !== undefined && workload.latency.p50Ms >= 550 && workload.latency.p50Ms <= 550 * (1 + relativeErrorMax))
  assert.equal(workload?.latency.maxMs, 850)
  assert.equal(workload?.startLagMsMax, 600)
})

test('open loop keeps to the schedule while the server keeps up, and stops at the deadline', async () => {
  const clock = new FakeClock()
  const transport = new ScriptedTransport(clock, 0)
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 1, ratePerSecond: 50 }],
    settings,
    stop: { kind: 'duration', durationMs: 1000 },
    seed: 1,
  })
  assert.equal(transport.sent.length, 50, 'due times 0, 20, …, 980 ms')
  assert.equal(result.workloads[0]?.startLagMsMax, 0)
  assert.equal(result.workloads[0]?.latency.maxMs, 0)
})

test('HTTP and network failures are tallied by status and errorCode', async () => {
  const clock = new FakeClock()
  const transport = new ScriptedTransport(clock, 1, (_request, index) => {
    if (index % 10 === 3) return { status: 400, body: '{"errorCode":"INSUFFICIENT_FUND","errorMessage":"no"}' }
    if (index % 10 === 5) return { status: 503, body: 'busy' }
    if (index % 10 === 7) return new NetworkError('ECONNRESET', 'socket hang up')
    return { status: 200, body: '{}' }
  })
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 3 }],
    settings,
    stop: { kind: 'requests', requests: 100 },
    seed: 1,
  })
  const total = result.total
  assert.equal(total.requests, 100)
  assert.equal(total.requestErrors, 30)
  assert.equal(total.transactions, 70)
  assert.deepEqual(total.failures, { 'HTTP 400 INSUFFICIENT_FUND': 10, 'HTTP 503': 10, 'network ECONNRESET': 10 })
  assert.equal(total.errorRate, 0.3)
})

test('bulk counts elements: partial failures per element, whole-request failures as B operations', async () => {
  const clock = new FakeClock()
  const counter = { elements: 0 }
  const transport = new ScriptedTransport(clock, 1, (request, index) =>
    index === 0 ? { status: 500, body: '{"errorCode":"INTERNAL","errorMessage":"boom"}' } : bulkAnswer(request, 4, counter),
  )
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: bulkWorkload, concurrency: 2 }],
    settings,
    stop: { kind: 'requests', requests: 9 },
    seed: 1,
  })
  const total = result.total
  assert.equal(total.requests, 9)
  assert.equal(total.operations, 45)
  // 8 answered bulks hold 40 elements, every 4th fails: 10 failures, 30 transactions.
  assert.equal(total.transactions, 30)
  assert.deepEqual(total.failures, { 'HTTP 500 INTERNAL': 5, 'element INSUFFICIENT_FUND': 10 })
  assert.equal(total.operationsFailed, 15)
  for (const request of transport.sent) {
    assert.equal(request.path, '/v2/bench/_bulk?atomic=false')
    const elements = parseJson(request.body ?? '') as unknown[]
    assert.equal(elements.length, 5)
  }
})

test('bodies are deterministic for a seed and differ across seeds', async () => {
  async function bodies(seed: number): Promise<string[]> {
    const clock = new FakeClock()
    const transport = new ScriptedTransport(clock, 1)
    await runBench({
      transport,
      clock,
      plans: [{ definition: transactionsWorkload, concurrency: 1 }],
      settings: { ...settings, forceRatio: 0.5 },
      stop: { kind: 'requests', requests: 30 },
      seed,
    })
    return transport.sent.map((request) => `${request.path} ${request.body}`)
  }
  assert.deepEqual(await bodies(5), await bodies(5))
  assert.notDeepEqual(await bodies(5), await bodies(6))
})

test('the force mix sends user-to-user transfers with force in body and query', async () => {
  const clock = new FakeClock()
  const transport = new ScriptedTransport(clock, 1)
  await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 2 }],
    settings: { ...settings, accounts: 3, forceRatio: 0.5 },
    stop: { kind: 'requests', requests: 400 },
    seed: 3,
  })
  let transfers = 0
  for (const request of transport.sent) {
    const data = parseJson(request.body ?? '') as { force?: boolean; postings: Array<{ source: string; destination: string }> }
    assert.equal(checkTransactionData(parseJson(request.body ?? '')), undefined)
    const posting = data.postings[0]!
    assert.match(posting.destination, /^users:[0-2]$/)
    if (data.force === true) {
      transfers += 1
      assert.match(posting.source, /^users:[0-2]$/)
      assert.ok(request.path.endsWith('?force=true'))
    } else {
      assert.equal(posting.source, 'world')
      assert.ok(!request.path.includes('force'))
    }
  }
  assert.ok(transfers > 150 && transfers < 250, `about half are transfers, got ${transfers}`)
})

test('several workloads run at once, each with its own concurrency and its own report', async () => {
  const clock = new FakeClock()
  const counter = { elements: 0 }
  const transport = new ScriptedTransport(clock, 1, (request) =>
    request.path.includes('_bulk') ? bulkAnswer(request, 1_000_000, counter) : { status: 200, body: '{}' },
  )
  const probe: WorkloadDefinition = {
    name: 'probe',
    summary: 'a read workload stand-in',
    kind: 'read',
    createGenerator: () => ({
      next: () => ({ method: 'GET', path: '/v2/bench/accounts/users:1', body: undefined, operations: 1 }),
      classify: (_request, response) => ({
        ok: response.status === 200,
        transactions: 0,
        operationsSucceeded: response.status === 200 ? 1 : 0,
        failures: response.status === 200 ? [] : [{ key: `HTTP ${response.status}`, operations: 1 }],
      }),
    }),
  }
  const result = await runBench({
    transport,
    clock,
    plans: [
      { definition: transactionsWorkload, concurrency: 4 },
      { definition: bulkWorkload, concurrency: 2 },
      { definition: probe, concurrency: 1 },
    ],
    settings,
    stop: { kind: 'requests', requests: 20 },
    seed: 1,
  })
  assert.deepEqual(
    result.workloads.map((workload) => [workload.name, workload.kind, workload.concurrency, workload.requests, workload.transactions]),
    [
      ['transactions', 'write', 4, 20, 20],
      ['bulk', 'write', 2, 20, 100],
      ['probe', 'read', 1, 20, 0],
    ],
  )
  assert.equal(result.total.requests, 60)
  assert.equal(result.total.transactions, 120)
  assert.equal(transport.sent.filter((request) => request.method === 'GET').length, 20)
})

test('a workload setup hook runs once before the load', async () => {
  const clock = new FakeClock()
  const transport = new ScriptedTransport(clock, 1)
  let setups = 0
  const seeded: WorkloadDefinition = {
    ...transactionsWorkload,
    name: 'seeded',
    setup: async (context) => {
      setups += 1
      assert.equal(transport.sent.length, 0)
      assert.equal(context.settings.ledger, 'bench')
    },
  }
  await runBench({ transport, clock, plans: [{ definition: seeded, concurrency: 3 }], settings, stop: { kind: 'requests', requests: 5 }, seed: 1 })
  assert.equal(setups, 1)
})

test('an abort signal stops new requests; a bug in a workload fails the run', async () => {
  const clock = new FakeClock()
  const controller = new AbortController()
  const transport = new ScriptedTransport(clock, 1, (_request, index) => {
    if (index === 9) controller.abort()
    return { status: 200, body: '{}' }
  })
  const result = await runBench({
    transport,
    clock,
    plans: [{ definition: transactionsWorkload, concurrency: 1 }],
    settings,
    stop: { kind: 'requests', requests: 1000 },
    seed: 1,
    signal: controller.signal,
  })
  assert.equal(result.total.requests, 10)

  const broken: WorkloadDefinition = {
    ...transactionsWorkload,
    name: 'broken',
    createGenerator: (workloadSettings, random) => ({
      ...transactionsWorkload.createGenerator(workloadSettings, random),
      classify: () => ({ ok: true, transactions: 1, operationsSucceeded: 2, failures: [] }),
    }),
  }
  await assert.rejects(
    runBench({ transport: new ScriptedTransport(new FakeClock(), 1), plans: [{ definition: broken, concurrency: 2 }], settings, stop: { kind: 'requests', requests: 5 }, seed: 1 }),
    /invariant violated/,
  )
})

test('the default registry holds the write and read workloads and rejects duplicates', () => {
  const registry = createDefaultRegistry()
  assert.deepEqual(registry.names(), ['transactions', 'bulk', 'get-account', 'list-filter', 'aggregate-balances'])
  assert.deepEqual(registry.list().filter((workload) => workload.kind === 'read').map((workload) => workload.name), ['get-account', 'list-filter', 'aggregate-balances'])
  assert.throws(() => registry.register(transactionsWorkload), /already registered/)
  assert.equal(parseResponseBody('not json'), undefined)
})
