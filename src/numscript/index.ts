/**
 * Numscript — Formance's transaction language — as a pure, deterministic
 * module: no clock, no randomness, no I/O (the specs runner's file reading
 * lives in `specs-runner.ts`, which nothing here imports).
 *
 * ## Pipeline
 *
 *   source ──parseProgram──▶ Program ──checkProgram(flags)──▶ CheckedProgram
 *          ──runProgram({ variables, inputs, unboundedOverdraftEverywhere })──▶ RunResult
 *
 * `compile(source, flags)` does the first two steps through a bounded cache
 * keyed by (flags, source text); `execute(source, options)` does all three
 * and turns parse/compile errors into a failed `RunResult` too.
 *
 * ## Inputs (how the ledger feeds a script)
 *
 * The interpreter reads balances and account metadata only through an
 * `InputsProvider` — synchronous `balance(account, asset)` and
 * `metadata(account, key)` (plus `balancesOfBaseAsset` for experimental asset
 * scaling). Balances are those *before* the script; the interpreter tracks
 * its own postings on top.
 *
 * Admission (prefetch, then execute):
 *   1. `scriptNeeds(checked, { variables })` lists the balances and metadata
 *      the script will read and the accounts it may write. When
 *      `needs.complete` is false (an account or asset comes from `meta()`…),
 *      run the script against a provider that throws `InputNotLoaded` for
 *      values not in memory, load `error.input`, and run again until it
 *      completes.
 *   2. Every `RunResult` (success or failure) carries `inputsRead`: each
 *      (account, asset) → balance and (account, key) → value the run actually
 *      consulted. `inputsDigest(inputsRead)` is a sha256 over a canonical
 *      encoding of it; put both in the proposal.
 * FSM: run again with `replayInputs(inputsRead)` (or the cached values) and
 * compare `inputsDigest` of the new run's `inputsRead` with admission's: a
 * difference means the inputs went stale (`STALE_INPUTS`, retryable), never a
 * silent divergence. Same program + variables + inputs ⇒ same result, bytes
 * included, on every node.
 *
 * ## Results and errors
 *
 * Success: postings `{source, destination, amount: bigint, asset}` in order
 * (zero amounts never appear; a colored balance's asset is `BASE_COLOR[/n]`),
 * transaction metadata and account metadata as string maps.
 * Failure: a `NumscriptError` (a `TallyError`) with a stable `reason`, its
 * source `range` when known, and `code` = the v2 error code:
 *   `ParseError` → INTERPRETER_PARSE, `CompileError` → COMPILATION_FAILED,
 *   `RuntimeError` / `NegativeAmount` → INTERPRETER_RUNTIME,
 *   `MissingFunds` (account(s), asset, needed, available) → INSUFFICIENT_FUND.
 * `InputNotLoaded` and `InvariantViolation` are thrown, not returned.
 *
 * `unboundedOverdraftEverywhere` is v2's `force`: every source may overdraw
 * (send-all `[ASSET *]` still sends the balance plus any bounded overdraft).
 */
import type { Program } from './ast.ts'
import { checkProgram, type CheckedProgram } from './checker.ts'
import { NumscriptError } from './errors.ts'
import { runProgram, type RunOptions, type RunResult } from './interpreter.ts'
import { parseProgram } from './parser.ts'

export type * from './ast.ts'
export { parseProgram, parseExpression, nestingDepthMax } from './parser.ts'
export { checkProgram, FEATURE_FLAGS, KNOWN_FEATURE_FLAGS, type CheckedProgram } from './checker.ts'
export {
  runProgram,
  postingsMax,
  type Posting,
  type RunOptions,
  type RunResult,
  type RunSuccess,
  type RunFailure,
} from './interpreter.ts'
export {
  NumscriptError,
  ParseError,
  CompileError,
  RuntimeError,
  MissingFunds,
  NegativeAmount,
  InputNotLoaded,
  type InputKey,
  type NumscriptReason,
  type NumscriptStage,
} from './errors.ts'
export {
  inputsDigest,
  canonicalInputs,
  staticInputs,
  replayInputs,
  type InputsProvider,
  type InputsRead,
  type StaticInputs,
} from './inputs.ts'
export {
  scriptNeeds,
  type ScriptNeeds,
  type NeedsOptions,
  type BalanceNeed,
  type MetadataNeed,
  type ScaledBalanceNeed,
} from './needs.ts'
export { coloredAsset, valueToString, parseVariableValue, type Value, type Rational } from './values.ts'
export {
  parseSpecs,
  checkSpecs,
  SpecsFormatError,
  type SpecsFile,
  type SpecTestCase,
  type CaseOutcome,
  type CaseStatus,
} from './specs.ts'

/** Most compiled programs kept by `compile`'s cache (oldest evicted first). */
export const compiledCacheEntriesMax = 1024

const compiledCache = new Map<string, CheckedProgram>()

export interface CompileOptions {
  readonly featureFlags?: Iterable<string>
}

/** Parse + check, cached by (flags, source). Throws ParseError / CompileError. */
export function compile(source: string, options: CompileOptions = {}): CheckedProgram {
  const flags = [...new Set(options.featureFlags ?? [])].sort()
  const key = `${flags.join(',')}\n${source}`
  const cached = compiledCache.get(key)
  if (cached !== undefined) {
    compiledCache.delete(key)
    compiledCache.set(key, cached)
    return cached
  }
  const program: Program = parseProgram(source)
  const checked = checkProgram(program, flags)
  if (compiledCache.size >= compiledCacheEntriesMax) {
    const oldest = compiledCache.keys().next()
    if (oldest.done !== true) compiledCache.delete(oldest.value)
  }
  compiledCache.set(key, checked)
  return checked
}

export interface ExecuteOptions extends RunOptions, CompileOptions {}

const emptyInputsRead = { balances: new Map(), metadata: new Map(), scaledBalances: new Map() } as const

/** compile + run; a parse or compile error becomes `{ ok: false }` like a runtime one. */
export function execute(source: string, options: ExecuteOptions): RunResult {
  let checked: CheckedProgram
  try {
    checked = compile(source, options)
  } catch (error) {
    if (error instanceof NumscriptError) return { ok: false, error, inputsRead: emptyInputsRead }
    throw error
  }
  return runProgram(checked, options)
}
