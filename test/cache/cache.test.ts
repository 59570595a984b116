import { test } from 'node:test'
import { crc32 } from 'node:zlib'
import assert from 'node:assert/strict'
import { AttributeCache, MalformedMirrorRow, MIRROR_ZONE } from '../../src/cache/index.ts'
import type { MirrorSink } from '../../src/cache/index.ts'
import type { AccountAddress, Asset, Attribute, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { InvariantViolation, decodeAttribute, encodeAttribute, idempotencyKey, transactionKey, volumesKey } from '../../src/domain/index.ts'
import fc from 'fast-check'
import { transactionRecords } from '../support/arbitraries.ts'
import { Store, attributeRowKey, prefixEnd } from '../../src/store/index.ts'
import { WriteBatch } from '../../src/fsm/index.ts'
import { tempDirectory } from '../support/temp.ts'

const key = (n: number): CanonicalKey => volumesKey('l' as LedgerName, `acc${n}` as AccountAddress, 'USD' as Asset)
const value = (n: bigint) => encodeAttribute({ kind: 'v', value: { input: n, output: 0n } })

/** An in-memory "disk" that applies mirror rows like an ordered batch (segments encoded when read). */
class Disk implements MirrorSink {
  readonly rows = new Map<string, Buffer | (() => Buffer)>()
  put(k: Buffer, v: Buffer): void {
    this.rows.set(k.toString('hex'), v)
  }
  putLater(k: Buffer, v: () => Buffer): void {
    this.rows.set(k.toString('hex'), v)
  }
  del(k: Buffer): void {
    this.rows.delete(k.toString('hex'))
  }
  entries(): [Buffer, Buffer][] {
    return [...this.rows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [Buffer.from(k, 'hex'), typeof v === 'function' ? v() : v])
  }
  mirror(): [Buffer, Buffer][] {
    return this.entries().filter(([k]) => k[0] === MIRROR_ZONE)
  }
  read(k: Buffer): Buffer | undefined {
    const v = this.rows.get(k.toString('hex'))
    return typeof v === 'function' ? v() : v
  }
}

/** A write as the FSM makes it: the cache (and its mirror segment) and the attribute row, in one batch. */
function write(cache: AttributeCache, k: CanonicalKey, attribute: Attribute | null, sink: MirrorSink & { put(k: Buffer, v: Buffer): void }): void {
  if (attribute === null) {
    cache.tombstone(k, sink)
    sink.del(attributeRowKey(k))
  } else {
    cache.put(k, attribute, sink)
    sink.put(attributeRowKey(k), attribute.bytes)
  }
}

/** Invariant #1: a cache restored from what the disk holds equals the one that wrote it. */
function assertRestores(cache: AttributeCache, disk: Disk, appliedIndex: number): AttributeCache {
  const restored = AttributeCache.restoring(cache.snapshot, appliedIndex)
  restored.restoreSync(disk.mirror(), (k) => disk.read(attributeRowKey(k)))
  assert.equal(restored.contents(), cache.contents())
  return restored
}

/** Enters indexes from..to as the FSM does (rotating where the rule says). */
function enter(cache: AttributeCache, from: number, to: number, disk: MirrorSink): number[] {
  const rotations: number[] = []
  for (let index = from; index <= to; index++) if (cache.enter(index, disk)) rotations.push(index)
  return rotations
}

test('rotation by count: a generation spans K indexes, as gen(i) = floor((i − 1) / K) without a byte bound', () => {
  const cache = new AttributeCache(3)
  const disk = new Disk()
  assert.deepEqual([1, 2, 3, 4, 6, 7].map((i) => cache.generationAt(i)), [0, 0, 0, 1, 1, 2])
  assert.deepEqual(enter(cache, 1, 10, disk), [4, 7, 10])
  assert.equal(cache.generation, 3)
  assert.throws(() => new AttributeCache(0))
  assert.throws(() => cache.enter(12, disk), /entered at index 12 after 10/)
})

test('rotation by bytes: Gen0 reaching its budget rotates at the next index, predicted by generationAt', () => {
  const cache = new AttributeCache({ rotationThreshold: 100, generationBytesMax: 1000 })
  const disk = new Disk()
  cache.enter(1, disk)
  for (let n = 0; n < 5; n++) cache.put(key(n), value(BigInt(n)), disk)
  assert.ok(cache.bytes.gen0 >= 1000, `five entries count ${cache.bytes.gen0} bytes`)
  assert.equal(cache.generationAt(2), 1, 'the rotation at the next index is foreseen')
  assert.equal(cache.generationAt(101), 1, 'then one every K indexes from there')
  assert.equal(cache.generationAt(102), 2)
  assert.equal(cache.check(key(1), 2), 'hit', 'Gen0 becomes Gen1: still a hit')
  assert.equal(cache.enter(2, disk), true)
  assert.deepEqual(cache.bytes.gen0, 0)
  assert.equal(cache.gen1FirstIndex, 1)
  assert.equal(cache.gen0FirstIndex, 2)
  assert.equal(cache.enter(3, disk), false, 'an empty Gen0 is under budget')
  // Overwriting a Gen0 entry replaces its bytes instead of adding them.
  cache.put(key(9), value(1n), disk)
  const once = cache.bytes.gen0
  cache.put(key(9), value(2n), disk)
  assert.equal(cache.bytes.gen0, once)
})

test('seeds hold while every write since the load is still cached (ADR 0002 with real rotation points)', () => {
  const cache = new AttributeCache(2)
  const disk = new Disk()
  enter(cache, 1, 5, disk) // rotations at 3 and 5: Gen1 covers 3..4, Gen0 5..
  assert.equal(cache.seedsHold(2, 6), true, 'writes from index 3 on are cached')
  assert.equal(cache.seedsHold(1, 6), false, 'index 2 rotated out')
  assert.equal(cache.seedsHold(3, 7), false, 'at index 7 Gen1 will start at 5')
  assert.equal(cache.seedsHold(4, 7), true)
})

test('CheckCache: Hit/Miss/Unreachable by Δ, Gen1 only counts at Δ = 0', () => {
  const cache = new AttributeCache(2)
  const disk = new Disk()
  cache.enter(1, disk)
  cache.put(key(1), value(1n), disk) // gen 0
  enter(cache, 2, 3, disk) // rotation at 3: key(1) now in Gen1
  cache.put(key(2), value(2n), disk) // Gen0
  // current generation 1 covers indexes 3..4; 5..6 are Δ = 1; 7.. are Δ = 2
  assert.equal(cache.check(key(1), 4), 'hit')
  assert.equal(cache.check(key(2), 4), 'hit')
  assert.equal(cache.check(key(3), 4), 'miss')
  assert.equal(cache.check(key(1), 5), 'miss', 'Gen1 rotates out before a Δ = 1 index applies')
  assert.equal(cache.check(key(2), 6), 'hit', 'Gen0 becomes Gen1 and still serves at Δ = 1')
  assert.equal(cache.check(key(2), 7), 'unreachable')
  assert.equal(cache.check(key(3), 100), 'unreachable')
  assert.equal(cache.check(key(2), 1), 'miss', 'a predicted index behind the cache is a miss')
})

test('Get falls back to Gen1; rotation drops the old Gen1 from memory and mirror', () => {
  const cache = new AttributeCache(1)
  const disk = new Disk()
  cache.enter(1, disk)
  write(cache, key(1), value(1n), disk)
  assert.equal(disk.mirror().length, 1, 'one segment row for the index')
  cache.enter(2, disk)
  assert.equal(cache.get(key(1)).state, 'live')
  assertRestores(cache, disk, 2)
  cache.enter(3, disk)
  assert.equal(cache.get(key(1)).state, 'absent')
  assert.equal(disk.mirror().length, 0)
  assertRestores(cache, disk, 3)
})

test('one segment row per index, whatever it writes; the last write of a key in the index is what it holds', () => {
  const cache = new AttributeCache(10)
  const disk = new Disk()
  cache.enter(1, disk)
  for (let n = 0; n < 50; n++) write(cache, key(n), value(BigInt(n)), disk)
  write(cache, key(3), value(300n), disk)
  write(cache, key(4), null, disk)
  cache.enter(2, disk)
  cache.enter(3, disk) // an index that writes nothing has no segment
  write(cache, key(5), value(5000n), disk)
  assert.equal(disk.mirror().length, 2)
  const restored = assertRestores(cache, disk, 3)
  const three = restored.get(key(3))
  assert.equal(three.state === 'live' && three.attribute.value.kind === 'v' && three.attribute.value.value.input, 300n)
  assert.equal(restored.get(key(4)).state, 'deleted')
  assert.deepEqual(restored.bytes, cache.bytes, 'the byte count is a function of the segments')
})

test('Del: a Gen0 tombstone in the index segment; the Gen1 segment stays, shadowed, until the next rotation', () => {
  const cache = new AttributeCache(10)
  const disk = new Disk()
  cache.enter(1, disk)
  write(cache, key(1), value(5n), disk)
  assert.deepEqual(enter(cache, 2, 11, disk), [11])
  assert.equal(cache.del(key(1), disk), 'deleted')
  disk.del(attributeRowKey(key(1)))
  assert.equal(cache.get(key(1)).state, 'deleted')
  assert.equal(cache.del(key(1), disk), 'not_found')
  assert.equal(cache.del(key(9), disk), 'not_found')
  const rows = disk.mirror()
  assert.equal(rows.length, 2, 'Gen1 segment stays, shadowed, until the next rotation')
  assert.ok(rows.some(([k]) => k[1] === 1 && k.readBigUInt64BE(2) === 11n), 'the tombstone is in index 11 segment under the Gen0 byte (generation 1 → byte 1)')
  // The Gen1 entry is live but its attribute row is gone: restore keeps its count, reads no value for it.
  assertRestores(cache, disk, 11)
})

async function mirrorOf(store: Store): Promise<[Buffer, Buffer][]> {
  const rows: [Buffer, Buffer][] = []
  for await (const row of store.range({ gte: Buffer.of(MIRROR_ZONE), lt: prefixEnd(Buffer.of(MIRROR_ZONE)) })) rows.push(row)
  return rows
}

async function restoredFrom(store: Store, cache: AttributeCache, appliedIndex: number): Promise<AttributeCache> {
  const rows = await mirrorOf(store)
  const values = new Map<string, Buffer | undefined>()
  const restored = AttributeCache.restoring(cache.snapshot, appliedIndex)
  for (const [k, v] of rows) restored.restoreSegment(k, v)
  for (const k of [...restored.keysAwaitingValues()]) values.set(k, await store.get(attributeRowKey(k)))
  for (const [k, v] of values) restored.restoreValue(k as CanonicalKey, v)
  return restored
}

test('regression: saved, rotated into Gen1, deleted, crash, restart — memory and disk agree, reads see the delete', async () => {
  const tmp = tempDirectory()
  try {
    let store = await Store.open(tmp.directory)
    const cache = new AttributeCache(4)
    const batch = new WriteBatch()
    cache.enter(1, batch)
    write(cache, key(1), value(7n), batch)
    write(cache, key(2), value(8n), batch)
    enter(cache, 2, 5, batch)
    assert.equal(cache.del(key(1), batch), 'deleted')
    batch.del(attributeRowKey(key(1)))
    await store.write(batch.rows(), { sync: true })
    await store.close() // the process dies here; only the store survives
    store = await Store.open(tmp.directory)
    const restored = await restoredFrom(store, cache, 5)
    assert.equal(restored.get(key(1)).state, 'deleted')
    assert.equal(restored.get(key(2)).state, 'live')
    assert.equal(restored.contents(), cache.contents())
    assert.deepEqual(restored.bytes, cache.bytes, 'the byte count is a function of the rows')
    await store.close()
  } finally {
    tmp.remove()
  }
})

test('regression: a tombstone rotated into Gen1 restores (it used to block restart), then leaves with its generation', async () => {
  const tmp = tempDirectory()
  try {
    let store = await Store.open(tmp.directory)
    const cache = new AttributeCache(2)
    const batch = new WriteBatch()
    enter(cache, 1, 1, batch)
    write(cache, key(1), value(7n), batch)
    enter(cache, 2, 3, batch) // rotation at 3: key(1) in Gen1
    assert.equal(cache.del(key(1), batch), 'deleted')
    batch.del(attributeRowKey(key(1)))
    enter(cache, 4, 5, batch) // rotation at 5: the tombstone is now Gen1's
    assert.equal(cache.get(key(1)).state, 'deleted')
    await store.write(batch.rows(), { sync: true })
    await store.close()
    store = await Store.open(tmp.directory)
    const restored = await restoredFrom(store, cache, 5)
    assert.equal(restored.get(key(1)).state, 'deleted')
    assert.equal(restored.contents(), cache.contents())
    const next = new WriteBatch()
    enter(restored, 6, 7, next)
    assert.equal(restored.get(key(1)).state, 'absent', 'the tombstone leaves only by rotation')
    await store.write(next.rows(), { sync: true })
    assert.equal((await mirrorOf(store)).length, 0)
    await store.close()
  } finally {
    tmp.remove()
  }
})

test('restore fails closed on every kind of malformed mirror row, and on attribute rows that disagree with it', () => {
  const cache = new AttributeCache(4)
  const disk = new Disk()
  cache.enter(1, disk)
  write(cache, key(1), value(3n), disk)
  const [[rowKey, rowValue]] = disk.mirror() as [[Buffer, Buffer]]
  const read = (k: CanonicalKey) => disk.read(attributeRowKey(k))
  const flip = (row: Buffer, at: number, to?: number) => Buffer.from(row.map((b, i) => (i === at ? (to ?? b ^ 0x01) : b)))
  const corruptions: [string, Buffer, Buffer][] = [
    ['value length byte flipped', rowKey, flip(rowValue, rowValue.length - 1)],
    ['key byte flipped', rowKey, flip(rowValue, 8)],
    ['checksum flipped', rowKey, flip(rowValue, 0)],
    ['flag unknown', rowKey, flip(rowValue, 5, 7)],
    ['truncated', rowKey, rowValue.subarray(0, 10)],
    ['index outside Gen0', flip(rowKey, 9, 2), rowValue],
    ['index zero', flip(rowKey, 9, 0), rowValue],
    ['generation byte out of range', flip(rowKey, 1, 9), rowValue],
    ['wrong key length', Buffer.concat([rowKey, Buffer.of(0)]), rowValue],
  ]
  for (const [name, k, v] of corruptions) {
    assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[k, v]], read), MalformedMirrorRow, name)
  }
  // At generation 0 there is no Gen1: a row under its byte is refused.
  assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[flip(rowKey, 1, 1), rowValue]], read), MalformedMirrorRow)
  // The value comes from the attribute row: missing, or of another length than the last write, is refused.
  assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[rowKey, rowValue]], () => undefined), MalformedMirrorRow, 'no attribute row')
  assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[rowKey, rowValue]], () => value(10n ** 30n).bytes), MalformedMirrorRow, 'another length')
  // The intact row restores.
  const ok = AttributeCache.restoring(cache.snapshot, 1)
  ok.restoreSync([[rowKey, rowValue]], read)
  assert.equal(ok.get(key(1)).state, 'live')
})

