import type { RowGenerations } from '../store/index.ts'

/**
 * Printed answers of reads, kept while none of the rows they were computed
 * from has been written since (docs/reads.md, "Answers kept between writes").
 *
 * An answer names what it read as owners' generation counters
 * (`RowGenerations`: an account, a transaction), each taken **before** the
 * read started; it is served again only while every one of them still holds
 * that value. The store bumps the counters of every batch it writes before
 * the write resolves, so an answer computed before a write — or during it,
 * from a mix of old and new rows — is never served after the write is
 * acknowledged.
 *
 * Bounded in bytes (answer text, counted at two bytes a character, plus a
 * fixed overhead per entry); eviction is second chance (an entry served
 * since it was kept moves to the back once), close to least recently served.
 */
export class AnswerCache {
  /** Insertion order: eviction starts at the front. */
  private readonly entries = new Map<string, Entry>()
  private bytes = 0

  constructor(
    private readonly generations: RowGenerations,
    readonly bytesMax: number = answerCacheBytesDefault,
  ) {}

  /** A new record of what an answer reads: each owner is added before its rows are read. */
  reading(): ReadRecord {
    return new ReadRecord(this.generations)
  }

  /** The answer kept under `key`, when none of what it read was written since. */
  get(key: string): string | undefined {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    const { slots, generations } = entry.read
    for (let at = 0; at < slots.length; at++) {
      if (this.generations.generation(slots[at] as number) !== generations[at]) {
        this.remove(key, entry)
        return undefined
      }
    }
    // Recency without moving the entry on every hit (a delete and a set of a long key): eviction gives a served entry a second chance.
    entry.served = true
    return entry.text
  }

  /** Keeps `text` under `key`, computed from what `read` recorded. */
  put(key: string, text: string, read: ReadRecord): void {
    const size = entryBytes(key, text, read)
    if (size > this.bytesMax / 8) return // one answer never takes more than an eighth of the room
    const previous = this.entries.get(key)
    if (previous !== undefined) this.remove(key, previous)
    this.entries.set(key, { text, read, bytes: size, served: false })
    this.bytes += size
    // From the front (least recently put or moved): an entry served since it got there moves to the back once, the others go.
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.bytesMax) break
      if (entry.served && oldest !== key) {
        entry.served = false
        this.entries.delete(oldest)
        this.entries.set(oldest, entry)
        continue
      }
      this.remove(oldest, entry)
    }
  }

  get size(): number {
    return this.entries.size
  }

  get bytesHeld(): number {
    return this.bytes
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key)
    this.bytes -= entry.bytes
  }
}

/** What an answer was read from: owners' counter slots, each with its generation from before its rows were read. */
export class ReadRecord {
  readonly slots: number[] = []
  readonly generations: number[] = []

  constructor(private readonly counters: RowGenerations) {}

  /** Call before reading the owner's rows. */
  add(slot: number): void {
    this.slots.push(slot)
    this.generations.push(this.counters.generation(slot))
  }
}

interface Entry {
  readonly text: string
  readonly read: ReadRecord
  readonly bytes: number
  /** Served since it was put or last given a second chance. */
  served: boolean
}

/** 16 MiB: some 40,000 account answers, or 4,000 first pages of 15 transactions. */
export const answerCacheBytesDefault = 16 * 1024 * 1024

/** Per entry beyond its strings: the map slot, the entry and its arrays. */
const entryOverheadBytes = 160

function entryBytes(key: string, text: string, read: ReadRecord): number {
  return entryOverheadBytes + 2 * (key.length + text.length) + 16 * read.slots.length
}
