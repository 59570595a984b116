import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MetaKey, STORAGE_SCHEMA_VERSION, SchemaVersionMismatch, Store, metaKey } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * Storage schema 4 (docs/adr/0011) packs stored dates as instant items: a
 * schema-3 build cannot read its rows, and this build does not mix its rows
 * into a schema-3 store (`tally check` would find every older row different
 * from its replay). A schema-3 store is refused, naming both versions and the
 * way across (export, import).
 */
test('a store written with storage schema 3 (dates as text) is refused by this build, with the upgrade path', async () => {
  assert.equal(STORAGE_SCHEMA_VERSION, 4)
  const temp = tempDirectory('tally-schema3-')
  try {
    const created = await Store.open(temp.directory)
    assert.equal((await created.get(metaKey(MetaKey.schemaVersion)))?.toString('utf8'), '4', 'a new store is written with version 4')
    await created.write([{ key: metaKey(MetaKey.schemaVersion), value: Buffer.from('3') }], { sync: true })
    await created.close()
    await assert.rejects(Store.open(temp.directory), (error: unknown) => {
      assert.ok(error instanceof SchemaVersionMismatch)
      assert.match(error.message, /storage schema version 3, this build reads version 4; refusing to open/)
      assert.match(error.message, /tally export/)
      return true
    })
  } finally {
    temp.remove()
  }
})
