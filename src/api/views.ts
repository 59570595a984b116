import type { AccountAddress, AccountRecord, Json, LedgerName, LedgerRecord, SchemaRecord, TransactionId, TransactionRecord } from '../domain/index.ts'
import {
  accountKey,
  accountPrefix,
  decodeRowValue,
  decodeTransactionRowWithoutVolumes,
  invariant,
  ledgerKey,
  ledgerNotFound,
  LEDGER_PREFIX,
  notFound,
  PrintedJson,
  printTransaction,
  stringifyJson,
  validationError,
  schemaKey,
  transactionKey,
  transactionPrefix,
  volumesPrefix,
} from '../domain/index.ts'
import { parseTimestamp, schemaNotFound, schemaView, transactionView } from '../orders/index.ts'
import type { Filter, Leaf, FilterNode } from '../query/index.ts'
import { addressPrefix, fieldsUsed, matches } from '../query/index.ts'
import type { Store } from '../store/index.ts'
import { RowGenerations, accountTransactionsPrefix, attributeRowKey, decodeLogRow, fixedWidthInstant, logRowPrefix, prefixEnd, scanBatchBytes, schemasPrefix, transactionsByTimestampPrefix } from '../store/index.ts'
import type { Page, PageRequest } from './paging.ts'
import { listDescending, listOrder, pageOfRows } from './paging.ts'
import type { VolumesByAsset } from './history.ts'
import { AnswerCache, answerCacheBytesDefault } from './answer-cache.ts'
import type { ReadRecord } from './answer-cache.ts'
import { effectiveVolumes, transactionEffectiveVolumes, volumesInsertedBy, volumesJson } from './history.ts'
import { printAccountAnswer } from './account-json.ts'
import { printTransactionRow } from './transaction-row-json.ts'

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
 * Each list is a keyset scan of its own key range; a filter narrows the range
 * where it can (an account prefix, an indexed account) and is evaluated on
 * each row otherwise.
 */
export class Views {
  /**
   * Ledgers this store is known to hold. A ledger is never deleted (v2 has
   * no such operation) and a store only moves forward (a rebuilt replica
   * gets new views), so once seen a ledger's existence needs no further
   * read. Bounded: past `knownLedgersMax` names, the others are read each time.
   */
  private readonly knownLedgers = new Set<string>()

  /** Made at the first answer kept, when the views start watching the store's writes (a server nobody reads pays nothing per write). */
  private answers: { cache: AnswerCache; generations: RowGenerations } | undefined
  private readonly answerCacheBytes: number

  /** `answerCacheBytes`: room for printed answers kept between writes (docs/reads.md); 0 keeps none. */
  constructor(
    private readonly store: Store,
    options: { answerCacheBytes?: number } = {},
  ) {
    this.answerCacheBytes = options.answerCacheBytes ?? answerCacheBytesDefault
  }

  private answerCache(): { cache: AnswerCache; generations: RowGenerations } | undefined {
    if (this.answers !== undefined || this.answerCacheBytes <= 0) return this.answers
    const generations = new RowGenerations()
    // Before any answer is kept: from here on, every written row bumps its owner.
    this.store.observeWrites((rows) => generations.rowsWritten(rows))
    this.answers = { cache: new AnswerCache(generations, this.answerCacheBytes), generations }
    return this.answers
  }

  // ---- ledgers ---------------------------------------------------------------

  async ledger(name: LedgerName): Promise<LedgerRecord> {
    return decodeLedger(this.ledgerRow(name))
  }

  /** The ledger's row, read on the JavaScript thread (a point read is cheaper than the thread-pool hop); LEDGER_NOT_FOUND without one. */
  private ledgerRow(name: LedgerName): Buffer {
    const [row] = this.store.getManySync([attributeRowKey(ledgerKey(name))])
    if (row === undefined) throw ledgerNotFound(name)
    this.ledgerSeen(name)
    return row
  }

  /** LEDGER_NOT_FOUND unless the ledger exists: a read only for a ledger not seen yet (ledgers are never deleted). */
  requireLedger(name: LedgerName): void {
    if (!this.knownLedgers.has(name)) this.ledgerRow(name)
  }

  private ledgerSeen(name: LedgerName): void {
    if (this.knownLedgers.size < knownLedgersMax) this.knownLedgers.add(name)
  }

  ledgerView(record: LedgerRecord): Json {
    return { name: record.name, addedAt: record.addedAt, bucket: record.bucket, metadata: record.metadata, features: record.features }
  }

  async listLedgers(request: PageRequest): Promise<Page<Json>> {
    return pageOfRows(this.store, {
      prefix: attributeRowKey(LEDGER_PREFIX as never),
      descending: listDescending(request.options, 'name', false),
      request,
      select: (_key, value) => this.ledgerView(decodeLedger(value)),
    })
  }

