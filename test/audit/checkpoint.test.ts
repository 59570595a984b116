import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import {
  NoteError,
  checkpointOrigin,
  formatSignerKey,
  openCheckpoint,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  readCheckpoint,
  seedOf,
  signCheckpoint,
  signNote,
  splitCheckpointNotes,
} from '../../src/audit/index.ts'

// The example of the reference implementation of signed notes (Go's golang.org/x/mod/sumdb/note documentation):
// a test vector, so that our notes are byte for byte what every other implementation reads.
const REFERENCE_SIGNER = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz'
const REFERENCE_VERIFIER = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'
const REFERENCE_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
const REFERENCE_NOTE = `${REFERENCE_TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`

function newSigner(name: string) {
  const { privateKey } = generateKeyPairSync('ed25519')
  return parseSignerKey(formatSignerKey(name, seedOf(privateKey)))
}

test('signed note: the reference key hash, verifier key and signature, byte for byte', () => {
  const signer = parseSignerKey(REFERENCE_SIGNER)
  assert.equal(signer.keyHash, 0xc74f20a3)
  assert.equal(signer.verifier.text, REFERENCE_VERIFIER)
  assert.equal(signNote(REFERENCE_TEXT, [signer]), REFERENCE_NOTE)
  const verifier = parseVerifierKey(REFERENCE_VERIFIER)
  assert.equal(openNote(REFERENCE_NOTE, [verifier]).text, REFERENCE_TEXT)
  assert.equal(formatSignerKey('PeterNeumann', seedOf(signer.privateKey)), REFERENCE_SIGNER)
})

test('signed note: altered text, altered signature, a wrong key and malformed keys are refused', () => {
  const verifier = parseVerifierKey(REFERENCE_VERIFIER)
  assert.throws(() => openNote(REFERENCE_NOTE.replace('answer', 'Answer'), [verifier]), /does not verify/)
  assert.throws(() => openNote(REFERENCE_NOTE.replace('x08go', 'x08gp'), [verifier]), NoteError)
  assert.throws(() => openNote(REFERENCE_NOTE, [newSigner('PeterNeumann').verifier]), /no signature by a given verifier key/)
  assert.throws(() => openNote(REFERENCE_NOTE.replace('\u2014', '-'), [verifier]), /malformed signature line/)
  assert.throws(() => openNote(REFERENCE_TEXT, [verifier]), NoteError)
  assert.throws(() => parseVerifierKey(REFERENCE_VERIFIER.replace('c74f20a3', 'c74f20a4')), /key hash does not match/)
  assert.throws(() => parseVerifierKey(REFERENCE_VERIFIER.replace('Peter', 'Pe ter')), /not a key name/)
  assert.throws(() => parseVerifierKey(REFERENCE_VERIFIER.slice(0, -4)), NoteError)
  assert.throws(() => parseSignerKey(REFERENCE_VERIFIER), /PRIVATE\+KEY/)
  assert.throws(() => parseSignerKey(REFERENCE_SIGNER.replace('c74f20a3', '00000000')), /key hash does not match/)
})

test('signed note: a signature of an unknown key is ignored, a second known signer verifies too', () => {
  const other = newSigner('other')
  const reference = parseSignerKey(REFERENCE_SIGNER)
  const both = signNote(REFERENCE_TEXT, [reference, other])
  assert.deepEqual(openNote(both, [reference.verifier]).verifiedBy.map((v) => v.name), ['PeterNeumann'])
  assert.deepEqual(openNote(both, [reference.verifier, other.verifier]).verifiedBy.map((v) => v.name), ['PeterNeumann', 'other'])
})

test('checkpoint: the C2SP tlog-checkpoint body (origin, size, base64 root hash), signed and opened', () => {
  const signer = newSigner('tally-audit')
  const head = { seq: 42n, hash: 'ab'.repeat(32) }
  const note = signCheckpoint(checkpointOrigin('c1'), head, signer)
  const [origin, size, root, blank, signature, end] = note.split('\n')
  assert.equal(origin, 'tally/c1/audit')
  assert.equal(size, '42')
  assert.equal(root, Buffer.from('ab'.repeat(32), 'hex').toString('base64'))
  assert.equal(blank, '')
  assert.match(signature ?? '', /^\u2014 tally-audit [A-Za-z0-9+/]{91}=$/)
  assert.equal(end, '')
  const opened = openCheckpoint(note, [signer.verifier])
  assert.deepEqual({ origin: opened.origin, size: opened.size, hash: opened.hash }, { origin: 'tally/c1/audit', size: 42n, hash: 'ab'.repeat(32) })
  assert.deepEqual(readCheckpoint(note), { origin: 'tally/c1/audit', size: 42n, hash: 'ab'.repeat(32) })
  assert.equal(signCheckpoint(checkpointOrigin('c1'), head, signer), note, 'deterministic (Ed25519)')
})

test('checkpoint: a forged size or root hash, or another key, is refused', () => {
  const signer = newSigner('tally-audit')
  const note = signCheckpoint(checkpointOrigin('c1'), { seq: 42n, hash: 'ab'.repeat(32) }, signer)
  assert.throws(() => openCheckpoint(note.replace('\n42\n', '\n43\n'), [signer.verifier]), /does not verify/)
  const root = Buffer.from('ab'.repeat(32), 'hex').toString('base64')
  assert.throws(() => openCheckpoint(note.replace(root, Buffer.from('ac'.repeat(32), 'hex').toString('base64')), [signer.verifier]), /does not verify/)
  assert.throws(() => openCheckpoint(note, [newSigner('tally-audit').verifier]), /no signature by a given verifier key/)
  const forger = newSigner('tally-audit')
  assert.throws(() => openCheckpoint(signCheckpoint(checkpointOrigin('c1'), { seq: 43n, hash: 'ab'.repeat(32) }, forger), [signer.verifier]), NoteError)
  assert.throws(() => readCheckpoint(note.replace('\n42\n', '\n042\n')), /tree size/)
})

test('checkpoint file: notes appended one after another split back into the same notes', () => {
  const signer = newSigner('tally-audit')
  const notes = [1n, 2n, 10n].map((seq) => signCheckpoint(checkpointOrigin('c1'), { seq, hash: 'cd'.repeat(32) }, signer))
  assert.deepEqual(splitCheckpointNotes(notes.join('')), notes)
  assert.deepEqual(splitCheckpointNotes(notes.join('\n')), notes)
  assert.deepEqual(splitCheckpointNotes(''), [])
  assert.throws(() => splitCheckpointNotes('tally/c1/audit\n1\n'), /without signatures/)
})
