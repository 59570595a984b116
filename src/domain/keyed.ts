/**
 * Maps keyed by user input (account addresses, metadata keys, script
 * variable names, assets) kept as JSON objects, because they are logged,
 * hashed and printed as JSON. A plain `{}` is the wrong container for them:
 * `obj["__proto__"] = v` replaces its prototype instead of storing a key,
 * `obj["constructor"]` reads `Object` when the key is absent, and a nested
 * `(obj[account] ??= {})[asset] = v` with account `__proto__` writes into
 * `Object.prototype` for the whole process. Every such map is built here,
 * with no prototype, and read through `ownValue`.
 */
export type Keyed<V> = Record<string, V>

/** An empty map with no prototype: every key, `__proto__` included, is data. */
export function emptyKeyed<V>(): Keyed<V> {
  return Object.create(null) as Keyed<V>
}

/** A map with no prototype holding `entries` in the order given (a later duplicate wins). */
export function keyedFrom<V>(entries: Iterable<readonly [string, V]>): Keyed<V> {
  const result = emptyKeyed<V>()
  for (const [key, value] of entries) result[key] = value
  return result
}

/** The entry stored under `key` itself, never one inherited from a prototype. */
export function ownValue<V>(map: Readonly<Keyed<V>>, key: string): V | undefined {
  return Object.hasOwn(map, key) ? map[key] : undefined
}

/** Own entries of a map, whatever its prototype (a parsed body, a decoded row). */
export function ownEntries<V>(map: Readonly<Keyed<V>>): [string, V][] {
  const keys = Object.keys(map)
  // No entry (most metadata of most writes): the fresh empty list `Object.keys` made, not a second one.
  if (keys.length === 0) return keys as unknown as [string, V][]
  return keys.map((key) => [key, map[key] as V])
}

/** The inner map under `key`, created (without prototype) when missing. */
export function keyedChild<V>(map: Keyed<Keyed<V>>, key: string): Keyed<V> {
  let child = ownValue(map, key)
  if (child === undefined) {
    child = emptyKeyed<V>()
    map[key] = child
  }
  return child
}
