/**
 * Trusted snapshots and their base transfer (docs/cluster.md, "Snapshots and
 * rebuild"): the manifest refuses a changed byte, the catalog trusts only
 * images that verify, a corrupt chunk is caught, a dropped transfer resumes
 * from what it verified, and an install is atomic across a power loss.
 */
import assert from 'node:assert/strict'
import * as fs from 'node:fs/promises'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import {
  SnapshotCatalog,
  SnapshotTransferError,
  chunkOf,
  decodeManifest,
  encodeManifest,
  installSnapshot,
  installStagedSnapshot,
  receiveSnapshot,
  recoverInstall,
  type InstallIo,
  type SnapshotChunk,
  type SnapshotChunkRequest,
  type SnapshotManifest,
} from '../../src/cluster/snapshot/index.ts'
import { LedgerNode } from '../../src/server/index.ts'
import { mulberry32 } from '../crash/power-loss-harness.ts'
import { PowerLossDisk, PowerLost } from '../support/power-loss.ts'
import { tempDirectory } from '../support/temp.ts'
import { CLUSTER, createLedger, randomOrders, runWorkload } from './node-support.ts'

const temps: { remove: () => void }[] = []
after(() => {
  for (const temp of temps) temp.remove()
})
function scratch(): string {
  const temp = tempDirectory('tally-rebuild-')
  temps.push(temp)
  return temp.directory
}

function openSingle(directory: string): Promise<LedgerNode> {
  let clock = Date.parse('2026-01-01T00:00:00Z')
  return LedgerNode.open({ dataDirectory: directory, clusterId: CLUSTER, cacheRotationThreshold: 16, sync: false, stateHash: true, now: () => (clock += 1000), log: () => {} })
}

/** A node that applied `count` seeded orders, closed; returns its state hash. */
async function ledgerWith(directory: string, count: number): Promise<{ index: number; hash: string }> {
  const node = await openSingle(directory)
  try {
    await runWorkload(node, [createLedger, ...randomOrders(7, count)])
    const hash = node.stateHash
    assert.ok(hash !== undefined)
    return hash
  } finally {
    await node.close()
  }
}

async function stateOf(directory: string): Promise<{ index: number; hash: string }> {
  const node = await openSingle(directory)
  try {
    const hash = node.stateHash
    assert.ok(hash !== undefined)
    assert.equal(node.fsm.appliedIndex, hash.index)
    return hash
  } finally {
    await node.close()
  }
}

/** A primary's data directory with a snapshot taken; its catalog stays open. */
async function primaryWithSnapshot(orders = 60, fileBytesMax = 4096): Promise<{ catalog: SnapshotCatalog; manifest: SnapshotManifest; manifestBytes: Buffer; hash: { index: number; hash: string } }> {
  const data = scratch()
  const node = await openSingle(data)
  try {
    await runWorkload(node, [createLedger, ...randomOrders(7, orders)])
    await node.checkpoint()
    const catalog = await SnapshotCatalog.open({ directory: path.join(data, 'snapshots'), fileBytesMax })
    const manifest = await catalog.take(node.store, { epoch: 3 })
    const hash = node.stateHash
    assert.ok(hash !== undefined)
    assert.equal(manifest.appliedIndex, hash.index)
    assert.deepEqual(manifest.stateHash, hash)
    return { catalog, manifest, manifestBytes: await catalog.manifestBytes(manifest.appliedIndex), hash }
  } finally {
    await node.close()
  }
}

function fetchFrom(catalog: SnapshotCatalog, appliedIndex: number): (request: SnapshotChunkRequest) => Promise<SnapshotChunk> {
  return async (request) => chunkOf(request, await catalog.readChunk({ appliedIndex, ...request }))
}

describe('snapshot manifest', () => {
  it('round-trips and refuses any changed byte of its fields', async () => {
    const { manifestBytes, manifest } = await primaryWithSnapshot(5)
    const decoded = decodeManifest(manifestBytes)
    assert.ok(decoded.ok)
    assert.deepEqual(decoded.manifest, manifest)
    assert.deepEqual(encodeManifest(manifest), manifestBytes)
    const text = manifestBytes.toString('utf8')
    const tampered = text.replace(`"appliedIndex":${manifest.appliedIndex}`, `"appliedIndex":${manifest.appliedIndex + 1}`)
    assert.notEqual(tampered, text)
    const refused = decodeManifest(Buffer.from(tampered))
    assert.equal(refused.ok, false)
    assert.equal(!refused.ok && refused.reason, 'checksum_mismatch')
    assert.equal(decodeManifest(Buffer.from('{"manifest":')).ok, false)
  })
})

