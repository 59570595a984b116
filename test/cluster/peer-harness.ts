// Shared pieces of the peer transport tests: real WALs in temp directories,
// an in-memory replica node state, polling with a deadline (never sleeps),
// and comparisons of WAL files.
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { Epoch, Lsn, type EpochAdoption } from '../../src/replication/index.ts'
import { Wal, type WalIo, type WalRecord } from '../../src/wal/index.ts'
import { tempDirectory } from '../support/temp.ts'
import type { ReplicaNodeState } from '../../src/cluster/peer/index.ts'

/** Resources a test opened, closed in reverse order on every exit path. */
export class Cleanup {
  readonly #steps: Array<() => Promise<void> | void> = []

  add(step: () => Promise<void> | void): void {
    this.#steps.push(step)
  }

  async run(): Promise<void> {
    const errors: unknown[] = []
    for (const step of this.#steps.reverse()) {
      try {
        await step()
      } catch (error) {
        errors.push(error)
      }
    }
    if (errors.length > 0) throw errors[0]
  }
}

export async function openWal(cleanup: Cleanup, options: { io?: Partial<WalIo>; segmentBytesMax?: number } = {}): Promise<{ wal: Wal; directory: string }> {
  const temp = tempDirectory('tally-peer-')
  cleanup.add(temp.remove)
  const { wal } = await Wal.open({ directory: temp.directory, segmentBytesMax: options.segmentBytesMax ?? 64 * 1024, ...(options.io === undefined ? {} : { io: options.io }) })
  cleanup.add(async () => {
    await wal.close().catch(() => undefined)
  })
  return { wal, directory: temp.directory }
}

/** A payload that says which log wrote it, so diverged entries differ. */
export function payloadFor(origin: string, index: number, bytes = 40 + (index % 7) * 13): Uint8Array {
  const text = `${origin}:${index}:`.padEnd(bytes, '.')
  return new TextEncoder().encode(text)
}

export async function appendEntries(wal: Wal, options: { epoch: number; count: number; origin: string; bytes?: number }): Promise<number> {
  for (let i = 0; i < options.count; i += 1) {
    const index = wal.head + 1
    wal.append({ epoch: options.epoch, type: 1, payload: payloadFor(options.origin, index, options.bytes) })
  }
  return wal.flush()
}

export async function records(wal: Wal): Promise<WalRecord[]> {
  const all: WalRecord[] = []
  if (wal.durable <= wal.tail) return all
  for await (const record of wal.read(wal.tail + 1)) all.push(record)
  return all
}

/** Every segment file's bytes, by name. */
export async function segmentImages(directory: string): Promise<Map<string, Buffer>> {
  const images = new Map<string, Buffer>()
  for (const name of (await readdir(directory)).sort()) {
    if (name.endsWith('.wal')) images.set(name, await readFile(path.join(directory, name)))
  }
  return images
}

/** Polls `condition` until it holds or the deadline passes (then throws, naming what was awaited). */
export async function until(what: string, condition: () => boolean, deadlineMs = 10_000): Promise<void> {
  const deadline = Date.now() + deadlineMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise<void>((resolve) => setTimeout(resolve, 5))
  }
}

/** What a replica's server would persist, kept in memory. */
export class MemoryReplicaState implements ReplicaNodeState {
  currentEpoch: Epoch
  committed: Lsn
  checkpoint: Lsn = Lsn.zero
  primary = false
  readonly adoptions: Array<Extract<EpochAdoption, { kind: 'adopt' }>> = []

  constructor(options: { epoch: number; knownCommittedLsn?: number }) {
    this.currentEpoch = Epoch.of(options.epoch)
    this.committed = Lsn.of(options.knownCommittedLsn ?? 0)
  }

  epoch(): Epoch {
    return this.currentEpoch
  }

  knownCommittedLsn(): Lsn {
    return this.committed
  }

  checkpointLsn(): Lsn {
    return this.checkpoint
  }

  isPrimary(): boolean {
    return this.primary
  }

  async adoptEpoch(adoption: Extract<EpochAdoption, { kind: 'adopt' }>): Promise<void> {
    this.adoptions.push(adoption)
    this.currentEpoch = adoption.persistEpoch
    this.committed = adoption.knownCommittedLsn
  }

  learnCommitted(lsn: Lsn): void {
    if (lsn > this.committed) this.committed = lsn
  }
}
