import type { HttpResponse } from '../http.ts'
import type { RequestOutcome, WorkloadDefinition } from '../workload.ts'
import { benchAsset, ledgerPath, userAccount } from './postings.ts'
import { failureKeyOf, isSuccessStatus } from './responses.ts'

/** A read succeeds as one operation on 2xx; anything else is one failure by cause. */
function classifyRead(response: HttpResponse): RequestOutcome {
  if (isSuccessStatus(response.status)) return { ok: true, transactions: 0, operationsSucceeded: 1, failures: [] }
  return { ok: false, transactions: 0, operationsSucceeded: 0, failures: [{ key: failureKeyOf(response), operations: 1 }] }
}

/** `GET /v2/{ledger}/accounts/users:k?expand=volumes`: a point read with volumes. */
export const getAccountWorkload: WorkloadDefinition = {
  name: 'get-account',
  summary: 'GET /v2/{ledger}/accounts/users:k?expand=volumes (random k); 404 before the account is first used counts as a failure',
  kind: 'read',
  createGenerator(settings, random) {
    const base = `${ledgerPath(settings.ledger)}/accounts`
    return {
      next: () => ({ method: 'GET', path: `${base}/${userAccount(random.nextInt(settings.accounts))}?expand=volumes`, body: undefined, operations: 1 }),
      classify: (_request, response) => classifyRead(response),
    }
  },
}

/**
 * `GET /v2/{ledger}/transactions` filtered on one account (the by-account
 * index path), first page of 15 — what a wallet screen asks for.
 */
export const listFilterWorkload: WorkloadDefinition = {
  name: 'list-filter',
  summary: 'GET /v2/{ledger}/transactions with {"$match":{"account":"users:k"}} as a JSON body, first page',
  kind: 'read',
  createGenerator(settings, random) {
    const path = `${ledgerPath(settings.ledger)}/transactions?pageSize=15`
    return {
      next: () => ({ method: 'GET', path, body: JSON.stringify({ $match: { account: userAccount(random.nextInt(settings.accounts)) } }), operations: 1 }),
      classify: (_request, response) => classifyRead(response),
    }
  },
}

/**
 * `GET /v2/{ledger}/aggregate/balances` over the users whose address falls
 * in one of ten buckets (`users:1...` style prefixes are not v2 syntax, so a
 * `$or` of exact addresses stands in): an aggregate that reads volumes of
 * several accounts.
 */
export const aggregateBalancesWorkload: WorkloadDefinition = {
  name: 'aggregate-balances',
  summary: `GET /v2/{ledger}/aggregate/balances over 10 random users ($or of exact addresses; ${benchAsset} totals)`,
  kind: 'read',
  createGenerator(settings, random) {
    const path = `${ledgerPath(settings.ledger)}/aggregate/balances`
    return {
      next: () => {
        const addresses = Array.from({ length: 10 }, () => ({ $match: { address: userAccount(random.nextInt(settings.accounts)) } }))
        return { method: 'GET', path, body: JSON.stringify({ $or: addresses }), operations: 1 }
      },
      classify: (_request, response) => classifyRead(response),
    }
  },
}
