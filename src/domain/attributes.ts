import type { AccountAddress, Asset, LedgerName } from './names.ts'
import type { Metadata } from './metadata.ts'
import type { TransactionId, TransactionRecord } from './transaction.ts'
import type { VolumesMap, Volumes } from './volumes.ts'
import { decodeMetadata } from './metadata.ts'
import { emptyKeyed, keyedChild, ownEntries } from './keyed.ts'
import type { Posting } from './posting.ts'
import { isJsonObject } from './json.ts'
import type { Json } from './json.ts'
import { packValue, packsOwnMemory, unpackObjectWithout, unpackValue } from './packed.ts'
import { InvariantViolation, invariant } from './errors.ts'
import { TRANSACTION_ROW_LAYOUT, VOLUMES_ROW_LAYOUT, decodeTransactionRow, decodeVolumesRow, encodeTransactionRow, encodeVolumesRow } from './attribute-layouts.ts'

/**
 * The state the FSM reads and writes, as attributes: each has a kind and a
 * canonical key (a string whose first character is the kind). The cache, its
 * disk mirror, the store's attribute zone and the coverage gate all speak in
 * canonical keys, so one key names one thing everywhere.
 */
export const AttributeKind = {
  volumes: 'v',
  account: 'a',
  transaction: 't',
  reference: 'r',
  ledger: 'l',
  idempotency: 'i',
  schema: 's',
  outputs: 'o',
} as const
export type AttributeKind = (typeof AttributeKind)[keyof typeof AttributeKind]

const SEPARATOR = '\u0000'

export type CanonicalKey = string & { readonly __brand: 'CanonicalKey' }

export function volumesKey(ledger: LedgerName, account: AccountAddress, asset: Asset): CanonicalKey {
  return `${keyPrefixesOf(ledger).volumes}${account}${SEPARATOR}${asset}` as CanonicalKey
}
/** Prefix of every volumes key of one account: scanned to read all its assets. */
export function volumesPrefix(ledger: LedgerName, account: AccountAddress): string {
  return `v${ledger}${SEPARATOR}${account}${SEPARATOR}`
}
export function accountKey(ledger: LedgerName, account: AccountAddress): CanonicalKey {
  return `${keyPrefixesOf(ledger).account}${account}` as CanonicalKey
}
export function accountPrefix(ledger: LedgerName): string {
  return `a${ledger}${SEPARATOR}`
}
/** Fixed-width hex keeps transactions in id order under a byte-wise scan. */
export function transactionKey(ledger: LedgerName, id: TransactionId): CanonicalKey {
  invariant(id >= 0n && id < TRANSACTION_ID_LIMIT, 'transaction id out of range')
  return `${keyPrefixesOf(ledger).transaction}${id.toString(16).padStart(16, '0')}` as CanonicalKey
}
/** Ids stop below 2^64 (a constant: `1n << 64n` in place made a bigint per key). */
const TRANSACTION_ID_LIMIT = 1n << 64n
export function transactionPrefix(ledger: LedgerName): string {
  return `t${ledger}${SEPARATOR}`
}
export function referenceKey(ledger: LedgerName, reference: string): CanonicalKey {
  return `r${ledger}${SEPARATOR}${reference}` as CanonicalKey
}
export function ledgerKey(ledger: LedgerName): CanonicalKey {
  return keyPrefixesOf(ledger).ledger
}

/** The start of a ledger's volumes, account and transaction keys, and its ledger key. */
interface KeyPrefixes {
  readonly ledger: CanonicalKey
  readonly volumes: string
  readonly account: string
  readonly transaction: string
}

/**
 * The last ledger's key prefixes, kept: a bulk plans and applies every key
 * of one ledger, and each key built from its kept prefix is two string
 * joins fewer (a string each) than one built from its parts. The text is
 * the same either way.
 */
function keyPrefixesOf(ledger: LedgerName): KeyPrefixes {
  if (ledger === lastPrefixes.of) return lastPrefixes
  // Kept as a copy of its own: the name may be a slice of a request body, which a kept slice (or
  // a prefix joined from it) would keep alive until another ledger's key is built. V8 makes no
  // slice or join of fewer than 13 characters (it copies them): a short name is copied already.
  const own = ledger.length < 13 ? ledger : Buffer.from(ledger, 'utf16le').toString('utf16le')
  lastPrefixes = { of: own, ledger: `l${own}` as CanonicalKey, volumes: `v${own}${SEPARATOR}`, account: `a${own}${SEPARATOR}`, transaction: `t${own}${SEPARATOR}` }
  return lastPrefixes
}

