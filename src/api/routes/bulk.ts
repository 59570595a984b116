import type { FastifyInstance, FastifyReply } from 'fastify'
import type { LedgerNode } from '../../server/index.ts'
import type { LedgerName } from '../../domain/index.ts'
import {
  TallyError,
  describe,
  isJsonObject,
  lengthLimitError,
  parseAccountAddress,
  parseMetadata,
  parseMetadataKey,
  validationError,
  InvariantViolation,
  asciiText,
  invariant,
  printableTransaction,
  writeTransaction,
} from '../../domain/index.ts'
import type { AsciiText, JsonBytes } from '../../domain/index.ts'
import type { CreateTransactionOptions, Order, ProposedOrder } from '../../orders/index.ts'
import { parseBoolean, parseCreateTransaction, parseRevertTransaction, parseTransactionId, templateScript } from '../../orders/index.ts'
import type { OrderResult } from '../../fsm/index.ts'
import { idempotencyKeyLengthMax, ledgerParam, queryFlag, requestHash, schemaVersionOf } from '../requests.ts'
import { wireCode } from '../errors.ts'
import { elementsPerTurn, nextTurn, sendPrintedData } from '../sliced-json.ts'
import type { Views } from '../views.ts'

export interface BulkOptions {
  /** Far above v2's 100: bulk is the fast path. */
  readonly bulkElementsMax: number
  /** The server's body limit. */
  readonly bodyBytesMax: number
  /** The largest payload of one log record (`LedgerNode.payloadBytesMax`). */
  readonly recordPayloadBytesMax: number
}

/**
 * The body limit of `_bulk`: the server's body limit, and never more than
 * the log's record bound (`recordPayloadBytesMax`). A bulk is logged as one
 * record, its orders packed (about the size of their JSON text, or less) with
 * the stored rows it reads: a body over the record bound would be parsed and
 * planned only to be refused. One under it may still not fit once those rows
 * are added, and is refused after planning (413 naming the record bound).
 */
export function bulkBodyBytesMax(bodyBytesMax: number, recordPayloadBytesMax: number): number {
  return Math.min(bodyBytesMax, recordPayloadBytesMax)
}

export const bulkElementsMaxDefault = 10_000

const ACTIONS = ['CREATE_TRANSACTION', 'ADD_METADATA', 'REVERT_TRANSACTION', 'DELETE_METADATA'] as const
type Action = (typeof ACTIONS)[number]

export function bulkRoutes(app: FastifyInstance, node: LedgerNode, views: Views, options: BulkOptions): void {
  // Refused with 413 from Content-Length (or as the body arrives), before anything is parsed or planned.
  const bodyLimit = bulkBodyBytesMax(options.bodyBytesMax, options.recordPayloadBytesMax)
  const config: { bodyLimitReason?: string } =
    bodyLimit < options.bodyBytesMax
      ? { bodyLimitReason: `the log's record bound: a _bulk is logged as one record of at most ${options.recordPayloadBytesMax} bytes; send it as smaller bulks` }
      : {}
  app.post('/v2/:ledger/_bulk', { bodyLimit, config }, async (request, reply) => {
    const ledger = ledgerParam(request)
    const atomic = queryFlag(request, 'atomic')
    const parallel = queryFlag(request, 'parallel')
    const continueOnFailure = queryFlag(request, 'continueOnFailure')
    if (atomic && parallel) {
      throw new TallyError({ code: 'VALIDATION', kind: 'precondition', message: 'atomic and parallel cannot be combined' })
    }
    const body = request.body
    if (!Array.isArray(body)) throw validationError(`body: expected an array of bulk elements, got ${describe(body)}`)
    if (body.length > options.bulkElementsMax) {
      throw new TallyError({
        code: 'BULK_SIZE_EXCEEDED',
        kind: 'validation',
        message: `bulk of ${body.length} elements exceeds the limit of ${options.bulkElementsMax}`,
      })
    }
    views.requireLedger(ledger) // 404 LEDGER_NOT_FOUND like every other ledger route
    if (body.length === 0) return reply.code(200).send({ data: [] })
    const schema = schemaVersionOf(request)
    // Elements' templates are read from the bulk's schema here, once, as a single transaction's
    // are; the FSM checks each against the schema it reads.
    const followed = schema.schemaVersion === undefined || !body.some(namesTemplate) ? undefined : await views.schema(ledger, schema.schemaVersion)
    const parsing: CreateTransactionOptions = { ...schema, ...(followed === undefined ? {} : { templateScript: (name: string) => templateScript(followed, name) }) }
    // A slice of elements at a time, with a turn of the event loop between slices (a bulk may hold 10,000).
    // Each element's action and order go into two arrays: no wrapper object per element.
    const actions: Action[] = []
    const proposed: ProposedOrder[] = []
    for (let i = 0; i < body.length; i++) {
      if (i > 0 && i % elementsPerTurn === 0) await nextTurn()
      actions[i] = parseElement(ledger, body[i], i, parsing, proposed)
    }
    // Parallel elements are independent; applying them in order gives the same results.
    const results = await node.admission.submit(proposed, { atomic, continueOnFailure: continueOnFailure || parallel })
    return sendBulkAnswer(reply, actions, results)
  })
}

