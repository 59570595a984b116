import type { AccountAddress, Asset, CanonicalKey, Keyed, LedgerName, Metadata, Posting } from '../domain/index.ts'
import { createHash } from 'node:crypto'
import { TallyError, accountKey, canonicalAccountMetadata, canonicalJson, canonicalMetadata, invariant, isAccountAddress, isAsset, metadataValue, volumesKey } from '../domain/index.ts'
import type { CheckedProgram, InputsProvider, RunResult } from '../numscript/index.ts'
import { compile, runProgram } from '../numscript/index.ts'
import type { TransactionScript } from './order.ts'
import type { KnownValue } from './needs.ts'
import { staleInputs } from './scope.ts'

/**
 * Numscript in the pipeline. Admission runs the script against what it knows
 * (cache, then store) to learn which balances and metadata it reads and which
 * accounts it moves, and stamps the order with a fingerprint of each input
 * it read, in order; the FSM runs it again through the gated scope and
 * compares input by input (`runPlannedScript`).
 */
export function compileScript(script: TransactionScript): CheckedProgram {
  return compile(script.plain)
}

/** The planning run: unknown inputs read as zero/unset and are reported, to be loaded for the next round. */
export function planScript(
  ledger: LedgerName,
  script: TransactionScript,
  force: boolean,
  known: (key: CanonicalKey) => KnownValue,
): { run: RunResult; unknown: boolean; keys: CanonicalKey[]; inputs: string[] } {
  let unknown = false
  const keys: CanonicalKey[] = []
  const fingerprints: string[] = []
  const inputs: InputsProvider = fingerprinting((input, value) => fingerprints.push(scriptInputFingerprint(input, value)), {
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
  })
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
  return { run, unknown, keys, inputs: fingerprints }
}

/** Which input a script read: a balance (account, asset) or a metadata value (account, key). */
export type ScriptInput = readonly ['balance' | 'metadata', string, string]

/** One input as the order records it: which input and the value read, hashed (16 bytes, base64url). */
export function scriptInputFingerprint(input: ScriptInput, value: bigint | string | undefined): string {
  const text = canonicalJson([...input, value === undefined ? null : typeof value === 'bigint' ? value.toString() : value])
  return createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, 22)
}

/** `provider`, reporting every input it serves, in the order served (the interpreter asks each input once). */
function fingerprinting(onRead: (input: ScriptInput, value: bigint | string | undefined) => void, provider: InputsProvider): InputsProvider {
  return {
    balance(account, asset) {
      const value = provider.balance(account, asset)
      onRead(['balance', account, asset], value)
      return value
    },
    metadata(account, key) {
      const value = provider.metadata(account, key)
      onRead(['metadata', account, key], value)
      return value
    },
  }
}

/**
 * The FSM's run of a script order, on the values the gated scope serves,
 * compared with the planning run input by input. While every input read so
 * far matches the planned one, the run is exactly where planning was (a run
 * is a pure function of its inputs), so its next input is one planning read
 * and declared: a coverage miss there is a planning gap and stays a loud
 * COVERAGE_MISS. The first input whose value differs makes the order
 * STALE_INPUTS (retryable) before anything is read on the strength of it.
 */
export function runPlannedScript(script: TransactionScript, planned: readonly string[], force: boolean, provider: InputsProvider): RunResult {
  let position = 0
  const compared = fingerprinting((input, value) => {
    invariant(position < planned.length, 'a run whose inputs all matched reads no more than its planning run')
    if (scriptInputFingerprint(input, value) !== planned[position]) {
      throw staleInputs(`the script's ${input[0]} of ${input[1]} ${JSON.stringify(input[2])} differs from the planned one`)
    }
    position++
  }, provider)
  const run = runProgram(compileScript(script), { variables: script.vars, inputs: compared, unboundedOverdraftEverywhere: force })
  invariant(position === planned.length, 'a run whose inputs all matched reads as many as its planning run')
  return run
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

export function checkedAccount(account: string): AccountAddress {
  if (!isAccountAddress(account)) {
    throw new TallyError({ code: 'INTERPRETER_RUNTIME', kind: 'business', message: `the script names an invalid account address ${JSON.stringify(account)}` })
  }
  return account
}

export function checkedAsset(asset: string): Asset {
  if (!isAsset(asset)) {
    throw new TallyError({ code: 'INTERPRETER_RUNTIME', kind: 'business', message: `the script names an invalid asset ${JSON.stringify(asset)}` })
  }
  return asset
}
