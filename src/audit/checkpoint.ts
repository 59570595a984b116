import { invariant } from '../domain/index.ts'
import type { AuditHead } from './chain.ts'
import type { NoteSigner, NoteVerifier } from './note.ts'
import { NoteError, noteBytesMax, noteText, openNote, signNote } from './note.ts'

/**
 * A signed checkpoint of the audit chain, in the C2SP `tlog-checkpoint` note
 * format (https://c2sp.org/tlog-checkpoint):
 *
 *   <origin>\n                       tally/<cluster id>/audit
 *   <tree size>\n                    the chain's length: the head's seq, decimal
 *   <root hash, base64>\n            the head entry's hash (32 bytes)
 *   \n
 *   — <key name> <base64(key hash ‖ Ed25519 signature)>\n
 *
 * The "root hash" is the head of a hash chain, not an RFC 6962 Merkle root:
 * it commits to every entry before it just the same, but proving that one
 * entry is in the chain means replaying the chain (which `tally check` does).
 */
export interface AuditCheckpoint {
  readonly origin: string
  readonly size: bigint
  /** The chain head's hash, hex (as the chain stores it). */
  readonly hash: string
}

/** The origin line: names the log (one cluster's audit chain) the checkpoint is about. */
export function checkpointOrigin(clusterId: string): string {
  invariant(clusterId.length > 0 && !/[\s+]/.test(clusterId), 'a cluster id makes an origin line (no spaces, no +)')
  return `tally/${clusterId}/audit`
}

export function checkpointText(origin: string, head: AuditHead): string {
  invariant(head.seq > 0n, 'a checkpoint covers at least one entry')
  invariant(/^[0-9a-f]{64}$/.test(head.hash), 'a chain hash is 32 bytes of hex')
  return `${origin}\n${head.seq.toString()}\n${Buffer.from(head.hash, 'hex').toString('base64')}\n`
}

export function signCheckpoint(origin: string, head: AuditHead, signer: NoteSigner): string {
  return signNote(checkpointText(origin, head), [signer])
}

/** The claims of a checkpoint note's text; extension lines after the third are allowed and ignored (as the format says). */
export function parseCheckpointText(text: string): AuditCheckpoint {
  const lines = text.split('\n')
  const [origin, size, hash] = lines
  if (lines.length < 4 || origin === undefined || size === undefined || hash === undefined || origin === '') {
    throw new NoteError('not a checkpoint: expected an origin, a tree size and a root hash, one per line')
  }
  if (!/^(0|[1-9][0-9]{0,19})$/.test(size) || BigInt(size) > 0xffff_ffff_ffff_ffffn) throw new NoteError(`not a checkpoint: tree size ${JSON.stringify(size.slice(0, 40))} is not a decimal integer`)
  if (!/^[A-Za-z0-9+/]{43}=$/.test(hash)) throw new NoteError('not a checkpoint: the root hash is not 32 bytes of base64')
  return { origin, size: BigInt(size), hash: Buffer.from(hash, 'base64').toString('hex') }
}

/** Verifies a checkpoint note with the trusted keys; throws `NoteError` saying why it is refused. */
export function openCheckpoint(note: string, verifiers: readonly NoteVerifier[]): AuditCheckpoint & { readonly verifiedBy: readonly NoteVerifier[] } {
  const opened = openNote(note, verifiers)
  return { ...parseCheckpointText(opened.text), verifiedBy: opened.verifiedBy }
}

/** A checkpoint's claims without judging its signatures (for a store's rows when no key is given). */
export function readCheckpoint(note: string): AuditCheckpoint {
  return parseCheckpointText(noteText(note))
}

/** Largest file of checkpoints `splitCheckpointNotes` reads (about 100 000 checkpoints). */
export const checkpointFileBytesMax = 64 * 1024 * 1024

/**
 * The notes of a file where checkpoints were appended one after another
 * (a blank line between two notes is allowed). Unambiguous: a note's text
 * lines never start with the signature dash, and its signature lines always do.
 */
export function splitCheckpointNotes(file: string): string[] {
  invariant(file.length <= checkpointFileBytesMax, 'a checkpoint file is bounded')
  const notes: string[] = []
  let text: string[] = []
  let signatures: string[] = []
  const finish = (): void => {
    if (text.length === 0 && signatures.length === 0) return
    if (signatures.length === 0) throw new NoteError(`a checkpoint without signatures: ${JSON.stringify(text.join('\n').slice(0, 200))}`)
    const note = `${text.join('\n')}\n\n${signatures.join('\n')}\n`
    if (note.length > noteBytesMax) throw new NoteError('a checkpoint note is too long')
    notes.push(note)
    text = []
    signatures = []
  }
  const lines = file.split('\n')
  if (lines.at(-1) === '') lines.pop()
  for (const line of lines) {
    if (line.startsWith('\u2014 ')) signatures.push(line)
    else if (line === '') {
      if (signatures.length > 0) finish()
    } else {
      if (signatures.length > 0) finish()
      text.push(line)
    }
  }
  finish()
  return notes
}
