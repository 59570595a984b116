import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, readdirSync } from 'node:fs'
import path from 'node:path'
import fc from 'fast-check'
import { LedgerNode } from '../../src/server/index.ts'
import { Store, Zone } from '../../src/store/index.ts'
import { ATTRIBUTE_ROW_LAYOUT, PackedTag, TRANSACTION_ROW_LAYOUT, VOLUMES_ROW_LAYOUT, packValue } from '../../src/domain/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'
import type { ProposedOrder } from '../../src/orders/index.ts'
import { runCheck } from '../../src/check/index.ts'
import type { CheckResult, FindingKind } from '../../src/check/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { FIXED_STEPS, clock, runWorkload, stepArbitrary } from './workload.ts'

const CLUSTER = 'check-cluster'

async function checkDirectory(directory: string): Promise<CheckResult> {
  const store = await Store.open(path.join(directory, 'store'))
  try {
    return await runCheck(store)
  } finally {
    await store.close()
  }
}

function describeFindings(result: CheckResult): string {
  return JSON.stringify(result.findingsList, null, 1).slice(0, 4000)
}

test('check: passes on stores produced by random workloads (rotations, reverts, metadata, idempotency, bulks, two ledgers)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArbitrary, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 5 }), async (steps, threshold) => {
      const temp = tempDirectory('tally-check-')
      try {
        const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: threshold, clusterId: CLUSTER, sync: false, now: clock() })
        await runWorkload(node, steps)
        await node.close()
        const result = await checkDirectory(temp.directory)
        assert.equal(result.ok, true, describeFindings(result))
        assert.equal(result.stopped, undefined)
        assert.ok(result.auditEntries >= 2)
      } finally {
        temp.remove()
      }
    }),
    { numRuns: 12 },
  )
})

test('check: reports progress with a total and an ETA, and works on a live node (one snapshot iterator)', async () => {
  const temp = tempDirectory('tally-check-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 2, clusterId: CLUSTER, sync: false, now: clock() })
    await runWorkload(node, FIXED_STEPS)
    const progress: { phase: string; done: number; total: number }[] = []
    const checking = runCheck(node.store, { onProgress: (p) => progress.push(p), progressIntervalMs: 0 })
    // Writes while the check runs: the check sees the store at one applied index.
    await runWorkload(node, FIXED_STEPS.slice(0, 3)).catch(() => {})
    const result = await checking
    assert.equal(result.ok, true, describeFindings(result))
    const last = progress.at(-1)
    assert.ok(last !== undefined && last.phase === 'compare' && last.total === result.auditEntries, JSON.stringify(progress.slice(-3)))
    assert.ok(progress.some((p) => p.phase === 'replay'))
    await node.close()
    const after = await checkDirectory(temp.directory)
    assert.equal(after.ok, true, describeFindings(after))
    assert.ok(after.auditEntries > result.auditEntries)
  } finally {
    temp.remove()
  }
})

// ---- tamper evidence: one flipped byte per projection kind, named precisely ----------------------

/** Builds the fixed store, flips one byte of the first row `pick` selects, and checks it. */
async function tamper(pick: (key: Buffer, value: Buffer) => number | undefined): Promise<{ result: CheckResult; key: Buffer }> {
  const temp = tempDirectory('tally-tamper-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 4, clusterId: CLUSTER, sync: false, now: clock() })
    await runWorkload(node, FIXED_STEPS)
    await node.close()
    const clean = await checkDirectory(temp.directory)
    assert.equal(clean.ok, true, describeFindings(clean))
    const store = await Store.open(path.join(temp.directory, 'store'))
    let target: { key: Buffer; value: Buffer; offset: number } | undefined
    for await (const [key, value] of store.range({ gte: Buffer.of(0) })) {
      const offset = pick(key, value)
      if (offset !== undefined) {
        target = { key, value, offset }
        break
      }
    }
    assert.ok(target !== undefined, 'the store holds a row to tamper with')
    const flipped = Buffer.from(target.value)
    flipped[target.offset] = (flipped[target.offset] as number) ^ 0x01
    await store.write([{ key: target.key, value: flipped }], { sync: true })
    await store.close()
    return { result: await checkDirectory(temp.directory), key: target.key }
  } finally {
    temp.remove()
  }
}

/**
 * Offset of the first byte of `field`'s value in a packed attribute row: a
 * short string's first character, or an integer's first varint byte.
 */
