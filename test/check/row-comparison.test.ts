import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import fc from 'fast-check'
import { Zone } from '../../src/store/index.ts'
import type { RowMismatch } from '../../src/check/row-comparison.ts'
import { RowComparison, RowPacker, forEachPacked } from '../../src/check/row-comparison.ts'
import { WorkerRows } from '../../src/check/compared-rows.ts'
import { SpillDisk } from '../../src/check/spill.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * The comparison `tally check` runs (on its worker thread or its own): the
 * replay's rows, written in any order, rewritten and deleted, against the
 * store's rows in key order. A store equal to the replay's final state shows
 * no difference; one byte changed anywhere in one row (key or value), a row
 * dropped or a row added shows exactly that row, whatever the memory bound
 * (so wherever the spills fall) and whether rows arrive one by one or packed
 * in blocks.
 */

const zones = [Zone.logs, Zone.attributes, Zone.indexes, Zone.cacheMirror]
const rowKey = fc.tuple(fc.constantFrom(...zones), fc.uint8Array({ minLength: 1, maxLength: 24 })).map(([zone, rest]) => Buffer.concat([Buffer.of(zone), rest]))
const rowValue = fc.uint8Array({ minLength: 0, maxLength: 48 }).map((bytes) => Buffer.from(bytes))

type Tamper = { kind: 'none' } | { kind: 'flip'; row: number; at: number; bit: number } | { kind: 'drop'; row: number } | { kind: 'add'; key: Buffer; value: Buffer }

const tamper: fc.Arbitrary<Tamper> = fc.oneof(
  fc.constant<Tamper>({ kind: 'none' }),
  fc.record({ kind: fc.constant('flip' as const), row: fc.nat(), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('drop' as const), row: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), key: rowKey, value: rowValue }),
)

const scenario = fc.record({
  final: fc.uniqueArray(fc.tuple(rowKey, rowValue), { selector: ([key]) => key.toString('latin1'), minLength: 1, maxLength: 40 }),
  /** Earlier values of some rows, written before their final value, and rows written then deleted. */
  rewrites: fc.array(fc.tuple(fc.nat(), rowValue), { maxLength: 20 }),
  deleted: fc.array(fc.tuple(rowKey, rowValue), { maxLength: 6 }),
  order: fc.array(fc.nat(), { maxLength: 80 }),
  tamper,
  sideBytesMax: fc.oneof(fc.constant(1 << 20), fc.integer({ min: 1, max: 600 })),
  packed: fc.boolean(),
})

/** The rows that must differ: latin1 key, whether the store holds it, whether the replay wrote it. */
type Expected = [key: string, present: boolean, replayed: boolean][]

/** The replay's writes (final values last, rewrites before, deletions after their write) and the store's rows after the tamper. */
type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never

function prepare(s: Scenario): { writes: [Buffer, Buffer | null][]; live: [Buffer, Buffer][]; expected: Expected } {
  const finalKeys = new Set(s.final.map(([key]) => key.toString('latin1')))
  const writes: [Buffer, Buffer | null][] = []
  for (const [row, value] of s.rewrites) writes.push([(s.final[row % s.final.length] as [Buffer, Buffer])[0], value])
  const gone = s.deleted.filter(([key]) => !finalKeys.has(key.toString('latin1')))
  for (const [key, value] of gone) writes.push([key, value])
  // Shuffle the early writes; the final values and deletions follow, each after the writes of its key.
  for (const [i, pick] of s.order.entries()) {
    if (writes.length < 2) break
    const a = i % writes.length
    const b = pick % writes.length
    ;[writes[a], writes[b]] = [writes[b] as [Buffer, Buffer | null], writes[a] as [Buffer, Buffer | null]]
  }
  for (const [key, value] of s.final) writes.push([key, value])
  for (const [key] of gone) writes.push([key, null])

  const live = [...s.final].map(([key, value]) => [Buffer.from(key), Buffer.from(value)] as [Buffer, Buffer])
  live.sort(([left], [right]) => Buffer.compare(left, right))
  let expected: Expected = []
  const t = s.tamper
  if (t.kind === 'flip') {
    const row = live[t.row % live.length] as [Buffer, Buffer]
    // A byte of the value, or of the key past its zone byte (the key then names another row).
    const inValue = row[1].length > 0 && t.at % 2 === 0
    if (inValue) {
      const at = t.at % row[1].length
      row[1][at] = (row[1][at] as number) ^ (1 << t.bit)
      expected = [[row[0].toString('latin1'), true, true]]
    } else {
      const at = 1 + (t.at % (row[0].length - 1))
      const original = row[0].toString('latin1')
      row[0][at] = (row[0][at] as number) ^ (1 << t.bit)
      if (!finalKeys.has(row[0].toString('latin1'))) {
        live.sort(([left], [right]) => Buffer.compare(left, right))
        // The replay's row is missing, the changed one is extra.
        return { writes, live, expected: [[original, false, true], [row[0].toString('latin1'), true, false]] }
      }
      row[0][at] = (row[0][at] as number) ^ (1 << t.bit) // lands on another final row: no single-row change; leave it
    }
  } else if (t.kind === 'drop') {
    const [dropped] = live.splice(t.row % live.length, 1) as [[Buffer, Buffer]]
    expected = [[dropped[0].toString('latin1'), false, true]]
  } else if (t.kind === 'add' && !finalKeys.has(t.key.toString('latin1'))) {
    live.push([t.key, t.value])
    live.sort(([left], [right]) => Buffer.compare(left, right))
    expected = [[t.key.toString('latin1'), true, false]]
  }
  return { writes, live, expected }
}

