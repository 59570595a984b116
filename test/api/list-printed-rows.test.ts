import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLedger, openTestApi, postTransaction } from '../support/api.ts'
import type { TestApi } from '../support/api.ts'
import type { LedgerName } from '../../src/domain/index.ts'
import { PrintedJson, decodeRowValue, printTransaction, stringifyJson, transactionKey } from '../../src/domain/index.ts'
import { attributeRowKey } from '../../src/store/index.ts'

const decodeTransactionRow = (row: Buffer) => decodeRowValue('t', row)

/**
 * List pages print rows as stored when nothing is left to judge (no filter
 * beyond the range read, no `pit`, no volumes): each item must be the text
 * printing its decoded row gives, as must the single read of it, and a page
 * whose filter the range does not settle must keep judging its rows.
 */
async function listText(api: TestApi, url: string, filter?: unknown): Promise<{ text: string; ids: bigint[]; envelope: Record<string, unknown> }> {
  const reply = await api.request('GET', url, filter)
  assert.equal(reply.status, 200, reply.text)
  const { cursor } = JSON.parse(reply.text) as { cursor: Record<string, unknown> & { data: { id: number }[] } }
  return { text: reply.text, ids: cursor.data.map((item) => BigInt(item.id)), envelope: cursor }
}

/** The page as it would print with every item's row decoded and printed (`printTransaction`), and the single read of each the same. */
async function fromDecodedRows(api: TestApi, ledger: string, envelope: Record<string, unknown>, ids: bigint[], query: string): Promise<string> {
  const data: PrintedJson[] = []
  for (const id of ids) {
    const [row] = api.node.store.getManySync([attributeRowKey(transactionKey(ledger as LedgerName, id))])
    assert.ok(row !== undefined)
    const printed = printTransaction(decodeTransactionRow(row), { volumes: query === '?expand=volumes' })
    const reply = await api.request('GET', `/v2/${ledger}/transactions/${id}${query}`)
    assert.equal(reply.text, `{"data":${printed}}`, `transaction ${id}${query}`)
    data.push(new PrintedJson(printed))
  }
  return stringifyJson({ cursor: { ...envelope, data } })
}

test('list pages and single reads printed from stored rows are byte for byte their decoded rows printed, in every order; filters the range does not settle still judge each row', async () => {
  const api = await openTestApi()
  try {
    await createLedger(api, 'rows')
    await postTransaction(api, 'rows', [{ source: 'world', destination: 'users:1', amount: 100, asset: 'USD/2' }], { timestamp: '2026-01-03T00:00:00Z', reference: 'r"1', metadata: { '10': 'ten', '9': 'nine', é: '\u2028' } })
    await postTransaction(api, 'rows', [{ source: 'users:1', destination: 'users:2', amount: 30, asset: 'USD/2' }, { source: 'world', destination: 'users:2', amount: 2n ** 70n, asset: 'COIN' }], { timestamp: '2026-01-01T00:00:00Z' })
    await postTransaction(api, 'rows', [{ source: 'users:2', destination: 'users:1', amount: 5, asset: 'USD/2' }], { timestamp: '2026-01-02T00:00:00Z', metadata: { note: 'a\nb' } })
    const reverted = await api.request('POST', '/v2/rows/transactions/2/revert')
    assert.equal(reverted.status, 201, reverted.text)
    for (const [url, filter, query] of [
      ['/v2/rows/transactions?pageSize=2', undefined, ''],
      ['/v2/rows/transactions?pageSize=10&reverse=true', undefined, ''],
      ['/v2/rows/transactions?pageSize=3&sort=timestamp:asc', undefined, ''],
      ['/v2/rows/transactions?pageSize=10&order=effective', undefined, ''],
      ['/v2/rows/transactions?pageSize=2', { $match: { account: 'users:1' } }, ''],
      ['/v2/rows/transactions?pageSize=10&expand=volumes', { $match: { account: 'users:2' } }, '?expand=volumes'],
      ['/v2/rows/transactions?pageSize=10&expand=volumes', undefined, '?expand=volumes'],
    ] as const) {
      const page = await listText(api, url, filter)
      assert.ok(page.ids.length > 0, url)
      assert.equal(page.text, await fromDecodedRows(api, 'rows', page.envelope, page.ids, query), `${url} ${JSON.stringify(filter)}`)
    }
    // Filters the index does not settle: a source on the account's index, any filter in timestamp order (the revert, 3, is dated now).
    assert.deepEqual((await listText(api, '/v2/rows/transactions?pageSize=10', { $match: { source: 'users:1' } })).ids, [3n, 1n])
    assert.deepEqual((await listText(api, '/v2/rows/transactions?pageSize=10&sort=timestamp:asc', { $match: { account: 'users:2' } })).ids, [1n, 2n, 3n])
    assert.deepEqual((await listText(api, '/v2/rows/transactions?pageSize=10&order=effective', { $match: { destination: 'users:2' } })).ids, [3n, 1n])
    assert.deepEqual((await listText(api, '/v2/rows/transactions?pageSize=10', { $match: { reference: 'r"1' } })).ids, [0n])
    assert.deepEqual((await listText(api, '/v2/rows/transactions?pageSize=10', { $match: { 'metadata[note]': 'a\nb' } })).ids, [2n])
    // Later pages (a cursor) print as stored too, filtered on the account or not.
    for (const [url, filter] of [
      ['/v2/rows/transactions?pageSize=1', undefined],
      ['/v2/rows/transactions?pageSize=1', { $match: { account: 'users:1' } }],
    ] as const) {
      const first = await listText(api, url, filter)
      const next = first.envelope.next
      assert.equal(typeof next, 'string')
      const second = await listText(api, `/v2/rows/transactions?cursor=${String(next)}`)
      assert.equal(second.ids.length, 1)
      assert.notDeepEqual(second.ids, first.ids)
      assert.equal(second.text, await fromDecodedRows(api, 'rows', second.envelope, second.ids, ''), `${url} ${JSON.stringify(filter)}, second page`)
    }
    // With pit the rows are judged: only those dated by then, the revert after it not yet seen.
    const atPit = await listText(api, '/v2/rows/transactions?pageSize=10&pit=2026-01-02T12:00:00Z')
    assert.deepEqual(atPit.ids, [2n, 1n])
    assert.match(atPit.text, /"id":2,[^]*?"reverted":false/)
    assert.deepEqual((await listText(api, '/v2/rows/transactions?pageSize=10&pit=2026-01-02T12:00:00Z', { $match: { account: 'users:1' } })).ids, [2n, 1n])
    // Effective volumes are added to each row: never printed as stored.
    const effective = await listText(api, '/v2/rows/transactions?pageSize=10&expand=effectiveVolumes', { $match: { account: 'users:1' } })
    assert.deepEqual(effective.ids, [3n, 2n, 1n, 0n])
    assert.equal((effective.text.match(/"postCommitEffectiveVolumes"/g) ?? []).length, 4)
  } finally {
    await api.close()
  }
})
