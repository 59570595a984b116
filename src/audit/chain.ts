import { createHmac } from 'node:crypto'
import type { Json } from '../domain/index.ts'
import { canonicalJson, invariant, isJsonObject, parseJson } from '../domain/index.ts'

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

/** An entry with its stored encoding: `{"body":<canonical body>,"previousHash":…,"hash":…}`. */
export interface EncodedAuditEntry extends AuditEntry {
  readonly text: string
}

/**
 * The one hash of the chain, used by the writer (the FSM), the replay and the
 * checker alike: HMAC-SHA256(key = cluster id, previousHash ‖ canonical(body)).
 *
 * The cluster id is NOT a secret (it is stored in the data directory): it
 * binds every entry to one cluster, so an entry cannot be moved into another
 * cluster's chain and still verify. Against someone who can write the store,
 * the chain alone proves nothing (they can recompute every hash); signed
 * checkpoints (`checkpoint.ts`) do.
 */
export function entryHash(clusterId: string, previousHash: string, body: AuditBody): string {
  return hashOfCanonicalBody(clusterId, previousHash, canonicalJson(body))
}

/** `entryHash` of a body already printed canonically. */
function hashOfCanonicalBody(clusterId: string, previousHash: string, canonicalBody: string): string {
  invariant(clusterId.length > 0, 'the audit chain needs a cluster id')
  return createHmac('sha256', clusterId).update(previousHash).update(canonicalBody).digest('hex')
}

/** The next entry of the chain after `head`, with its stored encoding. */
export function chainEntry(clusterId: string, head: AuditHead, body: Omit<AuditBody, 'seq'>): EncodedAuditEntry {
  const full: AuditBody = { ...body, seq: head.seq + 1n }
  // Printed once: the bytes hashed are the bytes stored (a whole bulk's orders and outcomes).
  const canonicalBody = canonicalJson(full)
  const hash = hashOfCanonicalBody(clusterId, head.hash, canonicalBody)
  const text = `{"body":${canonicalBody},"previousHash":${JSON.stringify(head.hash)},"hash":${JSON.stringify(hash)}}`
  return { ...full, previousHash: head.hash, hash, text }
}

const ENTRY_FIELDS = ['body', 'hash', 'previousHash']
const BODY_FIELDS = ['atomic', 'continueOnFailure', 'date', 'idempotencyKeys', 'index', 'orders', 'outcome', 'proposalId', 'seq']
/** A cache settings change (ADR 0007) adds exactly one field. */
const SETTINGS_BODY_FIELDS = [...BODY_FIELDS, 'cacheSettings'].sort()

/**
 * Reads a stored audit row back. Strict: a row with a field the writer never
 * writes does not decode (the hash covers only the body's known fields, so an
 * added one must not pass silently).
 */
export function decodeAuditEntry(text: string): AuditEntry {
  const json = parseJson(text)
  if (!isJsonObject(json) || !hasExactly(json, ENTRY_FIELDS) || !isJsonObject(json.body) || !(hasExactly(json.body, BODY_FIELDS) || hasExactly(json.body, SETTINGS_BODY_FIELDS))) {
    throw new Error('not an audit entry: its fields are not {body, previousHash, hash} with the body of an entry')
  }
  const entry = json as unknown as { body: AuditBody; previousHash: string; hash: string }
  return { ...entry.body, index: Number(entry.body.index), previousHash: entry.previousHash, hash: entry.hash }
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
