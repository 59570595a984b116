import {
  compile,
  runProgram,
  staticInputs,
  type InputsProvider,
  type Posting,
  type RunResult,
} from '../../src/numscript/index.ts'

export interface ScriptInputs {
  readonly balances?: Record<string, Record<string, bigint>>
  readonly metadata?: Record<string, Record<string, string>>
  readonly variables?: Record<string, string>
  readonly featureFlags?: readonly string[]
  readonly force?: boolean
  readonly inputs?: InputsProvider
}

export function provider(inputs: ScriptInputs): InputsProvider {
  const balances = new Map(Object.entries(inputs.balances ?? {}).map(([account, byAsset]) => [account, new Map(Object.entries(byAsset))]))
  const metadata = new Map(Object.entries(inputs.metadata ?? {}).map(([account, byKey]) => [account, new Map(Object.entries(byKey))]))
  return staticInputs({ balances, metadata })
}

export function run(source: string, inputs: ScriptInputs = {}): RunResult {
  const checked = compile(source, { featureFlags: inputs.featureFlags ?? [] })
  return runProgram(checked, {
    variables: inputs.variables ?? {},
    inputs: inputs.inputs ?? provider(inputs),
    unboundedOverdraftEverywhere: inputs.force === true,
  })
}

export type Flat = [source: string, destination: string, amount: bigint, asset: string]

export function flat(postings: readonly Posting[]): Flat[] {
  return postings.map((p) => [p.source, p.destination, p.amount, p.asset])
}

/** Runs and returns the postings, failing the test on an error. */
export function postings(source: string, inputs: ScriptInputs = {}): Flat[] {
  const result = run(source, inputs)
  if (!result.ok) throw new Error(`unexpected error: ${result.error.message}`)
  return flat(result.postings)
}
