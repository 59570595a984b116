import type { Amount } from './amount.ts'
import { AMOUNT_LIMIT } from './amount.ts'
import { invariant } from './errors.ts'
import type { Keyed } from './keyed.ts'

/** Per (account, asset): everything received and everything sent. */
export interface Volumes {
  readonly input: Amount
  readonly output: Amount
}

export const ZERO_VOLUMES: Volumes = Object.freeze({ input: 0n, output: 0n })

export function balanceOf(volumes: Volumes): bigint {
  return volumes.input - volumes.output
}

/** Whether `volume + amount` stays an amount (below 2^256): callers refuse the posting when not. */
export function fitsVolume(volume: Amount, amount: Amount): boolean {
  return volume + amount < AMOUNT_LIMIT
}

export function addInput(volumes: Volumes, amount: Amount): Volumes {
  invariant(amount >= 0n, 'posting amount is negative')
  invariant(fitsVolume(volumes.input, amount), 'input volume past 2^256 - 1: the posting should have been refused')
  return { input: volumes.input + amount, output: volumes.output }
}

export function addOutput(volumes: Volumes, amount: Amount): Volumes {
  invariant(amount >= 0n, 'posting amount is negative')
  invariant(fitsVolume(volumes.output, amount), 'output volume past 2^256 - 1: the posting should have been refused')
  return { input: volumes.input, output: volumes.output + amount }
}

/** Per account, per asset volumes as v2 prints them (`V2AggregatedVolumes`); maps without prototype (`keyed.ts`). */
export type AggregatedVolumes = Keyed<Keyed<{ input: bigint; output: bigint; balance: bigint }>>

/** Wire shape of v2: `{input, output, balance}`. */
export function volumesWithBalance(volumes: Volumes): { input: bigint; output: bigint; balance: bigint } {
  return { input: volumes.input, output: volumes.output, balance: volumes.input - volumes.output }
}