let lastPrefixes: KeyPrefixes & { readonly of: string | undefined } = { of: undefined, ledger: '' as CanonicalKey, volumes: '', account: '', transaction: '' }
export const LEDGER_PREFIX = 'l'
export function idempotencyKey(ledger: LedgerName, key: string): CanonicalKey {
  return `i${ledger}${SEPARATOR}${key}` as CanonicalKey
}

/** A ledger schema by version (immutable once inserted). */
export function schemaKey(ledger: LedgerName, version: string): CanonicalKey {
  return `s${ledger}${SEPARATOR}${version}` as CanonicalKey
}

/**
 * The node's exporters and pipelines (`OutputsRecord`): one attribute, read
 * and written by every configuration order. They are few (bounded below) and
 * rarely change, and one row makes every check that spans them (a pipeline
 * names an existing exporter, one pipeline per ledger and exporter, the
 * counts) a read of one key.
 */
export function outputsKey(): CanonicalKey {
  return 'o' as CanonicalKey
}

export function kindOf(key: CanonicalKey): AttributeKind {
  const kind = key[0]
  switch (kind) {
    case 'v':
    case 'a':
    case 't':
    case 'r':
    case 'l':
    case 'i':
    case 's':
    case 'o':
      return kind
    default:
      throw new InvariantViolation(`canonical key with unknown kind ${JSON.stringify(kind)}`)
  }
}

/** Splits the fields after the kind character. */
export function keyFields(key: CanonicalKey): string[] {
  return key.slice(1).split(SEPARATOR)
}

// ---- values ---------------------------------------------------------------

export interface AccountRecord {
  readonly address: AccountAddress
  readonly metadata: Metadata
  readonly insertionDate: string
  readonly updatedAt: string
  readonly firstUsage: string
}

export interface LedgerRecord {
  readonly name: LedgerName
  readonly bucket: string
  readonly addedAt: string
  readonly metadata: Metadata
  readonly features: Readonly<Record<string, string>>
  readonly nextTransactionId: bigint
  readonly nextLogId: bigint
  /** Accounts ever used in this ledger (`/stats`). */
  readonly accountCount: bigint
  /** Hash of the ledger's last v2 log, base64; "" before the first log. */
  readonly lastLogHash: string
  /**
   * The version of the last schema inserted, absent while the ledger has
   * none: once it has one, every write that v2 validates must name a version.
   */
  readonly latestSchemaVersion?: string
}

/**
 * A ledger schema (v2 `V2Schema`): immutable once inserted. `data` holds the
 * canonical `chart` and, when given, `transactions` and `queries` templates.
 * `logId` is the id of its INSERTED_SCHEMA log: schemas list in that order.
 */
export interface SchemaRecord {
  readonly version: string
  readonly createdAt: string
  readonly logId: bigint
  readonly data: { readonly [key: string]: Json }
}

/**
 * An exporter as the FSM holds it: `config` is the parsed configuration,
 * defaults filled in, in canonical form (keys sorted, integers as bigint).
 */
export interface ExporterEntry {
  readonly id: string
  readonly createdAt: string
  readonly driver: string
  readonly config: { readonly [key: string]: Json }
}

/**
 * A pipeline as the FSM holds it. `resets` counts the RESET_PIPELINE orders
 * applied to it: a node drops a cursor kept for an older count. The cursor
 * itself is node-local I/O state (docs/adr/0008-outputs-are-node-state.md).
 */
export interface PipelineEntry {
  readonly id: string
  readonly ledger: LedgerName
  readonly exporterID: string
  readonly createdAt: string
  readonly enabled: boolean
  readonly resets: bigint
  /**
   * The replicated checkpoint of the cursor under the current `resets`: the
   * highest log id a primary reported its sink confirmed (SET_PIPELINE_CURSOR).
   * A node taking over delivery starts after max(its own cursor, this).
   * Absent until the first checkpoint, and again after a reset.
   */
  readonly checkpoint?: bigint
}

/** Every exporter and pipeline, each list in the order they were created. */
export interface OutputsRecord {
  readonly exporters: readonly ExporterEntry[]
  readonly pipelines: readonly PipelineEntry[]
}

export interface ReferenceRecord {
  readonly transactionId: TransactionId
}

/** What an idempotent order returned the first time, replayed on a hit. */
export interface IdempotencyRecord {
  readonly requestHash: string
  readonly result: Json
}

