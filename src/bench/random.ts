import { invariant } from '../domain/index.ts'

/**
 * A small deterministic PRNG (mulberry32) so a bench run's request bodies are
 * reproducible from `--seed`. Each client owns one stream, derived from the
 * run seed, the workload's position and the client's index, so clients never
 * share state and adding a client does not shift the others' sequences.
 */
export class Random {
  private state: number

  constructor(seed: number) {
    invariant(Number.isSafeInteger(seed), `seed must be a safe integer, got ${seed}`)
    this.state = seed >>> 0
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }

  /** A uniform float in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 0x1_0000_0000
  }

  /** A uniform integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number {
    invariant(Number.isSafeInteger(maxExclusive), 'nextInt bound must be an integer')
    invariant(maxExclusive > 0, 'nextInt bound must be positive')
    const value = Math.floor(this.nextFloat() * maxExclusive)
    invariant(value < maxExclusive, 'nextInt out of range')
    return value
  }
}

/** Mixes run seed and stream coordinates into one 32-bit seed (splitmix-style finaliser). */
export function deriveSeed(seed: number, workloadIndex: number, clientIndex: number): number {
  let h = (seed ^ Math.imul(workloadIndex + 1, 0x9e3779b1) ^ Math.imul(clientIndex + 1, 0x85ebca77)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}
