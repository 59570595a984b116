import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

/**
 * C2SP signed notes (https://c2sp.org/signed-note), Ed25519 only: the text
 * (UTF-8 lines, each ending in a newline), a blank line, then one line per
 * signature — `— <key name> <base64(key hash ‖ signature)>` — where the key
 * hash is the first 4 bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)
 * and the signature covers the text, final newline included.
 *
 * Keys travel in the Go `sumdb/note` text forms, so standard tooling reads them:
 *   verifier key: `<name>+<key hash, 8 hex>+<base64(0x01 ‖ public key)>`
 *   signer key:   `PRIVATE+KEY+<name>+<key hash, 8 hex>+<base64(0x01 ‖ private seed)>`
 */

const ALGORITHM_ED25519 = 0x01
const SIGNATURE_PREFIX = '\u2014 '
/** Go's `note.Open` cap; a note with more lines is refused. */
export const noteSignaturesMax = 100
/** Far above a checkpoint (three short lines and a few signatures); bounds what a reader parses. */
export const noteBytesMax = 64 * 1024

/** Why a key or a note was refused: operator input, so the message says what is wrong. */
export class NoteError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'NoteError'
  }
}

export interface NoteVerifier {
  readonly name: string
  /** The 4-byte key hash, big-endian. */
  readonly keyHash: number
  readonly publicKey: KeyObject
  /** The verifier key's text form. */
  readonly text: string
}

export interface NoteSigner {
  readonly name: string
  readonly keyHash: number
  readonly privateKey: KeyObject
  readonly verifier: NoteVerifier
}

/** A key name: non-empty UTF-8 without Unicode white space or `+` (the separator of the key forms). */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u.test(name) && isWellFormed(name)
}

export function keyHashOf(name: string, publicKey: Buffer): number {
  const digest = createHash('sha256').update(name, 'utf8').update('\n').update(Buffer.of(ALGORITHM_ED25519)).update(publicKey).digest()
  return digest.readUInt32BE(0)
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

function rawPublicKey(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' })
  return der.subarray(der.length - 32)
}

function hex8(value: number): string {
  return value.toString(16).padStart(8, '0')
}

/** Strict standard base64 (RFC 4648 §4, padded): Buffer.from would skip what it does not understand. */
function decodeBase64(text: string, what: string): Buffer {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) throw new NoteError(`${what} is not standard base64`)
  return Buffer.from(text, 'base64')
}

function verifierFromRaw(name: string, publicKey: Buffer): NoteVerifier {
  const keyHash = keyHashOf(name, publicKey)
  return {
    name,
    keyHash,
    publicKey: createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' }),
    text: `${name}+${hex8(keyHash)}+${Buffer.concat([Buffer.of(ALGORITHM_ED25519), publicKey]).toString('base64')}`,
  }
}

/** Parses `<name>+<hash>+<base64(0x01 ‖ key)>`; the hash must be the one the name and key give. */
function parseKeyParts(text: string, what: string): { name: string; key: Buffer } {
  const first = text.indexOf('+')
  const second = text.indexOf('+', first + 1)
  if (first <= 0 || second < 0) throw new NoteError(`${what}: expected <name>+<key hash>+<key>`)
  const name = text.slice(0, first)
  const hash = text.slice(first + 1, second)
  if (!isValidKeyName(name)) throw new NoteError(`${what}: ${JSON.stringify(name)} is not a key name (no spaces, no +)`)
  if (!/^[0-9a-f]{8}$/i.test(hash)) throw new NoteError(`${what}: the key hash must be 8 hex digits`)
  const bytes = decodeBase64(text.slice(second + 1), what)
  if (bytes.length !== 33 || bytes[0] !== ALGORITHM_ED25519) throw new NoteError(`${what}: not an Ed25519 key (0x01 followed by 32 bytes)`)
  return { name, key: bytes.subarray(1) }
}

export function parseVerifierKey(text: string): NoteVerifier {
  const { name, key } = parseKeyParts(text.trim(), 'verifier key')
  const verifier = verifierFromRaw(name, key)
  if (verifier.text.split('+')[1] !== text.trim().split('+')[1]?.toLowerCase()) throw new NoteError('verifier key: its key hash does not match its name and key')
  return verifier
}