describe('snapshot catalog', () => {
  it('trusts an image only while its files match the manifest', async () => {
    const { catalog, manifest } = await primaryWithSnapshot(30)
    assert.ok(manifest.files.length > 1, 'the small file bound splits the image')
    assert.equal(catalog.newest()?.appliedIndex, manifest.appliedIndex)
    const reopened = await SnapshotCatalog.open({ directory: path.dirname(catalog.directoryOf(manifest.appliedIndex)) })
    assert.equal(reopened.newest()?.appliedIndex, manifest.appliedIndex)
    // One flipped byte in one file: the image is no longer trusted (and is removed).
    const victim = path.join(catalog.directoryOf(manifest.appliedIndex), manifest.files[1]?.name ?? '')
    const bytes = await fs.readFile(victim)
    bytes[10] = (bytes[10] ?? 0) ^ 0x01
    await fs.writeFile(victim, bytes)
    const afterCorruption = await SnapshotCatalog.open({ directory: path.dirname(catalog.directoryOf(manifest.appliedIndex)) })
    assert.equal(afterCorruption.newest(), undefined)
  })

  it('keeps a pinned image past retention', async () => {
    const data = scratch()
    const node = await openSingle(data)
    try {
      const catalog = await SnapshotCatalog.open({ directory: path.join(data, 'snapshots'), retained: 1 })
      await runWorkload(node, [createLedger, ...randomOrders(1, 5)])
      const first = await catalog.take(node.store, { epoch: 1 })
      const pin = catalog.pin(first.appliedIndex)
      assert.ok(pin.ok)
      await runWorkload(node, randomOrders(2, 5))
      const second = await catalog.take(node.store, { epoch: 1 })
      assert.ok(catalog.trustedAt(first.appliedIndex) !== undefined, 'pinned: kept')
      pin.release()
      pin.release()
      await runWorkload(node, randomOrders(3, 5))
      await catalog.take(node.store, { epoch: 1 })
      assert.equal(catalog.trustedAt(first.appliedIndex), undefined)
      assert.equal(catalog.trustedAt(second.appliedIndex), undefined)
      assert.equal(catalog.pin(first.appliedIndex).ok, false)
    } finally {
      await node.close()
    }
  })
})

