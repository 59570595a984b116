// Test doubles for the engine's adapters: a storage with counted pins and a
// transport whose replica acknowledges what it is sent (or is told to fail).
import type {
  BaseTransferReport,
  Endpoint,
  PinOwner,
  PinResult,
  RecoveryTransport,
  RetainedHistory,
  SessionTicket,
  StorageAdapter,
  TransferReport,
  TruncateReport,
} from '../../src/replication/index.ts'
import { Epoch, Lsn, RecoveryLog, Registry, ReplicaId, SessionId } from '../../src/replication/index.ts'

export function endpoint(dataAddress: string, version = 1, controlAddress = `${dataAddress}:ctrl`): Endpoint {
  return { dataAddress, controlAddress, version }
}

export function history(values: Partial<RetainedHistory> & { headLsn: Lsn; committedLsn: Lsn }): RetainedHistory {
  return { tailLsn: Lsn.of(0), checkpointLsn: Lsn.of(0), checkpointTrusted: false, ...values }
}

export class FakeStorage implements StorageAdapter {
  retained: RetainedHistory
  held = { wal: 0, snapshot: 0, full_base: 0 }
  failWal: string | undefined
  failSnapshot: string | undefined
  failFullBase: string | undefined
  releasesCalled = 0

  constructor(retained: RetainedHistory) {
    this.retained = retained
  }

  retainedHistory(): RetainedHistory {
    return this.retained
  }

  #grant(kind: 'wal' | 'snapshot' | 'full_base', failure: string | undefined): PinResult {
    if (failure !== undefined) return { ok: false, reason: failure }
    this.held[kind] += 1
    let released = false
    return {
      ok: true,
      release: () => {
        this.releasesCalled += 1
        if (released) return
        released = true
        this.held[kind] -= 1
      },
    }
  }

  pinWalRetention(_owner: PinOwner, fromLsnExclusive: Lsn): PinResult {
    if (fromLsnExclusive < this.retained.tailLsn) return { ok: false, reason: 'wal_recycled' }
    return this.#grant('wal', this.failWal)
  }

  pinSnapshot(_owner: PinOwner, _snapshotLsn: Lsn): PinResult {
    return this.#grant('snapshot', this.failSnapshot)
  }

  pinFullBase(_owner: PinOwner, _targetLsn: Lsn): PinResult {
    return this.#grant('full_base', this.failFullBase)
  }

  totalHeld(): number {
    return this.held.wal + this.held.snapshot + this.held.full_base
  }
}

/** A replica that durably holds whatever it is sent, unless told to fail or stall. */
export class FakeTransport implements RecoveryTransport {
  durableLsn: Lsn
  stalled = false
  failStream: string | undefined
  failTruncate: string | undefined
  truncateAnswerPolls = 0
  failTransfer: string | undefined
  throwOnStream = false
  truncatedTo: Lsn | undefined
  streamed: Array<[Lsn, Lsn]> = []

  constructor(durableLsn: Lsn) {
    this.durableLsn = durableLsn
  }

  streamWal(request: { ticket: SessionTicket; fromLsnExclusive: Lsn; toLsnInclusive: Lsn }): TransferReport {
    if (this.throwOnStream) throw new Error('transport exploded')
    if (this.failStream !== undefined) return { ok: false, reason: this.failStream }
    this.streamed.push([request.fromLsnExclusive, request.toLsnInclusive])
    if (!this.stalled) this.durableLsn = Lsn.max(this.durableLsn, request.toLsnInclusive)
    return { ok: true, durableLsn: this.durableLsn }
  }

  transferSnapshot(request: { ticket: SessionTicket; snapshotLsn: Lsn }): BaseTransferReport {
    if (this.failTransfer !== undefined) return { ok: false, reason: this.failTransfer }
    this.durableLsn = request.snapshotLsn
    return { ok: true, installedLsn: request.snapshotLsn }
  }

  transferFullBase(request: { ticket: SessionTicket; targetLsn: Lsn }): BaseTransferReport {
    if (this.failTransfer !== undefined) return { ok: false, reason: this.failTransfer }
    this.durableLsn = request.targetLsn
    return { ok: true, installedLsn: request.targetLsn }
  }

  truncate(request: { ticket: SessionTicket; toLsn: Lsn }): TruncateReport {
    if (this.failTruncate !== undefined) return { ok: false, reason: this.failTruncate }
    // An answer that takes `truncateAnswerPolls` more polls, as a replica behind a network would.
    if (this.truncateAnswerPolls > 0) {
      this.truncateAnswerPolls -= 1
      return { ok: true, truncatedToLsn: undefined }
    }
    this.truncatedTo = request.toLsn
    this.durableLsn = Lsn.min(this.durableLsn, request.toLsn)
    return { ok: true, truncatedToLsn: this.durableLsn }
  }
}

/** The scope of the registry under test: primary `p1`, first incarnation. */
export const testSessionScope = { primaryId: ReplicaId.of('p1'), incarnation: 1 }

/** The id the test registry gives its `counter`-th session at `epoch`. */
export function testSessionId(counter: number, epoch = 1): SessionId {
  return SessionId.of(testSessionScope, Epoch.of(epoch), counter)
}

export function registryWith(replicaIds: string[], epoch = 1): { registry: Registry; log: RecoveryLog } {
  const log = new RecoveryLog()
  const registry = new Registry({ log, sessionScope: testSessionScope })
  registry.reconcile({
    epoch: Epoch.of(epoch),
    replicas: replicaIds.map((id, index) => ({ replicaId: ReplicaId.of(id), endpoint: endpoint(`10.0.0.${index + 1}`) })),
  })
  return { registry, log }
}
