import { createHash } from 'node:crypto'
import { crc32 } from 'node:zlib'
import type { Attribute, CanonicalKey } from '../domain/index.ts'
import { InvariantViolation, invariant, kindOf, decodeAttribute } from '../domain/index.ts'

/**
 * The two-generation attribute cache (contract §2.3). Pure: no clock, no I/O.
 * Every mutation also describes its disk-mirror rows to a `MirrorSink`, which
 * the FSM points at the proposal's atomic store batch, so memory and mirror
 * are equal at every applied index (invariant #1).
 */
export interface MirrorSink {
  put(key: Buffer, value: Buffer): void
  del(key: Buffer): void
}

export type CacheCheck = 'hit' | 'miss' | 'unreachable'

/** What the cache knows of a key: a value, a tombstone, or nothing. */
export type CacheLookup =
  | { readonly state: 'live'; readonly attribute: Attribute }
  | { readonly state: 'deleted' }
  | { readonly state: 'absent' }

interface Entry {
  readonly keyHash: Buffer // 16 bytes: the mirror row's key
  readonly tag: Buffer // 8 bytes: collision check, kept by tombstones
  readonly attribute: Attribute | null // null = tombstone
}

export const MIRROR_ZONE = 0xff
const FLAG_LIVE = 0
const FLAG_TOMBSTONE = 1
const ABSENT: CacheLookup = Object.freeze({ state: 'absent' })
const DELETED: CacheLookup = Object.freeze({ state: 'deleted' })

export const cacheRotationThresholdDefault = 1000

/** gen(i) = floor((i − 1) / K); index 0 (nothing applied) is generation 0. */
export function generationOf(index: number, rotationThreshold: number): number {
  invariant(Number.isSafeInteger(index) && index >= 0, 'index must be a non-negative integer')
  return index === 0 ? 0 : Math.floor((index - 1) / rotationThreshold)
}

export class MalformedMirrorRow extends Error {
  constructor(message: string) {
    super(`cache mirror: ${message}; refusing to start (run tally check)`)
    this.name = 'MalformedMirrorRow'
  }
}

export class AttributeCache {
  private gen0 = new Map<string, Entry>()
  private gen1 = new Map<string, Entry>()
  private currentGeneration = 0

  /** A new cache is empty; `generation` places it at an applied index (a reset after a threshold change). */
  constructor(
    readonly rotationThreshold: number,
    private readonly currentEpoch = 0,
    generation = 0,
  ) {
    invariant(Number.isSafeInteger(rotationThreshold) && rotationThreshold >= 1, 'rotation threshold must be ≥ 1')
    invariant(Number.isSafeInteger(generation) && generation >= 0, 'generation must be a non-negative integer')
    this.currentGeneration = generation
  }

  get generation(): number {
    return this.currentGeneration
  }

  get epoch(): number {
    return this.currentEpoch
  }

  generationOf(index: number): number {
    return generationOf(index, this.rotationThreshold)
  }

  /** Will `key` still be in the cache when `predictedIndex` is applied? */
  check(key: CanonicalKey, predictedIndex: number): CacheCheck {
    const delta = this.generationOf(predictedIndex) - this.currentGeneration
    if (delta >= 2) return 'unreachable'
    if (delta === 1) return this.gen0.has(key) ? 'hit' : 'miss'
    if (delta === 0) return this.gen0.has(key) || this.gen1.has(key) ? 'hit' : 'miss'
    return 'miss'
  }

  get(key: CanonicalKey): CacheLookup {
    const entry = this.gen0.get(key) ?? this.gen1.get(key)
    if (entry === undefined) return ABSENT
    return entry.attribute === null ? DELETED : { state: 'live', attribute: entry.attribute }
  }

  put(key: CanonicalKey, attribute: Attribute, mirror: MirrorSink): void {
    invariant(attribute.value.kind === kindOf(key), 'attribute kind differs from its key')
    const { keyHash, tag } = this.gen0.get(key) ?? this.gen1.get(key) ?? hashKey(key)
    const entry: Entry = { keyHash, tag, attribute }
    this.gen0.set(key, entry)
    mirror.put(this.mirrorKey(this.currentGeneration, key, keyHash), encodeRow(key, entry))
  }

  /** Tombstone in Gen0; when only Gen1 holds the key the tombstone reuses Gen1's tag. */
  del(key: CanonicalKey, mirror: MirrorSink): 'deleted' | 'not_found' {
    const existing = this.gen0.get(key) ?? this.gen1.get(key)
    if (existing === undefined || existing.attribute === null) return 'not_found'
    const tombstone: Entry = { keyHash: existing.keyHash, tag: existing.tag, attribute: null }
    this.gen0.set(key, tombstone)
    mirror.put(this.mirrorKey(this.currentGeneration, key, existing.keyHash), encodeRow(key, tombstone))
    return 'deleted'
  }

  /** A seed is written only where neither generation holds the key: the cache is at least as new. */
  preload(key: CanonicalKey, attribute: Attribute | null, mirror: MirrorSink): boolean {
    if (this.gen0.has(key) || this.gen1.has(key)) return false
    if (attribute === null) return false // the store has no row: nothing to seed, reads see "absent"
    this.put(key, attribute, mirror)
    return true
  }

  /** Applying the first index of generation g+1: Gen1 := Gen0, Gen0 := ∅, old Gen1 dropped. */
  rotate(toGeneration: number, mirror: MirrorSink): void {
    invariant(toGeneration === this.currentGeneration + 1, () => `rotation from ${this.currentGeneration} to ${toGeneration}`)
    for (const [key, entry] of this.gen1) mirror.del(this.mirrorKey(this.currentGeneration - 1, key, entry.keyHash))
    this.gen1 = this.gen0
    this.gen0 = new Map()
    this.currentGeneration = toGeneration
  }

