import { createHash } from 'node:crypto'
import type { Json } from '../domain/index.ts'
import { stringifyJson } from '../domain/index.ts'

/**
 * Formance v2's log hash: SHA-256 over the previous hash as a JSON string
 * line (absent for a ledger's first log) followed by the log as a JSON line
 * with `id` zeroed and `hash` null. Go's encoder escapes <, > and & in
 * strings, so we do too. The exact byte rule is pinned by the import/export
 * fixtures (issue 4).
 */
export function v2LogHash(previousHash: string, log: { type: string; data: Json; date: string; idempotencyKey?: string }): string {
  const hash = createHash('sha256')
  if (previousHash !== '') hash.update(`${goJson(previousHash)}\n`)
  const body = `{"type":${goJson(log.type)},"data":${goJson(log.data)},"date":${goJson(log.date)},"idempotencyKey":${goJson(
    log.idempotencyKey ?? '',
  )},"id":0,"hash":null}\n`
  hash.update(body)
  return hash.digest('base64')
}

function goJson(value: Json | string): string {
  return stringifyJson(value).replace(/[<>&\u2028\u2029]/g, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`)
}
