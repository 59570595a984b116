import { test } from 'node:test'
import assert from 'node:assert/strict'
import { posting, present, rejectsWithV2Error, withServer } from './server.ts'

test('SDK getAccount: volumes with expand=volumes, dates, metadata; NOT_FOUND, VALIDATION, LEDGER_NOT_FOUND', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('world', 'users:1', 100n), posting('world', 'users:1', 7n, 'EUR/2')], metadata: {} } })
    await v2.createTransaction({ ledger: 'main', v2PostTransaction: { postings: [posting('users:1', 'users:2', 40n)], metadata: {} } })

    const bare = present((await v2.getAccount({ ledger: 'main', address: 'users:1' })).v2AccountResponse, 'account').data
    assert.equal(bare.address, 'users:1')
    assert.deepEqual(bare.metadata, {})
    assert.equal(bare.volumes, undefined)
    assert.ok(bare.insertionDate instanceof Date && bare.firstUsage instanceof Date && bare.updatedAt instanceof Date)

    const expanded = present((await v2.getAccount({ ledger: 'main', address: 'users:1', expand: 'volumes' })).v2AccountResponse, 'account').data
    assert.deepEqual(expanded.volumes, {
      'USD/2': { input: 100n, output: 40n, balance: 60n },
      'EUR/2': { input: 7n, output: 0n, balance: 7n },
    })
    const world = present((await v2.getAccount({ ledger: 'main', address: 'world', expand: 'volumes' })).v2AccountResponse, 'world').data
    assert.deepEqual(world.volumes?.['USD/2'], { input: 0n, output: 100n, balance: -100n })

    await rejectsWithV2Error(v2.getAccount({ ledger: 'main', address: 'users:404' }), { status: 404, errorCode: 'NOT_FOUND' })
    await rejectsWithV2Error(v2.getAccount({ ledger: 'main', address: 'not an address' }), { status: 400, errorCode: 'VALIDATION', messageIncludes: 'address' })
    await rejectsWithV2Error(v2.getAccount({ ledger: 'missing', address: 'users:1' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
  })
})

test('SDK addMetadataToAccount / deleteAccountMetadata: saving metadata creates the account', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    assert.equal((await v2.addMetadataToAccount({ ledger: 'main', address: 'merchants:1', requestBody: { name: 'shop', tier: '1' } })).statusCode, 204)
    const account = present((await v2.getAccount({ ledger: 'main', address: 'merchants:1', expand: 'volumes' })).v2AccountResponse, 'account').data
    assert.deepEqual(account.metadata, { name: 'shop', tier: '1' })
    assert.deepEqual(account.volumes, {})
    assert.equal((await v2.deleteAccountMetadata({ ledger: 'main', address: 'merchants:1', key: 'tier' })).statusCode, 204)
    assert.deepEqual(present((await v2.getAccount({ ledger: 'main', address: 'merchants:1' })).v2AccountResponse, 'account').data.metadata, { name: 'shop' })
    await rejectsWithV2Error(v2.addMetadataToAccount({ ledger: 'main', address: 'bad address', requestBody: { a: '1' } }), { status: 400, errorCode: 'VALIDATION' })
    await rejectsWithV2Error(v2.addMetadataToAccount({ ledger: 'missing', address: 'users:1', requestBody: { a: '1' } }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
  })
})

test('SDK listAccounts: by address, every account once through next cursors (expand kept by the cursor), back with previous', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const addresses = Array.from({ length: 9 }, (_, i) => `users:${i}`)
    await v2.createBulk({
      ledger: 'main',
      atomic: true,
      requestBody: addresses.map((address, i) => ({ action: 'CREATE_TRANSACTION', data: { postings: [posting('world', address, BigInt(i + 1))], metadata: {} } })),
    })
    const expected = [...addresses, 'world'].sort()
    const seen: string[] = []
    const balances = new Map<string, bigint | undefined>()
    let cursor: string | undefined
    let lastPrevious: string | undefined
    const pages: string[][] = []
    for (let count = 0; count < 10; count++) {
      const page = present(
        (await v2.listAccounts(cursor === undefined ? { ledger: 'main', pageSize: 4, expand: 'volumes' } : { ledger: 'main', cursor })).v2AccountsCursorResponse,
        'page',
      ).cursor
      pages.push(page.data.map((account) => account.address))
      for (const account of page.data) {
        seen.push(account.address)
        balances.set(account.address, account.volumes?.['USD/2']?.balance)
      }
      lastPrevious = page.previous
      if (!page.hasMore) break
      cursor = present(page.next, 'next')
    }
    assert.deepEqual(seen, expected)
    assert.equal(balances.get('users:4'), 5n, 'expand=volumes survives the cursor')
    assert.equal(balances.get('world'), -45n)
    const back = present((await v2.listAccounts({ ledger: 'main', cursor: present(lastPrevious, 'previous') })).v2AccountsCursorResponse, 'back').cursor
    assert.deepEqual(back.data.map((account) => account.address), pages[1])
    await rejectsWithV2Error(v2.listAccounts({ ledger: 'missing' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
  })
})
