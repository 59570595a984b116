import { test } from 'node:test'
import assert from 'node:assert/strict'
import { LedgerNode } from '../../src/server/index.ts'
import { attributeRowKey, decodeLogRow, logRowPrefix, prefixEnd } from '../../src/store/index.ts'
import type { StoreReader } from '../../src/store/index.ts'
import { decodeAttribute, idempotencyKey, isJsonObject, stringifyJson } from '../../src/domain/index.ts'
import type { AccountAddress, Asset, Json, LedgerName } from '../../src/domain/index.ts'
import type { ProposedOrder } from '../../src/orders/index.ts'
import { exportLogChunks, exportLogLines } from '../../src/check/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { clock } from './workload.ts'
import { openTestApi } from '../support/api.ts'
import { writeRichLedger } from '../support/rich-ledger.ts'

/** The export as it was printed before batching: one object per log, its idempotency record read log by log. */
async function referenceExport(store: StoreReader, ledger: LedgerName): Promise<string> {
  let text = ''
  const prefix = logRowPrefix(ledger)
  for await (const [, value] of store.range({ gte: prefix, lt: prefixEnd(prefix) })) {
    const log = decodeLogRow(value)
    assert.ok(isJsonObject(log))
    const key = typeof log.idempotencyKey === 'string' ? log.idempotencyKey : ''
    const row = key === '' ? undefined : await store.get(attributeRowKey(idempotencyKey(ledger, key)))
    const record = row === undefined ? undefined : decodeAttribute('i', row).value
    const hash = record?.kind === 'i' && record.value.requestHash !== '' ? record.value.requestHash : undefined
    const exported: Record<string, Json> = {
      type: log.type ?? null,
      data: log.data ?? null,
      date: log.date ?? null,
      idempotencyKey: key,
      ...(hash === undefined ? {} : { idempotencyHash: hash }),
      id: log.id ?? null,
      hash: log.hash ?? null,
      ...(typeof log.schemaVersion === 'string' ? { schemaVersion: log.schemaVersion } : {}),
    }
    text += `${stringifyJson(exported)}\n`
  }
  return text
}

test('export: lines and chunks, batched over many logs with idempotency keys across batch boundaries, print exactly the logs one by one', async () => {
  const temp = tempDirectory('tally-export-')
  const node = await LedgerNode.open({ dataDirectory: temp.directory, sync: false, now: clock() })
  try {
    const ledger = 'exported' as LedgerName
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
    for (let bulk = 0; bulk < 6; bulk++) {
      const orders: ProposedOrder[] = []
      for (let i = 0; i < 250; i++) {
        const n = bulk * 250 + i
        orders.push({
          order: {
            type: 'CREATE_TRANSACTION',
            ledger,
            postings: [{ source: 'world' as AccountAddress, destination: `users:${n % 31}` as AccountAddress, amount: BigInt(n + 1), asset: 'USD/2' as Asset }],
            metadata: n % 3 === 0 ? { n: String(n), 'é "q"': '\u2028' } : {},
            accountMetadata: {},
            force: true,
          },
          ...(n % 7 === 0 ? { idempotencyKey: `key-${n}`, requestHash: `hash-${n}` } : {}),
        })
      }
      await node.admission.submit(orders, { atomic: false, continueOnFailure: true })
    }
    const expected = await referenceExport(node.store, ledger)
    assert.equal(expected.split('\n').length - 1, 1500)
    assert.match(expected, /"idempotencyHash":"hash-1491"/)

    let lines = ''
    for await (const line of exportLogLines(node.store, ledger)) lines += line
    assert.equal(lines, expected)

    for (const chunkBytes of [1, 10_000, 1 << 30]) {
      let chunks = ''
      let logs = 0
      for await (const chunk of exportLogChunks(node.store, ledger, chunkBytes)) {
        chunks += chunk.bytes.toString('utf8')
        logs += chunk.logs
        assert.equal(chunk.bytes.toString('utf8').split('\n').length - 1, chunk.logs)
      }
      assert.equal(chunks, expected, `chunks of ${chunkBytes} bytes`)
      assert.equal(logs, 1500)
    }
  } finally {
    await node.close()
    temp.remove()
  }
})

test('export: every kind of log (reverts, metadata set and deleted, schemas, templates, references, account metadata, odd strings) prints as the logs one by one', async () => {
  const api = await openTestApi()
  try {
    const ledger = 'main' as LedgerName
    await writeRichLedger(api)
    const expected = await referenceExport(api.node.store, ledger)
    const types = expected.split('\n').filter((line) => line !== '').map((line) => /"type":"([A-Z_]+)"/.exec(line)?.[1])
    assert.deepEqual(types.sort(), ['DELETE_METADATA', 'DELETE_METADATA', 'INSERTED_SCHEMA', 'NEW_TRANSACTION', 'NEW_TRANSACTION', 'NEW_TRANSACTION', 'NEW_TRANSACTION', 'REVERTED_TRANSACTION', 'REVERTED_TRANSACTION', 'SET_METADATA', 'SET_METADATA'])
    for (const needle of ['"template":"DEPOSIT"', '"reference":"ref \\"1\\""', '"revertedTransaction":{', '"accountMetadata":{"users:1":{"__proto__":"q"},"users:2":{"7":"x","tier":"gold"}}', '"idempotencyHash":', '"__proto__":"p"', '"schemaVersion":"v1"']) {
      assert.ok(expected.includes(needle), `the export holds ${needle}`)
    }
    let lines = ''
    for await (const line of exportLogLines(api.node.store, ledger)) lines += line
    assert.equal(lines, expected)
  } finally {
    await api.close()
  }
})
