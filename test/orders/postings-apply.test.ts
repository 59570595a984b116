import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import type { AccountAddress, Asset, AttributeValue, CanonicalKey, LedgerName, Posting, Volumes } from '../../src/domain/index.ts'
import type { Json, TransactionRecord } from '../../src/domain/index.ts'
import {
  TallyError,
  ZERO_VOLUMES,
  accountKey,
  canonicalMetadata,
  decodeAttribute,
  emptyKeyed,
  encodeAttribute,
  printTransaction,
  printableTransaction,
  stringifyJson,
  volumesKey,
  keyedChild,
} from '../../src/domain/index.ts'
import type { AggregatedVolumes, LedgerLog, OrderOutput, Scope } from '../../src/orders/index.ts'
import { transactionView } from '../../src/orders/index.ts'
import { accountsOf, applyPostings, touchAccounts } from '../../src/orders/postings-apply.ts'
import { transactionViews } from '../../src/orders/output.ts'
import { transactionRecords } from '../support/arbitraries.ts'
import { volumesWithBalance } from '../support/commit-volumes-oracle.ts'

/**
 * The apply of postings without per-order maps and keys built once: held to
 * the code it replaced (kept here as the model): the same reads, the same
 * writes in the same order, the same commit volumes, the same refusals. The
 * commit volumes' order is the canonical one (accounts, then each account's
 * assets, inserted sorted): the order of the stored row, which every later
 * print of the transaction and every idempotent replay decodes.
 */

const L = 'main' as LedgerName
const DATE = '2026-12-07T00:00:00.000Z'

/** A scope over a map that records every read and write, in order. */
function recordingScope(values: Map<CanonicalKey, AttributeValue>): Scope & { readonly events: string[] } {
  const events: string[] = []
  return {
    date: DATE,
    idempotencyKey: undefined,
    events,
    read(key) {
      events.push(`read ${key}`)
      return values.get(key)
    },
    write(key, value) {
      events.push(`write ${key} ${stringifyJson(value as never)}`)
      values.set(key, value)
    },
    appendLog(_ledger: LedgerName, _log: LedgerLog) {},
  }
}

/** The replaced `applyPostings`: a map of pairs by a joined id, a closure, keys built for each read and write. */
function modelApplyPostings(scope: Scope, postings: readonly Posting[], force: boolean): { pre: AggregatedVolumes; post: AggregatedVolumes } {
  const moved = new Map<string, { account: AccountAddress; asset: Asset; pre: Volumes; post: Volumes }>()
  const touch = (account: AccountAddress, asset: Asset) => {
    const id = `${account}\u0000${asset}`
    let entry = moved.get(id)
    if (entry === undefined) {
      const read = scope.read(volumesKey(L, account, asset))
      const volumes = read === undefined ? ZERO_VOLUMES : (read.value as Volumes)
      entry = { account, asset, pre: volumes, post: volumes }
      moved.set(id, entry)
    }
    return entry
  }
  for (const posting of postings) {
    const source = touch(posting.source, posting.asset)
    if (posting.source !== 'world' && !force && source.post.input - source.post.output < posting.amount) throw new TallyError({ code: 'INSUFFICIENT_FUND', kind: 'business', message: 'model' })
    source.post = { input: source.post.input, output: source.post.output + posting.amount }
    const destination = touch(posting.destination, posting.asset)
    destination.post = { input: destination.post.input + posting.amount, output: destination.post.output }
  }
  for (const entry of moved.values()) scope.write(volumesKey(L, entry.account, entry.asset), { kind: 'v', value: entry.post })
  const pre: AggregatedVolumes = emptyKeyed()
  const post: AggregatedVolumes = emptyKeyed()
  const byId = [...moved.keys()].sort((a, b) => {
    const [accountA, assetA] = a.split('\u0000') as [string, string]
    const [accountB, assetB] = b.split('\u0000') as [string, string]
    return accountA !== accountB ? (accountA < accountB ? -1 : 1) : assetA < assetB ? -1 : assetA > assetB ? 1 : 0
  })
  for (const id of byId) {
    const entry = moved.get(id) as { account: AccountAddress; asset: Asset; pre: Volumes; post: Volumes }
    keyedChild(pre, entry.account)[entry.asset] = volumesWithBalance(entry.pre)
    keyedChild(post, entry.account)[entry.asset] = volumesWithBalance(entry.post)
  }
  return { pre, post }
}

// Integer-like names too: a JS object lists them first, by value, whatever the insertion order.
const account = fc.constantFrom('world', 'users:1', 'users:2', 'users:3', 'bank', '__proto__', '10', '9', 'users') as fc.Arbitrary<AccountAddress>
const asset = fc.constantFrom('USD', 'EUR/2', 'COIN', 'USD/2') as fc.Arbitrary<Asset>
const posting = fc.record({ source: account, destination: account, amount: fc.bigInt({ min: 0n, max: 50n }), asset })
// Short transactions (pairs compared in place) and long ones (past it, through a map).
const postings = fc.oneof(fc.array(posting, { minLength: 1, maxLength: 8 }), fc.array(posting, { minLength: 9, maxLength: 30 }))
const balances = fc.array(fc.tuple(account, asset, fc.bigInt({ min: 0n, max: 60n })), { maxLength: 10 })

