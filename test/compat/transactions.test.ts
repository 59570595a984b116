import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ResponseValidationError } from '@formance/formance-sdk/sdk/models/errors/index.js'
import type { V2Transaction } from '@formance/formance-sdk/sdk/models/ledger/index.js'
import { headerOf, posting, present, rejectsWithV2Error, withServer } from './server.ts'
import { heldWal } from '../support/held-wal.ts'
import { until } from '../support/local.ts'
import type { LedgerV2 } from './server.ts'

async function create(v2: LedgerV2, ledger: string, body: Parameters<LedgerV2['createTransaction']>[0]['v2PostTransaction']): Promise<V2Transaction> {
  const response = await v2.createTransaction({ ledger, v2PostTransaction: body })
  assert.equal(response.statusCode, 200)
  return present(response.v2CreateTransactionResponse, 'v2CreateTransactionResponse').data
}

test('SDK createTransaction with postings: ids, commit volumes, metadata, reference, backdated timestamp, accountMetadata', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const first = await create(v2, 'main', { postings: [posting('world', 'users:1', 100n)], metadata: { order: '42' }, reference: 'ref-1' })
    assert.equal(first.id, 0n)
    assert.deepEqual(first.postings, [posting('world', 'users:1', 100n)])
    assert.deepEqual(first.metadata, { order: '42' })
    assert.equal(first.reference, 'ref-1')
    assert.equal(first.reverted, false)
    assert.deepEqual(first.preCommitVolumes?.['users:1']?.['USD/2'], { input: 0n, output: 0n, balance: 0n })
    assert.deepEqual(first.postCommitVolumes?.['users:1']?.['USD/2'], { input: 100n, output: 0n, balance: 100n })
    assert.deepEqual(first.postCommitVolumes?.['world']?.['USD/2'], { input: 0n, output: 100n, balance: -100n })

    const backdated = await create(v2, 'main', {
      postings: [posting('users:1', 'users:2', 30n), posting('world', 'users:2', 5n, 'EUR')],
      metadata: {},
      timestamp: new Date('2020-01-02T03:04:05.678Z'),
      accountMetadata: { 'users:2': { tier: 'gold' } },
    })
    assert.equal(backdated.id, 1n)
    assert.equal(backdated.timestamp.toISOString(), '2020-01-02T03:04:05.678Z')
    assert.ok((present(backdated.insertedAt, 'insertedAt').getTime()) > backdated.timestamp.getTime())
    const account = present((await v2.getAccount({ ledger: 'main', address: 'users:2' })).v2AccountResponse, 'account').data
    assert.deepEqual(account.metadata, { tier: 'gold' })

    const fetched = present((await v2.getTransaction({ ledger: 'main', id: 0n })).v2GetTransactionResponse, 'get').data
    assert.equal(fetched.id, 0n)
    assert.equal(fetched.reference, 'ref-1')
    assert.deepEqual(fetched.postings, first.postings)

    await rejectsWithV2Error(create(v2, 'main', { postings: [posting('world', 'users:3', 1n)], metadata: {}, reference: 'ref-1' }), { status: 409, errorCode: 'CONFLICT' })
    await rejectsWithV2Error(create(v2, 'main', { postings: [posting('users:3', 'users:4', 1n)], metadata: {} }), { status: 400, errorCode: 'INSUFFICIENT_FUND' })
    await rejectsWithV2Error(create(v2, 'main', { postings: [], metadata: {} }), { status: 400, errorCode: 'NO_POSTINGS' })
    await rejectsWithV2Error(create(v2, 'main', { postings: [posting('world', 'bad address', 1n)], metadata: {} }), { status: 400, errorCode: 'VALIDATION' })
    await rejectsWithV2Error(create(v2, 'missing', { postings: [posting('world', 'users:1', 1n)], metadata: {} }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
    await rejectsWithV2Error(v2.getTransaction({ ledger: 'main', id: 999n }), { status: 404, errorCode: 'NOT_FOUND' })
    await rejectsWithV2Error(v2.getTransaction({ ledger: 'missing', id: 0n }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })

    // force: skip the balance check (query flag of the SDK).
    const forced = await v2.createTransaction({ ledger: 'main', force: true, v2PostTransaction: { postings: [posting('users:9', 'users:1', 7n)], metadata: {} } })
    assert.deepEqual(present(forced.v2CreateTransactionResponse, 'forced').data.postCommitVolumes?.['users:9']?.['USD/2']?.balance, -7n)
  })
})