async function compare(comparison: RowComparison, writes: [Buffer, Buffer | null][], live: [Buffer, Buffer][], packed: boolean): Promise<RowMismatch[]> {
  if (packed) {
    const livePacker = new RowPacker(64, (block) => comparison.addLive(block))
    const replayedPacker = new RowPacker(64, (block) => comparison.addReplayed(block))
    for (const [key, value] of live) livePacker.add(key, value)
    for (const [key, value] of writes) replayedPacker.add(key, value)
    livePacker.flush()
    replayedPacker.flush()
  } else {
    for (const [key, value] of live) comparison.liveRow(key, value)
    for (const [key, value] of writes) comparison.replayedRow(key, value)
  }
  await comparison.spillIfOver()
  const found: RowMismatch[] = []
  for await (const batch of comparison.mismatches(3)) found.push(...batch)
  return found
}

function assertFound(found: readonly RowMismatch[], expected: Expected): void {
  const byKey = (left: Expected[number], right: Expected[number]): number => Buffer.compare(Buffer.from(left[0], 'latin1'), Buffer.from(right[0], 'latin1'))
  assert.deepEqual(
    found.map((m): Expected[number] => [m.key.toString('latin1'), m.present, m.expected !== undefined]),
    [...expected].sort(byKey),
    'exactly the changed rows differ, in key order',
  )
}

test('row comparison: a store equal to the replay shows nothing; one byte changed, a row dropped or added shows exactly that row, spilled or not, packed or not', async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async (s) => {
      const { writes, live, expected } = prepare(s)
      const temp = tempDirectory('tally-row-comparison-')
      const disk = new SpillDisk(temp.directory)
      try {
        const found = await compare(new RowComparison(disk, s.sideBytesMax), writes, live, s.packed)
        assertFound(found, expected)
      } finally {
        await disk.close()
        temp.remove()
      }
    }),
    { numRuns: 150 },
  )
})

test('row comparison: a packed block gives back every row, deletions included, byte for byte', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(rowKey, fc.option(rowValue, { nil: null })), { maxLength: 30 }), fc.integer({ min: 1, max: 200 }), (rows, blockBytes) => {
      const back: [string, string | null][] = []
      const packer = new RowPacker(blockBytes, (block) => forEachPacked(block, (key, value) => back.push([key.toString('hex'), value === null ? null : value.toString('hex')])))
      for (const [key, value] of rows) packer.add(key, value)
      packer.flush()
      assert.deepEqual(
        back,
        rows.map(([key, value]) => [key.toString('hex'), value === null ? null : value.toString('hex')]),
      )
    }),
  )
})

test('row comparison on a worker thread: the same differences, and its spill directory removed when it is closed', async () => {
  const temp = tempDirectory('tally-row-comparison-worker-')
  const rows = new WorkerRows(temp.directory, 1, 1)
  try {
    const key = (zone: number, name: string): Buffer => Buffer.concat([Buffer.of(zone), Buffer.from(name)])
    rows.replayed(key(Zone.logs, 'a'), Buffer.from('one'))
    rows.replayed(key(Zone.logs, 'b'), Buffer.from('two'))
    rows.replayed(key(Zone.attributes, 'c'), Buffer.from('old'))
    rows.replayed(key(Zone.attributes, 'c'), Buffer.from('new'))
    rows.replayed(key(Zone.indexes, 'gone'), Buffer.from('x'))
    rows.replayed(key(Zone.indexes, 'gone'), null)
    rows.live(key(Zone.logs, 'a'), Buffer.from('one'))
    rows.live(key(Zone.logs, 'b'), Buffer.from('twO'))
    rows.live(key(Zone.attributes, 'c'), Buffer.from('new'))
    rows.live(key(Zone.cacheMirror, 'extra'), Buffer.from('y'))
    await rows.settle()
    const found: RowMismatch[] = []
    for await (const batch of rows.mismatches()) found.push(...batch)
    assert.deepEqual(
      found.map((m) => [m.key.toString('latin1').slice(1), m.present, typeof m.expected]),
      [
        ['b', true, 'string'],
        ['extra', true, 'undefined'],
      ],
    )
    assert.ok(rows.spills > 0, 'a one-byte bound spills')
  } finally {
    await rows.close()
  }
  try {
    assert.deepEqual(readdirSync(temp.directory), [], 'the worker removed its spill directory')
  } finally {
    temp.remove()
  }
})

test('row comparison on a worker thread that dies: the walk fails instead of waiting for it', { timeout: 30_000 }, async () => {
  const temp = tempDirectory('tally-row-comparison-dead-')
  const rows = new WorkerRows(temp.directory, 1 << 20, 1 << 21)
  try {
    rows.live(Buffer.of(Zone.logs, 1), Buffer.from('x'))
    // The thread ends without being told to close (a crash, an out-of-memory kill of the isolate).
    await (rows as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate()
    await assert.rejects(async () => {
      for await (const batch of rows.mismatches()) void batch
    }, /comparison thread exited/)
  } finally {
    await rows.close()
    temp.remove()
  }
})
