import { open, readdir } from 'node:fs/promises'
import path from 'node:path'

/**
 * RocksDB's own log, made durable a little at a time between store
 * checkpoints, so that a checkpoint's synced write (which the binding runs on
 * the JavaScript thread) has little left to flush.
 *
 * A latency measure only: durability never depends on it. A checkpoint still
 * does its own synced write (docs/adr/0005-durability.md), and what this makes
 * durable early is a prefix of RocksDB's append-only log — a state the
 * kernel's own writeback can produce at any moment too, which recovery
 * already handles (the store reopens at some applied index at or above the
 * last checkpoint and replays the WAL from there).
 *
 * Every `*.log` file in the store's directory is synced, oldest first: a
 * synced RocksDB write syncs every log it still holds unsynced (those of
 * memtables not yet flushed), not only the newest. A log deleted between the
 * listing and the open (its memtable flushed) is skipped. `fdatasync` runs on
 * libuv's pool, one file at a time. An fsync on any descriptor of a file
 * flushes the file's dirty pages; a write-back error it meets is still
 * reported to RocksDB's own descriptor at its next sync (Linux reports such
 * an error to every open file description).
 */

/** Bytes of rows written unsynced after which a sync ahead starts: at most this much (plus what one takes to run) is left for a checkpoint to flush. */
export const logSyncAheadBytesDefault = 4 * 1024 * 1024

/** The file operations a sync ahead needs (tests replace them). */
export interface LogSyncIo {
  list(directory: string): Promise<string[]>
  /** `fdatasync` of the file; rejects with ENOENT when it is gone. */
  datasync(file: string): Promise<void>
}

export const nodeLogSyncIo: LogSyncIo = {
  list: (directory) => readdir(directory),
  async datasync(file) {
    const handle = await open(file, 'r')
    try {
      await handle.datasync()
    } finally {
      await handle.close()
    }
  },
}

/** What the syncs ahead did since the store opened (metrics). */
export interface LogSyncAheadFigures {
  /** Syncs ahead finished (each one: every log file found). */
  syncs: number
  /** Wall-clock seconds they took, in all (on libuv's pool, not the JavaScript thread). */
  seconds: number
  /** Log files gone before they could be synced (flushed and deleted by RocksDB). */
  filesGone: number
  /** Syncs ahead that failed otherwise; the next checkpoint's own sync is what counts. */
  failures: number
}

/** RocksDB's log files in a listing, oldest first (their names are increasing file numbers). */
export function rocksDbLogFiles(names: readonly string[]): string[] {
  return names.filter((name) => /^\d+\.log$/.test(name)).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * Counts the bytes written unsynced and starts one sync ahead when they reach
 * `thresholdBytes`, never two at once: the rate is bounded by what is written.
 */
export class LogSyncAhead {
  private unsyncedBytes = 0
  private running: Promise<void> | undefined
  readonly figures: LogSyncAheadFigures = { syncs: 0, seconds: 0, filesGone: 0, failures: 0 }

  constructor(
    private readonly directory: string,
    private readonly thresholdBytes: number,
    private readonly io: LogSyncIo = nodeLogSyncIo,
  ) {}

  /** After an unsynced write of about `bytes`. */
  written(bytes: number): void {
    if (this.thresholdBytes <= 0) return
    this.unsyncedBytes += bytes
    if (this.unsyncedBytes < this.thresholdBytes || this.running !== undefined) return
    this.start()
  }

  /**
   * Syncs the logs now, after the sync in flight if any, off the JavaScript
   * thread: a checkpoint awaits it before its synced write, which then finds
   * almost nothing to flush and no sync of ours beside it.
   */
  async syncNow(): Promise<void> {
    if (this.thresholdBytes <= 0) return
    await this.running
    // One started meanwhile began after this call: it covers what was written before it.
    if (this.running === undefined) this.start()
    await this.running
  }

  private start(): void {
    this.unsyncedBytes = 0
    this.running = this.syncAll().finally(() => {
      this.running = undefined
    })
  }

  /** After a synced write: RocksDB's logs are durable up to it. */
  synced(): void {
    this.unsyncedBytes = 0
  }

  /** Resolves once no sync ahead runs (before the store closes). */
  async settled(): Promise<void> {
    await this.running
  }

  private async syncAll(): Promise<void> {
    const started = performance.now()
    try {
      for (const name of rocksDbLogFiles(await this.io.list(this.directory))) {
        try {
          await this.io.datasync(path.join(this.directory, name))
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
          this.figures.filesGone++
        }
      }
      this.figures.syncs++
    } catch {
      this.figures.failures++
    } finally {
      this.figures.seconds += (performance.now() - started) / 1000
    }
  }
}