test('preload: the cache wins over a seed', () => {
  const cache = new AttributeCache(4)
  const disk = new Disk()
  cache.put(key(1), value(10n), disk)
  assert.equal(cache.preload(key(1), value(1n), disk), false)
  const hit = cache.get(key(1))
  assert.equal(hit.state === 'live' && hit.attribute.value.kind === 'v' && hit.attribute.value.value.input, 10n)
  assert.equal(cache.preload(key(2), value(2n), disk), true)
  assert.equal(cache.preload(key(3), null, disk), false)
})

test('get answers without allocating: the entry itself for a live key, one shared result for a deletion or no entry; a restored key read before its value throws', () => {
  const cache = new AttributeCache(10)
  const disk = new Disk()
  cache.enter(1, disk)
  write(cache, key(1), value(7n), disk)
  write(cache, key(2), value(8n), disk)
  write(cache, key(2), null, disk)
  const live = cache.get(key(1))
  assert.equal(live.state, 'live')
  assert.equal(live.state === 'live' && live.attribute.bytes.equals(value(7n).bytes), true)
  assert.equal(cache.get(key(1)), live, 'the same object on every read')
  assert.equal(cache.get(key(2)).state, 'deleted')
  assert.equal(cache.get(key(2)), cache.get(key(2)))
  assert.equal(cache.get(key(3)).state, 'absent')
  assert.ok(Object.isFrozen(cache.get(key(2))) && Object.isFrozen(cache.get(key(3))), 'shared results cannot be changed by a caller')
  // A later write gives a new result; the one read before still holds the old value.
  write(cache, key(1), value(9n), disk)
  const after = cache.get(key(1))
  assert.equal(after.state === 'live' && after.attribute.bytes.equals(value(9n).bytes), true)
  assert.equal(live.state === 'live' && live.attribute.bytes.equals(value(7n).bytes), true)
  // Segments restored, values not yet read: a read is a bug, not an absent key.
  const restored = AttributeCache.restoring(cache.snapshot, 1)
  for (const [rowKey, rowValue] of disk.mirror()) restored.restoreSegment(rowKey, rowValue)
  assert.throws(() => restored.get(key(1)), InvariantViolation)
  assert.equal(restored.get(key(2)).state, 'deleted')
})