test('SDK createTransaction with a Numscript script {plain, vars}; refusals surface as typed errors', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const plain = [
      'vars {',
      '  account $user',
      '  monetary $amount',
      '}',
      'send $amount (',
      '  source = @world',
      '  destination = $user',
      ')',
      'set_tx_meta("kind", "deposit")',
    ].join('\n')
    const deposit = await create(v2, 'main', { script: { plain, vars: { user: 'users:7', amount: 'USD/2 250' } }, metadata: {} })
    assert.deepEqual(deposit.postings, [posting('world', 'users:7', 250n)])
    assert.equal(deposit.metadata['kind'], 'deposit')

    const split = ['send [USD/2 100] (', '  source = @users:7', '  destination = {', '    50% to @users:8', '    remaining to @users:9', '  }', ')'].join('\n')
    const shared = await create(v2, 'main', { script: { plain: split }, metadata: {} })
    assert.deepEqual(shared.postings, [posting('users:7', 'users:8', 50n), posting('users:7', 'users:9', 50n)])

    const tooMuch = 'send [USD/2 1000] (\n  source = @users:8\n  destination = @users:9\n)'
    await rejectsWithV2Error(create(v2, 'main', { script: { plain: tooMuch }, metadata: {} }), { status: 400, errorCode: 'INSUFFICIENT_FUND' })
    // v2 has two codes for a script that does not parse (COMPILATION_FAILED from its old machine, INTERPRETER_PARSE from
    // its interpreter); Tally runs an interpreter.
    const broken = await rejectsWithV2Error(create(v2, 'main', { script: { plain: 'send [USD/2 1] (' }, metadata: {} }), { status: 400, errorCode: 'INTERPRETER_PARSE' })
    assert.ok(broken.details !== undefined && broken.details.includes('line'), broken.body)
  })
})

test('SDK createTransaction with script.template but no schemaVersion: SCHEMA_NOT_SPECIFIED, a v2 error code the SDK can parse (templates: test/compat/schemas.test.ts)', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const call = create(v2, 'main', { script: { template: 'CUSTOMER_DEPOSIT', vars: {} }, metadata: {} })
    const error = await call.then(() => undefined, (caught: unknown) => caught)
    assert.ok(!(error instanceof ResponseValidationError), `the SDK could not parse the error body: ${error instanceof ResponseValidationError ? error.body : ''}`)
    await rejectsWithV2Error(Promise.reject(error), { status: 400, errorCode: 'SCHEMA_NOT_SPECIFIED', messageIncludes: 'CUSTOMER_DEPOSIT' })
  })
})

test('SDK amounts: exact below 2^53; the SDK rounds larger ones itself and writes 1e21 in exponent form, which Tally refuses', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const safe = 2n ** 53n - 1n
    assert.deepEqual((await create(v2, 'main', { postings: [posting('world', 'safe', safe)], metadata: {} })).postings[0]?.amount, safe)
    // 2^53 + 1 is not a double: the SDK sends Number(2^53 + 1) = 2^53, and Tally stores what it received.
    const rounded = await create(v2, 'main', { postings: [posting('world', 'rounded', 2n ** 53n + 1n)], metadata: {} })
    assert.equal(rounded.postings[0]?.amount, 2n ** 53n)
    // JSON.stringify(1e21) is "1e+21": not an integer literal, so a 400 rather than a guess.
    await rejectsWithV2Error(create(v2, 'main', { postings: [posting('world', 'huge', 10n ** 21n)], metadata: {} }), {
      status: 400,
      errorCode: 'VALIDATION',
      messageIncludes: 'amount',
    })
  })
})