  async stats(ledger: LedgerName): Promise<Json> {
    const record = await this.ledger(ledger)
    return { accounts: record.accountCount, transactions: record.nextTransactionId }
  }

  // ---- transactions ------------------------------------------------------------

  async transaction(ledger: LedgerName, id: TransactionId, expand: Expand = NO_EXPAND): Promise<Json> {
    return this.transactionJson(ledger, await this.transactionRecord(ledger, id), expand)
  }

  /**
   * `transaction` as the answer prints it (`printTransaction`): the text of
   * its `data`, without the view object; without volumes, printed from its
   * row as stored (`printTransactionRow`), not decoded.
   */
  async printedTransaction(ledger: LedgerName, id: TransactionId, expand: Expand = NO_EXPAND): Promise<string> {
    const row = this.transactionRow(ledger, id)
    const asStored = expand.volumes || expand.effectiveVolumes ? undefined : printTransactionRow(row)
    return asStored ?? this.printed(ledger, decodeTransaction(row), expand)
  }

  /** A transaction as every answer prints it: one printer for a read, a list page, a write's answer and an export. */
  private async printed(ledger: LedgerName, record: TransactionRecord, expand: Expand): Promise<string> {
    const effectiveVolumes = expand.effectiveVolumes ? await transactionEffectiveVolumes(this.store, ledger, record) : undefined
    return printTransaction(record, { volumes: expand.volumes, ...(effectiveVolumes === undefined ? {} : { effectiveVolumes }) })
  }

  private async transactionRecord(ledger: LedgerName, id: TransactionId): Promise<TransactionRecord> {
    return decodeTransaction(this.transactionRow(ledger, id))
  }

  /** The transaction's row: a point read on the JavaScript thread (cheaper than the thread-pool hop); NOT_FOUND without one. */
  private transactionRow(ledger: LedgerName, id: TransactionId): Buffer {
    this.requireLedger(ledger)
    const [row] = this.store.getManySync([attributeRowKey(transactionKey(ledger, id))])
    if (row === undefined) throw notFound(`transaction ${id} not found`)
    return row
  }

  private async transactionJson(ledger: LedgerName, record: TransactionRecord, expand: Expand): Promise<Json> {
    const view = transactionView(record, { volumes: expand.volumes }) as Record<string, Json>
    if (expand.effectiveVolumes) {
      const effective = await transactionEffectiveVolumes(this.store, ledger, record)
      view.preCommitEffectiveVolumes = effective.pre
      view.postCommitEffectiveVolumes = effective.post
    }
    return view
  }

  /**
   * Transactions, newest first. A filter naming one exact account (as
   * `account`, `source` or `destination`, in a conjunction) walks that
   * account's index instead of the whole ledger: the scan scales with the
   * account's transactions, not the ledger's. With `pit`, the ledger as it
   * stood then: transactions dated at or before it, a revert after it not yet
   * seen (metadata is shown as it is now: its history is not kept).
   */
  /**
   * `{"cursor": page}` as the answer prints it. The first page of a list
   * filtered on one exact account alone (a wallet's latest transactions),
   * by id, without `pit` or effective volumes, is the account's index rows
   * and the rows of the transactions it lists: kept between writes
   * (`AnswerCache`) until one of them is written.
   */
  async printedTransactionList(ledger: LedgerName, request: PageRequest, filter: Filter<'transactions'> | undefined, expand: Expand = NO_EXPAND): Promise<string> {
    return this.transactionListAnswer(ledger, request, filter, expand)
  }

  /** `printedTransactionList`, answered at once (a string, no promise) when it is kept. */
  transactionListAnswer(ledger: LedgerName, request: PageRequest, filter: Filter<'transactions'> | undefined, expand: Expand = NO_EXPAND): string | Promise<string> {
    const spot = this.transactionListSpot(ledger, request, filter, expand)
    if (spot === undefined) return this.listTransactionsInTurn(ledger, request, filter, expand, undefined).then((page) => stringifyJson({ cursor: page }))
    const kept = spot.cache.get(spot.key)
    if (kept !== undefined) return kept
    const read = spot.cache.reading()
    read.add(spot.slot)
    return this.listTransactionsInTurn(ledger, request, filter, expand, read).then((page) => {
      const text = stringifyJson({ cursor: page })
      spot.cache.put(spot.key, text, read)
      return text
    })
  }

