import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync } from 'node:fs'
import fc from 'fast-check'
import { InvariantViolation } from '../../src/domain/index.ts'
import type { SpilledValue } from '../../src/check/spill.ts'
import { OrderedSpillRows, SpillDisk, SpillRows, compareLatin1 } from '../../src/check/spill.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * The store's rows as the check holds them (`OrderedSpillRows`): packed into
 * blocks, appended to a flat file beyond the bound. Whatever the bound and
 * wherever the spills fall, `sorted()` gives back every row appended, in
 * order, with its digest.
 */

const rowKey = fc.uint8Array({ minLength: 1, maxLength: 40 }).map((bytes) => Buffer.from(bytes))
const digest = fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 30 })

test('ordered rows come back in order with their digests, from memory and the spill file alike', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uniqueArray(fc.tuple(rowKey, digest), { selector: ([key]) => key.toString('latin1'), maxLength: 60 }),
      fc.integer({ min: 1, max: 400 }),
      fc.array(fc.nat(), { maxLength: 4 }),
      async (unordered, bytesMax, extraSpills) => {
        const rows = [...unordered].sort(([left], [right]) => Buffer.compare(left, right))
        const temp = tempDirectory('tally-ordered-spill-')
        const disk = new SpillDisk(temp.directory)
        try {
          const held = new OrderedSpillRows(disk, 'rows', bytesMax)
          const spillAt = new Set(extraSpills.map((at) => at % Math.max(1, rows.length)))
          for (const [i, [key, value]] of rows.entries()) {
            held.append(key, value)
            if (held.overBudget || spillAt.has(i)) await held.spill()
          }
          const back: [string, string][] = []
          for await (const batch of held.sorted()) back.push(...batch)
          assert.deepEqual(back, rows.map(([key, value]) => [key.toString('latin1'), value]))
          // Twice: the comparison may walk them again after a finding's point read.
          const again: [string, string][] = []
          for await (const batch of held.sorted()) again.push(...batch)
          assert.deepEqual(again, back)
        } finally {
          await disk.close()
          assert.deepEqual(readdirSync(temp.directory), [], 'the spill directory is removed')
          temp.remove()
        }
      },
    ),
    { numRuns: 150 },
  )
})

test('an ordered row out of order, or repeated, is refused', async () => {
  const disk = new SpillDisk(undefined)
  try {
    const held = new OrderedSpillRows(disk, 'rows', 1024)
    held.append(Buffer.from('b'), 'x')
    assert.throws(() => held.append(Buffer.from('b'), 'y'), InvariantViolation)
    assert.throws(() => held.append(Buffer.from('a'), 'y'), InvariantViolation)
  } finally {
    await disk.close()
    assert.equal(disk.path, undefined)
  }
})

test('a check that spills nothing makes no spill directory', async () => {
  const temp = tempDirectory('tally-ordered-spill-')
  const disk = new SpillDisk(temp.directory)
  try {
    const held = new OrderedSpillRows(disk, 'rows', 1 << 20)
    held.append(Buffer.from('a'), 'x')
    assert.equal(held.overBudget, false)
    assert.equal(existsSync(temp.directory) && readdirSync(temp.directory).length, 0)
  } finally {
    await disk.close()
    temp.remove()
  }
})

/**
 * The replay's rows (`SpillRows`): written, overwritten and deleted in any
 * order, spilled whenever over the bound (digests alone while the whole rows
 * fit in half of it). Whatever was spilled, each row reads back as last
 * written, `sorted()` is the model in key order, and a spill always brings
 * memory back under the bound.
 */
test('replayed rows read back as last written, in key order, spilled or not, and a spill brings memory under the bound', async () => {
  // Zone 0x01 holds digests (text), zone 0x02 whole rows (bytes).
  const id = fc.tuple(fc.constantFrom('\x01', '\x02'), fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\xff'), minLength: 1, maxLength: 3 })).map(([zone, rest]) => zone + rest)
  const write = id.chain((key) =>
    fc.tuple(fc.constant(key), key.startsWith('\x01') ? fc.string({ unit: fc.integer({ min: 0, max: 0xff }).map((code) => String.fromCharCode(code)), maxLength: 6 }).map((text): SpilledValue | null => `d${text}`) : fc.option(fc.uint8Array({ maxLength: 6 }).map((bytes): SpilledValue | null => Buffer.from(bytes)), { nil: null })),
  )
  await fc.assert(
    fc.asyncProperty(fc.array(write, { maxLength: 80 }), fc.integer({ min: 1, max: 2000 }), async (writes, bytesMax) => {
      const disk = new SpillDisk(undefined)
      try {
        const rows = new SpillRows(disk, 0x52, bytesMax, (zone) => zone === 1)
        const model = new Map<string, SpilledValue | null>()
        for (const [key, value] of writes) {
          rows.set(key, value)
          model.set(key, value)
          if (rows.overBudget) {
            await rows.spill()
            assert.equal(rows.overBudget, false, 'a spill brings memory under the bound')
          }
        }
        for (const [key, value] of model) {
          if (key.startsWith('\x02')) assert.deepEqual(rows.get(key), value ?? undefined)
        }
        const back: [string, SpilledValue][] = []
        for await (const batch of rows.sorted()) back.push(...batch)
        const expected = [...model].filter((entry): entry is [string, SpilledValue] => entry[1] !== null).sort(([left], [right]) => compareLatin1(left, right))
        assert.deepEqual(back, expected)
      } finally {
        await disk.close()
      }
    }),
    { numRuns: 200 },
  )
})

test('a row spilled, then deleted and spilled again, is gone from disk (the deletion reaches the spill batch)', async () => {
  const disk = new SpillDisk(undefined)
  try {
    // A bound of one byte: every set is over it, so each spill moves everything (no digests here).
    const rows = new SpillRows(disk, 0x52, 1, (zone) => zone === 1)
    rows.set('\x02a', Buffer.of(1, 2, 3))
    rows.set('\x02b', Buffer.of(4))
    await rows.spill()
    assert.deepEqual(rows.get('\x02a'), Buffer.of(1, 2, 3))
    rows.set('\x02a', null)
    await rows.spill()
    assert.equal(rows.get('\x02a'), undefined)
    const back: [string, SpilledValue][] = []
    for await (const batch of rows.sorted()) back.push(...batch)
    assert.deepEqual(back, [['\x02b', Buffer.of(4)]])
  } finally {
    await disk.close()
  }
})