  get size(): { gen0: number; gen1: number } {
    return { gen0: this.gen0.size, gen1: this.gen1.size }
  }

  /**
   * Rebuilds both generations from mirror rows read at boot. Fails closed on
   * any row that does not decode, has a wrong tag, or is a tombstone outside
   * Gen0's byte.
   */
  restore(generation: number, rows: Iterable<[Buffer, Buffer]>): void {
    invariant(this.gen0.size === 0 && this.gen1.size === 0, 'restore into a non-empty cache')
    this.currentGeneration = generation
    const gen0Byte = generation % 2
    for (const [rowKey, rowValue] of rows) {
      if (rowKey.length !== 19 || rowKey[0] !== MIRROR_ZONE) throw new MalformedMirrorRow(`bad row key ${rowKey.toString('hex')}`)
      const genByte = rowKey[1] as number
      if (genByte !== 0 && genByte !== 1) throw new MalformedMirrorRow(`bad generation byte in ${rowKey.toString('hex')}`)
      const { key, entry } = decodeRow(rowKey, rowValue)
      const isGen0 = genByte === gen0Byte
      if (!isGen0 && generation === 0) throw new MalformedMirrorRow(`Gen1 row at generation 0: ${rowKey.toString('hex')}`)
      if (!isGen0 && entry.attribute === null) throw new MalformedMirrorRow(`tombstone outside Gen0: ${rowKey.toString('hex')}`)
      ;(isGen0 ? this.gen0 : this.gen1).set(key, entry)
    }
  }

  /** The mirror rows memory implies, for invariant #1 checks. */
  mirrorRows(): Map<string, Buffer> {
    const rows = new Map<string, Buffer>()
    const add = (generation: number, map: Map<string, Entry>): void => {
      for (const [key, entry] of map) {
        rows.set(this.mirrorKey(generation, key, entry.keyHash).toString('hex'), encodeRow(key, entry))
      }
    }
    if (this.currentGeneration > 0) add(this.currentGeneration - 1, this.gen1)
    add(this.currentGeneration, this.gen0)
    return rows
  }

  private mirrorKey(generation: number, key: string, keyHash: Buffer): Buffer {
    const row = Buffer.allocUnsafe(19)
    row[0] = MIRROR_ZONE
    row[1] = generation % 2
    row[2] = key.charCodeAt(0)
    keyHash.copy(row, 3)
    return row
  }
}

function hashKey(key: string): { keyHash: Buffer; tag: Buffer } {
  const digest = createHash('sha256').update(key, 'utf8').digest()
  return { keyHash: digest.subarray(0, 16), tag: digest.subarray(16, 24) }
}

/**
 * Row value: [tag 8][flag 1][crc32 4][key length u32][key][value bytes when
 * live]. The CRC covers everything after it, so restore fails closed on any
 * flipped byte, not only on rows that no longer parse.
 */
const HEADER = 17
function encodeRow(key: string, entry: Entry): Buffer {
  const keyBytes = Buffer.from(key, 'utf8')
  const valueBytes = entry.attribute?.bytes
  const row = Buffer.allocUnsafe(HEADER + keyBytes.length + (valueBytes?.length ?? 0))
  entry.tag.copy(row, 0)
  row[8] = entry.attribute === null ? FLAG_TOMBSTONE : FLAG_LIVE
  row.writeUInt32LE(keyBytes.length, 13)
  keyBytes.copy(row, HEADER)
  valueBytes?.copy(row, HEADER + keyBytes.length)
  row.writeUInt32LE(crc32(row.subarray(13)), 9)
  return row
}

function decodeRow(rowKey: Buffer, row: Buffer): { key: CanonicalKey; entry: Entry } {
  if (row.length < HEADER) throw new MalformedMirrorRow(`short row ${rowKey.toString('hex')}`)
  const flag = row[8]
  if (flag !== FLAG_LIVE && flag !== FLAG_TOMBSTONE) throw new MalformedMirrorRow(`bad flag in ${rowKey.toString('hex')}`)
  if (row.readUInt32LE(9) !== crc32(row.subarray(13))) throw new MalformedMirrorRow(`checksum mismatch in ${rowKey.toString('hex')}`)
  const keyLength = row.readUInt32LE(13)
  if (HEADER + keyLength > row.length) throw new MalformedMirrorRow(`key overruns row ${rowKey.toString('hex')}`)
  const key = row.toString('utf8', HEADER, HEADER + keyLength) as CanonicalKey
  const { keyHash, tag } = hashKey(key)
  if (!keyHash.equals(rowKey.subarray(3)) || !tag.equals(row.subarray(0, 8)) || rowKey[2] !== key.charCodeAt(0)) {
    throw new MalformedMirrorRow(`hash or tag mismatch in ${rowKey.toString('hex')}`)
  }
  if (flag === FLAG_TOMBSTONE) {
    if (row.length !== HEADER + keyLength) throw new MalformedMirrorRow(`tombstone with payload ${rowKey.toString('hex')}`)
    return { key, entry: { keyHash, tag, attribute: null } }
  }
  let attribute: Attribute
  try {
    attribute = decodeAttribute(kindOf(key), Buffer.from(row.subarray(HEADER + keyLength)))
  } catch (error) {
    if (error instanceof InvariantViolation || error instanceof Error) {
      throw new MalformedMirrorRow(`undecodable value in ${rowKey.toString('hex')}: ${error.message}`)
    }
    throw error
  }
  return { key, entry: { keyHash, tag, attribute } }
}