  /** Where a list's answer is kept: a first page filtered on one exact account alone, by id, without `pit` or effective volumes. */
  private transactionListSpot(ledger: LedgerName, request: PageRequest, filter: Filter<'transactions'> | undefined, expand: Expand): AnswerSpot | undefined {
    const account = filter?.root !== undefined && isIndexedAccountAlone(filter.root) ? indexedAccount(filter.root) : undefined
    if (account === undefined || request.cursor !== undefined || expand.pit !== undefined || expand.effectiveVolumes) return undefined
    if (listOrder(request.options, ['id', 'timestamp'], true).field !== 'id') return undefined
    const answers = this.answerCache()
    const slot = answers?.generations.accountSlot(ledger, account)
    if (answers === undefined || slot === undefined) return undefined
    return { cache: answers.cache, slot, key: `t${expand.volumes ? 'v' : '-'}${request.pageSize}\u0000${ledger}\u0000${account}\u0000${JSON.stringify(request.options)}` }
  }

  /**
   * A list that missed the kept answers, read once the turn's sockets are
   * handled, right after the turn's other list reads (`endOfTurn`): its
   * store reads then find RocksDB's code and structures warm rather than
   * cold after an HTTP exchange (see `readAccountsInTurn`).
   */
  private async listTransactionsInTurn(ledger: LedgerName, request: PageRequest, filter: Filter<'transactions'> | undefined, expand: Expand, read: ReadRecord | undefined): Promise<Page<PrintedJson>> {
    await this.endOfTurn()
    return this.listTransactions(ledger, request, filter, expand, read)
  }

  /** Settled once the current turn's sockets are handled: one `setImmediate` a turn, shared by the turn's list reads. */
  private turnEnd: Promise<void> | undefined

  private endOfTurn(): Promise<void> {
    this.turnEnd ??= new Promise<void>((resolve) => setImmediate(this.turnEnded, resolve))
    return this.turnEnd
  }

  private readonly turnEnded = (resolve: () => void): void => {
    this.turnEnd = undefined
    resolve()
  }

  /** `read`: when the answer is to be kept, records each transaction row's owner before the row is read. */
  async listTransactions(
    ledger: LedgerName,
    request: PageRequest,
    filter: Filter<'transactions'> | undefined,
    expand: Expand = NO_EXPAND,
    read?: ReadRecord,
  ): Promise<Page<PrintedJson>> {
    this.requireLedger(ledger)
    const selected = transactionSelector(filter, expand.pit)
    // Commit volumes are stepped over, not decoded, when the page does not print them (no filter reads them).
    const decode = expand.volumes || expand.effectiveVolumes ? decodeTransaction : decodeTransactionRowWithoutVolumes
    const order = listOrder(request.options, ['id', 'timestamp'], true)
    // Nothing to judge or add (no filter beyond the range read, no `pit`, no volumes): each row printed as stored, not decoded.
    const printsRows = !expand.volumes && !expand.effectiveVolumes && expand.pit === undefined
    // Methods, not closures made here: tsx's keepNames names each named closure a request makes (`__name`, a defineProperty).
    const rowsOf = new ListedTransactionRows(this.store, ledger, selected, decode, read === undefined ? undefined : { read, slots: this.transactionSlotsIn(ledger) })
    if (order.field === 'timestamp') {
      rowsOf.printsAsStored = printsRows && filter?.root === undefined
      const page = await pageOfRows(this.store, {
        prefix: transactionsByTimestampPrefix(ledger),
        descending: order.descending,
        request,
        selectMany(rows) {
          return rowsOf.indexed(rows)
        },
        keysOnly: true,
      })
      return this.transactionPage(ledger, page, expand)
    }
    const account = filter?.root === undefined ? undefined : indexedAccount(filter.root)
    if (account !== undefined) {
      rowsOf.printsAsStored = printsRows && isIndexedAccountAlone(filter?.root)
      const page = await pageOfRows(this.store, {
        prefix: accountTransactionsPrefix(ledger, account),
        descending: order.descending,
        request,
        selectMany(rows) {
          return rowsOf.indexed(rows)
        },
        keysOnly: true,
        // The account's index holds exactly the transactions a lone `$match` on `account` keeps (one row per account a posting moves).
        keepsEveryRow: expand.pit === undefined && isIndexedAccountAlone(filter?.root),
      })
      return this.transactionPage(ledger, page, expand)
    }
    rowsOf.printsAsStored = printsRows && filter?.root === undefined
    const page = await pageOfRows(this.store, {
      prefix: attributeRowKey(transactionPrefix(ledger) as never),
      descending: order.descending,
      request,
      select(_key, value) {
        return rowsOf.picked(value)
      },
    })
    return this.transactionPage(ledger, page, expand)
  }

