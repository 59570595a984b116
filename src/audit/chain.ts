import { createHmac } from 'node:crypto'
import type { Json } from '../domain/index.ts'
import { invariant, isJsonObject, packValue, unpackValue } from '../domain/index.ts'

/** The head of the audit chain: last sequence number and its hash (hex). */
export interface AuditHead {
  readonly seq: bigint
  readonly hash: string
}

export const GENESIS: AuditHead = Object.freeze({ seq: 0n, hash: '' })

/** What one audit entry attests (contract §3): the hashed body. */
export interface AuditBody {
  readonly seq: bigint
  readonly index: number
  readonly date: string
  readonly proposalId: string
  /** The proposed orders: `{order, idempotencyKey?, requestHash?}` each. */
  readonly orders: Json
  readonly atomic: boolean
  readonly continueOnFailure: boolean
  readonly outcome: Json
  readonly idempotencyKeys: readonly string[]
  /** A change of the cache's replicated settings (a proposal without orders). */
  readonly cacheSettings?: Json
}

export interface AuditEntry extends AuditBody {
  readonly previousHash: string
  readonly hash: string
}

/**
 * An entry with its stored row (docs/adr/0009):
 * `[AUDIT_ROW_LAYOUT][previousHash length u8][previousHash][hash length u8][hash][packed body]`,
 * the hashes in ASCII hex, the body packed canonically behind `AUDIT_BODY_LAYOUT`.
 */
export interface EncodedAuditEntry extends AuditEntry {
  readonly row: Buffer
}

export const AUDIT_ROW_LAYOUT = 0x05
export const AUDIT_BODY_LAYOUT = 0x06

/**
 * The one hash of the chain, used by the writer (the FSM), the replay and the
 * checker alike: HMAC-SHA256(key = cluster id, previousHash ‖ packed canonical body).
 *
 * The cluster id is NOT a secret (it is stored in the data directory): it
 * binds every entry to one cluster, so an entry cannot be moved into another
 * cluster's chain and still verify. Against someone who can write the store,
 * the chain alone proves nothing (they can recompute every hash); signed
 * checkpoints (`checkpoint.ts`) do.
 */
export function entryHash(clusterId: string, previousHash: string, body: AuditBody): string {
  return hashOfPackedBody(clusterId, previousHash, packValue(body, AUDIT_BODY_LAYOUT, true))
}

/** `entryHash` of a body already packed canonically. */
function hashOfPackedBody(clusterId: string, previousHash: string, packedBody: Buffer): string {
  invariant(clusterId.length > 0, 'the audit chain needs a cluster id')
  return createHmac('sha256', clusterId).update(previousHash).update(packedBody).digest('hex')
}

/** The next entry of the chain after `head`, with its stored row. */
export function chainEntry(clusterId: string, head: AuditHead, body: Omit<AuditBody, 'seq'>): EncodedAuditEntry {
  const full: AuditBody = { ...body, seq: head.seq + 1n }
  // Packed once: the bytes hashed are the bytes stored (a whole bulk's orders and outcomes).
  const packedBody = packValue(full, AUDIT_BODY_LAYOUT, true)
  const hash = hashOfPackedBody(clusterId, head.hash, packedBody)
  return { ...full, previousHash: head.hash, hash, row: auditRow(head.hash, hash, packedBody) }
}

/** An audit row from its parts (the writer; tests forge rows with it). */
export function auditRow(previousHash: string, hash: string, packedBody: Buffer): Buffer {
  invariant(previousHash.length <= 0xff && hash.length <= 0xff, 'audit hashes fit a one-byte length')
  const header = Buffer.allocUnsafe(3 + previousHash.length + hash.length)
  header[0] = AUDIT_ROW_LAYOUT
  header[1] = previousHash.length
  header.write(previousHash, 2, 'latin1')
  header[2 + previousHash.length] = hash.length
  header.write(hash, 3 + previousHash.length, 'latin1')
  return Buffer.concat([header, packedBody])
}

const BODY_FIELDS = ['atomic', 'continueOnFailure', 'date', 'idempotencyKeys', 'index', 'orders', 'outcome', 'proposalId', 'seq']
/** A cache settings change (ADR 0007) adds exactly one field. */
const SETTINGS_BODY_FIELDS = [...BODY_FIELDS, 'cacheSettings'].sort()

/**
 * Reads a stored audit row back. Strict: a row with a field the writer never
 * writes does not decode (the hash covers only the body's known fields, so an
 * added one must not pass silently).
 */
export function decodeAuditEntry(row: Uint8Array): AuditEntry {
  const refuse = (why: string): Error => new Error(`not an audit entry: ${why}`)
  if (row.length < 3 || row[0] !== AUDIT_ROW_LAYOUT) throw refuse('its layout byte is not an audit row\'s')
  const bytes = Buffer.from(row.buffer, row.byteOffset, row.byteLength)
  const previousLength = bytes[1] as number
  const hashAt = 2 + previousLength
  if (hashAt >= bytes.length) throw refuse('it is cut short')
  const hashLength = bytes[hashAt] as number
  const bodyAt = hashAt + 1 + hashLength
  if (bodyAt >= bytes.length) throw refuse('it is cut short')
  let json: Json
  try {
    json = unpackValue(bytes.subarray(bodyAt), AUDIT_BODY_LAYOUT)
  } catch (error) {
    throw refuse(`its body does not unpack (${error instanceof Error ? error.message : String(error)})`)
  }
  if (!isJsonObject(json) || !(hasExactly(json, BODY_FIELDS) || hasExactly(json, SETTINGS_BODY_FIELDS))) {
    throw refuse('its body does not have the fields of an entry')
  }
  const body = json as unknown as AuditBody
  return {
    ...body,
    index: Number(body.index),
    previousHash: bytes.toString('latin1', 2, hashAt),
    hash: bytes.toString('latin1', hashAt + 1, bodyAt),
  }
}

function hasExactly(object: object, fields: readonly string[]): boolean {
  const keys = Object.keys(object).sort()
  return keys.length === fields.length && keys.every((key, i) => key === fields[i])
}

/**
 * Why an entry does not follow `previous` in the chain, or 'ok':
 * `sequence` its seq is not the next one (a row deleted, duplicated or
 * moved), `link` its previousHash is not the previous entry's hash,
 * `hash` its body was altered after it was hashed.
 */
export type EntryVerdict = 'ok' | 'sequence' | 'link' | 'hash'

/** Checks one entry against the entry before it (GENESIS for the first). */
export function verifyEntry(clusterId: string, previous: AuditHead, entry: AuditEntry): EntryVerdict {
  if (entry.seq !== previous.seq + 1n) return 'sequence'
  if (entry.previousHash !== previous.hash) return 'link'
  return entryHash(clusterId, previous.hash, bodyOf(entry)) === entry.hash ? 'ok' : 'hash'
}

/** Exactly the hashed fields of an entry, whatever else the object carries (its hash, its encoding). */
function bodyOf(entry: AuditBody): AuditBody {
  return {
    seq: entry.seq,
    index: entry.index,
    date: entry.date,
    proposalId: entry.proposalId,
    orders: entry.orders,
    atomic: entry.atomic,
    continueOnFailure: entry.continueOnFailure,
    outcome: entry.outcome,
    idempotencyKeys: entry.idempotencyKeys,
    ...(entry.cacheSettings === undefined ? {} : { cacheSettings: entry.cacheSettings }),
  }
}
