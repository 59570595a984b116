/**
 * Taking and serving a snapshot image leaves the event loop its turns
 * (docs/cluster.md, "Snapshots and rebuild"): a primary that holds its loop
 * for a long stretch misses its lease renewals and loses its primacy. No
 * timings: the tests count what runs on the JavaScript thread between two
 * turns of the loop (a `setImmediate` callback each), in bytes.
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs/promises'
import { createRequire } from 'node:module'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { PeerTransport, ReplicaServer } from '../../src/cluster/peer/index.ts'
import { SnapshotCatalog, isSnapshotRow, verifySnapshotDirectory, type SnapshotManifest } from '../../src/cluster/snapshot/index.ts'
import { Epoch, Lsn, ReplicaId, type SessionId } from '../../src/replication/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import type { RangeOptions, StoreReader } from '../../src/store/index.ts'
import { tempDirectory } from '../support/temp.ts'
import { CLUSTER, createLedger, randomOrders, runWorkload } from './node-support.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, until } from './peer-harness.ts'

const temps: { remove: () => void }[] = []
after(() => {
  for (const temp of temps) temp.remove()
})
function scratch(): string {
  const temp = tempDirectory('tally-image-loop-')
  temps.push(temp)
  return temp.directory
}

/** Counts turns of the event loop until stopped. */
function turnCounter(): { readonly turns: () => number; readonly stop: () => void } {
  let turns = 0
  let stopped = false
  const spin = (): void => {
    if (stopped) return
    turns += 1
    setImmediate(spin)
  }
  setImmediate(spin)
  return { turns: () => turns, stop: () => void (stopped = true) }
}

const sliceBytes = 64 * 1024
const fillerRowBytes = 8 * 1024
const fillerRows = 600

function openSingle(directory: string): Promise<LedgerNode> {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  return LedgerNode.open({ dataDirectory: directory, clusterId: CLUSTER, cacheRotationThreshold: 16, sync: false, stateHash: true, now: () => (clock += 1000), log: () => {} })
}

/** A node with a ledger and ~5 MiB of large rows (as transactions with large metadata make). */
async function nodeWithLargeRows(): Promise<{ node: LedgerNode; data: string }> {
  const data = scratch()
  const node = await openSingle(data)
  await runWorkload(node, [createLedger, ...randomOrders(3, 20)])
  await node.checkpoint()
  // Rows of a zone no ledger uses: a take copies every row but the node-local ones.
  const rows = Array.from({ length: fillerRows }, (_, i) => ({ key: Buffer.concat([Buffer.of(0x50), Buffer.from(String(i).padStart(6, '0'))]), value: Buffer.alloc(fillerRowBytes, i % 251) }))
  await node.store.write(rows, { sync: false })
  return { node, data }
}

interface BindingReads {
  /** Bytes of rows the binding read on the JavaScript thread, per turn of the loop. */
  readonly syncBytesByTurn: Map<number, number>
  /** Bytes of each batch read on the thread pool. */
  readonly poolBatches: number[]
  readonly restore: () => void
}

/** Records what the RocksDB binding's iterators read, and where (test-only spy on the native module's exports). */
function spyOnBindingReads(turns: () => number): BindingReads {
  const binding = createRequire(import.meta.url)('@nxtedition/rocksdb/binding') as Record<string, (...args: unknown[]) => unknown>
  const sync = binding.iterator_nextv_sync as (...args: unknown[]) => { rows: (Buffer | null)[] }
  const pool = binding.iterator_nextv as (...args: unknown[]) => unknown
  const syncBytesByTurn = new Map<number, number>()
  const poolBatches: number[] = []
  const bytesOf = (rows: (Buffer | null)[]): number => rows.reduce((sum, row) => sum + (row?.byteLength ?? 0), 0)
  binding.iterator_nextv_sync = (...args: unknown[]) => {
    const result = sync(...args)
    syncBytesByTurn.set(turns(), (syncBytesByTurn.get(turns()) ?? 0) + bytesOf(result.rows))
    return result
  }
  binding.iterator_nextv = (...args: unknown[]) => {
    const callback = args[args.length - 1] as (error: unknown, result?: { rows: (Buffer | null)[] }) => void
    return pool(...args.slice(0, -1), (error: unknown, result?: { rows: (Buffer | null)[] }) => {
      if (result !== undefined) poolBatches.push(bytesOf(result.rows))
      callback(error, result)
    })
  }
  return {
    syncBytesByTurn,
    poolBatches,
    restore: () => {
      binding.iterator_nextv_sync = sync
      binding.iterator_nextv = pool
    },
  }
}