function packedValueOffset(value: Buffer, field: string): number | undefined {
  // The key item as the packer writes it: pack {field: ''} and cut the layout, object header and value off.
  const sample = packValue({ [field]: '' }, ATTRIBUTE_ROW_LAYOUT, true)
  const keyItem = sample.subarray(3, sample.length - 2)
  const at = value.indexOf(keyItem)
  if (at < 0) return undefined
  const tag = value[at + keyItem.length]
  return at + keyItem.length + (tag === 0x06 ? 2 : 1)
}

function attributeRow(kind: string, field: string) {
  return (key: Buffer, value: Buffer): number | undefined =>
    key[0] === Zone.attributes && key[1] === kind.charCodeAt(0) ? packedValueOffset(value, field) : undefined
}

function assertOnly(result: CheckResult, kind: FindingKind, keyIncludes: string): void {
  assert.equal(result.ok, false, 'the tampering is detected')
  assert.ok(result.findingsList.length >= 1)
  for (const finding of result.findingsList) {
    assert.equal(finding.kind, kind, describeFindings(result))
    assert.ok(finding.key.includes(keyIncludes), `${finding.key} names ${keyIncludes}: ${describeFindings(result)}`)
  }
  assert.equal(result.findingsList.length, 1, describeFindings(result))
}

/** The fixed layouts (docs/adr/0012): a volumes row's input starts after its layout byte. */
const VOLUMES_INPUT_OFFSET = 1
/** A transaction row's timestamp code: after the layout, flags, a one-byte id (id 0) and the instant's tag. */
const TRANSACTION_TIMESTAMP_OFFSET = 4

test('tamper: a flipped byte in a volumes row is named (volumes, ledger, account, asset)', async () => {
  const { result, key } = await tamper((rowKey, value) => (rowKey[0] === Zone.attributes && rowKey[1] === 0x76 /* v */ && value[0] === VOLUMES_ROW_LAYOUT ? VOLUMES_INPUT_OFFSET : undefined))
  const [ledger, account, asset] = key.toString('utf8', 2).split('\u0000')
  assertOnly(result, 'volumes', `ledger=${ledger} account=${account} asset=${asset}`)
  assert.ok(result.findingsList[0]?.expected !== undefined && result.findingsList[0]?.actual !== undefined)
})

test('tamper: a flipped byte in a transaction row is named (transaction, ledger, id)', async () => {
  const { result } = await tamper((rowKey, value) =>
    rowKey[0] === Zone.attributes && rowKey[1] === 0x74 /* t */ && value[0] === TRANSACTION_ROW_LAYOUT && value[2] === 0 && value[3] === PackedTag.instant ? TRANSACTION_TIMESTAMP_OFFSET : undefined,
  )
  assertOnly(result, 'transaction', 'ledger=main id=0')
})

test('tamper: a flipped byte in an account row is named', async () => {
  const { result, key } = await tamper(attributeRow('a', 'firstUsage'))
  assertOnly(result, 'account', `address=${key.toString('utf8', 2).split('\u0000')[1]}`)
})

test('tamper: a flipped byte in a reference row is named', async () => {
  const { result } = await tamper(attributeRow('r', 'transactionId'))
  assertOnly(result, 'reference', 'reference=ref-')
})

test('tamper: a flipped byte in an idempotency record is named', async () => {
  const { result } = await tamper(attributeRow('i', 'requestHash'))
  assertOnly(result, 'idempotency', 'key=k')
})

test('tamper: a flipped byte in a ledger record is named', async () => {
  const { result } = await tamper(attributeRow('l', 'bucket'))
  assertOnly(result, 'ledger', 'ledger=')
})

test('tamper: a flipped byte in a v2 log row is named (log, ledger, id)', async () => {
  const { result, key } = await tamper((rowKey, value) => (rowKey[0] === Zone.logs ? packedValueOffset(value, 'hash') : undefined))
  assertOnly(result, 'log', `id=${key.readBigUInt64BE(key.length - 8)}`)
})

test('tamper: a flipped byte in a cache-mirror segment is named by its index and the first key it holds', async () => {
  const { result } = await tamper((key, value) => (key[0] === Zone.cacheMirror ? value.length - 2 : undefined))
  assertOnly(result, 'cache-mirror', 'gen-byte=')
  assert.match(result.findingsList[0]?.key ?? '', /^gen-byte=[01] index=\d+ (volumes|account|transaction|reference|ledger|idempotency) ledger=/)
})