describe('snapshot transfer', () => {
  it('installs an image that opens at the snapshot state hash', async () => {
    const { catalog, manifest, manifestBytes, hash } = await primaryWithSnapshot()
    const replica = scratch()
    await ledgerWith(replica, 3)
    const staging = path.join(replica, 'rebuild')
    const progress: number[] = []
    const received = await receiveSnapshot({ directory: staging, manifest: manifestBytes, clusterId: CLUSTER, fetch: fetchFrom(catalog, manifest.appliedIndex), chunkBytes: 512, inFlightBytesMax: 2048, onProgress: (p) => progress.push(p.bytesReceived) })
    assert.deepEqual(received, manifest)
    assert.equal(progress.at(-1), manifest.files.reduce((sum, file) => sum + file.bytes, 0))
    await installSnapshot({ dataDirectory: replica, stagingDirectory: staging, manifest, epoch: 5 })
    assert.deepEqual(await stateOf(replica), hash)
    await assert.rejects(fs.stat(staging))
  })

  it('refuses to install a staged image that no longer verifies', async () => {
    const { catalog, manifest, manifestBytes } = await primaryWithSnapshot(20)
    const replica = scratch()
    const old = await ledgerWith(replica, 2)
    const staging = path.join(replica, 'rebuild')
    await receiveSnapshot({ directory: staging, manifest: manifestBytes, clusterId: CLUSTER, fetch: fetchFrom(catalog, manifest.appliedIndex) })
    const victim = path.join(staging, manifest.files[0]?.name ?? '')
    const bytes = await fs.readFile(victim)
    bytes[bytes.byteLength - 1] = (bytes[bytes.byteLength - 1] ?? 0) ^ 0x01
    await fs.writeFile(victim, bytes)
    await assert.rejects(installSnapshot({ dataDirectory: replica, stagingDirectory: staging, manifest, epoch: 1 }), /does not verify/)
    assert.deepEqual(await stateOf(replica), old)
  })

  it('installs a staged image at startup once it verifies, and keeps a partial one for the transfer to resume', async () => {
    const { catalog, manifest, manifestBytes, hash } = await primaryWithSnapshot(40)
    const replica = scratch()
    const old = await ledgerWith(replica, 3)
    const staging = path.join(replica, 'rebuild')
    const honest = fetchFrom(catalog, manifest.appliedIndex)
    let served = 0
    await assert.rejects(
      receiveSnapshot({ directory: staging, manifest: manifestBytes, clusterId: CLUSTER, chunkBytes: 512, fetch: async (request) => {
        if (++served > 3) throw new Error('connection reset')
        return honest(request)
      } }),
    )
    assert.equal(await installStagedSnapshot({ dataDirectory: replica, clusterId: CLUSTER }), 'partial')
    assert.deepEqual(await stateOf(replica), old)
    await receiveSnapshot({ directory: staging, manifest: manifestBytes, clusterId: CLUSTER, chunkBytes: 512, fetch: honest })
    assert.equal(await installStagedSnapshot({ dataDirectory: replica, clusterId: CLUSTER }), 'installed')
    assert.deepEqual(await stateOf(replica), hash)
    assert.equal(await installStagedSnapshot({ dataDirectory: replica, clusterId: CLUSTER }), 'none')
  })

  it('refuses an image of another cluster', async () => {
    const { catalog, manifest, manifestBytes } = await primaryWithSnapshot(3)
    await assert.rejects(
      receiveSnapshot({ directory: path.join(scratch(), 'rebuild'), manifest: manifestBytes, clusterId: 'another', fetch: fetchFrom(catalog, manifest.appliedIndex) }),
      (error: unknown) => error instanceof SnapshotTransferError && error.reason === 'wrong_cluster',
    )
  })

  it('detects a corrupt chunk: asks again, and gives up when it stays corrupt', async () => {
    const { catalog, manifest, manifestBytes } = await primaryWithSnapshot()
    const honest = fetchFrom(catalog, manifest.appliedIndex)
    const corrupt = (chunk: SnapshotChunk): SnapshotChunk => {
      const data = Buffer.from(chunk.data)
      data[0] = (data[0] ?? 0) ^ 0xff
      return { ...chunk, data }
    }
    // Once: the CRC catches it and the chunk is fetched again.
    let flipped = false
    let refetched = 0
    await receiveSnapshot({
      directory: path.join(scratch(), 'rebuild'),
      manifest: manifestBytes,
      clusterId: CLUSTER,
      chunkBytes: 512,
      fetch: async (request) => {
        const chunk = await honest(request)
        if (!flipped && request.offset === 512) {
          flipped = true
          return corrupt(chunk)
        }
        return chunk
      },
      onProgress: (p) => (refetched = p.chunksRefetched),
    })
    assert.equal(refetched, 1)
    // Always: the transfer stops with the chunk named, no corrupt byte written.
    await assert.rejects(
      receiveSnapshot({ directory: path.join(scratch(), 'rebuild'), manifest: manifestBytes, clusterId: CLUSTER, chunkBytes: 512, fetch: async (request) => (request.offset === 512 ? corrupt(await honest(request)) : honest(request)) }),
      (error: unknown) => error instanceof SnapshotTransferError && error.reason === 'chunk_corrupt',
    )
  })

  it('resumes after a dropped connection from the last verified chunk', async () => {
    const { catalog, manifest, manifestBytes, hash } = await primaryWithSnapshot(80, 1 << 20)
    const total = manifest.files.reduce((sum, file) => sum + file.bytes, 0)
    assert.ok(total > 8 * 512, 'enough chunks to drop in the middle')
    const honest = fetchFrom(catalog, manifest.appliedIndex)
    const replica = scratch()
    await ledgerWith(replica, 2)
    const staging = path.join(replica, 'rebuild')
    let served = 0
    await assert.rejects(
      receiveSnapshot({
        directory: staging,
        manifest: manifestBytes,
        clusterId: CLUSTER,
        chunkBytes: 512,
        inFlightBytesMax: 1024,
        fetch: async (request) => {
          if (++served > 5) throw new Error('connection reset')
          return honest(request)
        },
      }),
      (error: unknown) => error instanceof SnapshotTransferError && error.reason === 'source_failed',
    )
    const asked: number[] = []
    let resumed = 0
    await receiveSnapshot({
      directory: staging,
      manifest: manifestBytes,
      clusterId: CLUSTER,
      chunkBytes: 512,
      inFlightBytesMax: 1024,
      fetch: async (request) => {
        asked.push(request.offset)
        return honest(request)
      },
      onProgress: (p) => (resumed = p.bytesResumed),
    })
    assert.ok(resumed >= 4 * 512, `resumed ${resumed} bytes`)
    assert.ok(!asked.includes(0), 'the verified prefix is not fetched again')
    await installSnapshot({ dataDirectory: replica, stagingDirectory: staging, manifest, epoch: 3 })
    assert.deepEqual(await stateOf(replica), hash)
  })
})

