import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { AttributeCache, cacheState, initialCacheState } from '../../src/cache/index.ts'
import type { CacheState, MirrorSink } from '../../src/cache/index.ts'
import { decodeCacheState, encodeCacheState } from '../../src/fsm/index.ts'
import type { CanonicalKey } from '../../src/domain/index.ts'
import { encodeAttribute, volumesKey } from '../../src/domain/index.ts'
import type { AccountAddress, Asset, LedgerName } from '../../src/domain/index.ts'

// V8's own answer to "do these two objects share a hidden class": the only
// way to see a map change from JavaScript. The flag is read when a function
// is parsed, so it is set before the one function that uses the intrinsic.
setFlagsFromString('--allow-natives-syntax')
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean

const mirror: MirrorSink = { putLater() {}, del() {} }
const key = (n: number): CanonicalKey => volumesKey('l' as LedgerName, `acc${n}` as AccountAddress, 'USD' as Asset)
const value = encodeAttribute({ kind: 'v', value: { input: 1n, output: 0n } })

/** The states a cache passes through: after each of `indexes` indexes (one put each), then after a reconfiguration. */
function statesOf(cache: AttributeCache, from: number, indexes: number): CacheState[] {
  const states = [cache.snapshot]
  for (let index = from; index < from + indexes; index++) {
    if (cache.enter(index, mirror)) states.push(cache.snapshot)
    cache.put(key(index), value, mirror)
  }
  cache.configure({ rotationThreshold: 3, generationBytesMax: null })
  states.push(cache.snapshot)
  return states
}

// The cache's hot readers (rotationDue, generationAt, the getters admission and the FSM call per
// order) were deoptimised at the first rotation after a restore: the decoded state and the state a
// rotation spread from it had different hidden classes (docs/performance.md, "cache state in one shape").
test('every cache state and its settings share one hidden class: new, decoded, restored, rotated, reconfigured', () => {
  const reference = cacheState({ rotationThreshold: 1, generationBytesMax: null }, 0, 0, 1, 1)
  const fresh = new AttributeCache({ rotationThreshold: 2, generationBytesMax: 1 << 20 })
  const frozenSettings = Object.freeze({ rotationThreshold: 2, generationBytesMax: null })
  const restoredState = decodeCacheState(encodeCacheState({ ...initialCacheState(frozenSettings), generation: 4, gen0FirstIndex: 9, gen1FirstIndex: 7 }))
  const restored = AttributeCache.restoring(restoredState, 9)
  // A state from elsewhere (another order, frozen settings) is taken in the one shape too.
  const fromLiteral = AttributeCache.restoring({ generation: 4, epoch: 0, gen1FirstIndex: 7, gen0FirstIndex: 9, settings: frozenSettings }, 9)
  const states = [
    initialCacheState(frozenSettings),
    restoredState,
    ...statesOf(fresh, 1, 7),
    ...statesOf(restored, 10, 7),
    ...statesOf(fromLiteral, 10, 3),
    ...statesOf(new AttributeCache(5), 1, 12),
  ]
  assert.ok(states.length >= 12)
  for (const [i, state] of states.entries()) {
    assert.ok(haveSameMap(state, reference), `state ${i} (${JSON.stringify(state)}) has a hidden class of its own`)
    assert.ok(haveSameMap(state.settings, reference.settings), `the settings of state ${i} have a hidden class of their own`)
  }
  // The same values as before: a state is what it says, whatever its shape.
  assert.deepEqual(restored.snapshot, { settings: { rotationThreshold: 3, generationBytesMax: null }, epoch: 0, generation: 7, gen0FirstIndex: 15, gen1FirstIndex: 13 })
})