test('tamper: a flipped byte in an audit entry is a hash mismatch at its seq, and nothing else', async () => {
  let seen = 0
  const { result, key } = await tamper((rowKey, value) => (rowKey[0] === Zone.audit && ++seen === 5 ? packedValueOffset(value, 'proposalId') : undefined))
  assertOnly(result, 'audit', `seq=${key.readBigUInt64BE(1)}`)
  assert.match(result.findingsList[0]?.message ?? '', /hash mismatch/)
})

test('tamper: a flipped byte in the applied index is a meta finding', async () => {
  const { result } = await tamper((key) => (key[0] === Zone.meta && key.toString('utf8', 1) === 'applied-index' ? 0 : undefined))
  assert.equal(result.ok, false)
  assert.ok(result.findingsList.some((finding) => finding.kind === 'meta' && finding.key === 'applied-index'), describeFindings(result))
})

test('check: a ledger larger than the memory bound is checked with its rows spilled to disk, finding exactly what an in-memory check finds', async () => {
  const temp = tempDirectory('tally-check-spill-')
  try {
    const node = await LedgerNode.open({ dataDirectory: temp.directory, cacheRotationThreshold: 3, clusterId: CLUSTER, sync: false, now: clock() })
    const ledger = 'spill' as LedgerName
    await node.admission.submit([{ order: { type: 'CREATE_LEDGER', ledger, bucket: '_default', metadata: {}, features: {} } }], { atomic: true, continueOnFailure: false })
    for (let bulk = 0; bulk < 12; bulk++) {
      const orders: ProposedOrder[] = []
      for (let i = 0; i < 40; i++) {
        const n = bulk * 40 + i
        orders.push({
          order: {
            type: 'CREATE_TRANSACTION',
            ledger,
            postings: [{ source: (n % 2 === 0 ? 'world' : `users:${n % 17}`) as AccountAddress, destination: `users:${(n * 7) % 53}` as AccountAddress, amount: BigInt(1 + (n % 9)), asset: 'USD/2' as Asset }],
            metadata: n % 5 === 0 ? { n: String(n) } : {},
            accountMetadata: {},
            force: true,
          },
        })
      }
      await node.admission.submit(orders, { atomic: true, continueOnFailure: false })
    }
    await node.close()
    const spillRoot = path.join(temp.directory, 'spill-root')
    mkdirSync(spillRoot)
    const both = async (): Promise<CheckResult> => {
      const store = await Store.open(path.join(temp.directory, 'store'))
      try {
        const inMemory = await runCheck(store)
        const bounded = await runCheck(store, { memoryBytesMax: 16 * 1024, spillDirectory: spillRoot })
        assert.equal(inMemory.spills, 0)
        assert.ok(bounded.spills >= 10, `${bounded.spills} spills under a 16 KiB bound`)
        assert.deepEqual(readdirSync(spillRoot), [], 'the spill directory is removed after the check')
        const { durationMs: _a, spills: _b, ...left } = inMemory
        const { durationMs: _c, spills: _d, ...right } = bounded
        assert.deepEqual(right, left)
        return bounded
      } finally {
        await store.close()
      }
    }
    const clean = await both()
    assert.equal(clean.ok, true, describeFindings(clean))
    assert.equal(clean.ordersReplayed, 481)

    // A row of each side's kind altered, removed and added: found in key order, alike.
    const store = await Store.open(path.join(temp.directory, 'store'))
    try {
      const rows: [Buffer, Buffer][] = []
      for await (const row of store.range({ gte: Buffer.of(Zone.logs), lt: Buffer.of(Zone.audit) })) rows.push(row)
      const log = rows.find(([key]) => key[0] === Zone.logs) as [Buffer, Buffer]
      const transaction = rows.filter(([key]) => key[0] === Zone.attributes && key[1] === 't'.charCodeAt(0))[100] as [Buffer, Buffer]
      const altered = Buffer.from(log[1])
      altered[altered.length - 1] = (altered.at(-1) as number) ^ 1
      await store.write(
        [
          { key: log[0], value: altered },
          { key: transaction[0], value: null },
          { key: Buffer.concat([transaction[0], Buffer.from('x')]), value: transaction[1] },
        ],
        { sync: true },
      )
    } finally {
      await store.close()
    }
    const tampered = await both()
    assert.deepEqual(
      tampered.findingsList.map((finding) => [finding.kind, finding.message.split(':')[0]]),
      [
        ['log', 'differs from the replay of the audit chain'],
        ['transaction', 'missing from the store'],
        ['transaction', 'in the store, but no audited proposal wrote it'],
      ],
      describeFindings(tampered),
    )
  } finally {
    temp.remove()
  }
})
