import type { AttributeValue, CanonicalKey } from '../domain/index.ts'
import { TallyError } from '../domain/index.ts'
import type { KnownValue, Order, Scope } from '../orders/index.ts'
import { executeOrder } from '../orders/index.ts'

class NeedsLoad extends Error {}

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
      if (value === 'unknown') throw new NeedsLoad()
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
    if (error instanceof NeedsLoad) return false
    if (error instanceof TallyError) return true // a refused order leaves nothing behind, as in the FSM
    throw error
  }
  for (const [key, value] of writes) overlay.set(key, value)
  return true
}