test('a transaction is cached as its row: it reads as a restore of that row reads it, the same row again, decoded once; other kinds keep the value written (property)', () => {
  const text = fc.oneof(fc.constantFrom('world', 'users:1', '__proto__', 'USD/2', 'é'), fc.string({ maxLength: 10 }))
  const date = fc.integer({ min: 0, max: 253402300799999 }).map((ms) => new Date(ms).toISOString())
  const amount = fc.bigInt({ min: 0n, max: 2n ** 256n - 1n })
  const keyed = <V>(entries: readonly (readonly [string, V])[]): Record<string, V> => {
    const map = Object.create(null) as Record<string, V>
    for (const [k, v] of entries) map[k] = v
    return map
  }
  const metadata = fc.uniqueArray(fc.tuple(text, fc.string({ maxLength: 6 })), { maxLength: 3, selector: ([k]) => k }).map(keyed)
  const volumes = fc
    .uniqueArray(fc.tuple(text, text, amount, amount), { maxLength: 3, selector: ([account]) => account })
    .map((rows) => keyed(rows.map(([account, asset, input, output]) => [account, keyed([[asset, { input, output, balance: input - output }]])] as const)))
  const transaction = transactionRecords({ text, date, amount, metadata, volumes })
  fc.assert(
    fc.property(transaction, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (record, input) => {
      const cache = new AttributeCache(1000)
      const disk = new Disk()
      cache.enter(1, disk)
      const k = transactionKey('l' as LedgerName, record.id)
      const written = encodeAttribute({ kind: 't', value: record })
      write(cache, k, written, disk)
      const found = cache.get(k)
      assert.ok(found.state === 'live')
      assert.ok(found.attribute.bytes.equals(written.bytes), 'the row written, in memory of its own')
      const read = found.attribute.value
      assert.deepStrictEqual(read, decodeAttribute('t', written.bytes).value)
      assert.deepEqual(encodeAttribute(read).bytes, written.bytes)
      assert.equal((cache.get(k) as { attribute: Attribute }).attribute.value, read, 'decoded once, then kept')
      const volumesAttribute = value(input)
      write(cache, key(1), volumesAttribute, disk)
      assert.equal((cache.get(key(1)) as { attribute: Attribute }).attribute.value, volumesAttribute.value)
      assertRestores(cache, disk, 1)
    }),
    { numRuns: 300 },
  )
})