/**
 * The answer: one element per result up to the first skipped one (a bulk
 * stopped at a failure skips every element after it, and reports nothing
 * for them), 400 with the first failure that was not rolled back, 200
 * otherwise.
 */
function sendBulkAnswer(reply: FastifyReply, actions: readonly Action[], results: readonly OrderResult[]): Promise<FastifyReply> {
  let firstError: Extract<OrderResult, { status: 'failed' }> | undefined
  let answered = results.length
  for (let i = 0; i < results.length; i++) {
    const result = results[i] as OrderResult
    if (result.status === 'skipped') {
      if (answered === results.length) answered = i
      continue
    }
    invariant(answered === results.length, 'the skipped elements of a bulk are its last ones')
    if (result.status === 'failed' && result.rolledBack !== true) firstError ??= result
  }
  const writeElement = (out: JsonBytes, i: number): void => {
    const result = results[i] as OrderResult
    if (result.status === 'failed') writeBulkError(out, result.error)
    else if (result.status === 'applied') writeBulkSuccess(out, actions[i] as Action, result)
    else throw new InvariantViolation('a skipped bulk element is not answered')
  }
  if (firstError !== undefined) {
    return sendPrintedData(reply, 400, answered, writeElement, { errorCode: wireCode(firstError.error.code), errorMessage: wireMessage(firstError.error) })
  }
  return sendPrintedData(reply, 200, answered, writeElement)
}

function wireMessage(error: { code: string; message: string }): string {
  return wireCode(error.code) === error.code ? error.message : `${error.code}: ${error.message}`
}

/** The constant text of an applied element, encoded once. */
const elementHead: Readonly<Record<Action, AsciiText>> = {
  CREATE_TRANSACTION: asciiText('{"responseType":"CREATE_TRANSACTION","logID":'),
  ADD_METADATA: asciiText('{"responseType":"ADD_METADATA","logID":'),
  REVERT_TRANSACTION: asciiText('{"responseType":"REVERT_TRANSACTION","logID":'),
  DELETE_METADATA: asciiText('{"responseType":"DELETE_METADATA","logID":'),
}
const dataField = asciiText(',"data":')
const closeElement = asciiText('}')

/**
 * One element of a `_bulk` answer as v2 prints it, printed field by field:
 * `{responseType, logID, data?}` for an applied element (`data`, the
 * transaction, for those that create one), `{responseType: "ERROR", logID: 0,
 * errorCode, errorDescription}` for a failed one.
 */
function writeBulkSuccess(out: JsonBytes, action: Action, result: Extract<OrderResult, { status: 'applied' }>): void {
  const output = result.output
  switch (output.type) {
    case 'TRANSACTION':
      out.ascii(elementHead[action])
      out.integer(output.logId)
      out.ascii(dataField)
      writeTransaction(out, printableTransaction(output.transaction), { volumes: true })
      return out.ascii(closeElement)
    case 'METADATA':
      out.ascii(elementHead[action])
      out.integer(output.logId ?? 0n)
      return out.ascii(closeElement)
    case 'LEDGER':
    case 'SCHEMA':
    case 'OUTPUTS':
      throw new InvariantViolation(`bulk elements never produce a ${output.type} output`)
    default: {
      const never: never = output
      throw new InvariantViolation(`unknown output ${JSON.stringify(never)}`)
    }
  }
}