export type AttributeValue =
  | { readonly kind: 'v'; readonly value: Volumes }
  | { readonly kind: 'a'; readonly value: AccountRecord }
  | { readonly kind: 't'; readonly value: TransactionRecord }
  | { readonly kind: 'r'; readonly value: ReferenceRecord }
  | { readonly kind: 'l'; readonly value: LedgerRecord }
  | { readonly kind: 'i'; readonly value: IdempotencyRecord }
  | { readonly kind: 's'; readonly value: SchemaRecord }
  | { readonly kind: 'o'; readonly value: OutputsRecord }

/** The value type of each attribute kind. */
export interface AttributeValueOf {
  v: Volumes
  a: AccountRecord
  t: TransactionRecord
  r: ReferenceRecord
  l: LedgerRecord
  i: IdempotencyRecord
  s: SchemaRecord
  o: OutputsRecord
}

/** The value of an attribute known to be of `kind` (a key's kind); another kind is an invariant violation. */
export function valueOfKind<K extends AttributeKind>(attribute: AttributeValue | undefined, kind: K): AttributeValueOf[K] | undefined {
  if (attribute === undefined) return undefined
  invariant(attribute.kind === kind, () => `attribute of kind ${attribute.kind} where ${kind} was expected`)
  return attribute.value as AttributeValueOf[K]
}

/** Decodes a stored attribute row of `kind` to its value. */
export function decodeRowValue<K extends AttributeKind>(kind: K, row: Buffer): AttributeValueOf[K] {
  return decodeAttribute(kind, row).value.value as AttributeValueOf[K]
}

/** An attribute value with its encoding, computed once per write. */
export interface Attribute {
  readonly value: AttributeValue
  readonly bytes: Buffer
}

/**
 * The layout byte leading every attribute row (and the attribute bytes of a
 * proposal's seed; of a cache mirror row up to storage schema 2): the value packed canonically
 * (`packed.ts`, docs/adr/0009). JSON-text rows of schema version 1 start with `{`.
 */
export const ATTRIBUTE_ROW_LAYOUT = 0x01

export function encodeAttribute(value: AttributeValue): Attribute {
  // Each row in memory of its own: the cache keeps the rows the FSM encodes (and would copy a pool slice).
  packsOwnMemory(true)
  try {
    return encodePackedAttribute(value)
  } finally {
    packsOwnMemory(false)
  }
}

function encodePackedAttribute(value: AttributeValue): Attribute {
  // The hot kinds of a transfer (its volumes, its transaction) in their fixed layouts (docs/adr/0012);
  // a value of a shape those do not hold (none the FSM writes today) is packed generically, below.
  if (value.kind === 'v') {
    const bytes = encodeVolumesRow(value.value)
    if (bytes !== undefined) return { value, bytes }
  } else if (value.kind === 't') {
    const bytes = encodeTransactionRow(value.value)
    if (bytes !== undefined) return { value, bytes }
  }
  return { value, bytes: packValue(value.value, ATTRIBUTE_ROW_LAYOUT, true) }
}

const COMMIT_VOLUMES: ReadonlySet<string> = new Set(['preCommitVolumes', 'postCommitVolumes'])

/**
 * A transaction row without its pre/post commit volumes, which are stepped
 * over rather than decoded: for reads that do not print them (a list page
 * without `expand=volumes`). Otherwise the same record as `decodeRowValue('t', row)`.
 */
export function decodeTransactionRowWithoutVolumes(row: Buffer): TransactionRecord {
  if (row[0] === TRANSACTION_ROW_LAYOUT) return decodeTransactionRow(row, false)
  const value = decodeValue('t', unpackObjectWithout(row, ATTRIBUTE_ROW_LAYOUT, COMMIT_VOLUMES))
  return value.value as TransactionRecord
}

export function decodeAttribute(kind: AttributeKind, bytes: Buffer): Attribute {
  const layout = bytes[0]
  if (layout === TRANSACTION_ROW_LAYOUT) {
    invariant(kind === 't', () => `a transaction row where an attribute of kind ${kind} was expected`)
    return { value: { kind, value: decodeTransactionRow(bytes, true) }, bytes }
  }
  if (layout === VOLUMES_ROW_LAYOUT) {
    invariant(kind === 'v', () => `a volumes row where an attribute of kind ${kind} was expected`)
    return { value: { kind, value: decodeVolumesRow(bytes) }, bytes }
  }
  const json = unpackValue(bytes, ATTRIBUTE_ROW_LAYOUT)
  invariant(isJsonObject(json), () => `attribute of kind ${kind} is not an object`)
  return { value: decodeValue(kind, json), bytes }
}