test('an idempotency record is cached as its row: a replay reads what a restart or a seed decodes from the same bytes', () => {
  const cache = new AttributeCache(1000)
  const disk = new Disk()
  cache.enter(1, disk)
  const k = idempotencyKey('l' as LedgerName, 'key-1')
  const answer = { type: 'TRANSACTION', logId: 3n, transaction: { id: 3n, postCommitVolumes: { world: { USD: { input: 0n, output: 5n, balance: -5n } }, 'users:1': { USD: { input: 5n, output: 0n, balance: 5n } } } } }
  const written = encodeAttribute({ kind: 'i', value: { requestHash: 'h', result: answer } })
  write(cache, k, written, disk)
  const found = cache.get(k)
  assert.ok(found.state === 'live')
  assert.notEqual(found.attribute, written, 'kept as its row, not as the value written')
  assert.ok(found.attribute.bytes.equals(written.bytes), 'the row written, in memory of its own')
  assert.deepStrictEqual(found.attribute.value, decodeAttribute('i', written.bytes).value)
  assertRestores(cache, disk, 1)
})

/** Every row `cache` keeps owns no more memory than the cache counts for it. */
function assertOwnsItsRows(cache: AttributeCache, where: string): number {
  let rows = 0
  for (const [k, row] of cache.heldRows()) {
    rows++
    assert.equal(row.buffer.byteLength, row.length, `${where}: the row of ${k} (${row.length} bytes) keeps a buffer of ${row.buffer.byteLength} bytes`)
  }
  return rows
}

