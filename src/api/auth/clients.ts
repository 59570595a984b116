import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { promisify } from 'node:util'
import { parseLedgerName } from '../../domain/index.ts'

/** Formance's scope names: reads, writes, and ledger creation plus operator routes. */
export const scopeNames = ['ledger:read', 'ledger:write', 'ledger:admin'] as const
export type Scope = (typeof scopeNames)[number]

const scopeSet: ReadonlySet<string> = new Set(scopeNames)

export function isScope(value: string): value is Scope {
  return scopeSet.has(value)
}

/** One API client of `--auth-clients`: never its secret, only a salted scrypt hash of it. */
export interface ApiClient {
  readonly id: string
  readonly secretHash: string
  readonly scopes: readonly Scope[]
  /** The ledgers it may touch; undefined: every ledger. */
  readonly ledgers: readonly string[] | undefined
}

export const clientsFileBytesMax = 1024 * 1024
export const clientsMax = 10_000
const clientIdPattern = /^[A-Za-z0-9._-]{1,128}$/
const scryptCost = { N: 16_384, r: 8, p: 1 } as const
const saltBytes = 16
const hashBytes = 32
const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>

/** `scrypt$N$r$p$salt$hash` (base64url): what a clients file stores instead of a secret. */
export async function hashClientSecret(secret: string): Promise<string> {
  const salt = randomBytes(saltBytes)
  const hash = await scryptAsync(secret, salt, hashBytes, { ...scryptCost, maxmem: 64 * 1024 * 1024 })
  return `scrypt$${scryptCost.N}$${scryptCost.r}$${scryptCost.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`
}

interface ParsedHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly hash: Buffer
}

function parseSecretHash(text: string, where: string): ParsedHash {
  const match = /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,128})\$([A-Za-z0-9_-]{16,128})$/.exec(text)
  if (match === null) throw new Error(`${where}: secretHash must be scrypt$N$r$p$salt$hash (tally auth-client makes one)`)
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])]
  // Bounded cost: a hostile file cannot make each token request burn seconds or gigabytes.
  if (N < 1024 || N > 1_048_576 || (N & (N - 1)) !== 0 || r < 1 || r > 32 || p < 1 || p > 16) throw new Error(`${where}: scrypt parameters out of range`)
  return { N, r, p, salt: Buffer.from(match[4] as string, 'base64url'), hash: Buffer.from(match[5] as string, 'base64url') }
}

/** Constant-time check of a presented secret against a stored hash. */
export async function secretMatches(secret: string, secretHash: string): Promise<boolean> {
  const parsed = parseSecretHash(secretHash, 'secret hash')
  const computed = await scryptAsync(secret, parsed.salt, parsed.hash.length, { N: parsed.N, r: parsed.r, p: parsed.p, maxmem: 256 * parsed.N * parsed.r + 1024 * 1024 })
  return computed.length === parsed.hash.length && timingSafeEqual(computed, parsed.hash)
}

/**
 * Reads `--auth-clients`: `{"clients": [{"id", "secretHash", "scopes", "ledgers"?}]}`.
 * Refuses a file holding anything that looks like a plain secret.
 */
export function loadApiClients(file: string): ReadonlyMap<string, ApiClient> {
  const size = statSync(file).size
  if (size > clientsFileBytesMax) throw new Error(`--auth-clients: ${file} is larger than ${clientsFileBytesMax} bytes`)
  let document: unknown
  try {
    document = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new Error(`--auth-clients: ${file} is not JSON: ${(error as Error).message}`)
  }
  return parseApiClients(document, file)
}

export function parseApiClients(document: unknown, where: string): ReadonlyMap<string, ApiClient> {
  if (!isRecord(document) || !Array.isArray(document.clients)) throw new Error(`${where}: expected {"clients": [...]}`)
  if (document.clients.length > clientsMax) throw new Error(`${where}: more than ${clientsMax} clients`)
  const clients = new Map<string, ApiClient>()
  document.clients.forEach((entry: unknown, position: number) => {
    const at = `${where}: clients[${position}]`
    if (!isRecord(entry)) throw new Error(`${at}: expected an object`)
    const known = new Set(['id', 'secretHash', 'scopes', 'ledgers'])
    for (const key of Object.keys(entry)) if (!known.has(key)) throw new Error(`${at}: unknown field ${JSON.stringify(key)} (a clients file holds secret hashes, never secrets)`)
    const { id, secretHash, scopes, ledgers } = entry
    if (typeof id !== 'string' || !clientIdPattern.test(id)) throw new Error(`${at}: id must match ${clientIdPattern.source}`)
    if (clients.has(id)) throw new Error(`${at}: client ${id} appears twice`)
    if (typeof secretHash !== 'string') throw new Error(`${at}: secretHash is required`)
    parseSecretHash(secretHash, at)
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((scope): scope is Scope => typeof scope === 'string' && isScope(scope))) {
      throw new Error(`${at}: scopes must be a non-empty list of ${scopeNames.join(', ')}`)
    }
    let allowed: string[] | undefined
    if (ledgers !== undefined) {
      if (!Array.isArray(ledgers) || ledgers.length === 0 || ledgers.length > 1000) throw new Error(`${at}: ledgers must be a list of 1 to 1000 ledger names`)
      allowed = ledgers.map((ledger: unknown) => {
        if (typeof ledger !== 'string') throw new Error(`${at}: ledgers must be ledger names`)
        parseLedgerName(ledger)
        return ledger
      })
    }
    clients.set(id, { id, secretHash, scopes: [...new Set(scopes)], ledgers: allowed })
  })
  return clients
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
