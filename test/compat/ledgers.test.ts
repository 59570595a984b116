import { test } from 'node:test'
import assert from 'node:assert/strict'
import { present, rejectsWithV2Error, withServer } from './server.ts'

test('SDK getInfo: the server names itself over /api/ledger/_/info', async () => {
  await withServer(async ({ v2 }) => {
    const info = present((await v2.getInfo()).v2ConfigInfo, 'v2ConfigInfo')
    assert.equal(info.server, 'tally')
    assert.match(info.version, /^\d+\.\d+\.\d+/)
    assert.deepEqual(info.experimentalFeatures, [])
  })
})

test('SDK createLedger / getLedger / getLedgerInfo, with metadata and features; LEDGER_ALREADY_EXISTS, LEDGER_NOT_FOUND, VALIDATION', async () => {
  await withServer(async ({ v2 }) => {
    const created = await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: { metadata: { owner: 'ops' }, features: { MOVES_HISTORY: 'ON' } } })
    assert.equal(created.statusCode, 204)
    await v2.createLedger({ ledger: 'plain', v2CreateLedgerRequest: {} })
    await v2.createLedger({ ledger: 'other', v2CreateLedgerRequest: { bucket: 'blue' } })

    const ledger = present((await v2.getLedger({ ledger: 'main' })).v2GetLedgerResponse, 'v2GetLedgerResponse').data
    assert.equal(ledger.name, 'main')
    assert.equal(ledger.bucket, '_default')
    assert.ok(ledger.addedAt instanceof Date && !Number.isNaN(ledger.addedAt.getTime()))
    assert.deepEqual(ledger.metadata, { owner: 'ops' })
    assert.deepEqual(ledger.features, { MOVES_HISTORY: 'ON' })
    assert.equal(present((await v2.getLedger({ ledger: 'other' })).v2GetLedgerResponse, 'other').data.bucket, 'blue')

    const info = present((await v2.getLedgerInfo({ ledger: 'main' })).v2LedgerInfoResponse, 'v2LedgerInfoResponse').data
    assert.equal(info?.name, 'main')
    assert.deepEqual(info?.storage?.migrations, [])

    await rejectsWithV2Error(v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} }), { status: 400, errorCode: 'LEDGER_ALREADY_EXISTS' })
    await rejectsWithV2Error(v2.getLedger({ ledger: 'missing' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
    await rejectsWithV2Error(v2.getLedgerInfo({ ledger: 'missing' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
    await rejectsWithV2Error(v2.createLedger({ ledger: 'bad.name', v2CreateLedgerRequest: {} }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'ledger' })
    await rejectsWithV2Error(v2.createLedger({ ledger: 'x', v2CreateLedgerRequest: { bucket: 'no spaces' } }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'bucket' })
  })
})

test('SDK updateLedgerMetadata / deleteLedgerMetadata', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: { metadata: { keep: '1' } } })
    assert.equal((await v2.updateLedgerMetadata({ ledger: 'main', requestBody: { a: '1', b: '2' } })).statusCode, 204)
    assert.deepEqual(present((await v2.getLedger({ ledger: 'main' })).v2GetLedgerResponse, 'ledger').data.metadata, { keep: '1', a: '1', b: '2' })
    assert.equal((await v2.deleteLedgerMetadata({ ledger: 'main', key: 'a' })).statusCode, 204)
    assert.deepEqual(present((await v2.getLedger({ ledger: 'main' })).v2GetLedgerResponse, 'ledger').data.metadata, { keep: '1', b: '2' })
    await rejectsWithV2Error(v2.updateLedgerMetadata({ ledger: 'missing', requestBody: { a: '1' } }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
    await rejectsWithV2Error(v2.deleteLedgerMetadata({ ledger: 'missing', key: 'a' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
  })
})

test('SDK listLedgers: cursor paging forward and back returns each ledger once, by name', async () => {
  await withServer(async ({ v2 }) => {
    const names = Array.from({ length: 7 }, (_, i) => `ledger-${i}`)
    for (const name of [...names].reverse()) await v2.createLedger({ ledger: name, v2CreateLedgerRequest: {} })
    const seen: string[] = []
    const cursors: string[] = []
    let cursor: string | undefined
    for (let pages = 0; pages < 10; pages++) {
      const page = present((await v2.listLedgers(cursor === undefined ? { pageSize: 3 } : { cursor })).v2LedgerListResponse, 'page').cursor
      assert.equal(page.pageSize, 3)
      seen.push(...page.data.map((ledger) => ledger.name))
      if (!page.hasMore) break
      cursor = present(page.next, 'next')
      cursors.push(cursor)
    }
    assert.deepEqual(seen, names)
    // Back from the last page: `previous` leads to the page before.
    const last = present((await v2.listLedgers({ cursor: present(cursors.at(-1), 'last cursor') })).v2LedgerListResponse, 'last').cursor
    assert.deepEqual(last.data.map((ledger) => ledger.name), ['ledger-6'])
    const before = present((await v2.listLedgers({ cursor: present(last.previous, 'previous') })).v2LedgerListResponse, 'before').cursor
    assert.deepEqual(before.data.map((ledger) => ledger.name), ['ledger-3', 'ledger-4', 'ledger-5'])
    await rejectsWithV2Error(v2.listLedgers({ pageSize: 1001 }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'pageSize' })
    await rejectsWithV2Error(v2.listLedgers({ cursor: 'not-a-cursor' }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'cursor' })
  })
})