test('the cache holds what it counts: rows packed in the shared pool, seeds inside a larger record and restored rows inside a larger read are kept in memory of their own; a row that owns its memory is kept as it is', () => {
  const cache = new AttributeCache(1000)
  const disk = new Disk()
  cache.enter(1, disk)
  // Written: a row in Node's 8 KiB pool (as a row packed outside \`encodeAttribute\` is, or one a store adapter hands out).
  const encoded = value(7n)
  const pooled = Buffer.allocUnsafe(encoded.bytes.length)
  encoded.bytes.copy(pooled)
  const packed = { value: encoded.value, bytes: pooled }
  assert.ok(packed.bytes.buffer.byteLength > packed.bytes.length, 'the packed row shares its buffer (else this test checks nothing)')
  write(cache, key(1), packed, disk)
  // Seeded: a row inside a record of 64 KiB.
  const record = Buffer.alloc(64 * 1024)
  const seedRow = value(10n ** 20n).bytes
  seedRow.copy(record, 1000)
  const seed = decodeAttribute('v', record.subarray(1000, 1000 + seedRow.length))
  assert.equal(cache.preload(key(2), seed, disk), true)
  disk.put(attributeRowKey(key(2)), seedRow) // a seed is a row the store already holds
  // A transaction and an idempotency record, kept as their rows.
  const answer = { type: 'TRANSACTION', logId: 3n }
  write(cache, idempotencyKey('l' as LedgerName, 'k'), encodeAttribute({ kind: 'i', value: { requestHash: 'h', result: answer } }), disk)
  // A row that owns exactly its memory is not copied.
  const own = Buffer.allocUnsafeSlow(packed.bytes.length)
  packed.bytes.copy(own)
  write(cache, key(3), { value: packed.value, bytes: own }, disk)
  assert.equal((cache.get(key(3)) as { attribute: Attribute }).attribute.bytes, own)
  assert.equal(assertOwnsItsRows(cache, 'written and seeded'), 4)
  // Restored: every attribute row read is a view into one larger read buffer.
  const restored = AttributeCache.restoring(cache.snapshot, 1)
  const reads = Buffer.alloc(64 * 1024)
  let at = 0
  restored.restoreSync(disk.mirror(), (k) => {
    const row = disk.read(attributeRowKey(k))
    if (row === undefined) return undefined
    row.copy(reads, at)
    at += row.length
    return reads.subarray(at - row.length, at)
  })
  assert.equal(restored.contents(), cache.contents())
  assert.equal(assertOwnsItsRows(restored, 'restored'), 4)
})

