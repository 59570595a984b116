/**
 * The inputs a script reads (balances, account metadata), how the caller
 * provides them, the record of what a run consulted, and its digest.
 */
import { createHash } from 'node:crypto'
import { InputNotLoaded } from './errors.ts'

/**
 * Serves the values a script reads. Synchronous by design: the interpreter
 * never awaits. A provider that does not hold a value in memory throws
 * `InputNotLoaded`; the caller loads it and runs the script again.
 */
export interface InputsProvider {
  /** Balance of (account, asset) before the script runs; 0 when never used. */
  balance(account: string, asset: string): bigint
  /** Account metadata before the script runs; undefined when not set. */
  metadata(account: string, key: string): string | undefined
  /**
   * Every non-zero balance of `account` in `baseAsset` at any scale
   * (`EUR`, `EUR/2`, …). Needed only by `with scaling through`.
   */
  balancesOfBaseAsset?(account: string, baseAsset: string): ReadonlyMap<string, bigint>
}

/** Everything a run consulted, with the values it saw. */
export interface InputsRead {
  /** account → asset → balance */
  readonly balances: ReadonlyMap<string, ReadonlyMap<string, bigint>>
  /** account → key → value (undefined: the key was read and is not set) */
  readonly metadata: ReadonlyMap<string, ReadonlyMap<string, string | undefined>>
  /** account → base asset → (asset → balance), for asset scaling */
  readonly scaledBalances: ReadonlyMap<string, ReadonlyMap<string, ReadonlyMap<string, bigint>>>
}

function nested<K, V>(map: Map<string, Map<K, V>>, key: string): Map<K, V> {
  let inner = map.get(key)
  if (inner === undefined) {
    inner = new Map()
    map.set(key, inner)
  }
  return inner
}

/** Wraps a provider; remembers every value it served (each read once). */
export class RecordingInputs {
  private readonly provider: InputsProvider
  readonly balances = new Map<string, Map<string, bigint>>()
  readonly metadata = new Map<string, Map<string, string | undefined>>()
  readonly scaledBalances = new Map<string, Map<string, ReadonlyMap<string, bigint>>>()

  constructor(provider: InputsProvider) {
    this.provider = provider
  }

  balance(account: string, asset: string): bigint {
    const byAsset = nested(this.balances, account)
    const known = byAsset.get(asset)
    if (known !== undefined) return known
    const value = this.provider.balance(account, asset)
    byAsset.set(asset, value)
    return value
  }

  metadataValue(account: string, key: string): string | undefined {
    const byKey = nested(this.metadata, account)
    if (byKey.has(key)) return byKey.get(key)
    const value = this.provider.metadata(account, key)
    byKey.set(key, value)
    return value
  }

  /** Undefined when the provider does not support scaled queries. */
  balancesOfBaseAsset(account: string, baseAsset: string): ReadonlyMap<string, bigint> | undefined {
    const byBase = nested(this.scaledBalances, account)
    const known = byBase.get(baseAsset)
    if (known !== undefined) return known
    if (this.provider.balancesOfBaseAsset === undefined) return undefined
    const value = new Map(this.provider.balancesOfBaseAsset(account, baseAsset))
    byBase.set(baseAsset, value)
    return value
  }

  snapshot(): InputsRead {
    return { balances: this.balances, metadata: this.metadata, scaledBalances: this.scaledBalances }
  }
}

export interface StaticInputs {
  /** account → asset → balance */
  readonly balances?: ReadonlyMap<string, ReadonlyMap<string, bigint>>
  /** account → key → value */
  readonly metadata?: ReadonlyMap<string, ReadonlyMap<string, string>>
}

/** A provider over in-memory maps: missing balances are 0, missing metadata unset. */
export function staticInputs(inputs: StaticInputs): InputsProvider {
  const balances = inputs.balances ?? new Map<string, ReadonlyMap<string, bigint>>()
  const metadata = inputs.metadata ?? new Map<string, ReadonlyMap<string, string>>()
  return {
    balance: (account, asset) => balances.get(account)?.get(asset) ?? 0n,
    metadata: (account, key) => metadata.get(account)?.get(key),
    balancesOfBaseAsset: (account, baseAsset) => {
      const out = new Map<string, bigint>()
      for (const [asset, amount] of balances.get(account) ?? new Map<string, bigint>()) {
        if (asset === baseAsset || (asset.startsWith(`${baseAsset}/`) && /^[0-9]+$/.test(asset.slice(baseAsset.length + 1)))) {
          if (amount !== 0n) out.set(asset, amount)
        }
      }
      return out
    },
  }
}

/**
 * A provider that serves exactly a previous run's `inputsRead` (e.g. the
 * values admission loaded) and throws `InputNotLoaded` for anything else.
 */
export function replayInputs(read: InputsRead): InputsProvider {
  return {
    balance(account, asset) {
      const value = read.balances.get(account)?.get(asset)
      if (value === undefined) throw new InputNotLoaded({ kind: 'balance', account, asset })
      return value
    },
    metadata(account, key) {
      const byKey = read.metadata.get(account)
      if (byKey === undefined || !byKey.has(key)) throw new InputNotLoaded({ kind: 'metadata', account, key })
      return byKey.get(key)
    },
    balancesOfBaseAsset(account, baseAsset) {
      const value = read.scaledBalances.get(account)?.get(baseAsset)
      if (value === undefined) throw new InputNotLoaded({ kind: 'scaledBalances', account, baseAsset })
      return value
    },
  }
}

function sortedEntries<V>(map: ReadonlyMap<string, V>): [string, V][] {
  return [...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
}

/**
 * Canonical encoding of an `InputsRead`: a JSON array of tuples sorted by
 * key, amounts as decimal strings, an unset metadata key as null.
 */
export function canonicalInputs(read: InputsRead): string {
  const balances: string[][] = []
  for (const [account, byAsset] of sortedEntries(read.balances)) {
    for (const [asset, amount] of sortedEntries(byAsset)) balances.push([account, asset, amount.toString()])
  }
  const metadata: (string | null)[][] = []
  for (const [account, byKey] of sortedEntries(read.metadata)) {
    for (const [key, value] of sortedEntries(byKey)) metadata.push([account, key, value ?? null])
  }
  const scaled: (string | string[][])[][] = []
  for (const [account, byBase] of sortedEntries(read.scaledBalances)) {
    for (const [base, byAsset] of sortedEntries(byBase)) {
      scaled.push([account, base, sortedEntries(byAsset).map(([asset, amount]) => [asset, amount.toString()])])
    }
  }
  return JSON.stringify({ balances, metadata, scaled })
}

/** sha256 (hex) of `canonicalInputs`: equal inputs ⇔ equal digests. */
export function inputsDigest(read: InputsRead): string {
  return createHash('sha256').update(canonicalInputs(read), 'utf8').digest('hex')
}
