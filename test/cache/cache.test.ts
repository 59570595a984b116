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

test('gen(i) = floor((i − 1) / K): rotation boundaries', () => {
  const cache = new AttributeCache(3)
  assert.deepEqual([0, 1, 2, 3, 4, 6, 7].map((i) => cache.generationOf(i)), [0, 0, 0, 0, 1, 1, 2])
  assert.throws(() => new AttributeCache(0))
  const disk = new Disk()
  assert.throws(() => cache.rotate(2, disk), /rotation from 0 to 2/)
})

test('CheckCache: Hit/Miss/Unreachable by Δ, Gen1 only counts at Δ = 0', () => {
  const cache = new AttributeCache(2)
  const disk = new Disk()
  cache.put(key(1), value(1n), disk) // gen 0
  cache.rotate(1, disk) // key(1) now in Gen1
  cache.put(key(2), value(2n), disk) // Gen0
  // current generation 1 covers indexes 3..4; 5..6 are Δ = 1; 7.. are Δ = 2
  assert.equal(cache.check(key(1), 3), 'hit')
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
  cache.put(key(1), value(1n), disk)
  cache.rotate(1, disk)
  assert.equal(cache.get(key(1)).state, 'live')
  cache.rotate(2, disk)
  assert.equal(cache.get(key(1)).state, 'absent')
  assert.equal(disk.rows.size, 0)
  assert.deepEqual(cache.mirrorRows(), disk.rows)
})

test('Del: Gen0 tombstone reuses the Gen1 tag; mirror gets the tombstone at the Gen0 byte only', () => {
  const cache = new AttributeCache(10)
  const disk = new Disk()
  cache.put(key(1), value(5n), disk)
  cache.rotate(1, disk)
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

test('regression: saved, rotated into Gen1, deleted, crash, restart — memory and disk agree, reads see the delete', async () => {
  const tmp = tempDirectory()
  try {
    let store = await Store.open(tmp.directory)
    const cache = new AttributeCache(4)
    const batch = new WriteBatch()
    cache.put(key(1), value(7n), batch)
    cache.put(key(2), value(8n), batch)
    cache.rotate(1, batch)
    assert.equal(cache.del(key(1), batch), 'deleted')
    await store.write(batch.rows(), { sync: true })
    await store.close() // the process dies here; only the store survives
    store = await Store.open(tmp.directory)
    const rows: [Buffer, Buffer][] = []
    for await (const row of store.range({ gte: Buffer.of(MIRROR_ZONE), lt: prefixEnd(Buffer.of(MIRROR_ZONE)) })) rows.push(row)
    const restored = new AttributeCache(4)
    restored.restore(1, rows)
    assert.equal(restored.get(key(1)).state, 'deleted')
    assert.equal(restored.get(key(2)).state, 'live')
    assert.deepEqual(restored.mirrorRows(), new Map(rows.map(([k, v]) => [k.toString('hex'), v])))
    assert.deepEqual(restored.mirrorRows(), cache.mirrorRows())
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
    assert.throws(() => new AttributeCache(4).restore(0, [[k, v]]), MalformedMirrorRow, name)
  }
  // A Gen1 tombstone cannot exist: tombstones go to the Gen0 byte only.
  const tomb = new Disk()
  const c2 = new AttributeCache(4)
  c2.put(key(1), value(1n), tomb)
  c2.del(key(1), tomb)
  assert.throws(() => new AttributeCache(4).restore(1, tomb.entries()), MalformedMirrorRow)
  // The intact row restores.
  const ok = new AttributeCache(4)
  ok.restore(0, [[rowKey, rowValue]])
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