/**
 * Directory changes (renames, removals) under the power-loss model: those
 * not followed by an fsync of their directory survive as a prefix, in order.
 * A removal moves the tree aside so that an undone one can come back.
 */
class InstallDiskModel {
  readonly #changes: { from: string; to: string }[] = []
  #trash = 0

  constructor(private readonly disk: PowerLossDisk) {}

  readonly io: InstallIo = {
    rename: async (from, to) => {
      this.disk.step(`install rename ${path.basename(from)}`)
      await fs.rename(from, to)
      this.#changes.push({ from, to })
    },
    remove: async (target) => {
      this.disk.step(`install remove ${path.basename(target)}`)
      const exists = await fs.stat(target).then(() => true, () => false)
      if (!exists) return
      const aside = `${target}.trash-${++this.#trash}`
      await fs.rename(target, aside)
      this.#changes.push({ from: target, to: aside })
    },
    syncDirectory: async () => {
      this.disk.step('install directory fsync')
      this.#changes.length = 0
    },
    writeFileSynced: async (file, bytes) => {
      this.disk.step('install synced file write')
      await fs.writeFile(file, bytes)
      this.#changes.push({ from: `${file}.absent`, to: file })
    },
  }

  async restore(random: () => number): Promise<void> {
    const kept = Math.floor(random() * (this.#changes.length + 1))
    for (const change of this.#changes.slice(kept).reverse()) {
      if (change.from.endsWith('.absent')) {
        await fs.rm(change.to, { force: true })
        continue
      }
      await fs.rm(change.from, { recursive: true, force: true })
      await fs.rename(change.to, change.from)
    }
    this.#changes.length = 0
  }
}

describe('snapshot install under power loss', () => {
  it('leaves the old state or the new one, never a mix, wherever the power fails', async () => {
    await installUnderPowerLoss({ atomic: true })
  })
})

export async function installUnderPowerLoss(options: { readonly atomic: boolean }): Promise<void> {
  const { catalog, manifest, manifestBytes, hash } = await primaryWithSnapshot(40)
  const pristine = scratch()
  const old = await ledgerWith(pristine, 5)
  await receiveSnapshot({ directory: path.join(pristine, 'rebuild'), manifest: manifestBytes, clusterId: CLUSTER, fetch: fetchFrom(catalog, manifest.appliedIndex) })
  const outcomes = { old: 0, new: 0 }
  for (let crashAt = 1; crashAt < 200; crashAt++) {
    const replica = path.join(scratch(), 'data')
    await fs.cp(pristine, replica, { recursive: true })
    const random = mulberry32(crashAt)
    const disk = new PowerLossDisk({ random })
    const model = new InstallDiskModel(disk)
    disk.failAtOperation(crashAt)
    let finished = false
    try {
      await installSnapshot({ dataDirectory: replica, stagingDirectory: path.join(replica, 'rebuild'), manifest, epoch: 2, io: model.io, walIo: disk.walIo, openStore: disk.openStore, atomic: options.atomic })
      finished = true
    } catch (error) {
      if (!(error instanceof PowerLost)) throw error
    }
    await disk.restorePower()
    await model.restore(random)
    await recoverInstall({ dataDirectory: replica })
    const state = await stateOf(replica)
    if (state.index === hash.index) {
      assert.deepEqual(state, hash, `crash at ${crashAt}`)
      outcomes.new += 1
    } else {
      assert.deepEqual(state, old, `crash at ${crashAt}: neither the old state nor the image`)
      outcomes.old += 1
    }
    if (finished) break
  }
  assert.ok(outcomes.old > 0 && outcomes.new > 0, `both outcomes seen: ${JSON.stringify(outcomes)}`)
}
