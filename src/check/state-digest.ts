import { hash } from 'node:crypto'

/**
 * The digest of a store's rows (replicas compare it: equal digests, the same
 * rows byte for byte). A multiset hash — the sum modulo 2^128 of each row's
 * hash — so it does not depend on the order rows are read or written in, and
 * a store can keep it up to date row by row (`rowDigestTerm`, `addTerm`,
 * `removeTerm`). One function, used wherever states are compared.
 */
export const STATE_DIGEST_MODULUS = 1n << 128n

/**
 * A row's term of the digest: the first 128 bits of
 * SHA-256(key length as u32 BE ‖ key ‖ value); the length prefix keeps the
 * key/value split unambiguous.
 */
export function rowDigestTerm(key: Buffer, value: Buffer): bigint {
  const length = Buffer.alloc(4)
  length.writeUInt32BE(key.length)
  return BigInt(`0x${hash('sha256', Buffer.concat([length, key, value]), 'hex').slice(0, 32)}`)
}

export function addTerm(digest: bigint, term: bigint): bigint {
  return (digest + term) % STATE_DIGEST_MODULUS
}

export function removeTerm(digest: bigint, term: bigint): bigint {
  return (digest - term + STATE_DIGEST_MODULUS) % STATE_DIGEST_MODULUS
}

/** The digest of a set of rows, recomputed whole. */
export function stateDigest(rows: Iterable<readonly [Buffer, Buffer]>): bigint {
  let digest = 0n
  for (const [key, value] of rows) digest = addTerm(digest, rowDigestTerm(key, value))
  return digest
}
