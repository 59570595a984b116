import { createHmac } from 'node:crypto'
import type { Json } from '../domain/index.ts'
import { canonicalJson, invariant, parseJson } from '../domain/index.ts'

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
 * hash = HMAC-SHA256(key = cluster id, previousHash ‖ canonical(body)).
 * Keyed by the cluster id so an entry cannot be moved to another cluster's
 * chain and still verify.
 */
export function chainEntry(clusterId: string, head: AuditHead, body: Omit<AuditBody, 'seq'>): EncodedAuditEntry {
  invariant(clusterId.length > 0, 'the audit chain needs a cluster id')
  const full: AuditBody = { ...body, seq: head.seq + 1n }
  const bodyText = canonicalJson(full)
  const hash = createHmac('sha256', clusterId).update(head.hash).update(bodyText).digest('hex')
  const text = `{"body":${bodyText},"previousHash":${JSON.stringify(head.hash)},"hash":${JSON.stringify(hash)}}`
  return { ...full, previousHash: head.hash, hash, text }
}

/** Reads a stored audit row back. */
export function decodeAuditEntry(text: string): AuditEntry {
  const json = parseJson(text) as unknown as { body: AuditBody; previousHash: string; hash: string }
  return { ...json.body, index: Number(json.body.index), previousHash: json.previousHash, hash: json.hash }
}

/** Recomputes one entry's hash from its body and the previous hash. */
export function verifyEntry(clusterId: string, previous: AuditHead, entry: AuditEntry): boolean {
  if (entry.seq !== previous.seq + 1n || entry.previousHash !== previous.hash) return false
  const { previousHash: _previous, hash, ...body } = entry
  const expected = createHmac('sha256', clusterId).update(previous.hash).update(canonicalJson(body)).digest('hex')
  return expected === hash
}
