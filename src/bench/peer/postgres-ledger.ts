import type pg from 'pg'
import { invariant } from '../../domain/index.ts'

/**
 * The reference peer of the benchmark: a double-entry ledger the way teams
 * usually build one on PostgreSQL, so Tally's numbers have something honest
 * to be divided by.
 *
 * - one row per (account, asset) holding the balance, `numeric` like Tally's
 *   unbounded amounts; `world` may go negative, as in Formance;
 * - a transfer is one database transaction: the two balance rows are created
 *   if missing and locked `FOR UPDATE` in (address, asset) order — the same
 *   order everywhere, so two transfers over the same accounts cannot
 *   deadlock — funds are checked, both balances updated, the transfer row and
 *   its two entries (debit and credit, indexed by account) inserted;
 * - the batched variant does the same for a whole batch in one transaction:
 *   every account of the batch locked once, in order, up front, then each
 *   transfer checked and applied in sequence. A transfer without funds is
 *   skipped and reported (like a failed element of a non-atomic `_bulk`),
 *   the rest commit.
 *
 * Both are PL/pgSQL functions, so a transfer or a batch is one round trip.
 * Durability is the cluster's: `synchronous_commit = on` and fsync on mean
 * every commit is flushed to the WAL before the client hears of it.
 */

/** An account that may go negative without `force`, as Formance's `world`. */
export const overdraftAccount = 'world'

/** Largest batch one call accepts; Tally's `_bulk` bound is of the same order. */
export const peerBatchTransfersMax = 10_000

export interface PeerTransfer {
  readonly source: string
  readonly destination: string
  readonly amount: bigint
  readonly asset: string
  /** Skip the funds check, as Tally's `force: true`. */
  readonly force: boolean
}

/** What the peer needs of a connection: `pg.Pool`, `pg.Client` and a pool's client all fit. */
export interface PeerQueryable {
  query<Row extends pg.QueryResultRow>(config: pg.QueryConfig): Promise<pg.QueryResult<Row>>
}

export const peerSchemaSql = `
CREATE TABLE IF NOT EXISTS peer_account (
  address text NOT NULL,
  asset text NOT NULL,
  balance numeric NOT NULL DEFAULT 0,
  overdraft_unbounded boolean NOT NULL,
  PRIMARY KEY (address, asset)
);
CREATE TABLE IF NOT EXISTS peer_transfer (
  id bigserial PRIMARY KEY,
  source text NOT NULL,
  destination text NOT NULL,
  amount numeric NOT NULL CHECK (amount > 0),
  asset text NOT NULL,
  inserted_at timestamptz NOT NULL DEFAULT now(),
  CHECK (source <> destination)
);
CREATE TABLE IF NOT EXISTS peer_entry (
  transfer_id bigint NOT NULL REFERENCES peer_transfer (id),
  address text NOT NULL,
  asset text NOT NULL,
  amount numeric NOT NULL,
  PRIMARY KEY (transfer_id, address)
);
CREATE INDEX IF NOT EXISTS peer_entry_by_account ON peer_entry (address, asset, transfer_id);

-- Applies one transfer whose two balance rows the caller has already locked.
-- NULL when the source lacks funds (and nothing is written).
CREATE OR REPLACE FUNCTION peer_apply_locked(p_source text, p_destination text, p_amount numeric, p_asset text, p_force boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  v_balance numeric;
  v_unbounded boolean;
  v_id bigint;
BEGIN
  SELECT balance, overdraft_unbounded INTO STRICT v_balance, v_unbounded
    FROM peer_account WHERE address = p_source AND asset = p_asset;
  IF NOT p_force AND NOT v_unbounded AND v_balance < p_amount THEN
    RETURN NULL;
  END IF;
  UPDATE peer_account SET balance = balance - p_amount WHERE address = p_source AND asset = p_asset;
  UPDATE peer_account SET balance = balance + p_amount WHERE address = p_destination AND asset = p_asset;
  INSERT INTO peer_transfer (source, destination, amount, asset)
    VALUES (p_source, p_destination, p_amount, p_asset) RETURNING id INTO v_id;
  INSERT INTO peer_entry (transfer_id, address, asset, amount)
    VALUES (v_id, p_source, p_asset, -p_amount), (v_id, p_destination, p_asset, p_amount);
  RETURN v_id;
END $$;

CREATE OR REPLACE FUNCTION peer_transfer(p_source text, p_destination text, p_amount numeric, p_asset text, p_force boolean)
RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF p_amount <= 0 OR p_source = p_destination THEN
    RAISE EXCEPTION 'peer: a transfer moves a positive amount between two accounts' USING ERRCODE = '22023';
  END IF;
  INSERT INTO peer_account (address, asset, overdraft_unbounded)
    SELECT address, p_asset, address = '${overdraftAccount}'
    FROM unnest(ARRAY[p_source, p_destination]) AS address ORDER BY address
    ON CONFLICT DO NOTHING;
  PERFORM 1 FROM peer_account
    WHERE asset = p_asset AND address IN (p_source, p_destination)
    ORDER BY address FOR UPDATE;
  RETURN peer_apply_locked(p_source, p_destination, p_amount, p_asset, p_force);
END $$;

CREATE OR REPLACE FUNCTION peer_transfer_batch(p_sources text[], p_destinations text[], p_amounts numeric[], p_assets text[], p_forces boolean[])
RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
  v_count integer := coalesce(array_length(p_sources, 1), 0);
  v_ids bigint[] := '{}';
BEGIN
  IF v_count > ${peerBatchTransfersMax}
     OR coalesce(array_length(p_destinations, 1), 0) <> v_count OR coalesce(array_length(p_amounts, 1), 0) <> v_count
     OR coalesce(array_length(p_assets, 1), 0) <> v_count OR coalesce(array_length(p_forces, 1), 0) <> v_count THEN
    RAISE EXCEPTION 'peer: a batch is 0..${peerBatchTransfersMax} transfers given as equal-length arrays' USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. v_count LOOP
    IF p_amounts[i] <= 0 OR p_sources[i] = p_destinations[i] THEN
      RAISE EXCEPTION 'peer: transfer % moves no money between two accounts', i USING ERRCODE = '22023';
    END IF;
  END LOOP;
  INSERT INTO peer_account (address, asset, overdraft_unbounded)
    SELECT party.address, party.asset, party.address = '${overdraftAccount}'
    FROM (SELECT * FROM unnest(p_sources, p_assets) UNION SELECT * FROM unnest(p_destinations, p_assets)) AS party (address, asset)
    ORDER BY party.address, party.asset
    ON CONFLICT DO NOTHING;
  PERFORM 1 FROM peer_account AS account
    JOIN (SELECT * FROM unnest(p_sources, p_assets) UNION SELECT * FROM unnest(p_destinations, p_assets)) AS party (address, asset)
      ON account.address = party.address AND account.asset = party.asset
    ORDER BY account.address, account.asset FOR UPDATE OF account;
  FOR i IN 1 .. v_count LOOP
    v_ids := v_ids || peer_apply_locked(p_sources[i], p_destinations[i], p_amounts[i], p_assets[i], p_forces[i]);
  END LOOP;
  RETURN v_ids;
END $$;
`

