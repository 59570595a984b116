import type { AccountAddress, Keyed, Metadata, Posting, TransactionRecord } from '../../domain/index.ts'
import { TallyError, validationError, canonicalAccountMetadata, canonicalMetadata, invariant, mergeMetadata, metadataValue, ownEntries, referenceKey, storedMetadata } from '../../domain/index.ts'
import type { InputsProvider } from '../../numscript/index.ts'
import type { CreateTransaction } from '../order.ts'
import type { OrderOutput } from '../output.ts'
import { transactionViews } from '../output.ts'
import type { Scope } from '../scope.ts'
import { readAccount, readLedger, readReference, readVolumes, writeTransaction } from '../scope.ts'
import { accountsOf, applyPostings, touchAccounts } from '../postings-apply.ts'
import { appendLedgerLog } from '../ledger-log.ts'
import { checkedAccount, checkedAsset, runPlannedScript, scriptAccountMetadata, scriptPostings } from '../script.ts'
import { checkAccountsInChart, followedSchema, templateScript, withChartDefaults } from '../schema.ts'

export function createTransaction(scope: Scope, order: CreateTransaction): OrderOutput {
  const ledger = readLedger(scope, order.ledger)
  const schema = followedSchema(scope, ledger, order.schemaVersion)
  if (order.template !== undefined) {
    if (schema === undefined) throw validationError(`template ${JSON.stringify(order.template)}: a template comes from a schema; name its version (schemaVersion)`)
    const script = templateScript(schema, order.template)
    // Schemas are immutable: admission took the script from this very schema. (An imported log
    // replays the template's postings instead, and keeps its name.)
    if (order.script !== undefined) invariant(script === order.script.plain, 'a template order carries its template\'s script')
  }
  if (order.reference !== undefined && readReference(scope, order.ledger, order.reference) !== undefined) {
    throw new TallyError({ code: 'CONFLICT', kind: 'conflict', message: `reference ${JSON.stringify(order.reference)} is already used` })
  }
  const planned = order.script === undefined ? fromPostings(order) : fromScript(scope, order)
  if (planned.postings.length === 0) {
    throw new TallyError({ code: 'NO_POSTINGS', kind: 'validation', message: 'a transaction needs at least one posting' })
  }
  // Checked before anything is written: a refused transaction leaves nothing.
  const chartAccounts = schema === undefined ? undefined : checkAccountsInChart(schema, [...accountsOf(planned.postings), ...Object.keys(planned.accountMetadata)], 'the transaction')
  // v2 gives an account its chart defaults when a write following the schema first uses it, and
  // logs only the write's own account metadata: a replay naming the version derives them again.
  const moves = chartAccounts === undefined ? planned : { ...planned, accountMetadata: withChartDefaults(scope, order.ledger, chartAccounts, planned.accountMetadata) }
  const timestamp = order.timestamp ?? scope.date
  // A script already enforced its own overdraft rules: its postings apply as they are.
  const volumes = applyPostings(scope, order.ledger, moves.postings, order.force || order.script !== undefined)
  const accounts = accountsOf(moves.postings)
  for (const address in moves.accountMetadata) accounts.push(address as AccountAddress)
  const created = touchAccounts(scope, order.ledger, accounts, timestamp, moves.accountMetadata)
  // Without a reference or a template (most writes), one literal: spreading empty objects into it
  // builds it through the runtime, two objects more. Same fields in the same order either way.
  const transaction: TransactionRecord =
    order.reference === undefined && order.template === undefined
      ? {
          id: ledger.nextTransactionId,
          postings: moves.postings,
          timestamp,
          insertedAt: scope.date,
          updatedAt: scope.date,
          metadata: moves.metadata,
          reverted: false,
          preCommitVolumes: volumes.pre,
          postCommitVolumes: volumes.post,
        }
      : {
          id: ledger.nextTransactionId,
          postings: moves.postings,
          timestamp,
          insertedAt: scope.date,
          updatedAt: scope.date,
          ...(order.reference === undefined ? {} : { reference: order.reference }),
          ...(order.template === undefined ? {} : { template: order.template }),
          metadata: moves.metadata,
          reverted: false,
          preCommitVolumes: volumes.pre,
          postCommitVolumes: volumes.post,
        }
  writeTransaction(scope, order.ledger, transaction)
  if (order.reference !== undefined) {
    scope.write(referenceKey(order.ledger, order.reference), { kind: 'r', value: { transactionId: transaction.id } })
  }
  // The log's view and the answer's (with its commit volumes) share one copy of the postings and metadata.
  const views = transactionViews(transaction)
  const logged = appendLedgerLog(
    scope,
    ledger,
    'NEW_TRANSACTION',
    { transaction: views.logged, accountMetadata: planned.accountMetadata },
    order.schemaVersion,
    { nextTransactionId: ledger.nextTransactionId + 1n, accountCount: ledger.accountCount + created },
  )
  return { type: 'TRANSACTION', transaction: views.answered, logId: logged.nextLogId - 1n }
}

interface Moves {
  readonly postings: readonly Posting[]
  readonly metadata: Metadata
  readonly accountMetadata: Readonly<Keyed<Metadata>>
}

function fromPostings(order: CreateTransaction): Moves {
  return { postings: order.postings, metadata: storedMetadata(order.metadata), accountMetadata: canonicalAccountMetadata(ownEntries(order.accountMetadata)) }
}

/**
 * Runs the script on the values the gated scope serves, compared input by
 * input with admission's planning run (`runPlannedScript`): a value that
 * moved since planning is STALE_INPUTS, retried by admission; an undeclared
 * input while every value matched is a planning gap, COVERAGE_MISS.
 */
function fromScript(scope: Scope, order: CreateTransaction): Moves {
  const script = order.script
  invariant(script !== undefined, 'fromScript needs a script')
  invariant(order.scriptInputs !== undefined, 'a script order carries the inputs its planning run read')
  // Addresses and assets are checked as planning checks them, before the read.
  const inputs: InputsProvider = {
    balance: (account, asset) => {
      const volumes = readVolumes(scope, order.ledger, checkedAccount(account), checkedAsset(asset))
      return volumes.input - volumes.output
    },
    metadata: (account, key) => {
      const record = readAccount(scope, order.ledger, checkedAccount(account))
      return record === undefined ? undefined : metadataValue(record.metadata, key)
    },
  }
  const run = runPlannedScript(script, order.scriptInputs, order.force, inputs)
  if (!run.ok) throw run.error
  const metadata = storedMetadata(order.metadata)
  for (const [key, value] of run.txMetadata) {
    const requested = metadataValue(metadata, key)
    if (requested !== undefined && requested !== value) {
      throw new TallyError({
        code: 'METADATA_OVERRIDE',
        kind: 'validation',
        message: `metadata ${JSON.stringify(key)} is set both by the request and by the script`,
      })
    }
  }
  const accountMetadata = new Map(ownEntries(order.accountMetadata))
  for (const [account, entries] of ownEntries(scriptAccountMetadata(run))) {
    accountMetadata.set(account, mergeMetadata(accountMetadata.get(account) ?? canonicalMetadata([]), entries))
  }
  return {
    postings: scriptPostings(run),
    metadata: mergeMetadata(metadata, canonicalMetadata(run.txMetadata)),
    accountMetadata: canonicalAccountMetadata(accountMetadata),
  }
}