  async countTransactions(ledger: LedgerName, filter: Filter<'transactions'> | undefined, pit?: string): Promise<bigint> {
    const record = await this.ledger(ledger)
    if (filter?.root === undefined && pit === undefined) return record.nextTransactionId
    const selected = transactionSelector(filter, pit)
    let count = 0n
    const prefix = attributeRowKey(transactionPrefix(ledger) as never)
    // A whole-range scan: batches read on the thread pool, not one promise per row.
    for await (const rows of this.store.rangeBatches({ gte: prefix, lt: prefixEnd(prefix), batchBytes: scanBatchBytes })) {
      for (const [, value] of rows) if (selected(decodeTransaction(value)) !== undefined) count++
    }
    return count
  }

  /** The answer cache's row generations, through which a kept list records its transaction rows' owners. */
  private transactionSlotsIn(ledger: LedgerName): TransactionSlots {
    const generations = this.answers?.generations
    invariant(generations !== undefined, 'a kept list is read once answers are kept')
    return { ledger, generations }
  }

  private async transactionPage(ledger: LedgerName, page: Page<ListedTransaction>, expand: Expand): Promise<Page<PrintedJson>> {
    const data: PrintedJson[] = []
    for (const item of page.data) data.push(item instanceof PrintedJson ? item : new PrintedJson(await this.printed(ledger, item, expand)))
    return { ...page, data }
  }

  // ---- accounts ----------------------------------------------------------------

  /**
   * `{"data": account}` as the answer prints it. Without `pit` or effective
   * volumes the account's answer is its attribute row and volume rows alone:
   * kept between writes (`AnswerCache`) and served again until one of them
   * is written.
   */
  async printedAccount(ledger: LedgerName, address: AccountAddress, expand: Expand = NO_EXPAND): Promise<string> {
    return this.accountAnswer(ledger, address, expand)
  }

  /**
   * `printedAccount`: a kept answer at once (a string, no promise); one
   * that needs a history (`pit`, effective volumes) read through
   * `account`; any other read from its rows and printed on the JavaScript
   * thread (`printAccountAnswer`) together with the other misses of the
   * same turn of the event loop (`readAccountsInTurn`).
   */
  accountAnswer(ledger: LedgerName, address: AccountAddress, expand: Expand = NO_EXPAND): string | Promise<string> {
    if (expand.pit !== undefined || expand.effectiveVolumes) return this.account(ledger, address, expand).then((view) => `{"data":${stringifyJson(view)}}`)
    const spot = this.accountSpot(ledger, address, expand)
    if (spot === undefined) return this.readAccountInTurn(ledger, address, expand.volumes, undefined)
    const kept = spot.cache.get(spot.key)
    if (kept !== undefined) return kept
    // The owner's generation is recorded now, before its rows are read (later, in the batch).
    const read = spot.cache.reading()
    read.add(spot.slot)
    return this.readAccountInTurn(ledger, address, expand.volumes, { spot, read })
  }

  /** Account reads waiting for `readAccountsInTurn`, in arrival order. */
  private accountReadsWaiting: AccountReadWaiting[] = []

