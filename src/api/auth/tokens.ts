import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { SignJWT, calculateJwkThumbprint, createRemoteJWKSet, decodeJwt, exportJWK, jwtVerify } from 'jose'
import type { JWK, JWTPayload } from 'jose'
import { isScope } from './clients.ts'
import type { ApiClient, Scope } from './clients.ts'

/** What a verified token grants: its subject, scopes and, when restricted, ledgers. */
export interface Grant {
  readonly subject: string
  readonly scopes: ReadonlySet<Scope>
  /** undefined: every ledger. */
  readonly ledgers: ReadonlySet<string> | undefined
}

/** Why a token was refused: said in the 401, never with the token itself. */
export class TokenRefused extends Error {
  override readonly name = 'TokenRefused'
}

export const tokenSecondsDefault = 300
export const builtInIssuerDefault = 'tally'
export const audienceDefault = 'tally'
/** Token bytes beyond this are refused before any parsing. */
export const tokenBytesMax = 8 * 1024

/** The built-in issuer's Ed25519 key: from a PKCS#8 PEM file, or made at start (tokens then die with the process). */
export class SigningKey {
  private constructor(
    readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
    readonly publicJwk: JWK,
    readonly keyId: string,
  ) {}

  static async generate(): Promise<SigningKey> {
    return SigningKey.of(generateKeyPairSync('ed25519').privateKey)
  }

  static async fromFile(file: string): Promise<SigningKey> {
    const privateKey = createPrivateKey(readFileSync(file))
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`--auth-signing-key: ${file} is not an Ed25519 private key (openssl genpkey -algorithm ed25519)`)
    return SigningKey.of(privateKey)
  }

  private static async of(privateKey: KeyObject): Promise<SigningKey> {
    const publicKey = createPublicKey(privateKey)
    const publicJwk = await exportJWK(publicKey)
    const keyId = await calculateJwkThumbprint(publicJwk)
    return new SigningKey(privateKey, publicKey, { ...publicJwk, kid: keyId, alg: 'EdDSA', use: 'sig' }, keyId)
  }
}

export interface TokenSettings {
  /** The `iss` of tokens Tally issues. */
  readonly issuer: string
  /** The `aud` every accepted token must carry (Tally's own and the external issuer's). */
  readonly audience: string
  readonly tokenSeconds: number
  /** An OpenID Connect issuer whose tokens are also trusted (JWKS from its discovery document). */
  readonly externalIssuer?: string
  /** After a JWKS fetch, no other for this long, even for an unknown key id (default 30 s). */
  readonly externalKeysCooldownMs?: number
}

/** Signs short-lived access tokens for API clients (the OAuth2 client-credentials grant). */
export async function issueToken(key: SigningKey, settings: TokenSettings, client: ApiClient, nowSeconds: number): Promise<{ token: string; scopes: readonly Scope[] }> {
  const claims: JWTPayload = { scope: client.scopes.join(' '), ...(client.ledgers === undefined ? {} : { ledgers: [...client.ledgers] }) }
  const token = await new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', kid: key.keyId, typ: 'JWT' })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(client.id)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + settings.tokenSeconds)
    .setJti(randomUUID())
    .sign(key.privateKey)
  return { token, scopes: client.scopes }
}

/** An OpenID Connect discovery document is a few KiB; a larger answer is refused. */
const discoveryBytesMax = 256 * 1024
const externalAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA']
const clockToleranceSeconds = 5

/**
 * Verifies bearer tokens: Tally's own (its Ed25519 key, EdDSA only) and,
 * when configured, an external issuer's (keys from its JWKS, fetched on
 * first use, cached, fetched again when a token names an unknown key id:
 * that is how the issuer's key rotation reaches Tally). `alg: none` and
 * every algorithm outside the list are refused by jose.
 */
export class TokenVerifier {
  private externalKeys: ReturnType<typeof createRemoteJWKSet> | undefined
  private discovery: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined
  private readonly verified: VerifiedTokens