test('SDK revertTransaction: body metadata, ALREADY_REVERT, INSUFFICIENT_FUND unless force, atEffectiveDate', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await create(v2, 'main', { postings: [posting('world', 'users:1', 100n)], metadata: {} })
    await create(v2, 'main', { postings: [posting('users:1', 'users:2', 60n)], metadata: {} })
    const old = await create(v2, 'main', { postings: [posting('world', 'users:3', 10n)], metadata: {}, timestamp: new Date('2021-06-01T00:00:00Z') })

    const reverted = await v2.revertTransaction({ ledger: 'main', id: 1n, v2RevertTransactionRequest: { metadata: { reason: 'mistake' } } })
    assert.equal(reverted.statusCode, 201)
    const mirror = present(reverted.v2CreateTransactionResponse, 'revert').data
    assert.deepEqual(mirror.postings, [posting('users:2', 'users:1', 60n)])
    assert.equal(mirror.metadata['reason'], 'mistake')
    const original = present((await v2.getTransaction({ ledger: 'main', id: 1n })).v2GetTransactionResponse, 'original').data
    assert.equal(original.reverted, true)
    assert.ok(original.revertedAt instanceof Date)
    await rejectsWithV2Error(v2.revertTransaction({ ledger: 'main', id: 1n }), { status: 400, errorCode: 'ALREADY_REVERT' })
    await rejectsWithV2Error(v2.revertTransaction({ ledger: 'main', id: 99n }), { status: 404, errorCode: 'NOT_FOUND' })

    // users:1 holds 100 again; spend 70 so the revert of tx 0 (users:1 → world 100) lacks funds.
    await create(v2, 'main', { postings: [posting('users:1', 'users:2', 70n)], metadata: {} })
    await rejectsWithV2Error(v2.revertTransaction({ ledger: 'main', id: 0n }), { status: 400, errorCode: 'INSUFFICIENT_FUND' })
    const forced = present((await v2.revertTransaction({ ledger: 'main', id: 0n, force: true })).v2CreateTransactionResponse, 'forced').data
    assert.deepEqual(forced.postCommitVolumes?.['users:1']?.['USD/2']?.balance, -70n)

    const atEffectiveDate = present((await v2.revertTransaction({ ledger: 'main', id: old.id, atEffectiveDate: true })).v2CreateTransactionResponse, 'atEffectiveDate').data
    assert.equal(atEffectiveDate.timestamp.toISOString(), '2021-06-01T00:00:00.000Z')
  })
})

test('SDK addMetadataOnTransaction / deleteTransactionMetadata', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    await create(v2, 'main', { postings: [posting('world', 'users:1', 1n)], metadata: { a: '1' } })
    assert.equal((await v2.addMetadataOnTransaction({ ledger: 'main', id: 0n, requestBody: { b: '2', a: 'one' } })).statusCode, 204)
    assert.deepEqual(present((await v2.getTransaction({ ledger: 'main', id: 0n })).v2GetTransactionResponse, 'tx').data.metadata, { a: 'one', b: '2' })
    assert.equal((await v2.deleteTransactionMetadata({ ledger: 'main', id: 0n, key: 'a' })).statusCode, 204)
    assert.deepEqual(present((await v2.getTransaction({ ledger: 'main', id: 0n })).v2GetTransactionResponse, 'tx').data.metadata, { b: '2' })
    await rejectsWithV2Error(v2.addMetadataOnTransaction({ ledger: 'main', id: 5n, requestBody: { a: '1' } }), { status: 404, errorCode: 'NOT_FOUND' })
    await rejectsWithV2Error(v2.deleteTransactionMetadata({ ledger: 'main', id: 5n, key: 'a' }), { status: 404, errorCode: 'NOT_FOUND' })
  })
})