test('segment keys are front-coded against the previous key of their kind: any keys, tombstones and lengths restore as written (property)', () => {
  const ledger = fc.constantFrom('main', 'l', 'é', '')
  const name = fc.oneof(fc.constantFrom('users:1', 'users:12', 'users:123', 'users:é', 'world', 'u'), fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }))
  const anyKey = fc.oneof(
    fc.tuple(ledger, name, fc.constantFrom('USD/2', 'EUR', 'USD')).map(([l, a, s]) => volumesKey(l as LedgerName, a as AccountAddress, s as Asset)),
    fc.tuple(ledger, fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })).map(([l, id]) => transactionKey(l as LedgerName, id)),
    fc.tuple(ledger, name).map(([l, k]) => idempotencyKey(l as LedgerName, k)),
  )
  fc.assert(
    fc.property(fc.array(fc.tuple(anyKey, fc.option(fc.bigInt({ min: 0n, max: 10n ** 30n }), { nil: null })), { minLength: 1, maxLength: 12 }), (writes) => {
      const cache = new AttributeCache(4)
      const disk = new Disk()
      cache.enter(1, disk)
      for (const [k, amount] of writes) write(cache, k, amount === null || !k.startsWith('v') ? null : value(amount), disk)
      const [[, row]] = disk.mirror() as [[Buffer, Buffer]]
      const spelled = [...new Set(writes.map(([k]) => k))].reduce((sum, k) => sum + Buffer.byteLength(k, 'utf8'), 0)
      assert.ok(row.length <= 5 + spelled + 5 * writes.length, 'no key costs more than its bytes and a few')
      assertRestores(cache, disk, 1)
    }),
    { numRuns: 300 },
  )
})