  private readAccountInTurn(ledger: LedgerName, address: AccountAddress, volumes: boolean, kept: AccountReadWaiting['kept']): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.accountReadsWaiting.push({ ledger, address, volumes, kept, resolve, reject })
      if (this.accountReadsWaiting.length === 1) setImmediate(this.readAccountsInTurn)
    })
  }

  /**
   * The account reads that missed during one turn of the event loop, read
   * together once the turn's sockets are handled (`setImmediate`): their
   * account rows (and the rows of ledgers not known yet) in one
   * `getManySync`, then each account's volume rows and its printing, one
   * after the other. A read costs several times more between two HTTP
   * exchanges than right after another read (RocksDB's code and the
   * block cache's structures are cold again: docs/performance.md, "Reads,
   * seventh pass"), so the turn's reads share one native call and run on
   * warm caches. Each read settles on its own: a missing account or ledger
   * rejects that read alone. Bounded per turn (`accountReadsPerTurn`); the
   * rest go in the next.
   */
  private readonly readAccountsInTurn = (): void => {
    const reads = this.accountReadsWaiting.splice(0, accountReadsPerTurn)
    if (this.accountReadsWaiting.length > 0) setImmediate(this.readAccountsInTurn)
    // A ledger not known yet is read once, after the accounts (ledgers are never deleted: once seen, never read again).
    let ledgerRowAt: Map<string, number> | undefined
    let rows: (Buffer | undefined)[]
    // Nothing may escape: this runs from `setImmediate`, where a throw would end the process.
    try {
      const keys: Buffer[] = []
      for (const read of reads) keys.push(attributeRowKey(accountKey(read.ledger, read.address)))
      for (const read of reads) {
        if (this.knownLedgers.has(read.ledger) || ledgerRowAt?.has(read.ledger) === true) continue
        ledgerRowAt ??= new Map()
        ledgerRowAt.set(read.ledger, keys.length)
        keys.push(attributeRowKey(ledgerKey(read.ledger)))
      }
      rows = this.store.getManySync(keys)
    } catch (error) {
      for (const read of reads) read.reject(error)
      return
    }
    for (let at = 0; at < reads.length; at++) {
      const read = reads[at] as AccountReadWaiting
      try {
        const ledgerAt = ledgerRowAt?.get(read.ledger)
        if (ledgerAt !== undefined) {
          if (rows[ledgerAt] === undefined) throw ledgerNotFound(read.ledger)
          this.ledgerSeen(read.ledger)
        }
        const row = rows[at]
        if (row === undefined) throw notFound(`account ${read.address} not found`)
        const text = printAccountAnswer(row, read.volumes ? this.currentVolumeRows(read.ledger, read.address) : undefined)
        if (read.kept !== undefined) read.kept.spot.cache.put(read.kept.spot.key, text, read.kept.read)
        read.resolve(text)
      } catch (error) {
        read.reject(error)
      }
    }
  }

  private accountSpot(ledger: LedgerName, address: AccountAddress, expand: Expand): AnswerSpot | undefined {
    if (expand.pit !== undefined || expand.effectiveVolumes) return undefined
    const answers = this.answerCache()
    const slot = answers?.generations.accountSlot(ledger, address)
    if (answers === undefined || slot === undefined) return undefined
    return { cache: answers.cache, slot, key: `a${expand.volumes ? 'v' : '-'}${ledger}\u0000${address}` }
  }

  async account(ledger: LedgerName, address: AccountAddress, expand: Expand = NO_EXPAND): Promise<Json> {
    return this.accountJson(ledger, decodeAccount(this.accountRow(ledger, address)), expand)
  }

  /** The account's row: one point read on the JavaScript thread, of the account and, unless it is known, the ledger. */
  private accountRow(ledger: LedgerName, address: AccountAddress): Buffer {
    const known = this.knownLedgers.has(ledger)
    const keys = [attributeRowKey(accountKey(ledger, address))]
    if (!known) keys.push(attributeRowKey(ledgerKey(ledger)))
    const [row, ledgerRow] = this.store.getManySync(keys)
    if (!known) {
      if (ledgerRow === undefined) throw ledgerNotFound(ledger)
      this.ledgerSeen(ledger)
    }
    if (row === undefined) throw notFound(`account ${address} not found`)
    return row
  }

  private async accountJson(ledger: LedgerName, record: AccountRecord, expand: Expand): Promise<Json> {
    const view: Record<string, Json> = {
      address: record.address,
      metadata: record.metadata,
      insertionDate: record.insertionDate,
      updatedAt: record.updatedAt,
      firstUsage: record.firstUsage,
    }
    if (expand.volumes) view.volumes = volumesJson(await this.accountVolumes(ledger, record.address, expand.pit, true))
    if (expand.effectiveVolumes) view.effectiveVolumes = volumesJson(await effectiveVolumes(this.store, ledger, record.address, expand.pit))
    return view
  }

  /** Current volumes, or at `pit` by insertion date (`byInsertion`) or by effective date. */
  async accountVolumes(ledger: LedgerName, address: string, pit: string | undefined, byInsertion: boolean): Promise<VolumesByAsset> {
    if (pit !== undefined) {
      return byInsertion ? volumesInsertedBy(this.store, ledger, address, pit) : effectiveVolumes(this.store, ledger, address, pit)
    }
    return this.currentVolumes(ledger, address as AccountAddress)
  }

  /** The account's volumes (one row per asset). */
  private currentVolumes(ledger: LedgerName, address: AccountAddress): VolumesByAsset {
    const volumes: VolumesByAsset = new Map()
    for (const [asset, value] of this.currentVolumeRows(ledger, address)) volumes.set(asset, decodeRowValue('v', value))
    return volumes
  }

  /** The account's volume rows, each with its asset, in key order; in short reads: most accounts hold a few assets. */
  private currentVolumeRows(ledger: LedgerName, address: AccountAddress): [asset: string, row: Buffer][] {
    const rowPrefix = attributeRowKey(volumesPrefix(ledger, address) as never)
    const lt = prefixEnd(rowPrefix)
    const rows: [string, Buffer][] = []
    for (let gte = rowPrefix; ; ) {
      const read = this.store.rowsSync({ gte, lt, reverse: false, limit: volumeRowsPerRead })
      for (const [key, value] of read.rows) rows.push([key.toString('utf8', rowPrefix.length), value])
      const last = read.rows[read.rows.length - 1]
      if (read.exhausted || last === undefined) return rows
      gte = Buffer.concat([last[0], Buffer.of(0)])
    }
  }

  /** Volumes of one account as v2 prints them (tests and tools). */
  async volumesOf(ledger: LedgerName, address: AccountAddress): Promise<Json> {
    return volumesJson(await this.accountVolumes(ledger, address, undefined, true))
  }

  async listAccounts(ledger: LedgerName, request: PageRequest, filter: Filter<'accounts'> | undefined, expand: Expand = NO_EXPAND): Promise<Page<Json>> {
    this.requireLedger(ledger)
    const scan = this.accountScan(ledger, filter)
    const views = this
    const page = await pageOfRows(this.store, {
      prefix: scan.prefix,
      ...(scan.range === undefined ? {} : { scan: scan.range }),
      descending: listDescending(request.options, 'address', false),
      request,
      select(_key, value) {
        return views.selectAccount(ledger, value, filter, expand.pit)
      },
    })
    const data: Json[] = []
    for (const record of page.data) data.push(await this.accountJson(ledger, record, expand))
    return { ...page, data }
  }

  async countAccounts(ledger: LedgerName, filter: Filter<'accounts'> | undefined, pit?: string): Promise<bigint> {
    const record = await this.ledger(ledger)
    if (filter?.root === undefined && pit === undefined) return record.accountCount
    let count = 0n
    await this.eachAccount(ledger, filter, pit, () => {
      count++
    })
    return count
  }

  /** Calls `visit` for every account the filter selects, with the volumes it was judged on. */
  async eachAccount(
    ledger: LedgerName,
    filter: Filter<'accounts'> | undefined,
    pit: string | undefined,
    visit: (record: AccountRecord, volumes: VolumesByAsset | undefined) => void,
    options: { byInsertion: boolean; needVolumes: boolean } = { byInsertion: true, needVolumes: false },
  ): Promise<void> {
    const filterNeedsVolumes = filter !== undefined && fieldsUsed(filter).has('balance')
    for await (const values of this.accountRows(ledger, filter)) {
      for (const value of values) {
        const record = decodeAccount(value)
        // Judge on the account row alone when the filter allows: volumes are read only for selected accounts.
        if (filter !== undefined && !filterNeedsVolumes && !matches(filter, accountFilterRecord(record, undefined))) continue
        const volumes = options.needVolumes || filterNeedsVolumes ? await this.accountVolumes(ledger, record.address, pit, options.byInsertion) : undefined
        if (filterNeedsVolumes && filter !== undefined && !matches(filter, accountFilterRecord(record, volumes))) continue
        visit(record, volumes)
      }
    }
  }

  /**
   * The account rows a filter can select: point reads when it names its
   * accounts exactly (`$match` on exact addresses, alone or under `$or`),
   * else a scan of its address prefix, else of the whole ledger; a batch at a time.
   */
  private async *accountRows(ledger: LedgerName, filter: Filter<'accounts'> | undefined): AsyncIterable<readonly Buffer[]> {
    const exact = filter?.root === undefined ? undefined : exactAddresses(filter.root)
    if (exact !== undefined) {
      const keys = [...new Set(exact)].sort().map((address) => attributeRowKey(accountKey(ledger, address as AccountAddress)))
      yield this.store.getManySync(keys).filter((row) => row !== undefined)
      return
    }
    const scan = this.accountScan(ledger, filter)
    // Every row of the range is visited (counts, aggregates): read in batches on the thread pool, not one promise per row.
    for await (const rows of this.store.rangeBatches({ ...(scan.range ?? { gte: scan.prefix, lt: prefixEnd(scan.prefix) }), batchBytes: scanBatchBytes })) {
      yield rows.map(([, value]) => value)
    }
  }

  private accountScan(ledger: LedgerName, filter: Filter<'accounts'> | undefined): { prefix: Buffer; range?: { gte: Buffer; lt: Buffer | undefined } } {
    const prefix = attributeRowKey(accountPrefix(ledger) as never)
    const start = filter === undefined ? undefined : addressPrefix(filter)
    if (start === undefined) return { prefix }
    const gte = Buffer.concat([prefix, Buffer.from(start, 'utf8')])
    return { prefix, range: { gte, lt: prefixEnd(gte) } }
  }

  private async selectAccount(ledger: LedgerName, value: Buffer, filter: Filter<'accounts'> | undefined, pit: string | undefined): Promise<AccountRecord | undefined> {
    const record = decodeAccount(value)
    if (filter === undefined || filter.root === undefined) return record
    const volumes = fieldsUsed(filter).has('balance') ? await this.accountVolumes(ledger, record.address, pit, true) : undefined
    return matches(filter, accountFilterRecord(record, volumes)) ? record : undefined
  }

  // ---- schemas -----------------------------------------------------------------

  /** A schema by version; NOT_FOUND naming the latest when the ledger has no such version. */
  async schema(ledger: LedgerName, version: string): Promise<SchemaRecord> {
    const record = await this.ledger(ledger)
    const row = await this.store.get(attributeRowKey(schemaKey(ledger, version)))
    if (row === undefined) throw schemaNotFound(ledger, version, record.latestSchemaVersion)
    return decodeRowValue('s', row)
  }

  /** Schemas by creation (their INSERTED_SCHEMA log id), newest first unless `order=asc`. */
  async listSchemas(ledger: LedgerName, request: PageRequest): Promise<Page<Json>> {
    this.requireLedger(ledger)
    const sort = request.options.sort
    if (sort !== undefined && sort !== '' && sort !== 'created_at' && sort !== 'created_at:asc' && sort !== 'created_at:desc') {
      throw validationError(`sort: schemas are listed by created_at (got ${JSON.stringify(sort)})`)
    }
    const order = request.options.order
    if (order !== undefined && order !== '' && order !== 'asc' && order !== 'desc') throw validationError(`order: expected asc or desc, got ${JSON.stringify(order)}`)
    const descending = sort === 'created_at:asc' ? false : sort === 'created_at:desc' ? true : order !== 'asc'
    return pageOfRows(this.store, {
      prefix: schemasPrefix(ledger),
      descending,
      request,
      select: async (_key, value) => schemaView(await this.schema(ledger, value.toString('utf8'))),
    })
  }

  // ---- logs --------------------------------------------------------------------

  /** Logs, newest first; with `pit`, those dated at or before it. */
  async listLogs(ledger: LedgerName, request: PageRequest, filter: Filter<'logs'> | undefined): Promise<Page<Json>> {
    this.requireLedger(ledger)
    const pit = parseTimestamp(request.options.pit, 'pit')
    const until = pit === undefined ? undefined : fixedWidthInstant(pit)
    return pageOfRows(this.store, {
      prefix: logRowPrefix(ledger),
      descending: listDescending(request.options, 'id', true),
      request,
      select: (_key, value) => {
        const log = decodeLogRow(value) as { id: bigint; type: string; date: string }
        if (until !== undefined && fixedWidthInstant(log.date) > until) return undefined
        return filter === undefined || matches(filter, log) ? (log as unknown as Json) : undefined
      },
    })
  }
}