function writeBulkError(out: JsonBytes, error: { code: string; message: string }): void {
  out.raw('{"responseType":"ERROR","logID":0,"errorCode":')
  out.string(wireCode(error.code))
  out.raw(',"errorDescription":')
  out.string(wireMessage(error))
  out.raw('}')
}

/** Whether a bulk element creates a transaction from a template (`script.template`). */
function namesTemplate(element: unknown): boolean {
  if (!isJsonObject(element) || element.action !== 'CREATE_TRANSACTION' || !isJsonObject(element.data)) return false
  const script = element.data.script
  return isJsonObject(script) && script.template !== undefined && script.template !== null && script.template !== ''
}

/**
 * Element `i`: its action returned, its order put at `proposed[i]` (appended: elements are parsed in order).
 * `options`: the bulk's `schemaVersion`, followed by every element that v2
 * validates against a schema, and the templates of that schema. A refusal
 * names the element (`[i]`); the name is spelled out only then.
 */
function parseElement(ledger: LedgerName, element: unknown, i: number, options: CreateTransactionOptions, proposed: ProposedOrder[]): Action {
  if (!isJsonObject(element)) throw validationError(`[${i}]: expected a bulk element object, got ${describe(element)}`)
  const action = element.action
  if (!isAction(action)) throw validationError(`[${i}].action: expected one of ${ACTIONS.join(', ')}, got ${describe(action)}`)
  const ik = element.ik
  if (typeof ik === 'string' && ik.length > idempotencyKeyLengthMax) throw lengthLimitError(`[${i}].ik`, 'idempotency key', ik.length, idempotencyKeyLengthMax)
  if (ik !== undefined && ik !== null && typeof ik !== 'string') {
    throw validationError(`[${i}].ik: expected a string of at most ${idempotencyKeyLengthMax} characters`)
  }
  let order: Order
  try {
    order = parseAction(ledger, action, element.data, options)
  } catch (error) {
    if (error instanceof TallyError) {
      throw new TallyError({ code: error.code, kind: error.kind, message: `[${i}].data: ${error.message}` })
    }
    throw error
  }
  proposed[i] = typeof ik === 'string' && ik !== '' ? { order, idempotencyKey: ik, requestHash: requestHash(['bulk', order]) } : { order }
  return action
}

function isAction(value: unknown): value is Action {
  return (ACTIONS as readonly unknown[]).includes(value)
}

function parseAction(ledger: LedgerName, action: Action, data: unknown, options: CreateTransactionOptions): Order {
  if (!isJsonObject(data)) throw validationError(`expected an object, got ${describe(data)}`)
  const schema = options.schemaVersion === undefined ? {} : { schemaVersion: options.schemaVersion }
  switch (action) {
    case 'CREATE_TRANSACTION':
      return parseCreateTransaction(ledger, data, options)
    case 'REVERT_TRANSACTION':
      return {
        ...parseRevertTransaction(ledger, parseTransactionId(data.id, 'id'), { metadata: data.metadata ?? null }, {
          force: parseBoolean(data.force, 'force'),
          atEffectiveDate: parseBoolean(data.atEffectiveDate, 'atEffectiveDate'),
        }),
        ...schema,
      }
    case 'ADD_METADATA':
    case 'DELETE_METADATA': {
      const targetType = data.targetType
      if (targetType !== 'ACCOUNT' && targetType !== 'TRANSACTION') {
        throw validationError(`targetType: expected ACCOUNT or TRANSACTION, got ${describe(targetType)}`)
      }
      if (action === 'ADD_METADATA') {
        const metadata = parseMetadata(data.metadata, 'metadata')
        return targetType === 'ACCOUNT'
          ? { type: 'SAVE_ACCOUNT_METADATA', ledger, address: parseAccountAddress(data.targetId, 'targetId'), metadata, ...schema }
          : { type: 'SAVE_TRANSACTION_METADATA', ledger, id: parseTransactionId(data.targetId, 'targetId'), metadata, ...schema }
      }
      const key = parseMetadataKey(data.key, 'key')
      return targetType === 'ACCOUNT'
        ? { type: 'DELETE_ACCOUNT_METADATA', ledger, address: parseAccountAddress(data.targetId, 'targetId'), key }
        : { type: 'DELETE_TRANSACTION_METADATA', ledger, id: parseTransactionId(data.targetId, 'targetId'), key }
    }
    default: {
      const never: never = action
      throw new InvariantViolation(`unknown action ${String(never)}`)
    }
  }
}