export function parseSignerKey(text: string): NoteSigner {
  const trimmed = text.trim()
  if (!trimmed.startsWith('PRIVATE+KEY+')) throw new NoteError('signer key: expected PRIVATE+KEY+<name>+<key hash>+<key>')
  const { name, key: seed } = parseKeyParts(trimmed.slice('PRIVATE+KEY+'.length), 'signer key')
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const verifier = verifierFromRaw(name, rawPublicKey(createPublicKey(privateKey)))
  if (hex8(verifier.keyHash) !== trimmed.split('+')[3]?.toLowerCase()) throw new NoteError('signer key: its key hash does not match its name and key')
  return { name, keyHash: verifier.keyHash, privateKey, verifier }
}

/** The signer key text of a private seed (32 bytes); key generation (randomness) is the caller's. */
export function formatSignerKey(name: string, seed: Buffer): string {
  if (!isValidKeyName(name)) throw new NoteError(`${JSON.stringify(name)} is not a key name (no spaces, no +)`)
  if (seed.length !== 32) throw new NoteError('an Ed25519 seed is 32 bytes')
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  const keyHash = keyHashOf(name, rawPublicKey(createPublicKey(privateKey)))
  return `PRIVATE+KEY+${name}+${hex8(keyHash)}+${Buffer.concat([Buffer.of(ALGORITHM_ED25519), seed]).toString('base64')}`
}

/** The private seed of an Ed25519 key object (to write a generated key in the signer form). */
export function seedOf(privateKey: KeyObject): Buffer {
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  return der.subarray(der.length - 32)
}

/** No lone surrogate: the text round-trips through UTF-8 unchanged. */
function isWellFormed(text: string): boolean {
  return !/\p{Surrogate}/u.test(text)
}

function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('a note text ends with a newline')
  if (text.includes('\n\n') || text.startsWith('\n')) throw new NoteError('a note text has no blank line')
  if (!isWellFormed(text)) throw new NoteError('a note text is well-formed UTF-8')
}

/** The signed note: the text, a blank line, one signature line per signer (deterministic: Ed25519). */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  checkText(text)
  const lines = signers.map((signer) => {
    const signature = sign(null, Buffer.from(text, 'utf8'), signer.privateKey)
    const hash = Buffer.alloc(4)
    hash.writeUInt32BE(signer.keyHash)
    return `${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([hash, signature]).toString('base64')}\n`
  })
  return `${text}\n${lines.join('')}`
}

export interface OpenedNote {
  readonly text: string
  /** The verifiers whose signatures verified. */
  readonly verifiedBy: readonly NoteVerifier[]
}

/**
 * Opens a note against trusted verifiers (Go's `note.Open` rules): the text
 * ends at the last blank line; every signature line must be well formed;
 * a line whose name and key hash match a verifier must verify, or the whole
 * note is refused; lines of unknown keys are ignored; at least one known
 * signature must verify.
 */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  if (Buffer.byteLength(note, 'utf8') > noteBytesMax) throw new NoteError(`a note is at most ${noteBytesMax} bytes`)
  const split = note.lastIndexOf('\n\n')
  if (split < 0) throw new NoteError('not a signed note: no blank line before the signatures')
  const text = note.slice(0, split + 1)
  checkText(text)
  const signatures = note.slice(split + 2)
  if (!signatures.endsWith('\n')) throw new NoteError('not a signed note: the signatures do not end with a newline')
  const lines = signatures.slice(0, -1).split('\n')
  if (lines.length > noteSignaturesMax) throw new NoteError(`a note has at most ${noteSignaturesMax} signatures`)
  const verifiedBy: NoteVerifier[] = []
  for (const line of lines) {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line)
    if (match === null || !isValidKeyName(match[1] as string)) throw new NoteError(`malformed signature line ${JSON.stringify(line.slice(0, 200))}`)
    const bytes = decodeBase64(match[2] as string, 'a signature')
    if (bytes.length < 5) throw new NoteError('a signature is a key hash and at least one byte')
    const keyHash = bytes.readUInt32BE(0)
    const verifier = verifiers.find((candidate) => candidate.name === match[1] && candidate.keyHash === keyHash)
    if (verifier === undefined) continue
    if (!verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, bytes.subarray(4))) {
      throw new NoteError(`the signature of ${verifier.name} does not verify`)
    }
    if (!verifiedBy.includes(verifier)) verifiedBy.push(verifier)
  }
  if (verifiedBy.length === 0) throw new NoteError('no signature by a given verifier key')
  return { text, verifiedBy }
}

/** The text of a note without checking any signature (to read a note's claims before judging them). */
export function noteText(note: string): string {
  const split = note.lastIndexOf('\n\n')
  if (split < 0) throw new NoteError('not a signed note: no blank line before the signatures')
  return note.slice(0, split + 1)
}