/** A listed transaction: its record, or already printed from its row (`printTransactionRow`). */
type ListedTransaction = TransactionRecord | PrintedJson

/** Where an answer is kept: its cache, the owner it reads first, its key. */
interface AnswerSpot {
  readonly cache: AnswerCache
  readonly slot: number
  readonly key: string
}

function accountFilterRecord(record: AccountRecord, volumes: VolumesByAsset | undefined) {
  const balances = new Map<string, bigint>()
  for (const [asset, moved] of volumes ?? []) balances.set(asset, moved.input - moved.output)
  return { address: record.address, metadata: record.metadata, balances, firstUsage: record.firstUsage, insertionDate: record.insertionDate, updatedAt: record.updatedAt }
}

/** The transactions a list shows: at `pit` (see `listTransactions`), then filtered. */
function transactionSelector(filter: Filter<'transactions'> | undefined, pit: string | undefined): (record: TransactionRecord) => TransactionRecord | undefined {
  const until = pit === undefined ? undefined : fixedWidthInstant(pit)
  return (record) => {
    let seen = record
    if (until !== undefined) {
      if (fixedWidthInstant(record.timestamp) > until) return undefined
      if (record.revertedAt !== undefined && fixedWidthInstant(record.revertedAt) > until) {
        const { revertedAt: _revertedAt, ...rest } = record
        seen = { ...rest, reverted: false }
      }
    }
    return filter === undefined || matches(filter, seen) ? seen : undefined
  }
}

