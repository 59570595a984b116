import type {
  AccountAddress,
  AccountRecord,
  Asset,
  AttributeValue,
  CanonicalKey,
  LedgerName,
  LedgerRecord,
  ReferenceRecord,
  TransactionId,
  TransactionRecord,
  Volumes,
} from '../domain/index.ts'
import {
  ZERO_VOLUMES,
  accountKey,
  ledgerKey,
  ledgerNotFound,
  TallyError,
  referenceKey,
  transactionKey,
  volumesKey,
  invariant,
} from '../domain/index.ts'
import type { Json } from '../domain/index.ts'

/** A v2 log entry as stored and served (`/v2/{ledger}/logs`). */
export interface LedgerLog {
  readonly id: bigint
  readonly type: 'NEW_TRANSACTION' | 'SET_METADATA' | 'REVERTED_TRANSACTION' | 'DELETE_METADATA'
  readonly data: Json
  readonly date: string
  readonly hash: string
  readonly idempotencyKey?: string
}

/**
 * What a handler sees of the ledger: reads and writes of attributes by
 * canonical key, through the FSM's gated scope. There is no store, no clock
 * and no randomness here; `date` is the proposal's date, stamped at admission.
 */
export interface Scope {
  readonly date: string
  readonly idempotencyKey: string | undefined
  read(key: CanonicalKey): AttributeValue | undefined
  write(key: CanonicalKey, value: AttributeValue): void
  appendLog(ledger: LedgerName, log: LedgerLog): void
}

export function readLedger(scope: Scope, ledger: LedgerName): LedgerRecord {
  const found = scope.read(ledgerKey(ledger))
  if (found === undefined) throw ledgerNotFound(ledger)
  invariant(found.kind === 'l', 'ledger key holds another kind')
  return found.value
}

export function readVolumes(scope: Scope, ledger: LedgerName, account: AccountAddress, asset: Asset): Volumes {
  const found = scope.read(volumesKey(ledger, account, asset))
  if (found === undefined) return ZERO_VOLUMES
  invariant(found.kind === 'v', 'volumes key holds another kind')
  return found.value
}

export function writeVolumes(scope: Scope, ledger: LedgerName, account: AccountAddress, asset: Asset, volumes: Volumes): void {
  invariant(volumes.input >= 0n && volumes.output >= 0n, 'volumes are never negative')
  scope.write(volumesKey(ledger, account, asset), { kind: 'v', value: volumes })
}

export function readAccount(scope: Scope, ledger: LedgerName, address: AccountAddress): AccountRecord | undefined {
  const found = scope.read(accountKey(ledger, address))
  if (found === undefined) return undefined
  invariant(found.kind === 'a', 'account key holds another kind')
  return found.value
}

export function writeAccount(scope: Scope, ledger: LedgerName, account: AccountRecord): void {
  scope.write(accountKey(ledger, account.address), { kind: 'a', value: account })
}

export function readTransaction(scope: Scope, ledger: LedgerName, id: TransactionId): TransactionRecord | undefined {
  const found = scope.read(transactionKey(ledger, id))
  if (found === undefined) return undefined
  invariant(found.kind === 't', 'transaction key holds another kind')
  return found.value
}

export function writeTransaction(scope: Scope, ledger: LedgerName, transaction: TransactionRecord): void {
  scope.write(transactionKey(ledger, transaction.id), { kind: 't', value: transaction })
}

export function readReference(scope: Scope, ledger: LedgerName, reference: string): ReferenceRecord | undefined {
  const found = scope.read(referenceKey(ledger, reference))
  if (found === undefined) return undefined
  invariant(found.kind === 'r', 'reference key holds another kind')
  return found.value
}

export function writeLedger(scope: Scope, ledger: LedgerRecord): void {
  scope.write(ledgerKey(ledger.name), { kind: 'l', value: ledger })
}

/**
 * An order whose reads depend on values (a script's inputs, the postings of
 * the transaction a revert names) found the world different from what
 * admission planned on: retryable, never served from undeclared state.
 */
export function staleInputs(reason: string): TallyError {
  return new TallyError({ code: 'STALE_INPUTS', kind: 'unavailable', message: `inputs changed since admission (${reason}), retry` })
}

/** Runs `read`, turning a coverage miss into STALE_INPUTS (see `staleInputs`). */
export function plannedRead<T>(reason: string, read: () => T): T {
  try {
    return read()
  } catch (error) {
    if (error instanceof TallyError && error.code === 'COVERAGE_MISS') throw staleInputs(reason)
    throw error
  }
}
