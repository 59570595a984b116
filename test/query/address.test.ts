import { test } from 'node:test'
import assert from 'node:assert/strict'
import { addressPatternPrefix, matchesAddressPattern, parseAddressPattern } from '../../src/query/index.ts'
import type { AddressPattern } from '../../src/query/index.ts'

function pattern(source: string): AddressPattern {
  const parsed = parseAddressPattern(source)
  assert.ok(!('error' in parsed), `pattern ${source} parses`)
  return parsed
}

// [pattern, address, matches]
const CASES: readonly (readonly [string, string, boolean])[] = [
  // exact
  ['users:1', 'users:1', true],
  ['users:1', 'users:10', false],
  ['users:1', 'users', false],
  ['users:1', 'users:1:wallet', false],
  ['world', 'world', true],
  ['world', 'worlds', false],
  // `users:` — one wildcard segment after users
  ['users:', 'users:1', true],
  ['users:', 'users:abc_DEF-9', true],
  ['users:', 'users', false],
  ['users:', 'users:1:wallet', false],
  ['users:', 'orders:1', false],
  ['users:', 'xusers:1', false],
  // `users::wallet` — wildcard in the middle
  ['users::wallet', 'users:1:wallet', true],
  ['users::wallet', 'users:2:wallet', true],
  ['users::wallet', 'users:1:main', false],
  ['users::wallet', 'users:1', false],
  ['users::wallet', 'users:1:wallet:x', false],
  ['users::wallet', 'users:wallet', false],
  // leading and only wildcards
  [':wallet', 'users:wallet', true],
  [':wallet', 'wallet', false],
  ['', 'world', true],
  ['', 'users:1', false],
  ['::', 'a:b:c', true],
  ['::', 'a:b', false],
  // trailing `...` — one or more further segments
  ['users:...', 'users:1', true],
  ['users:...', 'users:1:wallet', true],
  ['users:...', 'users:1:wallet:main:x', true],
  ['users:...', 'users', false],
  ['users:...', 'orders:1', false],
  ['users::...', 'users:1:wallet', true],
  ['users::...', 'users:1', false],
  ['users::wallet:...', 'users:1:wallet:eur', true],
  ['users::wallet:...', 'users:1:wallet', false],
  ['...', 'world', true],
  ['...', 'a:b:c:d', true],
]

test('address pattern table', () => {
  for (const [source, address, expected] of CASES) {
    assert.equal(matchesAddressPattern(pattern(source), address), expected, `${JSON.stringify(source)} vs ${address}`)
  }
})

test('malformed address patterns are refused with the reason', () => {
  const bad: readonly (readonly [string, RegExp])[] = [
    ['users:...:wallet', /only allowed as the last segment/],
    ['users:a b', /segment "a b"/],
    ['users:é', /segment "é"/],
    ['users:.', /segment "\."/],
    ['users:....', /segment "...."/],
    ['x'.repeat(1025), /longer than 1024/],
  ]
  for (const [source, reason] of bad) {
    const parsed = parseAddressPattern(source)
    assert.ok('error' in parsed, `${source} is refused`)
    assert.match(parsed.error, reason)
  }
})

test('address pattern prefix for scans', () => {
  const cases: readonly (readonly [string, string | undefined])[] = [
    ['users:', 'users:'],
    ['users::wallet', 'users:'],
    ['users:...', 'users:'],
    ['users:1:', 'users:1:'],
    ['users:1', 'users:1'],
    [':wallet', undefined],
    ['...', undefined],
    ['', undefined],
  ]
  for (const [source, prefix] of cases) {
    assert.equal(addressPatternPrefix(pattern(source)), prefix, source)
  }
  // Every address a pattern matches starts with its prefix.
  for (const [source, address, expected] of CASES) {
    const prefix = addressPatternPrefix(pattern(source))
    if (expected && prefix !== undefined) assert.ok(address.startsWith(prefix), `${address} starts with ${prefix}`)
  }
})