/** The addresses a filter is limited to, when it names them all exactly (a `$match` or an `$or` of them). */
function exactAddresses(node: FilterNode): string[] | undefined {
  if (node.kind === 'address' && node.field === 'address' && node.pattern.exact) return [node.pattern.source]
  if (node.kind !== 'or' || node.items.length === 0 || node.items.length > exactAddressesMax) return undefined
  const addresses: string[] = []
  for (const item of node.items) {
    const inner = exactAddresses(item)
    if (inner === undefined) return undefined
    addresses.push(...inner)
  }
  return addresses
}

const exactAddressesMax = 1000

/** Ledger names `Views` remembers as existing (see `knownLedgers`). */
const knownLedgersMax = 10_000

/** Volume rows per short read of an account's assets: one read for nearly every account. */
const volumeRowsPerRead = 32
/** Account reads answered in one turn of the event loop at most (each some tens of µs; the rest wait for the next turn). */
const accountReadsPerTurn = 64

/** An account read that missed the kept answers, waiting for its turn's batch (`Views.readAccountsInTurn`). */
interface AccountReadWaiting {
  readonly ledger: LedgerName
  readonly address: AccountAddress
  readonly volumes: boolean
  /** Set when the answer is to be kept: the owner's generation recorded when the read was asked for. */
  readonly kept: { readonly spot: AnswerSpot; readonly read: ReadRecord } | undefined
  resolve(text: string): void
  reject(error: unknown): void
}

