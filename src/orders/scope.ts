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
  valueOfKind,
} from '../domain/index.ts'
import type { Json } from '../domain/index.ts'

/** A v2 log entry as stored and served (`/v2/{ledger}/logs`). */
export interface LedgerLog {
  readonly id: bigint
  readonly type: 'NEW_TRANSACTION' | 'SET_METADATA' | 'REVERTED_TRANSACTION' | 'DELETE_METADATA' | 'INSERTED_SCHEMA'
  readonly data: Json
  readonly date: string
  readonly hash: string
  readonly idempotencyKey?: string
  /** The schema version the write followed (hashed, as v2 hashes it). */
  readonly schemaVersion?: string
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
  const found = valueOfKind(scope.read(ledgerKey(ledger)), 'l')
  if (found === undefined) throw ledgerNotFound(ledger)
  return found
}

export function readVolumes(scope: Scope, ledger: LedgerName, account: AccountAddress, asset: Asset): Volumes {
  return readVolumesAt(scope, volumesKey(ledger, account, asset))
}

/** `readVolumes` by a volumes key the caller built (once, for the read and the write). */
export function readVolumesAt(scope: Scope, key: CanonicalKey): Volumes {
  return valueOfKind(scope.read(key), 'v') ?? ZERO_VOLUMES
}

export function writeVolumes(scope: Scope, ledger: LedgerName, account: AccountAddress, asset: Asset, volumes: Volumes): void {
  writeVolumesAt(scope, volumesKey(ledger, account, asset), volumes)
}

export function writeVolumesAt(scope: Scope, key: CanonicalKey, volumes: Volumes): void {
  invariant(volumes.input >= 0n && volumes.output >= 0n, 'volumes are never negative')
  invariant(key[0] === 'v', 'volumes are written under a volumes key')
  scope.write(key, { kind: 'v', value: volumes })
}

export function readAccount(scope: Scope, ledger: LedgerName, address: AccountAddress): AccountRecord | undefined {
  return readAccountAt(scope, accountKey(ledger, address))
}

/** `readAccount` by an account key the caller built (once, for the read and the write). */
export function readAccountAt(scope: Scope, key: CanonicalKey): AccountRecord | undefined {
  return valueOfKind(scope.read(key), 'a')
}

export function writeAccount(scope: Scope, ledger: LedgerName, account: AccountRecord): void {
  writeAccountAt(scope, accountKey(ledger, account.address), account)
}

/** `writeAccount` under `key`, which is the account's own (`accountKey(ledger, account.address)`). */
export function writeAccountAt(scope: Scope, key: CanonicalKey, account: AccountRecord): void {
  invariant(key[0] === 'a', 'an account is written under an account key')
  scope.write(key, { kind: 'a', value: account })
}

export function readTransaction(scope: Scope, ledger: LedgerName, id: TransactionId): TransactionRecord | undefined {
  return valueOfKind(scope.read(transactionKey(ledger, id)), 't')
}

export function writeTransaction(scope: Scope, ledger: LedgerName, transaction: TransactionRecord): void {
  scope.write(transactionKey(ledger, transaction.id), { kind: 't', value: transaction })
}

export function readReference(scope: Scope, ledger: LedgerName, reference: string): ReferenceRecord | undefined {
  return valueOfKind(scope.read(referenceKey(ledger, reference)), 'r')
}

export function writeLedger(scope: Scope, ledger: LedgerRecord): void {
  scope.write(ledgerKey(ledger.name), { kind: 'l', value: ledger })
}

/**
 * An order whose reads depend on values (a script's inputs, the postings of
 * the transaction a revert names) found one of those values different from
 * what admission planned on: retryable. Raised only after comparing the value
 * read with the planned one, before any read the value decides: a read the
 * plan did not declare while every value matched is a planning gap, and stays
 * a loud COVERAGE_MISS (invariants #5, #6).
 */
export function staleInputs(reason: string): TallyError {
  return new TallyError({ code: 'STALE_INPUTS', kind: 'unavailable', message: `inputs changed since admission (${reason}), retry` })
}
