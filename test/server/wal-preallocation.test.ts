import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { LedgerNode, walPreallocateBytesDefault } from '../../src/server/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { MAIN, submitOne, transfer } from '../support/ledger.ts'
import type { Order } from '../../src/orders/index.ts'

/** The WAL's open segment: its bytes, and where its entries end (the zeros after them are preallocation). */
function openSegment(dataDirectory: string): Buffer {
  const directory = path.join(dataDirectory, 'wal')
  const last = readdirSync(directory).filter((name) => name.endsWith('.wal')).sort().at(-1)
  assert.ok(last !== undefined)
  return readFileSync(path.join(directory, last))
}

test('the node writes zeros ahead of its WAL entries by default, none with walPreallocateBytes 0; restarts keep every write', async () => {
  assert.ok(walPreallocateBytesDefault > 0)
  for (const walPreallocateBytes of [undefined, 0]) {
    const temp = tempDirectory('tally-wal-prealloc-')
    try {
      const options = { dataDirectory: temp.directory, clusterId: 'prealloc', ...(walPreallocateBytes === undefined ? {} : { walPreallocateBytes }) }
      let node = await LedgerNode.open(options)
      try {
        assert.equal((await submitOne(node, { type: 'CREATE_LEDGER', ledger: MAIN, bucket: '_default', metadata: {}, features: {} } as Order)).status, 'applied')
        for (let i = 0; i < 5; i++) assert.equal((await submitOne(node, transfer('world', `users:${i}`, 10n))).status, 'applied')
      } finally {
        await node.close()
      }
      const image = openSegment(temp.directory)
      let zerosAtEnd = 0
      while (zerosAtEnd < image.length && image[image.length - 1 - zerosAtEnd] === 0) zerosAtEnd += 1
      if (walPreallocateBytes === 0) assert.ok(zerosAtEnd < 4, `no zeros written ahead (${zerosAtEnd} trailing zero bytes)`)
      else assert.ok(zerosAtEnd >= 32 * 1024, `zeros written ahead: ${zerosAtEnd} bytes`)
      node = await LedgerNode.open(options)
      try {
        assert.equal((await submitOne(node, transfer('world', 'users:5', 10n))).status, 'applied')
        assert.ok(node.wal.head >= 6)
      } finally {
        await node.close()
      }
    } finally {
      temp.remove()
    }
  }
})
