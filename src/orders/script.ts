import type { AccountAddress, Asset, CanonicalKey, Keyed, LedgerName, Metadata, Posting } from '../domain/index.ts'
import { TallyError, accountKey, canonicalAccountMetadata, canonicalMetadata, invariant, isAccountAddress, isAsset, metadataValue, volumesKey } from '../domain/index.ts'
import type { CheckedProgram, InputsProvider, RunResult } from '../numscript/index.ts'
import { compile, inputsDigest, runProgram } from '../numscript/index.ts'
import type { TransactionScript } from './order.ts'
import type { KnownValue } from './needs.ts'

/**
 * Numscript in the pipeline. Admission runs the script against what it knows
 * (cache, then store) to learn which balances and metadata it reads and which
 * accounts it moves; the FSM runs it again on the cached values through the
 * gated scope and compares the inputs digest: a difference is STALE_INPUTS
 * (retryable), never a silent divergence.
 */
export function compileScript(script: TransactionScript): CheckedProgram {
  return compile(script.plain)
}

export { staleInputs } from './scope.ts'

/** The planning run: unknown inputs read as zero/unset and are reported, to be loaded for the next round. */
export function planScript(
  ledger: LedgerName,
  script: TransactionScript,
  force: boolean,
  known: (key: CanonicalKey) => KnownValue,
): { run: RunResult; unknown: boolean; keys: CanonicalKey[] } {
  let unknown = false
  const keys: CanonicalKey[] = []
  const inputs: InputsProvider = {
    balance(account, asset) {
      const key = volumesKey(ledger, checkedAccount(account), checkedAsset(asset))
      keys.push(key)
      const value = known(key)
      if (value === 'unknown') {
        unknown = true
        return 0n
      }
      if (value === null) return 0n
      invariant(value.kind === 'v', 'volumes key holds another kind')
      return value.value.input - value.value.output
    },
    metadata(account, metadataKey) {
      const key = accountKey(ledger, checkedAccount(account))
      keys.push(key)
      const value = known(key)
      if (value === 'unknown') {
        unknown = true
        return undefined
      }
      if (value === null) return undefined
      invariant(value.kind === 'a', 'account key holds another kind')
      return metadataValue(value.value.metadata, metadataKey)
    },
  }
  const run = runProgram(compileScript(script), { variables: script.vars, inputs, unboundedOverdraftEverywhere: force })
  if (run.ok) {
    for (const posting of run.postings) {
      const source = checkedAccount(posting.source)
      const destination = checkedAccount(posting.destination)
      const asset = checkedAsset(posting.asset)
      keys.push(volumesKey(ledger, source, asset), volumesKey(ledger, destination, asset), accountKey(ledger, source), accountKey(ledger, destination))
    }
    for (const account of run.accountMetadata.keys()) keys.push(accountKey(ledger, checkedAccount(account)))
  }
  return { run, unknown, keys }
}

export function digestOf(run: RunResult): string {
  return inputsDigest(run.inputsRead)
}

/** The script's outputs as ledger values, addresses and assets validated. */
export function scriptPostings(run: Extract<RunResult, { ok: true }>): Posting[] {
  return run.postings.map((posting) => ({
    source: checkedAccount(posting.source),
    destination: checkedAccount(posting.destination),
    amount: posting.amount,
    asset: checkedAsset(posting.asset),
  }))
}

export function scriptAccountMetadata(run: Extract<RunResult, { ok: true }>): Keyed<Metadata> {
  return canonicalAccountMetadata([...run.accountMetadata].map(([account, entries]) => [checkedAccount(account), canonicalMetadata(entries)]))
}

function checkedAccount(account: string): AccountAddress {
  if (!isAccountAddress(account)) {
    throw new TallyError({ code: 'INTERPRETER_RUNTIME', kind: 'business', message: `the script names an invalid account address ${JSON.stringify(account)}` })
  }
  return account
}

function checkedAsset(asset: string): Asset {
  if (!isAsset(asset)) {
    throw new TallyError({ code: 'INTERPRETER_RUNTIME', kind: 'business', message: `the script names an invalid asset ${JSON.stringify(asset)}` })
  }
  return asset
}