/** The filter is one exact `$match` on `account` and nothing else: its account's index is the whole answer. */
function isIndexedAccountAlone(node: FilterNode | undefined): boolean {
  return node !== undefined && node.kind === 'address' && node.field === 'account' && node.pattern.exact
}

/** An exact account a transaction filter requires (a conjunct `$match` on account/source/destination). */
function indexedAccount(node: FilterNode): string | undefined {
  const leaves: Leaf[] = []
  conjunctLeaves(node, leaves)
  for (const leaf of leaves) if (leaf.kind === 'address' && leaf.pattern.exact) return leaf.pattern.source
  return undefined
}

/** The leaves a conjunction requires (`and`s walked, `or`s and `not`s left out), added to `leaves`. */
function conjunctLeaves(item: FilterNode, leaves: Leaf[]): void {
  if (item.kind === 'and') for (const inner of item.items) conjunctLeaves(inner, leaves)
  else if (item.kind !== 'or' && item.kind !== 'not') leaves.push(item)
}

/** Where a kept list records the owner of each transaction row it reads. */
interface TransactionSlots {
  readonly ledger: LedgerName
  readonly generations: RowGenerations
}

/**
 * What a transaction list makes of the rows it reads, one per request: a
 * transaction row judged (decoded, then kept or left out by `pit` and the
 * filter) or, when nothing is left to judge (`printsAsStored`), printed as
 * stored; an index page's rows read in one call by the ids their keys end
 * with, their values never read. A class rather than closures made per
 * request: tsx's keepNames would name each of those (`__name`, a
 * `defineProperty` per closure per request).
 */
class ListedTransactionRows {
  printsAsStored = false

  constructor(
    private readonly store: Store,
    private readonly ledger: LedgerName,
    private readonly selected: (record: TransactionRecord) => TransactionRecord | undefined,
    private readonly decode: (row: Buffer) => TransactionRecord,
    /** Set when the answer is to be kept: each transaction row's owner is recorded before the row is read. */
    private readonly kept: { readonly read: ReadRecord; readonly slots: TransactionSlots } | undefined,
  ) {}

  picked(row: Buffer): ListedTransaction | undefined {
    if (this.printsAsStored) {
      const text = printTransactionRow(row)
      if (text !== undefined) return new PrintedJson(text)
    }
    return this.selected(this.decode(row))
  }

  /** Index rows end with the transaction id: the transactions' rows read in one call. */
  indexed(rows: readonly [Buffer, Buffer][]): (ListedTransaction | undefined)[] {
    const ids: bigint[] = []
    const keys: Buffer[] = []
    for (const [key] of rows) {
      const id = key.readBigUInt64BE(key.length - 8)
      ids.push(id)
      keys.push(attributeRowKey(transactionKey(this.ledger, id)))
    }
    if (this.kept !== undefined) {
      const { read, slots } = this.kept
      for (const id of ids) {
        const slot = slots.generations.transactionSlot(slots.ledger, id)
        invariant(slot !== undefined, 'a kept list reads from an ASCII ledger')
        read.add(slot)
      }
    }
    const values = this.store.getManySync(keys)
    const items: (ListedTransaction | undefined)[] = []
    for (let at = 0; at < values.length; at++) {
      const row = values[at]
      invariant(row !== undefined, () => `indexed transaction ${ids[at]} has no row`)
      items.push(this.picked(row))
    }
    return items
  }
}

export function decodeLedger(row: Buffer): LedgerRecord {
  return decodeRowValue('l', row)
}

export function decodeTransaction(row: Buffer): TransactionRecord {
  return decodeRowValue('t', row)
}

export function decodeAccount(row: Buffer): AccountRecord {
  return decodeRowValue('a', row)
}
