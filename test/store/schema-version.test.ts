import { test } from 'node:test'
import assert from 'node:assert/strict'
import { MetaKey, STORAGE_SCHEMA_VERSION, SchemaVersionMismatch, Store, metaKey } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'

/**
 * Storage schema 5 (docs/adr/0012) writes volumes and transaction rows in
 * fixed per-kind layouts: a schema-4 build cannot read them, and this build
 * does not mix its rows into a schema-4 store (`tally check` would find
 * every older transaction and volumes row different from its replay). A
 * schema-4 store is refused, naming both versions and the way across
 * (export, import).
 */
test('a store written with storage schema 4 (generic transaction rows) is refused by this build, with the upgrade path', async () => {
  assert.equal(STORAGE_SCHEMA_VERSION, 5)
  const temp = tempDirectory('tally-schema4-')
  try {
    const created = await Store.open(temp.directory)
    assert.equal((await created.get(metaKey(MetaKey.schemaVersion)))?.toString('utf8'), '5', 'a new store is written with version 5')
    await created.write([{ key: metaKey(MetaKey.schemaVersion), value: Buffer.from('4') }], { sync: true })
    await created.close()
    await assert.rejects(Store.open(temp.directory), (error: unknown) => {
      assert.ok(error instanceof SchemaVersionMismatch)
      assert.match(error.message, /storage schema version 4, this build reads version 5; refusing to open/)
      assert.match(error.message, /tally export/)
      return true
    })
  } finally {
    temp.remove()
  }
})
