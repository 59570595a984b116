// A WAL whose group fdatasyncs a test can hold: writes stay appended and not durable (and, with
// `applyWhenDurable`, not applied) for exactly as long as the test needs, whatever the machine's speed.
import type { FileHandle } from 'node:fs/promises'
import type { WalIo } from '../../src/wal/index.ts'

export interface HeldWal {
  /** For `LedgerNodeOptions.walIo`; the node must sync (the hold is on the fdatasync). */
  readonly walIo: Partial<WalIo>
  /** From now on, a group's fdatasync waits until `release`. */
  hold(): void
  /** Resolves once a group's fdatasync waits on the hold: its entries are appended, and not durable until `release`. */
  waiting(): Promise<void>
  /** Lets every held fdatasync (and later ones) run. */
  release(): void
}

export function heldWal(): HeldWal {
  let gate: Promise<void> | undefined
  let open: () => void = () => {}
  let held = 0
  let onHeld: (() => void)[] = []
  return {
    walIo: {
      async sync(handle: FileHandle) {
        const waitFor = gate
        if (waitFor !== undefined) {
          held++
          const listeners = onHeld
          onHeld = []
          for (const listener of listeners) listener()
          await waitFor
          held--
        }
        await handle.datasync()
      },
    },
    hold() {
      if (gate === undefined) gate = new Promise<void>((resolve) => (open = resolve))
    },
    waiting() {
      if (held > 0) return Promise.resolve()
      return new Promise<void>((resolve) => onHeld.push(resolve))
    },
    release() {
      gate = undefined
      open()
    },
  }
}