function stored(entries: readonly [AccountAddress, Asset, bigint][]): Map<CanonicalKey, AttributeValue> {
  const values = new Map<CanonicalKey, AttributeValue>()
  for (const [address, unit, amount] of entries) values.set(volumesKey(L, address, unit), { kind: 'v', value: { input: amount, output: 0n } })
  return values
}

function outcome(run: () => unknown): string {
  try {
    return stringifyJson(run() as never)
  } catch (error) {
    if (error instanceof TallyError) return `refused ${error.code}`
    throw error
  }
}

test('applyPostings: the reads, writes, commit volumes and refusals of the map-and-closure code it replaced', () => {
  fc.assert(
    fc.property(postings, balances, fc.boolean(), (moves, funds, force) => {
      const actual = recordingScope(stored(funds))
      const model = recordingScope(stored(funds))
      assert.equal(
        outcome(() => applyPostings(actual, L, moves, force)),
        outcome(() => modelApplyPostings(model, moves, force)),
      )
      assert.deepEqual(actual.events, model.events)
    }),
    { numRuns: 400 },
  )
})

test('a write\'s answer prints the bytes its stored row and its idempotency record print once decoded (replays from the store or a restored cache)', () => {
  const metadataEntries = fc.array(fc.tuple(fc.constantFrom('a', 'z', '10', '9', '__proto__'), fc.string({ maxLength: 3 })), { maxLength: 4 })
  fc.assert(
    fc.property(postings, metadataEntries, fc.bigInt({ min: 0n, max: 1000n }), (moves, entries, id) => {
      const volumes = applyPostings(recordingScope(new Map()), L, moves, true)
      const record: TransactionRecord = {
        id,
        postings: moves,
        timestamp: DATE,
        insertedAt: DATE,
        updatedAt: DATE,
        metadata: canonicalMetadata(entries),
        reverted: false,
        preCommitVolumes: volumes.pre,
        postCommitVolumes: volumes.post,
      }
      const output: OrderOutput = { type: 'TRANSACTION', transaction: transactionView(record, { volumes: true }), logId: id }
      const first = printTransaction(printableTransaction(output.transaction), { volumes: true })

      const row = decodeAttribute('t', encodeAttribute({ kind: 't', value: record }).bytes).value
      assert.equal(row.kind, 't')
      assert.equal(printTransaction(printableTransaction(transactionView(row.value as TransactionRecord, { volumes: true })), { volumes: true }), first)

      const kept = decodeAttribute('i', encodeAttribute({ kind: 'i', value: { requestHash: 'h', result: output as unknown as Json } }).bytes).value
      assert.equal(kept.kind, 'i')
      const replayed = (kept.value as unknown as { result: { transaction: Json } }).result.transaction
      assert.equal(printTransaction(printableTransaction(replayed), { volumes: true }), first)
    }),
    { numRuns: 300 },
  )
})

test('accountsOf: each posting\'s source then destination, in posting order (one posting or many)', () => {
  const posting = fc.record({ source: account, destination: account, amount: fc.constant(1n), asset: fc.constant('USD' as Asset) })
  fc.assert(
    fc.property(fc.array(posting, { minLength: 1, maxLength: 5 }), (postings) => {
      assert.deepEqual(accountsOf(postings), postings.flatMap((p) => [p.source, p.destination]))
    }),
    { numRuns: 200 },
  )
})

test('touchAccounts: each account read once, created or updated once, in first-use order, the created count', () => {
  fc.assert(
    fc.property(fc.array(account, { maxLength: 40 }), fc.uniqueArray(account, { maxLength: 3 }), (used, existing) => {
      const values = new Map<CanonicalKey, AttributeValue>()
      for (const address of existing) {
        values.set(accountKey(L, address), { kind: 'a', value: { address, metadata: emptyKeyed(), insertionDate: DATE, updatedAt: DATE, firstUsage: DATE } })
      }
      const scope = recordingScope(values)
      const created = touchAccounts(scope, L, used, '2026-12-06T00:00:00.000Z')
      const once = [...new Set(used)]
      assert.equal(created, BigInt(once.filter((address) => !existing.includes(address)).length))
      assert.deepEqual(
        scope.events.map((event) => event.split(' ').slice(0, 2).join(' ')),
        once.flatMap((address) => [`read ${accountKey(L, address)}`, `write ${accountKey(L, address)}`]),
      )
    }),
    { numRuns: 300 },
  )
})

test('transactionViews: the log\'s and the answer\'s views, field for field and byte for byte, as transactionView builds each', () => {
  const text = fc.string({ maxLength: 6 })
  const amount = fc.bigInt({ min: 0n, max: 10n ** 20n })
  const volumes = fc.dictionary(text, fc.dictionary(text, fc.record({ input: amount, output: amount, balance: amount })))
  const record = transactionRecords({
    text,
    date: fc.constant(DATE),
    amount,
    metadata: fc.dictionary(text, text),
    volumes: volumes as fc.Arbitrary<AggregatedVolumes>,
  })
  fc.assert(
    fc.property(record, (transaction) => {
      const views = transactionViews(transaction)
      for (const [actual, expected] of [
        [views.logged, transactionView(transaction)],
        [views.answered, transactionView(transaction, { volumes: true })],
      ] as const) {
        assert.deepEqual(actual, expected)
        assert.deepEqual(Object.keys(actual as object), Object.keys(expected as object))
        assert.equal(stringifyJson(actual), stringifyJson(expected))
      }
    }),
    { numRuns: 300 },
  )
})