function decodeValue(kind: AttributeKind, json: { [key: string]: Json }): AttributeValue {
  switch (kind) {
    case 'v':
      return { kind, value: { input: bigintField(json, 'input'), output: bigintField(json, 'output') } }
    case 'a': {
      const record = json as unknown as AccountRecord
      return { kind, value: { ...record, metadata: decodeMetadata(record.metadata, 'account') } }
    }
    case 't': {
      const record = json as unknown as TransactionRecord
      const value: TransactionRecord = {
        ...record,
        id: bigintField(json, 'id'),
        postings: record.postings.map(decodePosting),
        metadata: decodeMetadata(record.metadata, 'transaction'),
        ...(record.preCommitVolumes === undefined ? {} : { preCommitVolumes: decodeAggregatedVolumes(record.preCommitVolumes as VolumesMap) }),
        ...(record.postCommitVolumes === undefined ? {} : { postCommitVolumes: decodeAggregatedVolumes(record.postCommitVolumes as VolumesMap) }),
      }
      return { kind, value }
    }
    case 'r':
      return { kind, value: { transactionId: bigintField(json, 'transactionId') } }
    case 'l':
      return {
        kind,
        value: {
          ...(json as unknown as LedgerRecord),
          metadata: decodeMetadata(json.metadata, 'ledger'),
          features: decodeMetadata(json.features, 'ledger features'),
          nextTransactionId: bigintField(json, 'nextTransactionId'),
          nextLogId: bigintField(json, 'nextLogId'),
          accountCount: bigintField(json, 'accountCount'),
        },
      }
    case 'i':
      return { kind, value: json as unknown as IdempotencyRecord }
    case 's': {
      const data = json.data
      invariant(isJsonObject(data) && isJsonObject(data.chart), 'a schema row holds a chart')
      invariant(typeof json.version === 'string' && typeof json.createdAt === 'string', 'a schema row has a version and a date')
      return { kind, value: { version: json.version, createdAt: json.createdAt, logId: bigintField(json, 'logId'), data } }
    }
    case 'o':
      return { kind, value: decodeOutputs(json) }
    default: {
      const never: never = kind
      throw new InvariantViolation(`unknown attribute kind ${String(never)}`)
    }
  }
}

function decodeOutputs(json: { [key: string]: Json }): OutputsRecord {
  const { exporters, pipelines } = json
  invariant(Array.isArray(exporters) && Array.isArray(pipelines), 'an outputs row holds exporters and pipelines')
  return {
    exporters: exporters.map((entry) => {
      invariant(isJsonObject(entry) && isJsonObject(entry.config), 'an exporter entry holds a config')
      return { id: stringField(entry, 'id'), createdAt: stringField(entry, 'createdAt'), driver: stringField(entry, 'driver'), config: entry.config }
    }),
    pipelines: pipelines.map((entry) => {
      invariant(isJsonObject(entry) && typeof entry.enabled === 'boolean', 'a pipeline entry says whether it is enabled')
      return {
        id: stringField(entry, 'id'),
        ledger: stringField(entry, 'ledger') as LedgerName,
        exporterID: stringField(entry, 'exporterID'),
        createdAt: stringField(entry, 'createdAt'),
        enabled: entry.enabled,
        resets: bigintField(entry, 'resets'),
        ...(entry.checkpoint === undefined ? {} : { checkpoint: bigintField(entry, 'checkpoint') }),
      }
    }),
  }
}

function stringField(json: { [key: string]: Json }, field: string): string {
  const value = json[field]
  invariant(typeof value === 'string', () => `attribute field ${field} is not a string`)
  return value
}

/** Commit volumes by account then asset, rebuilt without prototypes (an account may be named `__proto__`). */
function decodeAggregatedVolumes(volumes: VolumesMap): VolumesMap {
  const decoded: VolumesMap = emptyKeyed()
  for (const [account, byAsset] of ownEntries(volumes)) {
    const assets = keyedChild(decoded, account)
    for (const [asset, moved] of ownEntries(byAsset)) assets[asset] = moved
  }
  return decoded
}

function decodePosting(posting: Posting): Posting {
  return { ...posting, amount: BigInt(posting.amount) }
}

function bigintField(json: { [key: string]: Json }, field: string): bigint {
  const value = json[field]
  invariant(typeof value === 'bigint', () => `attribute field ${field} is not an integer`)
  return value
}