  /** `clockMs`: what jose and the kept grants read the time from (tests move it). */
  constructor(
    private readonly key: SigningKey,
    private readonly settings: TokenSettings,
    private readonly clockMs: () => number = Date.now,
    verifiedBytesMax: number = verifiedTokenBytesMaxDefault,
  ) {
    this.verified = new VerifiedTokens(verifiedBytesMax)
  }

  /**
   * The grant of a token of the built-in issuer that `verify` accepted
   * before and that is still within its time bounds: no signature check and
   * no promise (an Ed25519 verification through jose costs ~150 µs of CPU,
   * more than a whole read). Undefined otherwise: `verify` decides.
   */
  keptGrant(token: string): Grant | undefined {
    return this.verified.get(token, epochSeconds(this.clockMs()))
  }

  async verify(token: string): Promise<Grant> {
    if (token.length > tokenBytesMax) throw new TokenRefused('token too long')
    const nowMs = this.clockMs()
    const kept = this.verified.get(token, epochSeconds(nowMs))
    if (kept !== undefined) return kept
    let issuer: unknown
    try {
      issuer = decodeJwt(token).iss
    } catch {
      throw new TokenRefused('malformed token')
    }
    try {
      if (issuer === this.settings.issuer) {
        const { payload } = await jwtVerify(token, this.key.publicKey, {
          issuer: this.settings.issuer,
          audience: this.settings.audience,
          algorithms: ['EdDSA'],
          clockTolerance: clockToleranceSeconds,
          requiredClaims: ['exp', 'sub'],
          currentDate: new Date(nowMs),
        })
        const grant = grantOf(payload)
        // The built-in key never changes while the process runs, so a token it verified stays verified until its time bounds pass.
        this.verified.put(token, grant, payload.exp as number, payload.nbf)
        return grant
      }
      // Not kept: the issuer's keys rotate, and a key it withdraws must stop its tokens at the next key fetch.
      if (this.settings.externalIssuer !== undefined && issuer === this.settings.externalIssuer) {
        const keys = await this.externalKeySet()
        const { payload } = await jwtVerify(token, keys, {
          issuer: this.settings.externalIssuer,
          audience: this.settings.audience,
          algorithms: externalAlgorithms,
          clockTolerance: clockToleranceSeconds,
          requiredClaims: ['exp', 'sub'],
          currentDate: new Date(nowMs),
        })
        return grantOf(payload)
      }
    } catch (error) {
      if (error instanceof TokenRefused) throw error
      throw new TokenRefused(refusalOf(error))
    }
    throw new TokenRefused('token from an issuer this server does not trust')
  }

  /** OpenID Connect discovery, once; a failure is retried at the next token. */
  private externalKeySet(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.externalKeys !== undefined) return Promise.resolve(this.externalKeys)
    const issuer = this.settings.externalIssuer as string
    this.discovery ??= discoverKeys(issuer, this.settings.externalKeysCooldownMs ?? 30_000).then(
      (keys) => (this.externalKeys = keys),
      (error: unknown) => {
        this.discovery = undefined
        throw new TokenRefused(`the issuer's keys could not be fetched: ${error instanceof Error ? error.message : String(error)}`)
      },
    )
    return this.discovery
  }
}

async function discoverKeys(issuer: string, cooldownMs: number): Promise<ReturnType<typeof createRemoteJWKSet>> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
  const response = await fetch(url, { signal: AbortSignal.timeout(5000) })
  if (!response.ok) throw new Error(`${url} answered ${response.status}`)
  const text = await response.text()
  if (text.length > discoveryBytesMax) throw new Error(`${url} is larger than ${discoveryBytesMax} bytes`)
  const document = JSON.parse(text) as { issuer?: unknown; jwks_uri?: unknown }
  if (document.issuer !== issuer) throw new Error(`${url} names issuer ${JSON.stringify(document.issuer)}, not ${issuer}`)
  if (typeof document.jwks_uri !== 'string') throw new Error(`${url} has no jwks_uri`)
  // jose caches the key set, refetches on an unknown kid (rotation) at most once per cooldown, and refreshes after 10 min.
  return createRemoteJWKSet(new URL(document.jwks_uri), { cooldownDuration: cooldownMs, cacheMaxAge: 600_000, timeoutDuration: 5000 })
}

