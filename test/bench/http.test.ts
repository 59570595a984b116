import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  LedgerSetupError,
  TargetUnreachableError,
  bulkWorkload,
  createHttpTransport,
  createLeanHttpTransport,
  ensureLedger,
  runBench,
  transactionsWorkload,
  type HttpTransport,
  type HttpTransportOptions,
  type WorkloadPlan,
  type WorkloadSettings,
} from '../../src/bench/index.ts'
import { startFakeServer, type FakeServer, type FakeServerOptions } from './fake-server.ts'

const settings: WorkloadSettings = { ledger: 'bench', accounts: 20, bulkSize: 7, forceRatio: 0 }

async function withServer(options: FakeServerOptions, body: (server: FakeServer) => Promise<void>): Promise<void> {
  const server = await startFakeServer(options)
  try {
    await body(server)
  } finally {
    await server.close()
  }
}

const clients: Record<string, (options: HttpTransportOptions) => HttpTransport> = {
  node: createHttpTransport,
  lean: createLeanHttpTransport,
}

for (const [client, createTransport] of Object.entries(clients)) {
  async function run(server: FakeServer, plans: WorkloadPlan[], requests: number, overrides: Partial<WorkloadSettings> = {}) {
    const transport = createTransport({ target: new URL(server.url), socketsMax: 16, requestTimeoutMs: 5000 })
    try {
      await ensureLedger(transport, server.url, 'bench')
      return await runBench({ transport, plans, settings: { ...settings, ...overrides }, stop: { kind: 'requests', requests }, seed: 7 })
    } finally {
      transport.close()
    }
  }

  test(`${client}: transactions over HTTP: every request arrives once with a valid v2 body`, async () => {
    await withServer({}, async (server) => {
      const result = await run(server, [{ definition: transactionsWorkload, concurrency: 8 }], 200)
      assert.deepEqual(server.stats.invalid, [])
      assert.deepEqual(server.stats.other, [])
      assert.equal(server.stats.ledgerCreates, 1)
      assert.equal(server.stats.transactionRequests, 200)
      assert.equal(result.total.requests, 200)
      assert.equal(result.total.transactions, 200)
      assert.equal(result.total.errorRate, 0)
      assert.ok(result.total.latency.maxMs > 0)
      for (const account of server.stats.accounts) assert.match(account, /^(world|users:([0-9]|1[0-9]))$/)
    })
  })

  test(`${client}: transactions over HTTP: server errors are counted by status and errorCode`, async () => {
    await withServer({ failTransactionEvery: 10 }, async (server) => {
      const result = await run(server, [{ definition: transactionsWorkload, concurrency: 4 }], 100)
      assert.equal(server.stats.transactionRequests, 100)
      assert.equal(result.total.transactions, 90)
      assert.equal(result.total.requestErrors, 10)
      assert.deepEqual(result.total.failures, { 'HTTP 400 INSUFFICIENT_FUND': 10 })
      assert.equal(result.total.errorRate, 0.1)
    })
  })

  test(`${client}: bulk over HTTP: B elements per request, element errors counted one by one`, async () => {
    await withServer({ failElementEvery: 10 }, async (server) => {
      const result = await run(server, [{ definition: bulkWorkload, concurrency: 3 }], 30)
      assert.deepEqual(server.stats.invalid, [])
      assert.equal(server.stats.bulkRequests, 30)
      assert.deepEqual(server.stats.bulkElementCounts, new Array(30).fill(7))
      assert.equal(result.total.operations, 210)
      assert.equal(result.total.transactions, 189)
      assert.deepEqual(result.total.failures, { 'element INSUFFICIENT_FUND': 21 })
      assert.ok(result.total.requestErrors >= 1 && result.total.requestErrors <= 21)
    })
  })

  test(`${client}: a write mix with forced transfers runs beside bulk, each reported`, async () => {
    await withServer({}, async (server) => {
      const result = await run(
        server,
        [
          { definition: transactionsWorkload, concurrency: 4 },
          { definition: bulkWorkload, concurrency: 2 },
        ],
        50,
        { forceRatio: 0.5 },
      )
      assert.deepEqual(server.stats.invalid, [])
      assert.equal(server.stats.transactionRequests, 50)
      assert.equal(server.stats.bulkRequests, 50)
      assert.equal(server.stats.transactionsReceived, 50 + 50 * 7)
      assert.ok(server.stats.forcedTransactions > 100, `forced transfers: ${server.stats.forcedTransactions}`)
      assert.ok(server.stats.forceQueryRequests > 10)
      assert.deepEqual(
        result.workloads.map((workload) => [workload.name, workload.requests, workload.transactions]),
        [
          ['transactions', 50, 50],
          ['bulk', 50, 350],
        ],
      )
    })
  })

  test(`${client}: ensureLedger accepts an existing ledger and reports other answers and silence`, async () => {
    await withServer({ ledgerExists: true }, async (server) => {
      const transport = createTransport({ target: new URL(server.url), socketsMax: 1, requestTimeoutMs: 5000 })
      assert.equal(await ensureLedger(transport, server.url, 'bench'), 'existing')
      transport.close()
    })
    await withServer({ ledgerCreateStatus: 500 }, async (server) => {
      const transport = createTransport({ target: new URL(server.url), socketsMax: 1, requestTimeoutMs: 5000 })
      await assert.rejects(ensureLedger(transport, server.url, 'bench'), LedgerSetupError)
      transport.close()
    })
    const closed = await startFakeServer()
    await closed.close()
    const transport = createTransport({ target: new URL(closed.url), socketsMax: 1, requestTimeoutMs: 5000 })
    await assert.rejects(ensureLedger(transport, closed.url, 'bench'), (error: unknown) => {
      assert.ok(error instanceof TargetUnreachableError)
      assert.match(error.message, /cannot reach .*ECONNREFUSED/)
      return true
    })
    transport.close()
  })
}