export async function installPeerSchema(connection: PeerQueryable): Promise<void> {
  await connection.query({ text: peerSchemaSql })
}

function checkTransfer(transfer: PeerTransfer): void {
  invariant(transfer.amount > 0n, 'a peer transfer moves a positive amount')
  invariant(transfer.source !== transfer.destination, 'a peer transfer moves money between two different accounts')
}

/** One transfer, one database transaction. The new transfer's id, or undefined when the source lacks funds. */
export async function transferOne(connection: PeerQueryable, transfer: PeerTransfer): Promise<bigint | undefined> {
  checkTransfer(transfer)
  const result = await connection.query<{ id: string | null }>({
    name: 'peer_transfer',
    text: 'SELECT peer_transfer($1, $2, $3::numeric, $4, $5) AS id',
    values: [transfer.source, transfer.destination, transfer.amount.toString(), transfer.asset, transfer.force],
  })
  invariant(result.rows.length === 1, 'peer_transfer returns one row')
  const id = result.rows[0]?.id ?? null
  return id === null ? undefined : BigInt(id)
}

/**
 * A batch in one database transaction. One entry per transfer, in order: its
 * id, or undefined when that transfer lacked funds (the others still commit).
 */
export async function transferBatch(connection: PeerQueryable, transfers: readonly PeerTransfer[]): Promise<(bigint | undefined)[]> {
  invariant(transfers.length <= peerBatchTransfersMax, `a peer batch holds at most ${peerBatchTransfersMax} transfers`)
  for (const transfer of transfers) checkTransfer(transfer)
  const result = await connection.query<{ ids: (string | null)[] }>({
    name: 'peer_transfer_batch',
    text: 'SELECT peer_transfer_batch($1::text[], $2::text[], $3::numeric[], $4::text[], $5::boolean[]) AS ids',
    values: [
      transfers.map((transfer) => transfer.source),
      transfers.map((transfer) => transfer.destination),
      transfers.map((transfer) => transfer.amount.toString()),
      transfers.map((transfer) => transfer.asset),
      transfers.map((transfer) => transfer.force),
    ],
  })
  const ids = result.rows[0]?.ids ?? []
  invariant(ids.length === transfers.length, () => `peer_transfer_batch answered ${ids.length} ids for ${transfers.length} transfers`)
  return ids.map((id) => (id === null ? undefined : BigInt(id)))
}

/** Every balance, keyed `address asset`: for tests and for checking a run's totals. */
export async function peerBalances(connection: PeerQueryable): Promise<Map<string, bigint>> {
  const result = await connection.query<{ address: string; asset: string; balance: string }>({
    text: 'SELECT address, asset, balance::text AS balance FROM peer_account ORDER BY address, asset',
  })
  return new Map(result.rows.map((row) => [`${row.address} ${row.asset}`, BigInt(row.balance)]))
}

/** Transfers and entries written: entries must be exactly twice the transfers. */
export async function peerCounts(connection: PeerQueryable): Promise<{ transfers: bigint; entries: bigint; entrySum: bigint }> {
  const result = await connection.query<{ transfers: string; entries: string; entry_sum: string }>({
    text: `SELECT (SELECT count(*) FROM peer_transfer)::text AS transfers,
                  (SELECT count(*) FROM peer_entry)::text AS entries,
                  (SELECT coalesce(sum(amount), 0) FROM peer_entry)::text AS entry_sum`,
  })
  const row = result.rows[0]
  invariant(row !== undefined, 'a count query returns one row')
  return { transfers: BigInt(row.transfers), entries: BigInt(row.entries), entrySum: BigInt(row.entry_sum) }
}
