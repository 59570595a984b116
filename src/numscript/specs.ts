/**
 * The specs format of Formance's `numscript test` (see specs.schema.json):
 * parsing a `.num.specs.json` file and checking one script against its cases.
 * Pure: the caller reads the files (see specs-runner.ts).
 */
import { isJsonObject, parseJson, type Json } from '../domain/index.ts'
import { checkProgram, type CheckedProgram } from './checker.ts'
import { MissingFunds, NegativeAmount, NumscriptError } from './errors.ts'
import { staticInputs } from './inputs.ts'
import { runProgram, type Posting, type RunResult } from './interpreter.ts'
import { parseProgram } from './parser.ts'
import { coloredAsset } from './values.ts'

export interface SpecBalance {
  readonly account: string
  readonly asset: string
  readonly amount: bigint
  readonly color: string
}

export interface SpecMovement {
  readonly source: string
  readonly destination: string
  readonly asset: string
  readonly amount: bigint
  readonly color: string
}

type AccountsMetadata = ReadonlyMap<string, ReadonlyMap<string, string>>

export interface SpecExpectations {
  readonly postings?: readonly SpecMovement[]
  readonly txMetadata?: ReadonlyMap<string, string>
  readonly metadata?: AccountsMetadata
  readonly endBalances?: readonly SpecBalance[]
  readonly endBalancesInclude?: readonly SpecBalance[]
  readonly movements?: readonly SpecMovement[]
  readonly missingFunds?: boolean
  readonly negativeAmount?: boolean
}

export interface SpecTestCase {
  readonly it: string
  readonly focus: boolean
  readonly skip: boolean
  readonly balances: readonly SpecBalance[]
  readonly variables: ReadonlyMap<string, string>
  readonly metadata: AccountsMetadata
  readonly expect: SpecExpectations
}

export interface SpecsFile {
  readonly featureFlags: readonly string[]
  readonly balances: readonly SpecBalance[]
  readonly variables: ReadonlyMap<string, string>
  readonly metadata: AccountsMetadata
  readonly testCases: readonly SpecTestCase[]
}

export class SpecsFormatError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'SpecsFormatError'
  }
}

/** Most test cases one specs file may hold. */
export const specCasesMax = 10_000

// ---- parsing

function fail(path: string, message: string): never {
  throw new SpecsFormatError(`${path}: ${message}`)
}

function object(value: Json | undefined, path: string): { [key: string]: Json } {
  if (!isJsonObject(value)) fail(path, 'expected an object')
  return value
}

function array(value: Json | undefined, path: string): Json[] {
  if (!Array.isArray(value)) fail(path, 'expected an array')
  return value
}

function string(value: Json | undefined, path: string): string {
  if (typeof value !== 'string') fail(path, 'expected a string')
  return value
}

function boolean(value: Json | undefined, path: string): boolean {
  if (typeof value !== 'boolean') fail(path, 'expected a boolean')
  return value
}

function integer(value: Json | undefined, path: string): bigint {
  if (typeof value !== 'bigint') fail(path, 'expected an integer')
  return value
}

function onlyKeys(value: { [key: string]: Json }, allowed: readonly string[], path: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) fail(path, `unknown key ${JSON.stringify(key)}`)
  }
}

function parseBalances(value: Json | undefined, path: string): SpecBalance[] {
  if (value === undefined) return []
  return array(value, path).map((row, index) => {
    const rowPath = `${path}[${index}]`
    const fields = object(row, rowPath)
    onlyKeys(fields, ['account', 'asset', 'amount', 'color'], rowPath)
    return {
      account: string(fields['account'], `${rowPath}.account`),
      asset: string(fields['asset'], `${rowPath}.asset`),
      amount: integer(fields['amount'], `${rowPath}.amount`),
      color: fields['color'] === undefined ? '' : string(fields['color'], `${rowPath}.color`),
    }
  })
}

