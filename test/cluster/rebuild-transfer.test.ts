/**
 * Base transfer over the peer transport (docs/cluster.md, "Snapshots and
 * rebuild"): the primary offers a trusted snapshot on a session's matched
 * connection, the replica pulls it chunk by chunk into its staging directory
 * and reports it staged; a connection dropped in the middle resumes from the
 * verified prefix on the next session; the staged image installs to the
 * primary's state hash.
 */
import assert from 'node:assert/strict'
import path from 'node:path'
import { after, test } from 'node:test'
import { ReplicaServer, PeerTransport } from '../../src/cluster/peer/index.ts'
import { SnapshotCatalog, installSnapshot, verifySnapshotDirectory, type SnapshotManifest } from '../../src/cluster/snapshot/index.ts'
import { Epoch, Lsn, ReplicaId, type SessionId } from '../../src/replication/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { FaultProxy } from '../support/fault-proxy.ts'
import { tempDirectory } from '../support/temp.ts'
import { Cleanup, MemoryReplicaState, appendEntries, openWal, until } from './peer-harness.ts'
import { CLUSTER, createLedger, randomOrders, runWorkload } from './node-support.ts'

const temps: { remove: () => void }[] = []
after(() => {
  for (const temp of temps) temp.remove()
})
function scratch(): string {
  const temp = tempDirectory('tally-rebuild-transfer-')
  temps.push(temp)
  return temp.directory
}

async function openSingle(directory: string): Promise<LedgerNode> {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  return LedgerNode.open({ dataDirectory: directory, clusterId: CLUSTER, cacheRotationThreshold: 16, sync: false, stateHash: true, now: () => (clock += 1000), log: () => {} })
}

test('a snapshot travels over the peer transport, survives a dropped connection, and installs at the primary state hash', async () => {
  const cleanup = new Cleanup()
  try {
    // The primary's image (a ledger node's store) and the WAL its links match against.
    const primaryData = scratch()
    const source = await openSingle(primaryData)
    let manifest: SnapshotManifest
    let hash: { index: number; hash: string } | undefined
    let catalog: SnapshotCatalog
    try {
      await runWorkload(source, [createLedger, ...randomOrders(11, 120)])
      catalog = await SnapshotCatalog.open({ directory: path.join(primaryData, 'snapshots'), fileBytesMax: 8192 })
      manifest = await catalog.take(source.store, { epoch: 1 })
      hash = source.stateHash
    } finally {
      await source.close()
    }
    const primary = await openWal(cleanup)
    await appendEntries(primary.wal, { epoch: 1, count: 5, origin: 'p' })

    // The replica: a ledger data directory whose staging area receives the image.
    const replicaData = scratch()
    const replicaNode = await openSingle(replicaData)
    await replicaNode.close()
    const replicaWal = await openWal(cleanup)
    const staged: number[] = []
    let chunksReceived = 0
    let resumed = 0
    const server = await ReplicaServer.listen({
      replicaId: 'r1',
      wal: replicaWal.wal,
      state: new MemoryReplicaState({ epoch: 1 }),
      snapshot: { directory: path.join(replicaData, 'rebuild'), clusterId: CLUSTER, chunkBytes: 1024, inFlightBytesMax: 4096, onStaged: (staging) => staged.push(staging.appliedIndex), onProgress: (progress) => {
        chunksReceived = progress.bytesReceived
        resumed = progress.bytesResumed
      } },
    })
    cleanup.add(() => server.close())
    const proxy = await FaultProxy.start({ target: server.address })
    cleanup.add(() => proxy.close())

    let served = 0
    const snapshots = {
      manifestBytesOf: (index: number) => catalog.manifestBytesOf(index),
      readChunk: async (request: { appliedIndex: number; file: string; offset: number; bytes: number }) => {
        served += 1
        // The connection drops once, in the middle of the image.
        if (served === 10) proxy.dropConnections()
        return catalog.readChunk(request)
      },
    }
    const transport = new PeerTransport({ localId: 'p1', wal: primary.wal, epoch: Epoch.of(1), committedLsn: () => Lsn.of(5), link: { backoffMsMin: 5, backoffMsMax: 20 }, snapshots })
    cleanup.add(() => transport.close())
    const endpoint = { dataAddress: proxy.dataAddress, controlAddress: proxy.dataAddress, version: 1 }
    const replicaId = ReplicaId.of('r1')
    let counter = 0
    // One session at a time, as the driver runs them: a lost connection ends the session and a new one starts.
    const transferred = await (async () => {
      for (;;) {
        const sessionId = `p1/1/e1/${++counter}` as SessionId
        const request = { replicaId, sessionId, endpoint, epoch: Epoch.of(1) }
        const ticket = { replicaId, sessionId, kind: 'rebuild' as const, epoch: Epoch.of(1), endpoint }
        await until('matched', () => {
          const connected = transport.connect(request)
          return connected.ok && connected.flushedLsn !== undefined
        })
        let report = transport.transferSnapshot({ ticket, snapshotLsn: Lsn.of(manifest.appliedIndex) })
        await until('the transfer ends', () => {
          report = transport.transferSnapshot({ ticket, snapshotLsn: Lsn.of(manifest.appliedIndex) })
          return !report.ok || report.installedLsn !== undefined
        })
        if (report.ok) {
          // Staged: the replica installs it by reopening, and the session waits for its next connection.
          assert.deepEqual(report, { ok: true, installedLsn: manifest.appliedIndex, reopening: true })
          assert.deepEqual(transport.connect(request), { ok: true, flushedLsn: undefined }, 'no handshake of a later connection yet')
          return counter
        }
        assert.match(report.reason, /connection_lost/)
        assert.ok(counter < 5, 'a few sessions at most')
      }
    })()
    assert.equal(transferred, 2, 'one dropped session, then one that finished')
    assert.deepEqual(staged, [manifest.appliedIndex])
    assert.ok(chunksReceived > 0)
    const total = manifest.files.reduce((sum, file) => sum + file.bytes, 0)
    assert.ok(resumed >= 1024, `the second session kept the verified prefix (${resumed} bytes)`)
    assert.ok(served < Math.ceil(total / 1024) + 10, `resumed rather than restarted: ${served} chunks served for ${Math.ceil(total / 1024)}`)
    const verdict = await verifySnapshotDirectory(path.join(replicaData, 'rebuild'))
    assert.ok(verdict.ok)
    assert.deepEqual(transport.transferFullBase({ ticket: { replicaId, sessionId: 'p1/1/e1/9' as SessionId, kind: 'rebuild', epoch: Epoch.of(1), endpoint }, targetLsn: Lsn.of(5) }), { ok: false, reason: 'full_base_unsupported' })

    await installSnapshot({ dataDirectory: replicaData, stagingDirectory: path.join(replicaData, 'rebuild'), manifest, epoch: 1 })
    const reopened = await openSingle(replicaData)
    try {
      assert.deepEqual(reopened.stateHash, hash)
    } finally {
      await reopened.close()
    }
  } finally {
    await cleanup.run()
  }
})
