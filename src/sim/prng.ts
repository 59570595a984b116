/**
 * The simulator's own seeded PRNG (mulberry32): 32-bit state, fast, and the
 * same sequence on every platform. Never used by the engine.
 */
import { invariant } from '../domain/index.ts'

export class Prng {
  #state: number

  constructor(seed: number) {
    invariant(Number.isSafeInteger(seed), 'seed must be an integer')
    this.#state = (seed ^ 0x9e3779b9) >>> 0
  }

  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let t = this.#state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** Uniform integer in [0, bound). */
  int(bound: number): number {
    invariant(Number.isSafeInteger(bound) && bound > 0 && bound <= 0x1_0000_0000, 'bound must be in [1, 2^32]')
    return this.nextUint32() % bound
  }

  chance(probability: number): boolean {
    return this.nextUint32() / 0x1_0000_0000 < probability
  }

  pick<T>(items: readonly T[]): T {
    invariant(items.length > 0, 'cannot pick from an empty list')
    const item = items[this.int(items.length)]
    invariant(item !== undefined, 'picked index out of range')
    return item
  }

  /** Picks an index by integer weights. */
  weighted(weights: readonly number[]): number {
    const total = weights.reduce((sum, weight) => sum + weight, 0)
    invariant(total > 0, 'weights must sum to a positive number')
    let roll = this.int(total)
    for (let index = 0; index < weights.length; index += 1) {
      const weight = weights[index] ?? 0
      if (roll < weight) return index
      roll -= weight
    }
    return weights.length - 1
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let index = items.length - 1; index > 0; index -= 1) {
      const other = this.int(index + 1)
      const held = items[index] as T
      items[index] = items[other] as T
      items[other] = held
    }
    return items
  }
}

/** The chained digest of a log prefix: equal digests at an LSN mean equal state there. */
export function chainDigest(previous: number, lsn: number, epoch: number, value: number): number {
  let hash = (previous ^ 0x811c9dc5) >>> 0
  for (const part of [lsn, epoch, value]) {
    hash = Math.imul(hash ^ (part & 0xffff), 0x01000193) >>> 0
    hash = Math.imul(hash ^ (part >>> 16), 0x01000193) >>> 0
  }
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0x5bd1e995) >>> 0
  return (hash ^ (hash >>> 15)) >>> 0
}