test('SDK listTransactions: newest first, every transaction once walking next cursors, and back with previous', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    for (let i = 0; i < 11; i++) await create(v2, 'main', { postings: [posting('world', `users:${i}`, BigInt(i + 1))], metadata: {} })
    const ids: bigint[] = []
    const pages: bigint[][] = []
    let cursor: string | undefined
    let previous: string | undefined
    for (let count = 0; count < 10; count++) {
      const page = present((await v2.listTransactions(cursor === undefined ? { ledger: 'main', pageSize: 4 } : { ledger: 'main', cursor })).v2TransactionsCursorResponse, 'page').cursor
      pages.push(page.data.map((transaction) => transaction.id))
      ids.push(...page.data.map((transaction) => transaction.id))
      previous = page.previous
      if (!page.hasMore) break
      cursor = present(page.next, 'next')
    }
    assert.deepEqual(ids, Array.from({ length: 11 }, (_, i) => BigInt(10 - i)))
    assert.deepEqual(pages.map((page) => page.length), [4, 4, 3])
    const back = present((await v2.listTransactions({ ledger: 'main', cursor: present(previous, 'previous') })).v2TransactionsCursorResponse, 'back').cursor
    assert.deepEqual(back.data.map((transaction) => transaction.id), pages[1])
    const all = present((await v2.listTransactions({ ledger: 'main' })).v2TransactionsCursorResponse, 'default').cursor
    assert.equal(all.pageSize, 15)
    assert.equal(all.data.length, 11)
    assert.equal(all.hasMore, false)
    await rejectsWithV2Error(v2.listTransactions({ ledger: 'missing' }), { status: 404, errorCode: 'LEDGER_NOT_FOUND' })
    await rejectsWithV2Error(v2.listTransactions({ ledger: 'main', pageSize: 0 }), { status: 400, errorCode: 'VALIDATION' })
  })
})

test('SDK idempotencyKey: a replay returns the stored result with Idempotency-Hit; another request under the key is a VALIDATION error', async () => {
  await withServer(async ({ v2 }) => {
    await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
    const body = { postings: [posting('world', 'users:1', 10n)], metadata: {} }
    const first = await v2.createTransaction({ ledger: 'main', idempotencyKey: 'pay-1', v2PostTransaction: body })
    assert.equal(headerOf(first.headers, 'Idempotency-Hit'), undefined)
    const replay = await v2.createTransaction({ ledger: 'main', idempotencyKey: 'pay-1', v2PostTransaction: body })
    assert.equal(headerOf(replay.headers, 'Idempotency-Hit'), 'true')
    assert.equal(present(replay.v2CreateTransactionResponse, 'replay').data.id, present(first.v2CreateTransactionResponse, 'first').data.id)
    const listed = present((await v2.listTransactions({ ledger: 'main' })).v2TransactionsCursorResponse, 'list').cursor
    assert.equal(listed.data.length, 1, 'the replay applied nothing')
    await rejectsWithV2Error(
      v2.createTransaction({ ledger: 'main', idempotencyKey: 'pay-1', v2PostTransaction: { postings: [posting('world', 'users:1', 11n)], metadata: {} } }),
      { status: 400, errorCode: 'VALIDATION' },
    )

    const metadataFirst = await v2.addMetadataOnTransaction({ ledger: 'main', id: 0n, idempotencyKey: 'meta-1', requestBody: { a: '1' } })
    assert.equal(headerOf(metadataFirst.headers, 'Idempotency-Hit'), undefined)
    const metadataReplay = await v2.addMetadataOnTransaction({ ledger: 'main', id: 0n, idempotencyKey: 'meta-1', requestBody: { a: '1' } })
    assert.equal(headerOf(metadataReplay.headers, 'Idempotency-Hit'), 'true')

    const revert = await v2.revertTransaction({ ledger: 'main', id: 0n, idempotencyKey: 'rev-1' })
    const revertReplay = await v2.revertTransaction({ ledger: 'main', id: 0n, idempotencyKey: 'rev-1' })
    assert.equal(revertReplay.statusCode, 201)
    assert.equal(headerOf(revertReplay.headers, 'Idempotency-Hit'), 'true')
    assert.equal(present(revertReplay.v2CreateTransactionResponse, 'replay').data.id, present(revert.v2CreateTransactionResponse, 'revert').data.id)

    const accountFirst = await v2.addMetadataToAccount({ ledger: 'main', address: 'users:1', idempotencyKey: 'acc-1', requestBody: { a: '1' } })
    assert.equal(headerOf(accountFirst.headers, 'Idempotency-Hit'), undefined)
    const accountReplay = await v2.addMetadataToAccount({ ledger: 'main', address: 'users:1', idempotencyKey: 'acc-1', requestBody: { a: '1' } })
    assert.equal(headerOf(accountReplay.headers, 'Idempotency-Hit'), 'true')
  })
})

