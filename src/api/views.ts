import type { AccountAddress, Json, LedgerName, LedgerRecord, TransactionId } from '../domain/index.ts'
import {
  accountKey,
  accountPrefix,
  decodeAttribute,
  ledgerKey,
  ledgerNotFound,
  LEDGER_PREFIX,
  notFound,
  parseJson,
  transactionKey,
  transactionPrefix,
  volumesPrefix,
  volumesWithBalance,
  invariant,
} from '../domain/index.ts'
import type { AccountRecord } from '../domain/index.ts'
import { transactionView } from '../orders/index.ts'
import type { Store } from '../store/index.ts'
import { attributeRowKey, logRowPrefix } from '../store/index.ts'
import type { Page, PageRequest } from './paging.ts'
import { pageOfRows } from './paging.ts'
import { effectiveVolumes, transactionEffectiveVolumes, volumesInsertedBy, volumesJson } from './history.ts'

/** What a read adds to the stored record: commit volumes, effective volumes, a point in time. */
export interface Expand {
  readonly volumes: boolean
  readonly effectiveVolumes: boolean
  readonly pit?: string
}

export const NO_EXPAND: Expand = { volumes: false, effectiveVolumes: false }

/**
 * Read views over the store (never the FSM's in-flight state): what a write
 * acknowledged is already there, since acknowledgement waits for the store.
 */
export class Views {
  constructor(private readonly store: Store) {}

  async ledger(name: LedgerName): Promise<LedgerRecord> {
    const row = await this.store.get(attributeRowKey(ledgerKey(name)))
    if (row === undefined) throw ledgerNotFound(name)
    const attribute = decodeAttribute('l', row)
    invariant(attribute.value.kind === 'l', 'ledger row of another kind')
    return attribute.value.value
  }

  ledgerView(record: LedgerRecord): Json {
    return { name: record.name, addedAt: record.addedAt, bucket: record.bucket, metadata: record.metadata, features: record.features }
  }

  async listLedgers(request: PageRequest): Promise<Page<Json>> {
    return pageOfRows(this.store, {
      prefix: attributeRowKey(LEDGER_PREFIX as never),
      descending: false,
      request,
      view: (_key, value) => {
        const attribute = decodeAttribute('l', value)
        invariant(attribute.value.kind === 'l', 'ledger row of another kind')
        return this.ledgerView(attribute.value.value)
      },
    })
  }

  async transaction(ledger: LedgerName, id: TransactionId, expand: Expand = NO_EXPAND): Promise<Json> {
    await this.ledger(ledger)
    const row = await this.store.get(attributeRowKey(transactionKey(ledger, id)))
    if (row === undefined) throw notFound(`transaction ${id} not found`)
    return this.transactionFromRow(ledger, row, expand)
  }

  private async transactionFromRow(ledger: LedgerName, row: Buffer, expand: Expand): Promise<Json> {
    const attribute = decodeAttribute('t', row)
    invariant(attribute.value.kind === 't', 'transaction row of another kind')
    const record = attribute.value.value
    const view = transactionView(record, { volumes: expand.volumes }) as Record<string, Json>
    if (expand.effectiveVolumes) {
      const effective = await transactionEffectiveVolumes(this.store, ledger, record)
      view.preCommitEffectiveVolumes = effective.pre
      view.postCommitEffectiveVolumes = effective.post
    }
    return view
  }

  async listTransactions(ledger: LedgerName, request: PageRequest, expand: Expand = NO_EXPAND): Promise<Page<Json>> {
    await this.ledger(ledger)
    const page = await pageOfRows(this.store, {
      prefix: attributeRowKey(transactionPrefix(ledger) as never),
      descending: true,
      request,
      view: (_key, value) => value,
    })
    const data: Json[] = []
    for (const row of page.data) data.push(await this.transactionFromRow(ledger, row, expand))
    return { ...page, data }
  }

  async stats(ledger: LedgerName): Promise<Json> {
    const record = await this.ledger(ledger)
    return { accounts: record.accountCount, transactions: record.nextTransactionId }
  }

  async account(ledger: LedgerName, address: AccountAddress, expand: Expand = NO_EXPAND): Promise<Json> {
    await this.ledger(ledger)
    const row = await this.store.get(attributeRowKey(accountKey(ledger, address)))
    if (row === undefined) throw notFound(`account ${address} not found`)
    return this.accountFromRow(ledger, row, expand)
  }

  private async accountFromRow(ledger: LedgerName, row: Buffer, expand: Expand): Promise<Json> {
    const attribute = decodeAttribute('a', row)
    invariant(attribute.value.kind === 'a', 'account row of another kind')
    const record: AccountRecord = attribute.value.value
    const view: Record<string, Json> = {
      address: record.address,
      metadata: record.metadata,
      insertionDate: record.insertionDate,
      updatedAt: record.updatedAt,
      firstUsage: record.firstUsage,
    }
    if (expand.volumes) {
      view.volumes =
        expand.pit === undefined ? await this.volumesOf(ledger, record.address) : volumesJson(await volumesInsertedBy(this.store, ledger, record.address, expand.pit))
    }
    if (expand.effectiveVolumes) view.effectiveVolumes = volumesJson(await effectiveVolumes(this.store, ledger, record.address, expand.pit))
    return view
  }

  async volumesOf(ledger: LedgerName, address: AccountAddress): Promise<Json> {
    const prefix = volumesPrefix(ledger, address)
    const volumes: Record<string, Json> = {}
    for await (const [key, value] of this.store.prefix(attributeRowKey(prefix as never))) {
      const asset = key.toString('utf8', 1 + Buffer.byteLength(prefix))
      const attribute = decodeAttribute('v', value)
      invariant(attribute.value.kind === 'v', 'volumes row of another kind')
      volumes[asset] = volumesWithBalance(attribute.value.value)
    }
    return volumes
  }

  async listAccounts(ledger: LedgerName, request: PageRequest, expand: Expand = NO_EXPAND): Promise<Page<Json>> {
    await this.ledger(ledger)
    const page = await pageOfRows(this.store, {
      prefix: attributeRowKey(accountPrefix(ledger) as never),
      descending: false,
      request,
      view: (_key, value) => value,
    })
    const data: Json[] = []
    for (const row of page.data) data.push(await this.accountFromRow(ledger, row, expand))
    return { ...page, data }
  }

  async listLogs(ledger: LedgerName, request: PageRequest): Promise<Page<Json>> {
    await this.ledger(ledger)
    return pageOfRows(this.store, {
      prefix: logRowPrefix(ledger),
      descending: true,
      request,
      view: (_key, value) => parseJson(value.toString('utf8')),
    })
  }
}
