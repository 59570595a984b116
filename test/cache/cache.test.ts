import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AttributeCache, MalformedMirrorRow, MIRROR_ZONE } from '../../src/cache/index.ts'
import type { MirrorSink } from '../../src/cache/index.ts'
import type { AccountAddress, Asset, CanonicalKey, LedgerName } from '../../src/domain/index.ts'
import { encodeAttribute, volumesKey } from '../../src/domain/index.ts'
import { Store, prefixEnd } from '../../src/store/index.ts'
import { WriteBatch } from '../../src/fsm/index.ts'
import { tempDirectory } from '../support/temp.ts'

const key = (n: number): CanonicalKey => volumesKey('l' as LedgerName, `acc${n}` as AccountAddress, 'USD' as Asset)
const value = (n: bigint) => encodeAttribute({ kind: 'v', value: { input: n, output: 0n } })

/** An in-memory "disk" that applies mirror rows like an ordered batch. */
class Disk implements MirrorSink {
  readonly rows = new Map<string, Buffer>()
  put(k: Buffer, v: Buffer): void {
    this.rows.set(k.toString('hex'), v)
  }
  del(k: Buffer): void {
    this.rows.delete(k.toString('hex'))
  }
  entries(): [Buffer, Buffer][] {
    return [...this.rows].map(([k, v]) => [Buffer.from(k, 'hex'), v])
  }
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
  cache.put(key(1), value(1n), disk)
  cache.enter(2, disk)
  assert.equal(cache.get(key(1)).state, 'live')
  cache.enter(3, disk)
  assert.equal(cache.get(key(1)).state, 'absent')
  assert.equal(disk.rows.size, 0)
  assert.deepEqual(cache.mirrorRows(), disk.rows)
})

test('Del: Gen0 tombstone reuses the Gen1 tag; mirror gets the tombstone at the Gen0 byte only', () => {
  const cache = new AttributeCache(10)
  const disk = new Disk()
  cache.put(key(1), value(5n), disk)
  cache.rotate(11, disk)
  const before = [...disk.rows.values()][0] as Buffer
  assert.equal(cache.del(key(1), disk), 'deleted')
  assert.equal(cache.get(key(1)).state, 'deleted')
  assert.equal(cache.del(key(1), disk), 'not_found')
  assert.equal(cache.del(key(9), disk), 'not_found')
  const rows = [...disk.rows]
  assert.equal(rows.length, 2, 'Gen1 row stays, shadowed, until the next rotation')
  const tombstone = rows.find(([k]) => Buffer.from(k, 'hex')[1] === 1)?.[1] as Buffer
  assert.ok(tombstone !== undefined, 'the tombstone is under the Gen0 byte (generation 1 → byte 1)')
  assert.equal(tombstone[8], 1)
  assert.deepEqual(tombstone.subarray(0, 8), before.subarray(0, 8), 'same tag')
  assert.deepEqual(cache.mirrorRows(), disk.rows)
})

async function mirrorOf(store: Store): Promise<[Buffer, Buffer][]> {
  const rows: [Buffer, Buffer][] = []
  for await (const row of store.range({ gte: Buffer.of(MIRROR_ZONE), lt: prefixEnd(Buffer.of(MIRROR_ZONE)) })) rows.push(row)
  return rows
}

test('regression: saved, rotated into Gen1, deleted, crash, restart — memory and disk agree, reads see the delete', async () => {
  const tmp = tempDirectory()
  try {
    let store = await Store.open(tmp.directory)
    const cache = new AttributeCache(4)
    const batch = new WriteBatch()
    cache.put(key(1), value(7n), batch)
    cache.put(key(2), value(8n), batch)
    cache.rotate(5, batch)
    assert.equal(cache.del(key(1), batch), 'deleted')
    await store.write(batch.rows(), { sync: true })
    await store.close() // the process dies here; only the store survives
    store = await Store.open(tmp.directory)
    const rows = await mirrorOf(store)
    const restored = AttributeCache.restoring(cache.snapshot, 5)
    restored.restore(rows)
    assert.equal(restored.get(key(1)).state, 'deleted')
    assert.equal(restored.get(key(2)).state, 'live')
    assert.deepEqual(restored.mirrorRows(), new Map(rows.map(([k, v]) => [k.toString('hex'), v])))
    assert.deepEqual(restored.mirrorRows(), cache.mirrorRows())
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
    cache.put(key(1), value(7n), batch)
    enter(cache, 2, 3, batch) // rotation at 3: key(1) in Gen1
    assert.equal(cache.del(key(1), batch), 'deleted')
    enter(cache, 4, 5, batch) // rotation at 5: the tombstone is now Gen1's
    assert.equal(cache.get(key(1)).state, 'deleted')
    await store.write(batch.rows(), { sync: true })
    await store.close()
    store = await Store.open(tmp.directory)
    const restored = AttributeCache.restoring(cache.snapshot, 5)
    restored.restore(await mirrorOf(store))
    assert.equal(restored.get(key(1)).state, 'deleted')
    assert.deepEqual(restored.mirrorRows(), cache.mirrorRows())
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

test('restore fails closed on every kind of malformed mirror row', () => {
  const cache = new AttributeCache(4)
  const disk = new Disk()
  cache.put(key(1), value(3n), disk)
  const [[rowKey, rowValue]] = disk.entries() as [[Buffer, Buffer]]
  const corruptions: [string, Buffer, Buffer][] = [
    ['value byte flipped', rowKey, Buffer.from(rowValue.map((b, i) => (i === rowValue.length - 2 ? b ^ 0x01 : b)))],
    ['tag flipped', rowKey, Buffer.from(rowValue.map((b, i) => (i === 0 ? b ^ 0xff : b)))],
    ['flag unknown', rowKey, Buffer.from(rowValue.map((b, i) => (i === 8 ? 7 : b)))],
    ['truncated', rowKey, rowValue.subarray(0, 10)],
    ['key hash flipped', Buffer.from(rowKey.map((b, i) => (i === 5 ? b ^ 1 : b))), rowValue],
    ['generation byte out of range', Buffer.from(rowKey.map((b, i) => (i === 1 ? 9 : b))), rowValue],
    ['wrong key length', Buffer.concat([rowKey, Buffer.of(0)]), rowValue],
  ]
  for (const [name, k, v] of corruptions) {
    assert.throws(() => new AttributeCache(4).restore([[k, v]]), MalformedMirrorRow, name)
  }
  // At generation 0 there is no Gen1: a row under its byte is refused.
  const gen1Key = Buffer.from(rowKey.map((b, i) => (i === 1 ? 1 : b)))
  assert.throws(() => new AttributeCache(4).restore([[gen1Key, rowValue]]), MalformedMirrorRow)
  // The intact row restores.
  const ok = new AttributeCache(4)
  ok.restore([[rowKey, rowValue]])
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