test('a bulk\'s keys cost a few bytes each in the segment, and a segment not in its one front-coded form is refused', () => {
  const cache = new AttributeCache(4)
  const disk = new Disk()
  cache.enter(1, disk)
  for (let n = 100; n < 110; n++) {
    write(cache, volumesKey('main' as LedgerName, `users:${n}` as AccountAddress, 'USD/2' as Asset), value(BigInt(n)), disk)
    write(cache, transactionKey('main' as LedgerName, BigInt(n)), null, disk)
  }
  const [[rowKey, row]] = disk.mirror() as [[Buffer, Buffer]]
  assert.ok(row.length < 4 + 1 + 20 * (7 + 6), `${row.length} bytes for 20 keys`)
  assertRestores(cache, disk, 1)
  const read = (k: CanonicalKey) => disk.read(attributeRowKey(k))
  const resealed = (value: Buffer): Buffer => {
    const copy = Buffer.from(value)
    copy.writeUInt32LE(crc32(copy.subarray(4)), 0)
    return copy
  }
  // The first two keys: a volumes key spelled out, a transaction key spelled out. Their second kind-mate shares a prefix.
  // Rewrite the third entry (users:101's volumes key, sharing "vmain\0users:10") as spelled out: the same key, not its one form.
  const third = Buffer.from(volumesKey('main' as LedgerName, 'users:101' as AccountAddress, 'USD/2' as Asset), 'utf8')
  const entries = (): number => {
    let at = 5
    const varint = (): number => {
      let v = 0
      for (let shift = 0; ; shift += 7) {
        const b = row[at++] as number
        v += (b & 0x7f) * 2 ** shift
        if (b < 0x80) return v
      }
    }
    for (let i = 0; i < 2; i++) {
      at++
      const sharedAndFlag = varint()
      const suffixLength = varint()
      at += suffixLength
      if (sharedAndFlag % 2 === 0) varint()
    }
    return at
  }
  const start = entries()
  assert.equal(row[start], 0x76, 'the third entry is a volumes key')
  const shared = (row[start + 1] as number) / 2
  assert.ok(shared > 0, 'and it shares a prefix with the first')
  const suffix = row[start + 2] as number
  const rest = row.subarray(start + 3 + suffix)
  const spelledOut = Buffer.concat([row.subarray(0, start), Buffer.of(0x76, 0, third.length), third, rest])
  assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[rowKey, resealed(spelledOut)]], read), MalformedMirrorRow, 'not its one form')
  const overShared = Buffer.from(row)
  overShared[start + 1] = 2 * 60
  assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[rowKey, resealed(overShared)]], read), MalformedMirrorRow, 'shares past the previous key')
  const otherKind = Buffer.from(row)
  otherKind[start] = 0x74
  assert.throws(() => AttributeCache.restoring(cache.snapshot, 1).restoreSync([[rowKey, resealed(otherKind)]], read), MalformedMirrorRow, 'another kind')
  AttributeCache.restoring(cache.snapshot, 1).restoreSync([[rowKey, resealed(row)]], read)
})

test('a segment whose keys outgrow the encoder\'s scratch, keys of multibyte characters among them, restores as written', () => {
  // Keys of ~200 to ~300 bytes of UTF-8 for half as many UTF-16 units: their bytes cross the scratch's
  // size (and its doublings) inside a key, whatever the key's length in units would suggest.
  const cache = new AttributeCache(4)
  const disk = new Disk()
  cache.enter(1, disk)
  for (let n = 0; n < 400; n++) {
    const name = `${'é'.repeat(100 + (n % 7) * 13)}${'\u{1F600}'.repeat(n % 3)}:${n}`
    write(cache, volumesKey('main' as LedgerName, name as AccountAddress, 'USD/2' as Asset), value(BigInt(n)), disk)
    write(cache, idempotencyKey('é' as LedgerName, `${'ü'.repeat(150)}${n}`), null, disk)
  }
  assertRestores(cache, disk, 1)
})
