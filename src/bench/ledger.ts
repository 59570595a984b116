import { NetworkError, type HttpTransport } from './http.ts'
import { ledgerPath } from './workloads/postings.ts'
import { failureKeyOf, parseResponseBody } from './workloads/responses.ts'

/** The target did not answer at all: nothing is listening, or DNS/TLS/timeout failed. */
export class TargetUnreachableError extends Error {
  constructor(target: string, cause: NetworkError) {
    super(`cannot reach ${target}: ${cause.code} (${cause.message}). Is \`tally serve\` running there?`, { cause })
    this.name = 'TargetUnreachableError'
  }
}

/** The target answered, but not as a v2 ledger server that lets us create the bench ledger. */
export class LedgerSetupError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'LedgerSetupError'
  }
}

/**
 * Creates the bench ledger if missing: `POST /v2/{ledger}` answers 204 when
 * created, or 400 `LEDGER_ALREADY_EXISTS` when it is already there.
 */
export async function ensureLedger(transport: HttpTransport, target: string, ledger: string): Promise<'created' | 'existing'> {
  let response
  try {
    response = await transport.send({ method: 'POST', path: ledgerPath(ledger), body: '{}' })
  } catch (error) {
    if (error instanceof NetworkError) throw new TargetUnreachableError(target, error)
    throw error
  }
  if (response.status >= 200 && response.status < 300) return 'created'
  const parsed = parseResponseBody(response.body)
  const errorCode = parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, unknown>)['errorCode'] : undefined
  if ((response.status === 400 || response.status === 409) && errorCode === 'LEDGER_ALREADY_EXISTS') return 'existing'
  const excerpt = response.body.length > 200 ? `${response.body.slice(0, 200)}…` : response.body
  throw new LedgerSetupError(`cannot create ledger ${ledger} at ${target}: ${failureKeyOf(response, parsed)} ${excerpt}`.trim())
}