test(
  'SDK: a 503 (too many writes in flight for the cache horizon) is the typed v2 error INTERNAL with Retry-After, and applied nothing',
  {},
  async () => {
    // Whether a burst of writes overruns the horizon must not hang on timing: gathered, concurrent
    // writes can all be one proposal, and unheld, a proposal can be applied before the next one is
    // planned. So one write is kept in flight (appended, its fdatasync held, not applied), and the
    // writes sent behind it are planned two generations ahead: every one of them is refused.
    const wal = heldWal()
    await withServer(
      async ({ v2 }) => {
        await v2.createLedger({ ledger: 'main', v2CreateLedgerRequest: {} })
        wal.hold()
        const write = (i: number) =>
          create(v2, 'main', { postings: [posting('world', `users:${i}`, 1n)], metadata: {} }).then(
            () => undefined,
            (error: unknown) => error,
          )
        try {
          const first = write(0)
          const held = await Promise.race([wal.waiting().then(() => true), first.then(() => false)])
          assert.ok(held, 'the first write waits on its held fdatasync')
          const outcomes: unknown[] = []
          const behind = Array.from({ length: 11 }, (_, i) => write(i + 1).then((outcome) => void outcomes.push(outcome)))
          // Refused, they are answered while the first is held; accepted, they would wait for it.
          await until('the writes behind the one in flight are answered', () => (outcomes.length === behind.length ? true : undefined))
          wal.release()
          assert.equal(await first, undefined, 'the write in flight lands once durable')
          await Promise.all(behind)
          for (const error of outcomes) {
            assert.ok(!(error instanceof ResponseValidationError), `the SDK could not parse the 503 body: ${error instanceof ResponseValidationError ? error.body : ''}`)
            const typed = await rejectsWithV2Error(Promise.reject(error), { status: 503, errorCode: 'INTERNAL', messageIncludes: 'CACHE_HORIZON_EXCEEDED' })
            assert.equal(typed.headers.get('retry-after'), '1')
          }
          const listed = present((await v2.listTransactions({ ledger: 'main', pageSize: 100 })).v2TransactionsCursorResponse, 'list').cursor.data
          assert.deepEqual(
            listed.map((transaction) => transaction.postings[0]?.destination),
            ['users:0'],
            'a refused write applied nothing',
          )
        } finally {
          // Also when a check failed with the write still held: the server cannot close before it is durable.
          wal.release()
        }
      },
      {},
      // K = 1: every index is its own cache generation. Applied only once durable, a write stays in flight while its fdatasync is held.
      { cacheRotationThreshold: 1, applyWhenDurable: true, sync: true, walIo: wal.walIo },
    )
  },
)