describe('taking an image', () => {
  it('reads the store off the JavaScript thread in batches bounded in bytes, with turns of the loop all along', async () => {
    const { node, data } = await nodeWithLargeRows()
    const catalog = await SnapshotCatalog.open({ directory: path.join(data, 'snapshots'), fileBytesMax: 1024 * 1024, takeSliceBytes: sliceBytes })
    const counter = turnCounter()
    const reads = spyOnBindingReads(counter.turns)
    try {
      const before = counter.turns()
      const manifest = await catalog.take(node.store, { epoch: 1 })
      const turnsDuringTake = counter.turns() - before
      reads.restore()
      const imageBytes = manifest.files.reduce((sum, file) => sum + file.bytes, 0)
      assert.ok(imageBytes > fillerRows * fillerRowBytes, `an image of ${imageBytes} bytes`)
      // Before the fix the binding's plain next() read 1 000 rows (here ~5 MiB) at once on this thread.
      const syncMax = Math.max(0, ...reads.syncBytesByTurn.values())
      assert.ok(syncMax <= sliceBytes + fillerRowBytes, `${syncMax} bytes read on the JavaScript thread within one turn`)
      assert.ok(reads.poolBatches.length >= imageBytes / (sliceBytes + fillerRowBytes) - 1, `${reads.poolBatches.length} batches on the thread pool`)
      for (const batch of reads.poolBatches) assert.ok(batch <= sliceBytes + fillerRowBytes + 1024, `a batch of ${batch} bytes`)
      // One turn per slice written at least (files are hashed again at verification, 64 KiB per read).
      assert.ok(turnsDuringTake >= imageBytes / (sliceBytes + fillerRowBytes), `${turnsDuringTake} turns during the take of ${imageBytes} bytes`)
      const verdict = await verifySnapshotDirectory(catalog.directoryOf(manifest.appliedIndex))
      assert.ok(verdict.ok)
    } finally {
      reads.restore()
      counter.stop()
      await node.close()
    }
  })

  it('gives the loop a turn per slice even when the reader answers from memory', async () => {
    const { node, data } = await nodeWithLargeRows()
    const rows: [Buffer, Buffer][] = []
    try {
      for await (const row of node.store.range({ gte: Buffer.of(0) })) rows.push(row)
    } finally {
      await node.close()
    }
    // Every row at once, no I/O between them: only the take's own slicing leaves turns.
    const turnsAtRow: number[] = []
    const counter = turnCounter()
    const reader: StoreReader = {
      get: () => Promise.reject(new Error('unused')),
      getMany: () => Promise.reject(new Error('unused')),
      range: async function* (_options: RangeOptions) {
        for (const row of rows) {
          turnsAtRow.push(counter.turns())
          yield row
        }
      },
    }
    const catalog = await SnapshotCatalog.open({ directory: path.join(scratch(), 'snapshots'), fileBytesMax: 1024 * 1024, takeSliceBytes: sliceBytes })
    let manifest: SnapshotManifest
    try {
      manifest = await catalog.take(reader, { epoch: 1 })
    } finally {
      counter.stop()
    }
    // The image is the rows in store order, `u32 key length ‖ key ‖ u32 value length ‖ value` each, whatever the slicing.
    const expected = Buffer.concat(
      rows
        .filter(([key]) => isSnapshotRow(key))
        .map(([key, value]) => {
          const lengths = Buffer.alloc(8)
          lengths.writeUInt32LE(key.byteLength, 0)
          lengths.writeUInt32LE(value.byteLength, 4)
          return Buffer.concat([lengths.subarray(0, 4), key, lengths.subarray(4), value])
        }),
    )
    const written = Buffer.concat(await Promise.all(manifest.files.map((file) => fs.readFile(path.join(catalog.directoryOf(manifest.appliedIndex), file.name)))))
    assert.ok(manifest.files.length > 1, 'the image spans several files')
    assert.ok(written.equals(expected), 'the image holds exactly the rows, in order')
    const bytesByTurn = new Map<number, number>()
    rows.forEach(([key, value], i) => {
      const turn = turnsAtRow[i] as number
      bytesByTurn.set(turn, (bytesByTurn.get(turn) ?? 0) + key.byteLength + value.byteLength + 8)
    })
    const most = Math.max(...bytesByTurn.values())
    assert.ok(most <= sliceBytes + fillerRowBytes + 1024, `${most} bytes of rows taken within one turn`)
  })
})

