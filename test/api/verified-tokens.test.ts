import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SigningKey, TokenVerifier, issueToken } from '../../src/api/auth/tokens.ts'
import { VerifiedTokens } from '../../src/api/auth/tokens.ts'
import type { ApiClient, TokenSettings } from '../../src/api/index.ts'

const settings: TokenSettings = { issuer: 'tally', audience: 'tally', tokenSeconds: 300 }
const client = { id: 'reader', secretHash: 'unused', scopes: ['ledger:read'] } as unknown as ApiClient
/** jose's clock tolerance, the verifier's too. */
const toleranceSeconds = 5

/** A verifier whose clock the test moves (ms since the epoch). */
function verifierAt(key: SigningKey, startSeconds: number, bytesMax?: number) {
  let nowMs = startSeconds * 1000
  const verifier = new TokenVerifier(key, settings, () => nowMs, bytesMax)
  return { verifier, setSeconds: (seconds: number) => (nowMs = seconds * 1000) }
}

test('verified tokens: a token jose accepted is kept with its grant until jose would refuse it, then refused as expired', async () => {
  const key = await SigningKey.generate()
  const issuedAt = 1_900_000_000
  const { token } = await issueToken(key, settings, client, issuedAt)
  const { verifier, setSeconds } = verifierAt(key, issuedAt)
  assert.equal(verifier.keptGrant(token), undefined, 'nothing kept before the first verification')
  const grant = await verifier.verify(token)
  assert.deepEqual([...grant.scopes], ['ledger:read'])
  assert.equal(verifier.keptGrant(token), grant, 'kept once verified')
  // jose accepts while exp > now - tolerance: the last accepted second is exp + tolerance - 1.
  const expiresAt = issuedAt + settings.tokenSeconds
  setSeconds(expiresAt + toleranceSeconds - 1)
  assert.equal(verifier.keptGrant(token), grant, 'still within jose bounds')
  assert.equal(await verifier.verify(token), grant)
  setSeconds(expiresAt + toleranceSeconds)
  assert.equal(verifier.keptGrant(token), undefined, 'past exp + tolerance: not served from what was kept')
  await assert.rejects(verifier.verify(token), /token expired/)
})

test('verified tokens: kept by exact text; another signature, a tampered claim or another key is verified afresh and refused', async () => {
  const key = await SigningKey.generate()
  const now = 1_900_000_000
  const { token } = await issueToken(key, settings, client, now)
  const { verifier } = verifierAt(key, now)
  await verifier.verify(token)
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const otherSignature = (await issueToken(await SigningKey.generate(), settings, client, now)).token.split('.')[2] as string
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, scope: 'ledger:read ledger:write ledger:admin' })).toString('base64url')}.${signature}`
  for (const [name, forged] of [
    ['same claims, another signature', `${header}.${payload}.${otherSignature}`],
    ['tampered claims, the kept signature', tampered],
  ] as const) {
    assert.equal(verifier.keptGrant(forged), undefined, name)
    await assert.rejects(verifier.verify(forged), /signature/, name)
  }
  // A verifier of another key keeps nothing of this one's.
  const other = verifierAt(await SigningKey.generate(), now).verifier
  await assert.rejects(other.verify(token), /signature/)
})

test('verified tokens: bounded in bytes, the oldest kept go first; a token that does not fit is not kept', () => {
  const grant = { subject: 's', scopes: new Set<never>(), ledgers: undefined }
  const tokenOf = (i: number): string => `${'t'.repeat(1000)}${i}`
  const perToken = 256 + 2 * tokenOf(0).length
  const kept = new VerifiedTokens(perToken * 3)
  for (let i = 0; i < 5; i++) kept.put(tokenOf(i), grant, 2_000_000_000, undefined)
  assert.equal(kept.size, 3)
  assert.equal(kept.get(tokenOf(0), 0), undefined)
  assert.equal(kept.get(tokenOf(1), 0), undefined)
  for (let i = 2; i < 5; i++) assert.equal(kept.get(tokenOf(i), 0), grant)
  kept.put('x'.repeat(perToken * 2), grant, 2_000_000_000, undefined)
  assert.equal(kept.size, 3, 'an entry over the whole room is not kept')
})

test('verified tokens: a token not yet valid (nbf ahead beyond the tolerance) is not served from what was kept', () => {
  const grant = { subject: 's', scopes: new Set<never>(), ledgers: undefined }
  const kept = new VerifiedTokens(1 << 20)
  kept.put('token', grant, 2_000, 1_000)
  assert.equal(kept.get('token', 1_000 - toleranceSeconds - 1), undefined)
  assert.equal(kept.get('token', 1_000 - toleranceSeconds), grant)
})
