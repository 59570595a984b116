import type { AttributeValue, CanonicalKey } from '../domain/index.ts'
import {
  accountKey,
  ledgerKey,
  outputsKey,
  referenceKey,
  schemaKey,
  transactionKey,
  volumesKey,
  InvariantViolation,
} from '../domain/index.ts'
import type { Order } from './order.ts'
import { revertPostings, revertedPostingsFingerprint } from './handlers/revert-transaction.ts'
import { planScript } from './script.ts'
import type { Posting } from '../domain/index.ts'
import type { LedgerName } from '../domain/index.ts'

/** What admission knows of a key while planning: a value, absent (null), or not yet loaded. */
export type KnownValue = AttributeValue | null | 'unknown'

export interface Needs {
  readonly keys: readonly CanonicalKey[]
  /** false when some needs depend on values not loaded yet (e.g. a revert's postings). */
  readonly complete: boolean
  /** The order as admission must propose it (a script order gains the inputs its planning run read, a revert the postings it planned on). */
  readonly order?: Order
}

/**
 * Every attribute the FSM will read or delete for an order (contract §2.1
 * step 2). Admission resolves them in rounds: a revert first needs the
 * transaction, then the volumes of its postings.
 */
export function needsOf(order: Order, known: (key: CanonicalKey) => KnownValue): Needs {
  switch (order.type) {
    case 'CREATE_LEDGER':
    case 'SAVE_LEDGER_METADATA':
    case 'DELETE_LEDGER_METADATA':
      return { keys: [ledgerKey(order.ledger)], complete: true }
    case 'INSERT_SCHEMA':
      return { keys: [ledgerKey(order.ledger), schemaKey(order.ledger, order.version)], complete: true }
    case 'PUT_PIPELINE':
    case 'SET_PIPELINE_CURSOR':
      return { keys: [ledgerKey(order.ledger), outputsKey()], complete: true }
    case 'PUT_EXPORTER':
    case 'DELETE_EXPORTER':
    case 'DELETE_PIPELINE':
    case 'SET_PIPELINE_ENABLED':
    case 'RESET_PIPELINE':
      return { keys: [outputsKey()], complete: true }
    case 'CREATE_TRANSACTION': {
      let keys: CanonicalKey[]
      if (order.schemaVersion === undefined && order.postings.length === 1) {
        // A transfer: its five keys in one list of their size, not one grown by pushes.
        const posting = order.postings[0] as Posting
        keys = [
          ledgerKey(order.ledger),
          volumesKey(order.ledger, posting.source, posting.asset),
          volumesKey(order.ledger, posting.destination, posting.asset),
          accountKey(order.ledger, posting.source),
          accountKey(order.ledger, posting.destination),
        ]
      } else {
        keys = [ledgerKey(order.ledger)]
        if (order.schemaVersion !== undefined) keys.push(schemaKey(order.ledger, order.schemaVersion))
        pushPostingNeeds(keys, order.ledger, order.postings)
      }
      for (const address in order.accountMetadata) {
        if (Object.hasOwn(order.accountMetadata, address)) keys.push(accountKey(order.ledger, address as never))
      }
      if (order.reference !== undefined) keys.push(referenceKey(order.ledger, order.reference))
      if (order.script === undefined) return { keys: unique(keys), complete: true }
      const planned = planScript(order.ledger, order.script, order.force, known)
      keys.push(...planned.keys)
      if (planned.unknown) return { keys: unique(keys), complete: false }
      return { keys: unique(keys), complete: true, order: { ...order, scriptInputs: planned.inputs } }
    }
    case 'REVERT_TRANSACTION': {
      const key = transactionKey(order.ledger, order.id)
      const keys = [ledgerKey(order.ledger), ...schemaNeeds(order), key]
      const transaction = known(key)
      if (transaction === 'unknown') return { keys, complete: false }
      if (transaction !== null && transaction.kind !== 't') throw new InvariantViolation('transaction key holds another kind')
      if (transaction !== null) keys.push(...postingNeeds(order.ledger, revertPostings(transaction.value.postings)))
      const plannedPostings = revertedPostingsFingerprint(transaction === null ? undefined : transaction.value)
      return { keys: unique(keys), complete: true, order: { ...order, plannedPostings } }
    }
    case 'SAVE_TRANSACTION_METADATA':
      return { keys: [ledgerKey(order.ledger), ...schemaNeeds(order), transactionKey(order.ledger, order.id)], complete: true }
    case 'DELETE_TRANSACTION_METADATA':
      return { keys: [ledgerKey(order.ledger), transactionKey(order.ledger, order.id)], complete: true }
    case 'SAVE_ACCOUNT_METADATA':
      return { keys: [ledgerKey(order.ledger), ...schemaNeeds(order), accountKey(order.ledger, order.address)], complete: true }
    case 'DELETE_ACCOUNT_METADATA':
      return { keys: [ledgerKey(order.ledger), accountKey(order.ledger, order.address)], complete: true }
    default: {
      const never: never = order
      throw new InvariantViolation(`unknown order ${JSON.stringify(never)}`)
    }
  }
}

/**
 * Whether planning `order` reads values (`needsOf` calls its lookup): a
 * revert reads the transaction it reverts, a script the balances and
 * metadata it names. Every other order's keys follow from the order alone,
 * so the effects of earlier orders of its proposal cannot change its plan.
 */
export function needsReadValues(order: Order): boolean {
  return order.type === 'REVERT_TRANSACTION' || (order.type === 'CREATE_TRANSACTION' && order.script !== undefined)
}

/** The schema a write names: read to check the write against it. */
function schemaNeeds(order: { readonly ledger: LedgerName; readonly schemaVersion?: string }): CanonicalKey[] {
  return order.schemaVersion === undefined ? [] : [schemaKey(order.ledger, order.schemaVersion)]
}

function postingNeeds(ledger: LedgerName, postings: readonly Posting[]): CanonicalKey[] {
  const keys: CanonicalKey[] = []
  pushPostingNeeds(keys, ledger, postings)
  return keys
}

function pushPostingNeeds(keys: CanonicalKey[], ledger: LedgerName, postings: readonly Posting[]): void {
  for (const posting of postings) {
    keys.push(volumesKey(ledger, posting.source, posting.asset), volumesKey(ledger, posting.destination, posting.asset))
    keys.push(accountKey(ledger, posting.source), accountKey(ledger, posting.destination))
  }
}

/** Up to this many keys, repeats are found by comparing in place; past it, through a set. */
const UNIQUE_SCAN_MAX = 16

/** `keys` with repeats dropped, first occurrences in order (in place). */
function unique(keys: CanonicalKey[]): CanonicalKey[] {
  if (keys.length > UNIQUE_SCAN_MAX) return [...new Set(keys)]
  let kept = 0
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as CanonicalKey
    let seen = false
    for (let j = 0; j < kept && !seen; j++) seen = keys[j] === key
    if (!seen) keys[kept++] = key
  }
  keys.length = kept
  return keys
}