describe('serving an image', () => {
  it('serves one chunk between two turns of the loop, whatever the replica asks at once', async () => {
    const cleanup = new Cleanup()
    try {
      const { node, data } = await nodeWithLargeRows()
      let catalog: SnapshotCatalog
      let manifest: SnapshotManifest
      try {
        catalog = await SnapshotCatalog.open({ directory: path.join(data, 'snapshots') })
        manifest = await catalog.take(node.store, { epoch: 1 })
      } finally {
        await node.close()
      }
      // The image in memory: a read answers at once, so only the link's own pacing leaves turns.
      const files = new Map<string, Buffer>()
      for (const file of manifest.files) files.set(file.name, await fs.readFile(path.join(catalog.directoryOf(manifest.appliedIndex), file.name)))
      const primary = await openWal(cleanup)
      await appendEntries(primary.wal, { epoch: 1, count: 3, origin: 'p' })
      const replicaData = scratch()
      const replicaWal = await openWal(cleanup)
      let staged = false
      const chunkBytes = 16 * 1024
      const server = await ReplicaServer.listen({
        replicaId: 'r1',
        wal: replicaWal.wal,
        state: new MemoryReplicaState({ epoch: 1 }),
        // A window of 32 chunks: the replica asks for all of them at once.
        snapshot: { directory: path.join(replicaData, 'rebuild'), clusterId: CLUSTER, chunkBytes, inFlightBytesMax: 32 * chunkBytes, onStaged: () => void (staged = true) },
      })
      cleanup.add(() => server.close())
      const counter = turnCounter()
      cleanup.add(() => counter.stop())
      const readsByTurn = new Map<number, number>()
      const snapshots = {
        manifestBytesOf: (index: number) => catalog.manifestBytesOf(index),
        readChunk: (request: { appliedIndex: number; file: string; offset: number; bytes: number }) => {
          readsByTurn.set(counter.turns(), (readsByTurn.get(counter.turns()) ?? 0) + 1)
          const bytes = files.get(request.file) as Buffer
          return Promise.resolve(Buffer.from(bytes.subarray(request.offset, Math.min(bytes.byteLength, request.offset + request.bytes))))
        },
      }
      const transport = new PeerTransport({ localId: 'p1', wal: primary.wal, epoch: Epoch.of(1), committedLsn: () => Lsn.of(3), link: { backoffMsMin: 5, backoffMsMax: 20 }, snapshots })
      cleanup.add(() => transport.close())
      const address = `${server.address.host}:${server.address.port}`
      const endpoint = { dataAddress: address, controlAddress: address, version: 1 }
      const replicaId = ReplicaId.of('r1')
      const sessionId = 'p1/1/e1/1' as SessionId
      await until('matched', () => {
        const connected = transport.connect({ replicaId, sessionId, endpoint, epoch: Epoch.of(1) })
        return connected.ok && connected.flushedLsn !== undefined
      })
      const ticket = { replicaId, sessionId, kind: 'rebuild' as const, epoch: Epoch.of(1), endpoint }
      await until('staged', () => {
        const report = transport.transferSnapshot({ ticket, snapshotLsn: Lsn.of(manifest.appliedIndex) })
        assert.ok(report.ok, JSON.stringify(report))
        return staged
      }, 60_000)
      const imageBytes = manifest.files.reduce((sum, file) => sum + file.bytes, 0)
      const reads = [...readsByTurn.values()].reduce((sum, count) => sum + count, 0)
      assert.ok(reads >= imageBytes / chunkBytes, `${reads} chunks read for ${imageBytes} bytes`)
      const most = Math.max(...readsByTurn.values())
      assert.equal(most, 1, `${most} chunks read within one turn of the loop`)
      const verdict = await verifySnapshotDirectory(path.join(replicaData, 'rebuild'))
      assert.ok(verdict.ok)
    } finally {
      await cleanup.run()
    }
  })
})
