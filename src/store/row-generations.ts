import { Zone, IndexKind, type RowWrite } from './layout.ts'

/**
 * A generation counter per owner of rows, bumped by every write of a row the
 * owner answers for, so that something computed from an owner's rows can
 * tell, later, whether any of them changed since (the read views' answer
 * cache, `src/api/answer-cache.ts`). Two owners:
 *
 * - an **account**: its attribute row (`a` ledger·account), its volume rows
 *   (`v` ledger·account·asset) and its rows in the by-account index
 *   (`0xf3 'A'` ledger·account·id) — what `GET …/accounts/{address}` and the
 *   first page of a list filtered on the account read;
 * - a **transaction**: its row (`t` ledger·id), rewritten by a revert or a
 *   metadata change.
 *
 * Owners are hashed into a fixed table of counters: two owners sharing a
 * counter only invalidate each other more often, never less. Counters are
 * doubles holding integers, so they never wrap (2^53 bumps). No clock, no
 * I/O: the store tells it what it wrote.
 */
export class RowGenerations {
  private readonly counters = new Float64Array(generationSlots)

  /** Bumps the owner of each row (rows no owner answers for cost a byte comparison). */
  rowsWritten(rows: readonly RowWrite[]): void {
    for (let at = 0; at < rows.length; at++) {
      const slot = ownerSlotOfRow((rows[at] as RowWrite).key)
      if (slot >= 0) this.counters[slot] = (this.counters[slot] as number) + 1
    }
  }

  /** The counter an account's rows bump; undefined for a name outside ASCII (never cached: `LEDGER_NAME_PATTERN` and addresses are ASCII). */
  accountSlot(ledger: string, address: string): number | undefined {
    return ownerSlot(accountSeed, ledger, address)
  }

  /** The counter a transaction's row bumps. */
  transactionSlot(ledger: string, id: bigint): number | undefined {
    return ownerSlot(transactionSeed, ledger, id.toString(16).padStart(16, '0'))
  }

  generation(slot: number): number {
    return this.counters[slot] as number
  }
}

/** 2^16 counters (512 KiB): a cached answer is dropped by an unrelated write with odds of a few in 65,536 per owner written. */
const generationSlots = 1 << 16
const slotMask = generationSlots - 1
const fnvOffset = 0x811c9dc5
const fnvPrime = 0x01000193
/** Each owner kind hashes from its own seed byte, so an account and a transaction of the same text differ. */
const accountSeed = 0x61
const transactionSeed = 0x74

function step(hash: number, byte: number): number {
  return Math.imul(hash ^ byte, fnvPrime) >>> 0
}

/** The slot of owner `ledger \0 name` as its row keys spell it (ASCII: one byte per character); undefined past ASCII. */
function ownerSlot(seed: number, ledger: string, name: string): number | undefined {
  let hash = hashText(step(fnvOffset, seed), ledger)
  if (hash === undefined) return undefined
  hash = hashText(step(hash, 0), name)
  return hash === undefined ? undefined : hash & slotMask
}

/** FNV-1a over the text's characters, each one byte; undefined past ASCII. */
function hashText(start: number, text: string): number | undefined {
  let hash = start
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at)
    if (code > 0x7f) return undefined
    hash = step(hash, code)
  }
  return hash
}

function hashBytes(hash: number, key: Buffer, from: number, to: number): number {
  for (let at = from; at < to; at++) hash = step(hash, key[at] as number)
  return hash
}

/** The counter slot of the owner a written row belongs to, or -1 for rows no cached answer reads. */
function ownerSlotOfRow(key: Buffer): number {
  const zone = key[0]
  const kind = key[1]
  if (zone === Zone.attributes) {
    // `a` ledger \0 account: the whole rest is the owner.
    if (kind === 0x61) return hashBytes(step(fnvOffset, accountSeed), key, 2, key.length) & slotMask
    // `v` ledger \0 account \0 asset: the owner ends before the last separator (assets hold none).
    if (kind === 0x76) {
      const end = key.lastIndexOf(0)
      return end > 2 ? hashBytes(step(fnvOffset, accountSeed), key, 2, end) & slotMask : -1
    }
    // `t` ledger \0 id in 16 hex digits.
    if (kind === 0x74) return hashBytes(step(fnvOffset, transactionSeed), key, 2, key.length) & slotMask
    return -1
  }
  // 0xf3 'A' ledger \0 account \0 id (8 bytes): the account's own rows.
  if (zone === Zone.indexes && kind === IndexKind.accountTransactions && key.length > 2 + 9) {
    return hashBytes(step(fnvOffset, accountSeed), key, 2, key.length - 9) & slotMask
  }
  return -1
}
