import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import fc from 'fast-check'
import { Store } from '../../src/store/index.ts'

// Keys under one zone byte (0x20) so the store's own meta rows stay apart.
const key = fc.uint8Array({ minLength: 1, maxLength: 3 }).map((bytes) => Buffer.concat([Buffer.of(0x20), Buffer.from(bytes)]))

test('getManySync calls the binding natively (no options object to look names up on) with the installed binding', async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-get-many-sync-'))
  const store = await Store.open(directory)
  try {
    assert.notEqual(store.nativeContext, undefined)
  } finally {
    await store.close()
    await rm(directory, { recursive: true, force: true })
  }
})

test('getManySync answers what the thread-pool getMany does, key for key, found or missing, repeated or not, and leaves its keys as they were (property)', async () => {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'tally-get-many-sync-'))
  const store = await Store.open(directory)
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(key, fc.option(fc.uint8Array({ maxLength: 8 }), { nil: null })), { maxLength: 12 }),
        fc.array(key, { maxLength: 10 }),
        async (writes, keys) => {
          await store.write(
            writes.map(([row, value]) => ({ key: row, value: value === null ? null : Buffer.from(value) })),
            { sync: false },
          )
          const asked = keys.map((row) => Buffer.from(row))
          const read = store.getManySync(asked)
          assert.deepEqual(read, await store.getMany(keys))
          assert.deepEqual(asked, keys)
        },
      ),
      { numRuns: 150 },
    )
    assert.deepEqual(store.getManySync([]), [])
  } finally {
    await store.close()
    await rm(directory, { recursive: true, force: true })
  }
})
