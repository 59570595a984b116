import type { AttributeValue, CanonicalKey } from '../domain/index.ts'
import { TallyError } from '../domain/index.ts'
import { idempotencyKey as idempotencyRecordKey } from '../domain/index.ts'
import type { KnownValue, Order, ProposedOrder, Scope } from '../orders/index.ts'
import { executeOrder, ledgerOfOrder, needsOf, needsReadValues } from '../orders/index.ts'

/** Thrown through a handler when a value is not loaded; one frozen instance (no stack to build). */
const NEEDS_LOAD: unique symbol = Symbol('needs load')

/**
 * Runs an order's handler on planning values, so that the next orders of the
 * same proposal are planned on its effects: a bulk that creates a
 * transaction and then reverts it, or a script reading a balance an earlier
 * element moved. Effects go to `overlay` only when the order succeeds; the
 * FSM stays the authority — this only makes the plan (and a script's inputs
 * digest) match what the FSM will see when nothing else intervenes.
 *
 * Returns false when a value it needs is not loaded yet (another round).
 */
export function speculate(
  order: Order,
  date: string,
  idempotencyKey: string | undefined,
  lookup: (key: CanonicalKey) => KnownValue,
  overlay: Map<CanonicalKey, AttributeValue>,
): boolean {
  const writes = new Map<CanonicalKey, AttributeValue>()
  const scope: Scope = {
    date,
    idempotencyKey,
    read(key) {
      const written = writes.get(key)
      if (written !== undefined) return written
      const value = lookup(key)
      if (value === 'unknown') throw NEEDS_LOAD
      return value ?? undefined
    },
    write(key, value) {
      writes.set(key, value)
    },
    appendLog() {},
  }
  try {
    executeOrder(scope, order)
  } catch (error) {
    if (error === NEEDS_LOAD) return false
    if (error instanceof TallyError) return true // a refused order leaves nothing behind, as in the FSM
    throw error
  }
  for (const [key, value] of writes) overlay.set(key, value)
  return true
}

export interface PlannedNeeds {
  /** Every key the order may read (its coverage), idempotency record included. */
  readonly keys: readonly CanonicalKey[]
  /** The order as proposed (a script order carries its inputs digest). */
  readonly order: Order
  readonly complete: boolean
}

/**
 * One planning round over a proposal's orders, in sequence, each on the
 * speculative effects of the ones before. `lookup` answers from what the
 * caller knows ('unknown' = load it and plan again). Pure: admission runs it
 * against the cache and store loads, the checker against its replayed state,
 * so both plan alike.
 */
export function planRound(orders: readonly ProposedOrder[], date: string, lookup: (key: CanonicalKey) => KnownValue): PlannedNeeds[] {
  const steps = planRoundInSlices(orders, date, lookup, Number.POSITIVE_INFINITY)
  for (;;) {
    const step = steps.next()
    if (step.done === true) return step.value
  }
}

/**
 * `planRound` a slice of `sliceOrders` orders at a time: the generator
 * pauses after each slice (admission gives the event loop a turn there) and
 * returns the same plan as `planRound`. `lookup` is asked in the same order
 * either way.
 */
export function* planRoundInSlices(
  orders: readonly ProposedOrder[],
  date: string,
  lookup: (key: CanonicalKey) => KnownValue,
  sliceOrders: number,
): Generator<void, PlannedNeeds[], void> {
  const overlay = new Map<CanonicalKey, AttributeValue>()
  const withOverlay = overOverlay(overlay, lookup)
  // The overlay is read only by the planning of orders whose needs read
  // values (a revert, a script): from the last of them on, no later plan can
  // see an order's effects, so its handler is not run (a bulk of postings
  // has none, and is planned from its orders alone).
  let speculatedBelow = 0
  for (let index = orders.length - 1; index > 0; index--) {
    if (needsReadValues((orders[index] as ProposedOrder).order)) {
      speculatedBelow = index
      break
    }
  }
  const planned: PlannedNeeds[] = []
  for (let index = 0; index < orders.length; index++) {
    if (index > 0 && index % sliceOrders === 0) yield
    const proposed = orders[index] as ProposedOrder
    const needs = needsOf(proposed.order, withOverlay)
    const ledger = ledgerOfOrder(proposed.order)
    const keys = proposed.idempotencyKey !== undefined && ledger !== undefined ? [...needs.keys, idempotencyRecordKey(ledger, proposed.idempotencyKey)] : needs.keys
    const order = needs.order ?? proposed.order
    const complete = needs.complete && (index >= speculatedBelow || speculate(order, date, proposed.idempotencyKey, withOverlay, overlay))
    planned.push({ keys, complete, order })
  }
  return planned
}

/** `lookup` behind `overlay`. Returned unnamed: a named closure costs a `name` property definition per call under tsx (keepNames). */
function overOverlay(overlay: ReadonlyMap<CanonicalKey, AttributeValue>, lookup: (key: CanonicalKey) => KnownValue): (key: CanonicalKey) => KnownValue {
  return (key) => overlay.get(key) ?? lookup(key)
}
