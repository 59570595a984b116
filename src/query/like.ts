/**
 * SQL `LIKE` patterns as Postgres reads them for Formance v2: `%` matches
 * any run of characters (possibly empty), `_` exactly one character, `\`
 * makes the next character literal; everything else matches itself, case
 * sensitively, and the pattern must cover the whole value.
 *
 * Matched by the classic two-pointer wildcard algorithm (one backtrack
 * point, O(value × pattern) worst case) rather than a RegExp, whose
 * backtracking on `%a%a%a…` is exponential in the number of `%`.
 */

export const likePatternLengthMax = 4096

/** A code point to match literally, `ONE` for `_`, `ANY` for `%`. */
export type LikeToken = string | typeof ONE | typeof ANY
export const ONE: unique symbol = Symbol('_')
export const ANY: unique symbol = Symbol('%')

export interface LikePattern {
  readonly source: string
  readonly tokens: readonly LikeToken[]
}

export function compileLikePattern(source: string): LikePattern | { readonly error: string } {
  if (source.length > likePatternLengthMax) return { error: `pattern longer than ${likePatternLengthMax} characters` }
  const tokens: LikeToken[] = []
  const characters = Array.from(source)
  for (let index = 0; index < characters.length; index++) {
    const character = characters[index] as string
    if (character === '\\') {
      const next = characters[index + 1]
      if (next === undefined) return { error: 'pattern ends with the escape character "\\"' }
      tokens.push(next)
      index++
    } else if (character === '%') {
      if (tokens[tokens.length - 1] !== ANY) tokens.push(ANY)
    } else if (character === '_') {
      tokens.push(ONE)
    } else {
      tokens.push(character)
    }
  }
  return { source, tokens }
}

export function matchesLike(pattern: LikePattern, value: string): boolean {
  const tokens = pattern.tokens
  const characters = Array.from(value)
  let tokenIndex = 0
  let characterIndex = 0
  // Where to resume after the last `%`: the token after it, and the value
  // position it has absorbed up to.
  let anyTokenIndex = -1
  let anyCharacterIndex = 0
  while (characterIndex < characters.length) {
    const token = tokens[tokenIndex]
    if (token === ANY) {
      anyTokenIndex = tokenIndex
      anyCharacterIndex = characterIndex
      tokenIndex++
    } else if (token !== undefined && (token === ONE || token === characters[characterIndex])) {
      tokenIndex++
      characterIndex++
    } else if (anyTokenIndex >= 0) {
      // Let the last `%` absorb one more character and retry after it.
      anyCharacterIndex++
      characterIndex = anyCharacterIndex
      tokenIndex = anyTokenIndex + 1
    } else {
      return false
    }
  }
  while (tokens[tokenIndex] === ANY) tokenIndex++
  return tokenIndex === tokens.length
}
