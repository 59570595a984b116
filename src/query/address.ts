/**
 * Account address patterns for `$match` on `address`, `account`, `source`
 * and `destination` (Formance v2 "partial addresses").
 *
 *   pattern  = segment *(":" segment)
 *   segment  = ""            one wildcard: matches exactly one segment
 *            | literal       [a-zA-Z0-9_-]+, matches itself
 *            | "..."         last segment only: matches one or more segments
 *
 * A pattern with neither an empty segment nor a trailing `...` is an exact
 * address and matches only itself.
 */

export const addressPatternLengthMax = 1024

const LITERAL_SEGMENT = /^[a-zA-Z0-9_-]+$/
const ELLIPSIS = '...'

export interface AddressPattern {
  /** The pattern as the client wrote it. */
  readonly source: string
  /** Positional segments; `undefined` is a one-segment wildcard. */
  readonly segments: readonly (string | undefined)[]
  /** A trailing `...`: one or more further segments of any value. */
  readonly openEnded: boolean
  /** No wildcard and no `...`: equality with `source`. */
  readonly exact: boolean
}

/** Parses a pattern, or returns the reason it is malformed. */
export function parseAddressPattern(source: string): AddressPattern | { readonly error: string } {
  if (source.length > addressPatternLengthMax) {
    return { error: `address pattern longer than ${addressPatternLengthMax} characters` }
  }
  const parts = source.split(':')
  const segments: (string | undefined)[] = []
  let openEnded = false
  for (let index = 0; index < parts.length; index++) {
    const part = parts[index] as string
    if (part === ELLIPSIS) {
      if (index !== parts.length - 1) return { error: `"..." is only allowed as the last segment` }
      openEnded = true
    } else if (part === '') {
      segments.push(undefined)
    } else if (LITERAL_SEGMENT.test(part)) {
      segments.push(part)
    } else {
      return { error: `segment ${JSON.stringify(part)} is not [a-zA-Z0-9_-]+, empty (any one segment) or a trailing "..."` }
    }
  }
  const exact = !openEnded && segments.every((segment) => segment !== undefined)
  return { source, segments, openEnded, exact }
}

export function matchesAddressPattern(pattern: AddressPattern, address: string): boolean {
  if (pattern.exact) return address === pattern.source
  const parts = address.split(':')
  const count = pattern.segments.length
  if (pattern.openEnded ? parts.length <= count : parts.length !== count) return false
  for (let index = 0; index < count; index++) {
    const expected = pattern.segments[index]
    if (expected !== undefined && parts[index] !== expected) return false
  }
  return true
}

/**
 * The longest string every matching address starts with, or `undefined` when
 * the first segment is already a wildcard. `users:` and `users:...` give
 * `users:`; an exact address gives itself.
 */
export function addressPatternPrefix(pattern: AddressPattern): string | undefined {
  if (pattern.exact) return pattern.source
  const literals: string[] = []
  for (const segment of pattern.segments) {
    if (segment === undefined) break
    literals.push(segment)
  }
  if (literals.length === 0) return undefined
  // Something follows the literals (a wildcard or `...`), so a ":" does too.
  return `${literals.join(':')}:`
}