function parseMovements(value: Json | undefined, path: string): SpecMovement[] {
  return array(value, path).map((row, index) => {
    const rowPath = `${path}[${index}]`
    const fields = object(row, rowPath)
    onlyKeys(fields, ['source', 'destination', 'asset', 'amount', 'color'], rowPath)
    return {
      source: string(fields['source'], `${rowPath}.source`),
      destination: string(fields['destination'], `${rowPath}.destination`),
      asset: string(fields['asset'], `${rowPath}.asset`),
      amount: integer(fields['amount'], `${rowPath}.amount`),
      color: fields['color'] === undefined ? '' : string(fields['color'], `${rowPath}.color`),
    }
  })
}

function parseStringMap(value: Json | undefined, path: string): Map<string, string> {
  const out = new Map<string, string>()
  if (value === undefined) return out
  for (const [key, entry] of Object.entries(object(value, path))) out.set(key, string(entry, `${path}.${key}`))
  return out
}

function parseAccountsMetadata(value: Json | undefined, path: string): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>()
  if (value === undefined) return out
  for (const [account, entry] of Object.entries(object(value, path))) out.set(account, parseStringMap(entry, `${path}.${account}`))
  return out
}

const CASE_KEYS = [
  'it',
  'focus',
  'skip',
  'balances',
  'variables',
  'metadata',
  'expect.postings',
  'expect.txMetadata',
  'expect.metadata',
  'expect.endBalances',
  'expect.endBalances.include',
  'expect.movements',
  'expect.error.missingFunds',
  'expect.error.negativeAmount',
]

function parseCase(value: Json, path: string): SpecTestCase {
  const fields = object(value, path)
  onlyKeys(fields, CASE_KEYS, path)
  const expect: {
    -readonly [K in keyof SpecExpectations]: SpecExpectations[K]
  } = {}
  if (fields['expect.postings'] !== undefined) expect.postings = parseMovements(fields['expect.postings'], `${path}.expect.postings`)
  if (fields['expect.txMetadata'] !== undefined) {
    expect.txMetadata = parseStringMap(fields['expect.txMetadata'], `${path}.expect.txMetadata`)
  }
  if (fields['expect.metadata'] !== undefined) {
    expect.metadata = parseAccountsMetadata(fields['expect.metadata'], `${path}.expect.metadata`)
  }
  if (fields['expect.endBalances'] !== undefined) {
    expect.endBalances = parseBalances(fields['expect.endBalances'], `${path}.expect.endBalances`)
  }
  if (fields['expect.endBalances.include'] !== undefined) {
    expect.endBalancesInclude = parseBalances(fields['expect.endBalances.include'], `${path}.expect.endBalances.include`)
  }
  if (fields['expect.movements'] !== undefined) expect.movements = parseMovements(fields['expect.movements'], `${path}.expect.movements`)
  if (fields['expect.error.missingFunds'] !== undefined) {
    expect.missingFunds = boolean(fields['expect.error.missingFunds'], `${path}.expect.error.missingFunds`)
  }
  if (fields['expect.error.negativeAmount'] !== undefined) {
    expect.negativeAmount = boolean(fields['expect.error.negativeAmount'], `${path}.expect.error.negativeAmount`)
  }
  return {
    it: string(fields['it'], `${path}.it`),
    focus: fields['focus'] === undefined ? false : boolean(fields['focus'], `${path}.focus`),
    skip: fields['skip'] === undefined ? false : boolean(fields['skip'], `${path}.skip`),
    balances: parseBalances(fields['balances'], `${path}.balances`),
    variables: parseStringMap(fields['variables'], `${path}.variables`),
    metadata: parseAccountsMetadata(fields['metadata'], `${path}.metadata`),
    expect,
  }
}

/** Parses and validates a `.num.specs.json` text; throws `SpecsFormatError`. */
export function parseSpecs(text: string): SpecsFile {
  let json: Json
  try {
    json = parseJson(text)
  } catch (error) {
    throw new SpecsFormatError(error instanceof Error ? error.message : String(error))
  }
  const fields = object(json, 'specs')
  onlyKeys(fields, ['$schema', 'featureFlags', 'balances', 'variables', 'metadata', 'testCases'], 'specs')
  const cases = array(fields['testCases'], 'specs.testCases')
  if (cases.length > specCasesMax) fail('specs.testCases', `more than ${specCasesMax} cases`)
  return {
    featureFlags:
      fields['featureFlags'] === undefined
        ? []
        : array(fields['featureFlags'], 'specs.featureFlags').map((flag, index) => string(flag, `specs.featureFlags[${index}]`)),
    balances: parseBalances(fields['balances'], 'specs.balances'),
    variables: parseStringMap(fields['variables'], 'specs.variables'),
    metadata: parseAccountsMetadata(fields['metadata'], 'specs.metadata'),
    testCases: cases.map((entry, index) => parseCase(entry, `specs.testCases[${index}]`)),
  }
}

