import type { AccountAddress, Json, LedgerName } from '../domain/index.ts'
import { accountPrefix, emptyKeyed, validationError } from '../domain/index.ts'
import type { Filter } from '../query/index.ts'
import { addressPrefix, matches } from '../query/index.ts'
import type { Store } from '../store/index.ts'
import { attributeRowKey, prefixEnd, scanBatchBytes } from '../store/index.ts'
import type { VolumesByAsset } from './history.ts'
import { effectiveVolumes, volumesInsertedBy } from './history.ts'
import type { Page, PageRequest } from './paging.ts'
import { pageOfRows, sortedRows } from './paging.ts'
import type { Views } from './views.ts'
import { decodeAccount } from './views.ts'

/**
 * `GET /v2/{ledger}/aggregate/balances`: Σ balances per asset over the
 * accounts a filter selects, now or at `pit` (effective date, or insertion
 * date with `useInsertionDate`).
 */
export async function aggregateBalances(
  views: Views,
  ledger: LedgerName,
  filter: Filter<'accounts'> | undefined,
  options: { pit?: string; useInsertionDate: boolean },
): Promise<Json> {
  await views.ledger(ledger)
  const totals = new Map<string, bigint>()
  await views.eachAccount(
    ledger,
    filter,
    options.pit,
    (_record, volumes) => {
      for (const [asset, moved] of volumes ?? []) totals.set(asset, (totals.get(asset) ?? 0n) + moved.input - moved.output)
    },
    { byInsertion: options.useInsertionDate, needVolumes: true },
  )
  const data = emptyKeyed<Json>()
  for (const asset of [...totals.keys()].sort()) data[asset] = totals.get(asset) as bigint
  return data
}

export interface VolumesQuery {
  readonly startTime?: string
  readonly endTime?: string
  /** Window by insertion date instead of effective date. */
  readonly insertionDate: boolean
  /** Aggregate addresses by their first N segments (0: no grouping). */
  readonly groupBy: number
}

export const groupByMax = 64

export function parseGroupBy(value: string | undefined): number {
  if (value === undefined || value === '') return 0
  if (!/^[0-9]{1,2}$/.test(value) || Number(value) > groupByMax) throw validationError(`groupBy: expected an integer from 0 to ${groupByMax}, got ${JSON.stringify(value)}`)
  return Number(value)
}

/**
 * `GET /v2/{ledger}/volumes`: per (account, asset) the input and output
 * moved within [startTime, endTime] and the resulting balance, filtered
 * (address, balance, metadata, first_usage), optionally grouped by address
 * segments. Computed per request from the by-account index rows, then paged.
 */
export async function listVolumes(
  store: Store,
  views: Views,
  ledger: LedgerName,
  filter: Filter<'volumes'> | undefined,
  query: VolumesQuery,
  request: PageRequest,
): Promise<Page<Json>> {
  await views.ledger(ledger)
  const prefix = attributeRowKey(accountPrefix(ledger) as never)
  const start = filter === undefined ? undefined : addressPrefix(filter)
  const gte = start === undefined ? prefix : Buffer.concat([prefix, Buffer.from(start, 'utf8')])
  const groups = new Map<string, Map<string, { input: bigint; output: bigint }>>()
  // Every account row of the range: batches read on the thread pool, not one promise per row.
  for await (const rows of store.rangeBatches({ gte, lt: prefixEnd(gte), batchBytes: scanBatchBytes })) {
    for (const [, value] of rows) {
      const account = decodeAccount(value)
      const volumes: VolumesByAsset = query.insertionDate
        ? await volumesInsertedBy(store, ledger, account.address, query.endTime, query.startTime)
        : await effectiveVolumes(store, ledger, account.address, query.endTime, query.startTime)
      for (const [asset, moved] of volumes) {
        const row = { address: account.address, asset, balance: moved.input - moved.output, metadata: account.metadata, firstUsage: account.firstUsage }
        if (filter !== undefined && !matches(filter, row)) continue
        const group = query.groupBy === 0 ? account.address : account.address.split(':').slice(0, query.groupBy).join(':')
        let byAsset = groups.get(group)
        if (byAsset === undefined) groups.set(group, (byAsset = new Map()))
        const total = byAsset.get(asset) ?? { input: 0n, output: 0n }
        byAsset.set(asset, { input: total.input + moved.input, output: total.output + moved.output })
      }
    }
  }
  const listPrefix = Buffer.from('volumes\u0000', 'utf8')
  const rows: [Buffer, Buffer][] = []
  for (const [account, byAsset] of groups) {
    for (const [asset, moved] of byAsset) {
      rows.push([Buffer.concat([listPrefix, Buffer.from(`${account}\u0000${asset}`, 'utf8')]), Buffer.from(JSON.stringify([account, asset, moved.input.toString(), moved.output.toString()]))])
    }
  }
  rows.sort(([a], [b]) => Buffer.compare(a, b))
  return pageOfRows(sortedRows(rows), {
    prefix: listPrefix,
    descending: false,
    request,
    select: (_key, value) => {
      const [account, asset, input, output] = JSON.parse(value.toString('utf8')) as [AccountAddress, string, string, string]
      return { account, asset, input: BigInt(input), output: BigInt(output), balance: BigInt(input) - BigInt(output) }
    },
  })
}
