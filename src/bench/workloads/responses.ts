import type { HttpResponse } from '../http.ts'
import type { RequestOutcome } from '../workload.ts'

/**
 * Reading answers. Responses are parsed with the platform JSON parser, not
 * the lossless codec: the bench only looks at `errorCode`, `responseType`
 * and array lengths, never at amounts, and must not become the bottleneck.
 */
export function parseResponseBody(body: string): unknown {
  if (body.length === 0) return undefined
  try {
    return JSON.parse(body) as unknown
  } catch {
    return undefined
  }
}

export function isSuccessStatus(status: number): boolean {
  return status >= 200 && status < 300
}

function recordOf(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}

/** `HTTP 400 INSUFFICIENT_FUND`, or `HTTP 502` when the body names no code. */
export function failureKeyOf(response: HttpResponse, parsed: unknown = parseResponseBody(response.body)): string {
  const errorCode = recordOf(parsed)?.['errorCode']
  return typeof errorCode === 'string' && errorCode.length > 0
    ? `HTTP ${response.status} ${errorCode}`
    : `HTTP ${response.status}`
}

/** The outcome of a request that is one operation: success on 2xx. */
export function classifySingle(response: HttpResponse, transactionsOnSuccess: number): RequestOutcome {
  if (isSuccessStatus(response.status)) {
    return { ok: true, transactions: transactionsOnSuccess, operationsSucceeded: 1, failures: [] }
  }
  return { ok: false, transactions: 0, operationsSucceeded: 0, failures: [{ key: failureKeyOf(response), operations: 1 }] }
}

/**
 * The outcome of a non-atomic `_bulk` of `elements` CREATE_TRANSACTION
 * elements. Formance answers 200 when every element succeeded and 400 with
 * per-element results otherwise; any other answer fails the whole bulk.
 */
export function classifyBulk(response: HttpResponse, elements: number): RequestOutcome {
  const parsed = parseResponseBody(response.body)
  const results = recordOf(parsed)?.['data']
  const ok = isSuccessStatus(response.status)
  if (!Array.isArray(results) || (response.status !== 200 && response.status !== 400)) {
    const key = ok ? `HTTP ${response.status} BULK_RESPONSE_MALFORMED` : failureKeyOf(response, parsed)
    return { ok: false, transactions: 0, operationsSucceeded: 0, failures: [{ key, operations: elements }] }
  }
  let transactions = 0
  const failures = new Map<string, number>()
  const fail = (key: string, operations: number): void => {
    failures.set(key, (failures.get(key) ?? 0) + operations)
  }
  for (const result of results.slice(0, elements)) {
    const element = recordOf(result)
    const responseType = element?.['responseType']
    if (responseType === 'CREATE_TRANSACTION') {
      transactions += 1
    } else if (responseType === 'ERROR') {
      const errorCode = element?.['errorCode']
      fail(`element ${typeof errorCode === 'string' ? errorCode : 'UNKNOWN'}`, 1)
    } else {
      fail('element UNEXPECTED_RESPONSE_TYPE', 1)
    }
  }
  if (results.length < elements) fail(`HTTP ${response.status} BULK_RESULTS_MISSING`, elements - results.length)
  return {
    ok: ok && failures.size === 0,
    transactions,
    operationsSucceeded: transactions,
    failures: [...failures].map(([key, operations]) => ({ key, operations })),
  }
}

/**
 * The load generator's bulk classifier: a 200 to a non-atomic `_bulk` means
 * every element committed (a failed element turns the answer into a 400), so
 * it is counted without reading the body — a 100-element answer is ~50 KB,
 * and parsing it cost the client ~5 µs per transaction, scanning it for
 * result markers still ~3 µs. Any other answer goes through `classifyBulk`.
 * `createBulkCounter` samples 200s in full to catch a server that breaks the
 * rule.
 */
export function countBulk(response: HttpResponse, elements: number): RequestOutcome {
  if (response.status === 200) return { ok: true, transactions: elements, operationsSucceeded: elements, failures: [] }
  return classifyBulk(response, elements)
}

/** One bulk answer in this many is parsed in full and checked against its count. */
export const bulkResponseSampleEvery = 32

/**
 * Counting with correctness sampling: the first answer and every
 * `sampleEvery`-th after it are also classified by the full parser; when the
 * two disagree, the whole request fails as `BULK_COUNT_DISAGREES` so the
 * run's error rate shows it.
 */
export function createBulkCounter(sampleEvery: number = bulkResponseSampleEvery): (response: HttpResponse, elements: number) => RequestOutcome {
  if (!(Number.isSafeInteger(sampleEvery) && sampleEvery >= 1)) throw new RangeError('sampleEvery must be a positive integer')
  let answers = 0
  return (response, elements) => {
    const counted = countBulk(response, elements)
    const sampled = answers % sampleEvery === 0
    answers += 1
    if (!sampled) return counted
    const parsed = classifyBulk(response, elements)
    if (parsed.transactions === counted.transactions && parsed.ok === counted.ok) return counted
    return { ok: false, transactions: 0, operationsSucceeded: 0, failures: [{ key: `HTTP ${response.status} BULK_COUNT_DISAGREES`, operations: elements }] }
  }
}
