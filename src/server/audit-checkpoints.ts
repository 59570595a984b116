import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { open } from 'node:fs/promises'
import path from 'node:path'
import type { AuditHead, NoteSigner } from '../audit/index.ts'
import { NoteError, checkpointOrigin, decodeAuditEntry, openCheckpoint, parseSignerKey, signCheckpoint } from '../audit/index.ts'
import type { Store } from '../store/index.ts'
import { Zone, auditCheckpointRowKey, auditRowKey, prefixEnd } from '../store/index.ts'

/** Audit entries between two signed checkpoints, at most. */
export const auditCheckpointEntriesDefault = 1000
/** Longest time an applied audit entry waits for a signed checkpoint. */
export const auditCheckpointIntervalMsDefault = 10_000
/** A signer key file is one line; anything much larger is not one. */
const signerKeyFileBytesMax = 4096

export interface AuditCheckpointSettings {
  readonly signer: NoteSigner
  readonly entriesMax?: number
  readonly intervalMs?: number
  /** A file outside the data directory each checkpoint is also appended to (and fsynced). */
  readonly appendFile?: string
}

/** The signing key or the checkpoint file is unusable: said in one line, the server does not start. */
export class AuditKeyError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AuditKeyError'
  }
}

/**
 * The stored chain disagrees with the last checkpoint this very key signed:
 * someone rewrote history while the server was down. Signing on would
 * vouch for the rewritten chain, so the server does not start.
 */
export class AuditHistoryRewritten extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'AuditHistoryRewritten'
  }
}

/**
 * `true` when `file` lies inside `directory` (following symbolic links of
 * whatever part already exists): a key or checkpoint copy kept there is in
 * the hands of anyone who holds the data directory.
 */
export function isInside(directory: string, file: string): boolean {
  const real = (target: string): string => {
    const missing: string[] = []
    let existing = path.resolve(target)
    while (!existsSync(existing)) {
      missing.unshift(path.basename(existing))
      const parent = path.dirname(existing)
      if (parent === existing) break
      existing = parent
    }
    return path.join(realpathSync(existing), ...missing)
  }
  const relative = path.relative(real(directory), real(file))
  return relative === '' || (!relative.startsWith(`..${path.sep}`) && relative !== '..' && !path.isAbsolute(relative))
}

/**
 * Loads the signing key for `tally serve --audit-key FILE`, refusing a key
 * kept inside the data directory (the store's holder would hold the key
 * too, and checkpoints would prove nothing against them) and a checkpoint
 * file kept there (for the same reason).
 */
export function loadAuditCheckpointSettings(options: {
  readonly dataDirectory: string
  readonly keyFile: string
  readonly appendFile?: string | undefined
  readonly entriesMax?: number | undefined
  readonly intervalMs?: number | undefined
}): AuditCheckpointSettings {
  const keyFile = path.resolve(options.keyFile)
  if (isInside(options.dataDirectory, keyFile)) {
    throw new AuditKeyError(`the audit key ${keyFile} lies inside the data directory ${options.dataDirectory}: keep it elsewhere, or a holder of the store could sign forged checkpoints`)
  }
  if (options.appendFile !== undefined && isInside(options.dataDirectory, options.appendFile)) {
    throw new AuditKeyError(`the checkpoint file ${path.resolve(options.appendFile)} lies inside the data directory: keep it elsewhere, or a holder of the store could rewrite it with the store`)
  }
  let text: string
  try {
    const bytes = readFileSync(keyFile)
    if (bytes.length > signerKeyFileBytesMax) throw new AuditKeyError(`the audit key ${keyFile} is not a signer key (too long); generate one with tally audit-key`)
    text = bytes.toString('utf8')
  } catch (error) {
    if (error instanceof AuditKeyError) throw error
    throw new AuditKeyError(`cannot read the audit key ${keyFile}: ${(error as Error).message}`)
  }
  let signer: NoteSigner
  try {
    signer = parseSignerKey(text)
  } catch (error) {
    if (error instanceof NoteError) throw new AuditKeyError(`the audit key ${keyFile} is not a signer key (${error.message}); generate one with tally audit-key`)
    throw error
  }
  return {
    signer,
    ...(options.entriesMax === undefined ? {} : { entriesMax: options.entriesMax }),
    ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }),
    ...(options.appendFile === undefined ? {} : { appendFile: path.resolve(options.appendFile) }),
  }
}

/**
 * Signs the audit chain's head at a bounded interval: once `entriesMax`
 * entries were applied since the last checkpoint, after `intervalMs` when
 * fewer were, and at store checkpoints and shutdown (`flush`). Each note is
 * stored (zone `auditCheckpoints`, keyed by chain size), kept as the latest
 * (served at `GET /_/audit/checkpoint`) and appended to `appendFile`.
 *
 * Only heads whose store batch was written are signed (`observe` is called
 * after the write), and those entries are already durable in the WAL, so a
 * restart always reproduces the signed head (replay is deterministic).
 */