/** Whole seconds since the epoch, as jose reads a `Date` for its claim checks. */
function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000)
}

/** Room for tokens kept verified: at ~0.5–1 KiB a token, some thousands of clients' live tokens. */
export const verifiedTokenBytesMaxDefault = 4 * 1024 * 1024
/** Per kept token beyond its text: the map slot, the entry, the grant's sets. */
const verifiedEntryOverheadBytes = 256

interface VerifiedToken {
  readonly grant: Grant
  /** `exp` and `nbf` as jose read them (`nbf` optional). */
  readonly expiresAt: number
  readonly notBefore: number | undefined
  readonly bytes: number
}

/**
 * Tokens of the built-in issuer jose verified, by their exact text (header,
 * claims and signature: any other text is verified afresh), each with its
 * grant. A kept token is served while jose would still accept it at that
 * time: `exp` after `now - tolerance` and `nbf`, if any, not after `now +
 * tolerance` (jose's own comparisons); past `exp` it is dropped and
 * `verify` answers as before. Bounded in bytes (token text, counted at two
 * bytes a character, plus an overhead each); the oldest kept go first.
 * Refusals are not kept: a stream of bad tokens would only fill the room.
 */
export class VerifiedTokens {
  private readonly entries = new Map<string, VerifiedToken>()
  private bytes = 0

  constructor(private readonly bytesMax: number) {}

  get(token: string, nowSeconds: number): Grant | undefined {
    const entry = this.entries.get(token)
    if (entry === undefined) return undefined
    if (entry.expiresAt <= nowSeconds - clockToleranceSeconds) {
      this.remove(token, entry)
      return undefined
    }
    if (entry.notBefore !== undefined && entry.notBefore > nowSeconds + clockToleranceSeconds) return undefined
    return entry.grant
  }

  put(token: string, grant: Grant, expiresAt: number, notBefore: number | undefined): void {
    const bytes = verifiedEntryOverheadBytes + 2 * token.length
    if (bytes > this.bytesMax) return
    const previous = this.entries.get(token)
    if (previous !== undefined) this.remove(token, previous)
    this.entries.set(token, { grant, expiresAt, notBefore, bytes })
    this.bytes += bytes
    for (const [oldest, entry] of this.entries) {
      if (this.bytes <= this.bytesMax) break
      this.remove(oldest, entry)
    }
  }

  get size(): number {
    return this.entries.size
  }

  private remove(token: string, entry: VerifiedToken): void {
    this.entries.delete(token)
    this.bytes -= entry.bytes
  }
}

function refusalOf(error: unknown): string {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : ''
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token expired'
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad signature'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `claim check failed: ${(error as Error).message}`
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'signature algorithm not allowed'
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no key of the issuer matches the token'
    default:
      return 'invalid token'
  }
}

function grantOf(payload: JWTPayload): Grant {
  const scopes = new Set<Scope>()
  const raw = payload.scope ?? payload.scp
  const names = typeof raw === 'string' ? raw.split(' ') : Array.isArray(raw) ? raw : []
  for (const name of names) if (typeof name === 'string' && isScope(name)) scopes.add(name)
  const ledgers = payload.ledgers
  if (ledgers !== undefined && (!Array.isArray(ledgers) || !ledgers.every((ledger) => typeof ledger === 'string'))) throw new TokenRefused('malformed ledgers claim')
  return { subject: String(payload.sub), scopes, ledgers: ledgers === undefined ? undefined : new Set(ledgers as string[]) }
}