// ---- merging and running

function balancesMap(rows: readonly SpecBalance[]): Map<string, Map<string, bigint>> {
  const out = new Map<string, Map<string, bigint>>()
  for (const row of rows) {
    let byAsset = out.get(row.account)
    if (byAsset === undefined) {
      byAsset = new Map()
      out.set(row.account, byAsset)
    }
    byAsset.set(coloredAsset(row.asset, row.color), row.amount)
  }
  return out
}

function mergeMetadata(base: AccountsMetadata, override: AccountsMetadata): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>()
  for (const source of [base, override]) {
    for (const [account, byKey] of source) {
      const merged = out.get(account) ?? new Map<string, string>()
      for (const [key, value] of byKey) merged.set(key, value)
      out.set(account, merged)
    }
  }
  return out
}

export type CaseStatus = 'pass' | 'fail' | 'skip'

export interface CaseOutcome {
  readonly it: string
  readonly status: CaseStatus
  /** Why the case failed (empty when it passed or was skipped). */
  readonly reasons: readonly string[]
}

function showPostings(postings: readonly { source: string; destination: string; amount: bigint; asset: string }[]): string {
  if (postings.length === 0) return '(none)'
  return postings.map((p) => `${p.source} -> ${p.destination} ${p.amount} ${p.asset}`).join('; ')
}

function showMap(map: ReadonlyMap<string, string>): string {
  return JSON.stringify(Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))))
}

function sameStringMap(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  if (a.size !== b.size) return false
  for (const [key, value] of a) if (b.get(key) !== value) return false
  return true
}

function balanceTable(entries: Iterable<[string, bigint]>): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const [key, amount] of entries) out.set(key, (out.get(key) ?? 0n) + amount)
  return out
}

/** Compares tables treating a missing key as 0; `onlyExpected` ignores extra actual keys. */
function compareTables(actual: Map<string, bigint>, expected: Map<string, bigint>, onlyExpected: boolean, label: string): string[] {
  const keys = new Set(onlyExpected ? expected.keys() : [...actual.keys(), ...expected.keys()])
  const reasons: string[] = []
  for (const key of [...keys].sort()) {
    const want = expected.get(key) ?? 0n
    const got = actual.get(key) ?? 0n
    if (want !== got) reasons.push(`${label} ${key.split('\u0000').join(' ')}: expected ${want}, got ${got}`)
  }
  return reasons
}

