import type { CanonicalKey } from '../domain/index.ts'
import { keyFields } from '../domain/index.ts'
import { INSTANT_KEY_BYTES, IndexKind, MetaKey, Zone, readInstantKey } from '../store/index.ts'
import { decodeSegment } from '../cache/index.ts'

/** What a finding is about: one projection kind, the audit chain, or the store's meta rows. */
export type FindingKind =
  | 'volumes'
  | 'account'
  | 'transaction'
  | 'reference'
  | 'ledger'
  | 'idempotency'
  | 'schema'
  | 'outputs'
  | 'log'
  | 'index'
  | 'cache-mirror'
  | 'audit'
  | 'checkpoint'
  | 'meta'

export const FINDING_KINDS: readonly FindingKind[] = [
  'volumes',
  'account',
  'transaction',
  'reference',
  'ledger',
  'idempotency',
  'schema',
  'outputs',
  'log',
  'index',
  'cache-mirror',
  'audit',
  'checkpoint',
  'meta',
]

/**
 * One difference between the store and what the audit chain says it should
 * be. `key` names the row in words (`ledger=main id=3`); `expected` is what
 * the replay of the chain produced, `actual` what the store holds (absent
 * when the row is missing on that side).
 */
export interface Finding {
  readonly kind: FindingKind
  readonly key: string
  readonly message: string
  readonly expected?: string
  readonly actual?: string
}

const ATTRIBUTE_KINDS: Readonly<Record<string, FindingKind>> = {
  v: 'volumes',
  a: 'account',
  t: 'transaction',
  r: 'reference',
  l: 'ledger',
  i: 'idempotency',
  s: 'schema',
  o: 'outputs',
}

/** The finding kind and readable key of an attribute row (zone 0xf1), from its canonical key. */
export function describeAttribute(key: CanonicalKey): { kind: FindingKind; key: string } {
  const kind = ATTRIBUTE_KINDS[key[0] ?? ''] ?? 'meta'
  const fields = keyFields(key)
  const [ledger = '', second = '', third = ''] = fields
  switch (key[0]) {
    case 'v':
      return { kind, key: `ledger=${ledger} account=${second} asset=${third}` }
    case 'a':
      return { kind, key: `ledger=${ledger} address=${second}` }
    case 't':
      return { kind, key: `ledger=${ledger} id=${/^[0-9a-f]{16}$/.test(second) ? BigInt(`0x${second}`).toString() : second}` }
    case 'r':
      return { kind, key: `ledger=${ledger} reference=${second}` }
    case 'l':
      return { kind, key: `ledger=${ledger}` }
    case 'i':
      return { kind, key: `ledger=${ledger} key=${second}` }
    case 's':
      return { kind, key: `ledger=${ledger} version=${second}` }
    case 'o':
      return { kind, key: 'exporters and pipelines' }
    default:
      return { kind: 'meta', key: `attribute ${JSON.stringify(key)} of unknown kind` }
  }
}

/** A v2 log row key `[0xf0][ledger][0][id u64 BE]` in words. */
export function describeLogRow(rowKey: Buffer): string {
  const separator = rowKey.indexOf(0, 1)
  if (separator < 0 || rowKey.length !== separator + 9) return `row=${rowKey.toString('hex')}`
  return `ledger=${rowKey.toString('utf8', 1, separator)} id=${rowKey.readBigUInt64BE(separator + 1).toString()}`
}

/**
 * A secondary-index row (zone 0xf3, written by the FSM with each transaction):
 * `A` transactions by account, `M` moves by effective date.
 */
export function describeIndexRow(rowKey: Buffer): string {
  const kind = rowKey[1]
  const idOffset = rowKey.length - 8
  if (kind === IndexKind.schemas && rowKey.length >= 11) {
    return `schemas ledger=${rowKey.toString('utf8', 2, rowKey.length - 9)} logId=${rowKey.readBigUInt64BE(rowKey.length - 8).toString()}`
  }
  if (rowKey.length < 11 || (kind !== IndexKind.accountTransactions && kind !== IndexKind.moves && kind !== IndexKind.transactionsByTimestamp)) {
    return `row=${rowKey.toString('hex')}`
  }
  const id = rowKey.readBigUInt64BE(idOffset).toString()
  if (kind === IndexKind.transactionsByTimestamp) {
    // ledger \0 then the binary instant (docs/adr/0012): not text to split.
    const ledgerEnd = rowKey.indexOf(0, 2)
    if (ledgerEnd < 0 || ledgerEnd + 1 + INSTANT_KEY_BYTES !== idOffset) return `row=${rowKey.toString('hex')}`
    return `transactions-by-timestamp ledger=${rowKey.toString('utf8', 2, ledgerEnd)} timestamp=${readInstantKey(rowKey, ledgerEnd + 1)} id=${id}`
  }
  const fields = rowKey.toString('utf8', 2, idOffset).split('\u0000')
  if (kind === IndexKind.accountTransactions) return `transactions-by-account ledger=${fields[0]} account=${fields[1]} id=${id}`
  return `moves ledger=${fields[0]} account=${fields[1]} asset=${fields[2]} timestamp=${fields[3]} id=${id}`
}

export function describeAuditRow(rowKey: Buffer): string {
  return rowKey.length === 9 ? `seq=${rowKey.readBigUInt64BE(1).toString()}` : `row=${rowKey.toString('hex')}`
}

export function describeCheckpointRow(rowKey: Buffer): string {
  return rowKey.length === 9 ? `size=${rowKey.readBigUInt64BE(1).toString()}` : `row=${rowKey.toString('hex')}`
}

export function describeMetaRow(rowKey: Buffer): string {
  return rowKey.toString('utf8', 1)
}

/**
 * A mirror row is the segment of one applied index (`[zone][generation % 2][index
 * u64]`, docs/adr/0010); its keys travel in the value. Named by its generation
 * byte and index, and by the first key of whichever side still decodes.
 */
export function describeMirrorRow(rowKey: Buffer, ...values: (Buffer | undefined)[]): string {
  if (rowKey.length !== 10) return `row=${rowKey.toString('hex')}`
  const segment = `gen-byte=${rowKey[1]} index=${rowKey.readBigUInt64BE(2).toString()}`
  for (const value of values) {
    if (value === undefined) continue
    let keys: CanonicalKey[]
    try {
      keys = decodeSegment(rowKey, value).map(([key]) => key)
    } catch {
      continue
    }
    const first = keys[0]
    if (first === undefined || ATTRIBUTE_KINDS[first[0] ?? ''] === undefined) continue
    const described = describeAttribute(first)
    return `${segment} ${described.kind} ${described.key}${keys.length > 1 ? ` (+${keys.length - 1} keys)` : ''}`
  }
  return segment
}

export function zoneName(zone: number): string {
  switch (zone) {
    case Zone.meta:
      return 'meta'
    case Zone.logs:
      return 'logs'
    case Zone.attributes:
      return 'attributes'
    case Zone.audit:
      return 'audit'
    case Zone.auditCheckpoints:
      return 'audit checkpoints'
    case Zone.indexes:
      return 'indexes'
    case Zone.cacheMirror:
      return 'cache mirror'
    case Zone.outputs:
      return 'outputs'
    default:
      return `unknown zone 0x${zone.toString(16).padStart(2, '0')}`
  }
}

/** Meta rows the FSM writes (and the checker therefore rebuilds). */
export const REPLAYED_META_KEYS: readonly string[] = [MetaKey.appliedIndex, MetaKey.cacheState, MetaKey.auditHead]