export class AuditCheckpoints {
  private readonly origin: string
  private readonly entriesMax: number
  private signedSize: bigint
  private storedHead: AuditHead
  private latestNote: string | undefined
  private writing: Promise<void> = Promise.resolve()
  private readonly timer: NodeJS.Timeout | undefined

  private constructor(
    private readonly store: Store,
    clusterId: string,
    private readonly settings: AuditCheckpointSettings,
    head: AuditHead,
    latest: { note: string; size: bigint } | undefined,
    private readonly log: (message: string) => void,
  ) {
    this.origin = checkpointOrigin(clusterId)
    this.entriesMax = settings.entriesMax ?? auditCheckpointEntriesDefault
    this.signedSize = latest?.size ?? 0n
    this.latestNote = latest?.note
    this.storedHead = head
    const intervalMs = settings.intervalMs ?? auditCheckpointIntervalMsDefault
    this.timer = setInterval(() => this.issue(), intervalMs)
    this.timer.unref()
  }

  static async open(options: {
    readonly store: Store
    readonly clusterId: string
    readonly settings: AuditCheckpointSettings
    readonly head: AuditHead
    readonly log: (message: string) => void
  }): Promise<AuditCheckpoints> {
    const prefix = Buffer.of(Zone.auditCheckpoints)
    let latest: { note: string; size: bigint } | undefined
    for await (const [key, value] of options.store.range({ gte: prefix, lt: prefixEnd(prefix), reverse: true, limit: 1 })) {
      latest = { note: value.toString('utf8'), size: key.readBigUInt64BE(1) }
    }
    if (latest !== undefined) await verifyLatest(options.store, latest, options.settings.signer, options.head, options.log)
    return new AuditCheckpoints(options.store, options.clusterId, options.settings, options.head, latest, options.log)
  }

  /** The chain head after a store batch was written; signs when `entriesMax` entries wait. */
  observe(head: AuditHead): void {
    this.storedHead = head
    if (head.seq - this.signedSize >= BigInt(this.entriesMax)) this.issue()
  }

  /** Signs the stored head if it moved, and waits until every checkpoint so far is written. */
  async flush(): Promise<void> {
    this.issue()
    await this.writing
  }

  /** The latest signed checkpoint note, if any. */
  latest(): string | undefined {
    return this.latestNote
  }

  /** Signs what is stored, then stops the timer. */
  async close(): Promise<void> {
    this.stop()
    await this.flush()
  }

  /** Stops signing (the node failed: what it stored may not be what the WAL says). */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer)
  }

  private issue(): void {
    const head = this.storedHead
    if (head.seq <= this.signedSize) return
    const note = signCheckpoint(this.origin, head, this.settings.signer)
    this.signedSize = head.seq
    this.latestNote = note
    this.writing = this.writing.then(() => this.write(head.seq, note)).catch((error: unknown) => {
      this.log(`audit: writing the checkpoint at size ${head.seq} failed: ${error instanceof Error ? error.message : String(error)}`)
    })
  }

  private async write(size: bigint, note: string): Promise<void> {
    await this.store.write([{ key: auditCheckpointRowKey(size), value: Buffer.from(note, 'utf8') }], { sync: false })
    if (this.settings.appendFile === undefined) return
    const file = await open(this.settings.appendFile, 'a', 0o644)
    try {
      await file.write(`${note}\n`)
      await file.datasync()
    } finally {
      await file.close()
    }
  }
}

/**
 * Before signing anything new: the stored chain must have, at the size of
 * the last checkpoint this key signed, exactly the signed hash. A checkpoint
 * of another key (before a rotation) or one that does not verify is only
 * logged: `tally check` judges those.
 */
async function verifyLatest(store: Store, latest: { note: string; size: bigint }, signer: NoteSigner, head: AuditHead, log: (message: string) => void): Promise<void> {
  let signed: { size: bigint; hash: string }
  try {
    signed = openCheckpoint(latest.note, [signer.verifier])
  } catch (error) {
    if (!(error instanceof NoteError)) throw error
    log(`audit: the last stored checkpoint (size ${latest.size}) is not verifiable with this key (${error.message}); tally check judges it`)
    return
  }
  if (signed.size > head.seq) {
    log(`audit: the last checkpoint (size ${signed.size}) is ahead of the chain (seq ${head.seq}): the store was rolled back; tally check --checkpoints reports it`)
    return
  }
  const row = await store.get(auditRowKey(signed.size))
  let hash: string | undefined
  try {
    hash = row === undefined ? undefined : decodeAuditEntry(row).hash
  } catch {
    hash = undefined
  }
  if (hash !== signed.hash) {
    throw new AuditHistoryRewritten(
      `the stored audit chain disagrees with the checkpoint this key signed at size ${signed.size}: history was rewritten or lost; ` +
        'refusing to sign on. Run tally check --verifier-key with this key to see what changed',
    )
  }
}