function checkExpectations(
  expect: SpecExpectations,
  result: RunResult,
  initialBalances: readonly SpecBalance[],
): string[] {
  const expectsMissingFunds = expect.missingFunds === true
  const expectsNegativeAmount = expect.negativeAmount === true
  if (!result.ok) {
    const error = result.error
    if (expectsMissingFunds && error instanceof MissingFunds) return []
    if (expectsNegativeAmount && error instanceof NegativeAmount) return []
    return [`unexpected error ${error.reason}: ${error.message}`]
  }
  const reasons: string[] = []
  if (expectsMissingFunds) reasons.push('expected a missing funds error, but the script succeeded')
  if (expectsNegativeAmount) reasons.push('expected a negative amount error, but the script succeeded')
  const postings: readonly Posting[] = result.postings
  if (expect.postings !== undefined) {
    const wanted = expect.postings.map((p) => ({ ...p, asset: coloredAsset(p.asset, p.color) }))
    const same =
      wanted.length === postings.length &&
      wanted.every((p, index) => {
        const actual = postings[index]
        return (
          actual !== undefined &&
          actual.source === p.source &&
          actual.destination === p.destination &&
          actual.amount === p.amount &&
          actual.asset === p.asset
        )
      })
    if (!same) reasons.push(`postings: expected ${showPostings(wanted)}; got ${showPostings(postings)}`)
  }
  if (expect.txMetadata !== undefined && !sameStringMap(expect.txMetadata, result.txMetadata)) {
    reasons.push(`txMetadata: expected ${showMap(expect.txMetadata)}, got ${showMap(result.txMetadata)}`)
  }
  if (expect.metadata !== undefined) {
    const accounts = new Set([...expect.metadata.keys(), ...result.accountMetadata.keys()])
    for (const account of [...accounts].sort()) {
      const want = expect.metadata.get(account) ?? new Map<string, string>()
      const got = result.accountMetadata.get(account) ?? new Map<string, string>()
      if (!sameStringMap(want, got)) reasons.push(`metadata of ${account}: expected ${showMap(want)}, got ${showMap(got)}`)
    }
  }
  if (expect.endBalances !== undefined || expect.endBalancesInclude !== undefined) {
    const entries: [string, bigint][] = initialBalances.map((row) => [
      `${row.account}\u0000${coloredAsset(row.asset, row.color)}`,
      row.amount,
    ])
    for (const posting of postings) {
      entries.push([`${posting.source}\u0000${posting.asset}`, -posting.amount])
      entries.push([`${posting.destination}\u0000${posting.asset}`, posting.amount])
    }
    const actual = balanceTable(entries)
    const toTable = (rows: readonly SpecBalance[]): Map<string, bigint> =>
      balanceTable(rows.map((row) => [`${row.account}\u0000${coloredAsset(row.asset, row.color)}`, row.amount]))
    if (expect.endBalances !== undefined) {
      reasons.push(...compareTables(actual, toTable(expect.endBalances), false, 'endBalances'))
    }
    if (expect.endBalancesInclude !== undefined) {
      reasons.push(...compareTables(actual, toTable(expect.endBalancesInclude), true, 'endBalances.include'))
    }
  }
  if (expect.movements !== undefined) {
    const key = (source: string, destination: string, asset: string): string => `${source}\u0000${destination}\u0000${asset}`
    const actual = balanceTable(postings.map((p) => [key(p.source, p.destination, p.asset), p.amount]))
    const expected = balanceTable(
      expect.movements.map((m) => [key(m.source, m.destination, coloredAsset(m.asset, m.color)), m.amount]),
    )
    reasons.push(...compareTables(actual, expected, false, 'movements'))
  }
  return reasons
}

export interface CheckSpecsOptions {
  /** When some case of the whole run has `focus`, only focused cases run. */
  readonly focusMode?: boolean
}

/**
 * Runs every case of one specs file against one script. A script that does
 * not parse or type-check fails every case with that error.
 */
export function checkSpecs(script: string, specs: SpecsFile, options: CheckSpecsOptions = {}): CaseOutcome[] {
  let checked: CheckedProgram | undefined
  let compileError: NumscriptError | undefined
  try {
    checked = checkProgram(parseProgram(script), specs.featureFlags)
  } catch (error) {
    if (!(error instanceof NumscriptError)) throw error
    compileError = error
  }
  return specs.testCases.map((testCase): CaseOutcome => {
    if (testCase.skip || (options.focusMode === true && !testCase.focus)) {
      return { it: testCase.it, status: 'skip', reasons: [] }
    }
    if (checked === undefined) {
      return { it: testCase.it, status: 'fail', reasons: [`${compileError?.reason ?? 'ERROR'}: ${compileError?.message ?? ''}`] }
    }
    const balanceRows = new Map<string, SpecBalance>()
    for (const row of [...specs.balances, ...testCase.balances]) {
      balanceRows.set(`${row.account}\u0000${coloredAsset(row.asset, row.color)}`, row)
    }
    const initialBalances = [...balanceRows.values()]
    const variables: Record<string, string> = Object.create(null) as Record<string, string>
    for (const [name, value] of [...specs.variables, ...testCase.variables]) variables[name] = value
    const result = runProgram(checked, {
      variables,
      inputs: staticInputs({
        balances: balancesMap(initialBalances),
        metadata: mergeMetadata(specs.metadata, testCase.metadata),
      }),
    })
    const reasons = checkExpectations(testCase.expect, result, initialBalances)
    return { it: testCase.it, status: reasons.length === 0 ? 'pass' : 'fail', reasons }
  })
}
