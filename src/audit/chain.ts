import { createHmac } from 'node:crypto'
import type { Json } from '../domain/index.ts'
import { canonicalJson, invariant } from '../domain/index.ts'

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
  readonly orders: Json
  readonly outcome: Json
  readonly idempotencyKeys: readonly string[]
}

export interface AuditEntry extends AuditBody {
  readonly previousHash: string
  readonly hash: string
}

/**
 * hash = HMAC-SHA256(key = cluster id, previousHash ‖ canonical(body)).
 * Keyed by the cluster id so an entry cannot be moved to another cluster's
 * chain and still verify.
 */
export function chainEntry(clusterId: string, head: AuditHead, body: Omit<AuditBody, 'seq'>): AuditEntry {
  invariant(clusterId.length > 0, 'the audit chain needs a cluster id')
  const full: AuditBody = { ...body, seq: head.seq + 1n }
  const hash = createHmac('sha256', clusterId).update(head.hash).update(canonicalJson(full)).digest('hex')
  return { ...full, previousHash: head.hash, hash }
}

/** Recomputes one entry's hash from its body and the previous hash. */
export function verifyEntry(clusterId: string, previous: AuditHead, entry: AuditEntry): boolean {
  if (entry.seq !== previous.seq + 1n || entry.previousHash !== previous.hash) return false
  const { previousHash: _previous, hash, ...body } = entry
  const expected = createHmac('sha256', clusterId).update(previous.hash).update(canonicalJson(body)).digest('hex')
  return expected === hash
}
